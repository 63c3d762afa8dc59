"""Fan-out: one leader on the Binance emulator copied into 1,000 follower accounts at once.

The followers are accounts at the broker's in-memory paper venue (``BROKER_PAPER_VENUE``,
docs/paper-venue.md), so the fan-out measures the mesh, not an emulator. The leader's account is
published as a leader (docs/public-leaders.md) and followed by ``--users`` users, each with
``followers / users`` configurations of one target account: 1,000 active configurations in one
engine. Per-user REST rate limits are lifted for the setup (``GATEWAY_RATE_LIMIT_PER_SECOND=0``,
``GATEWAY_IP_RATE_LIMIT_PER_SECOND=0``).

    .venv/bin/python bench/fanout.py                        # 1,000 followers, 5 leader fills
    .venv/bin/python bench/fanout.py --followers 100 --users 5 --fills 2 --no-record  # small
    .venv/bin/python bench/fanout.py --profile              # also sample every process (py-spy)

One untimed leader fill first opens every follower's connection (as the other benchmarks warm
up); then ``--fills`` market orders, each waited for (every copy decided, read from the engine's
``copytrade_engine_intents_total``) and spaced by ``--gap`` seconds. Per copy, from the leader's
fill (the emulator's trade ``time_ms``):

- **durable**: to the intent's ``create_time`` (the engine writes the intent before any order);
- **acked**: the intent's ``latency_ms``, from the leader's fill to the engine holding the
  broker's answer that the paper venue took the order (a market order there fills at once).

Prints p50, p99, max of each and, per leader fill, the time to its last follower; the engine's
RSS after the setup and after the fan-out; copies not filled by reason (none may be skipped for
``portfolio_unavailable`` or ``market_unavailable``); the CPU each process used per copy over the
timed fills. Appends one row to bench/RESULTS.md unless ``--no-record``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import pathlib
import random
import secrets
import signal
import socket
import sys
import tempfile
import time
from datetime import datetime
from typing import Any

import aiohttp

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "gen"), str(ROOT)]

from bench.benchlib import (  # noqa: E402 - after the sys.path setup
    WAITS,
    CpuMeter,
    Profiler,
    append_row,
    machine,
    mesh_pids,
    percentile,
    py_spy,
    rss_mb,
)
from meshctl.api import RestClient, SimAdmin  # noqa: E402 - after the sys.path setup
from meshctl.demo import TERMINAL, create_user, leader_client  # noqa: E402 - after the sys.path setup
from meshctl.launcher import Mesh, Ports, free_port_range  # noqa: E402 - after the sys.path setup

LEADER_USDT = "1000000"
FOLLOWER_USDT = "100000"
LEADER_QUANTITY = 0.02
CONCURRENCY = 16
"""REST calls in flight at once during the setup and the final read."""
SETTLE_TIMEOUT = 120.0
"""The longest one leader fill's fan-out may take before the run gives up (seconds)."""
IDLE_SECONDS = 5.0
"""How long the CPU of the idle mesh (every configuration active, nothing to copy) is read."""
POLL_SECONDS = 0.5
"""How often the end of a fan-out is looked for (the engine's metrics)."""
TERMINAL_METRIC_STATES = ("FILLED", "CANCELED", "EXPIRED", "REJECTED", "SKIPPED")
READ_TIMEOUT_REASONS = ("portfolio_unavailable", "market_unavailable")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ports_with_metrics() -> Ports:
    """Free ports for the mesh, with the services' metrics served (the engine's is read)."""
    ports = Ports.free()
    taken = {ports.gateway, ports.broker, ports.engine, ports.sync, ports.recon}
    taken |= set(ports.venues.values())
    pool = free_port_range()
    rng = random.SystemRandom()
    for _ in range(200):
        base = rng.choice(range(pool.start, pool.stop - 10))
        wanted = range(base + 1, base + 5)
        if not taken & set(wanted) and all(_bindable(port) for port in wanted):
            return dataclasses.replace(ports, metrics_base=base)
    raise RuntimeError("no four free consecutive loopback ports for the services' metrics")


async def decided(session: aiohttp.ClientSession, url: str) -> int:
    """Return how many intents the engine has seen end (its ``copytrade_engine_intents_total``)."""
    async with session.get(url) as response:
        text = await response.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("copytrade_engine_intents_total{"):
            labels, _, value = line.rpartition(" ")
            if any(f'state="{state}"' in labels for state in TERMINAL_METRIC_STATES):
                total += float(value)
    return int(total)


async def wait_decided(
    session: aiohttp.ClientSession,
    url: str,
    expected: int,
    timeout: float = SETTLE_TIMEOUT,  # noqa: ASYNC109 - a polling budget, checked between polls
) -> None:
    """Poll the engine's metrics until ``expected`` intents have ended.

    Rarely (a scrape costs the engine ~10-20 ms of CPU, counted in its CPU per copy): the
    figures come from the stored times, not from when this notices the end.
    """
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
        seen = await decided(session, url)
        if seen >= expected:
            return
    raise TimeoutError(f"{seen} of {expected} copies decided after {timeout:.0f} s")


def hottest(path: pathlib.Path, count: int = 12) -> list[str]:
    """Return the functions of the mesh's own code under most busy samples of a py-spy file.

    Each line: the share of the busy samples with the function on the stack (inclusive), then
    the share where it is the innermost frame of our code (what it spends itself or in the
    libraries it calls directly).
    """
    if not path.exists():
        return ["no samples"]
    total = 0
    inclusive: collections.Counter[str] = collections.Counter()
    innermost: collections.Counter[str] = collections.Counter()
    ours = ("engine_svc/", "broker_svc/", "sync_svc/", "meshkit/", "gateway/")
    for row in path.read_text().splitlines():
        stack, _, count_text = row.rpartition(" ")
        frames = stack.split(";")
        if not count_text.isdigit() or frames[-1].startswith(WAITS):
            continue
        samples = int(count_text)
        total += samples
        own = [frame for frame in frames if any(part in frame for part in ours)]
        for frame in {frame.rsplit(":", 1)[0] + ")" for frame in own}:
            inclusive[frame] += samples
        if own:
            innermost[own[-1].rsplit(":", 1)[0] + ")"] += samples
    if not total:
        return ["no busy samples"]
    # The process's entry frames (main, the loop's runner) are under nearly every sample.
    lines = [
        f"{100 * n / total:4.0f}% incl, {100 * innermost[frame] / total:3.0f}% innermost  {frame}"
        for frame, n in inclusive.most_common()
        if n < 0.9 * total
    ]
    return lines[:count]


def stamp_ms(text: str) -> float:
    """Return an RFC 3339 time of the gateway's JSON in epoch milliseconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


async def setup(
    mesh: Mesh, session: aiohttp.ClientSession, followers: int, users: int, figures: dict[str, Any]
) -> tuple[dict[str, str], list[tuple[RestClient, str]]]:
    """Make the leader (published) and the followers; return its keys and each (user, config).

    Records in ``figures`` how long registering the accounts and starting the configurations
    took (``accounts_s``, ``starts_s``) and the CPU each process used per start.
    """
    owner = RestClient(session, mesh.gateway_url, await create_user(mesh, "leader"))
    sim = SimAdmin(session, mesh.venue_urls["binance"])
    leader_keys = await sim.create_account({"USDT": LEADER_USDT})
    leader_id = (
        await owner.call(
            "POST",
            "/exchanges",
            {"exchange_name": "binance", **{k: leader_keys[k] for k in ("api_key", "api_secret")}},
        )
    )["exchange"]["exchange_id"]
    published = await owner.call(
        "POST", "/leaders", {"exchange_id": leader_id, "display_name": "fan-out leader"}
    )
    source_leader_id = published["leader"]["leader_id"]
    clients = [
        RestClient(session, mesh.gateway_url, await create_user(mesh, f"follower{index}"))
        for index in range(users)
    ]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def register(index: int) -> str:
        async with gate:
            made = await clients[index % users].call(
                "POST",
                "/exchanges",
                {
                    "exchange_name": "paper",
                    "api_key": f"fanout{index:05d}",
                    "api_secret": secrets.token_hex(16),
                },
            )
        return str(made["exchange"]["exchange_id"])

    async def start(index: int, target: str) -> tuple[RestClient, str]:
        api = clients[index % users]
        async with gate:
            started = await api.call(
                "POST",
                "/start",
                {"source_leader_id": source_leader_id, "target_exchange_ids": [target]},
            )
        return api, str(started["config_id"])

    began = time.monotonic()
    targets = await asyncio.gather(*(register(index) for index in range(followers)))
    figures["accounts_s"] = time.monotonic() - began
    began = time.monotonic()
    meter = CpuMeter(mesh_pids(mesh))
    meter.start()
    configs = await asyncio.gather(*(start(i, target) for i, target in enumerate(targets)))
    meter.stop()
    figures["starts_s"] = time.monotonic() - began
    figures["start_cpu"] = meter.per_copy(followers).replace("per copy", "per start")
    return leader_keys, list(configs)


async def run(
    followers: int,
    users: int,
    fills: int,
    gap: float,
    profile: bool,
    profile_dir: pathlib.Path | None = None,
) -> dict[str, Any]:
    """Run the scenario on a fresh mesh; return the figures (milliseconds, MB, seconds)."""
    with tempfile.TemporaryDirectory(prefix="copytrade-fanout-") as tmp:
        ports = ports_with_metrics()
        mesh = Mesh(
            pathlib.Path(tmp),
            ports=ports,
            log_level="WARNING",
            component_env={
                "broker": {"BROKER_PAPER_VENUE": "true", "BROKER_PAPER_BALANCES": "USDT=100000"},
                "gateway": {
                    "GATEWAY_RATE_LIMIT_PER_SECOND": "0",
                    "GATEWAY_IP_RATE_LIMIT_PER_SECOND": "0",
                },
            },
        )
        mesh.start()
        try:
            await mesh.wait_ready()
            metrics_url = f"http://127.0.0.1:{ports.metrics_base + 2}/metrics"
            return await _scenario(
                mesh,
                metrics_url,
                followers,
                users,
                fills,
                gap,
                pathlib.Path(tmp),
                profile,
                profile_dir,
            )
        finally:
            mesh.stop()


async def _scenario(
    mesh: Mesh,
    metrics_url: str,
    followers: int,
    users: int,
    fills: int,
    gap: float,
    tmp: pathlib.Path,
    profile: bool,
    profile_dir: pathlib.Path | None,
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    connector = aiohttp.TCPConnector(limit=2 * CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        leader_keys, configs = await setup(mesh, session, followers, users, figures)
        figures["setup_s"] = time.monotonic() - started
        sim = SimAdmin(session, mesh.venue_urls["binance"])
        exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
        pids = mesh_pids(mesh)
        try:
            # Untimed: every follower's connection at the broker opens on this fill's copies.
            await exchange.create_order("BTC/USDT", "market", "buy", LEADER_QUANTITY)
            await wait_decided(session, metrics_url, followers)
            warm = {str(t["trade_id"]) for t in await sim.trades(leader_keys["api_key"])}
            figures["engine_rss_setup"] = rss_mb(pids["engine"])
            figures["broker_rss_setup"] = rss_mb(pids["broker"])
            # What the configurations cost with nothing to copy (the engine's periodic rounds).
            idle = CpuMeter(pids)
            idle.start()
            await asyncio.sleep(IDLE_SECONDS)
            used = idle.stop()
            figures["idle"] = ", ".join(
                f"{name} {100 * seconds / IDLE_SECONDS:.0f}%"
                for name, seconds in sorted(used.items(), key=lambda kv: -kv[1])
                if seconds >= 0.01 * IDLE_SECONDS
            )
            profiler = Profiler(pids, profile_dir or tmp) if profile else None
            meter = CpuMeter(pids)
            if profiler is not None:
                # Long enough for the slowest run; stopped (SIGINT: py-spy writes what it has)
                # when the last copy is decided.
                profiler.start(fills * (gap + SETTLE_TIMEOUT))
            timed = time.monotonic()
            meter.start()
            for index in range(fills):
                side = "sell" if index % 2 == 0 else "buy"  # the warm-up bought
                await exchange.create_order("BTC/USDT", "market", side, LEADER_QUANTITY)
                await wait_decided(session, metrics_url, followers * (index + 2))
                if index + 1 < fills:
                    await asyncio.sleep(gap)
            meter.stop()
            figures["timed_s"] = time.monotonic() - timed
            figures["engine_rss_after"] = rss_mb(pids["engine"])
            figures["broker_rss_after"] = rss_mb(pids["broker"])
            figures["profile"] = []
            if profiler is not None:
                for _, _, sampler in profiler.procs:
                    sampler.send_signal(signal.SIGINT)
                figures["profile"] = profiler.report(figures["timed_s"])
                for name in ("engine", "broker"):
                    print(f"{name}, hottest code (share of its busy samples):")
                    for line in hottest((profile_dir or tmp) / f"{name}.folded"):
                        print(f"  {line}")
        finally:
            await exchange.close()
        trades = {str(t["trade_id"]): t for t in await sim.trades(leader_keys["api_key"])}
        gate = asyncio.Semaphore(CONCURRENCY)

        async def intents_of(api: RestClient, config_id: str) -> list[dict[str, Any]]:
            async with gate:
                found = await api.call("GET", f"/orders/{config_id}?page_size=5000")
            return list(found.get("orders", []))

        intents = [
            intent
            for listed in await asyncio.gather(*(intents_of(api, cid) for api, cid in configs))
            for intent in listed
            if intent["signal_id"] not in warm
        ]
    durable: list[float] = []
    acked: list[float] = []
    last_durable: dict[str, float] = {}
    last_acked: dict[str, float] = {}
    outcomes: collections.Counter[str] = collections.Counter()
    per_signal: collections.Counter[str] = collections.Counter()
    for intent in intents:
        signal_id = intent["signal_id"]
        per_signal[signal_id] += 1
        if intent["state"] not in TERMINAL:
            outcomes["not decided: " + intent["state"]] += 1
        elif intent["state"] != "INTENT_STATE_FILLED":
            outcomes[
                f"{intent['state'].removeprefix('INTENT_STATE_').lower()}:"
                f" {intent.get('reason', '')}"
            ] += 1
        leader_ms = float(trades[signal_id]["time_ms"])
        written = stamp_ms(intent["create_time"]) - leader_ms
        durable.append(written)
        last_durable[signal_id] = max(last_durable.get(signal_id, 0.0), written)
        latency = float(intent.get("latency_ms", 0.0))
        if latency > 0:
            acked.append(latency)
            last_acked[signal_id] = max(last_acked.get(signal_id, 0.0), latency)
    missing = sum(max(followers - per_signal.get(s, 0), 0) for s in trades if s not in warm)
    if missing:
        outcomes["no intent"] += missing
    figures.update(
        copies=len(intents),
        acked_copies=len(acked),
        durable=_spread(durable, last_durable),
        acked=_spread(acked, last_acked),
        outcomes=dict(outcomes),
        read_timeouts=sum(n for k, n in outcomes.items() if k.endswith(READ_TIMEOUT_REASONS)),
        cpu=meter.per_copy(len(intents)),
    )
    return figures


def _spread(values: list[float], last: dict[str, float]) -> dict[str, float]:
    if not values:
        return {}
    lasts = list(last.values())
    return {
        "p50": percentile(values, 0.5),
        "p99": percentile(values, 0.99),
        "max": max(values),
        "last_p50": percentile(lasts, 0.5),
        "last_max": max(lasts),
    }


def _phrase(name: str, spread: dict[str, float]) -> str:
    if not spread:
        return f"{name}: none"
    return (
        f"{name} p50 {spread['p50']:.0f} ms, p99 {spread['p99']:.0f} ms, max {spread['max']:.0f}"
        f" ms, a fill's last follower p50 {spread['last_p50']:.0f} ms max"
        f" {spread['last_max']:.0f} ms"
    )


def main() -> int:
    """Run the benchmark and record its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=1000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--fills", type=int, default=5, help="timed leader fills")
    parser.add_argument("--gap", type=float, default=2.0, help="seconds between leader fills")
    parser.add_argument(
        "--profile", action="store_true", help="sample every mesh process with py-spy"
    )
    parser.add_argument(
        "--profile-dir",
        type=pathlib.Path,
        help="keep py-spy's raw samples (<process>.folded) here (default: deleted with the mesh)",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="print the figures, add no row to RESULTS.md"
    )
    args = parser.parse_args()
    if args.followers < 1 or not 1 <= args.users <= args.followers or args.fills < 1:
        parser.error("needs followers >= users >= 1 and fills >= 1")
    if args.profile:
        py_spy()
    started = time.monotonic()
    if args.profile_dir is not None:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
    figures = asyncio.run(
        run(args.followers, args.users, args.fills, args.gap, args.profile, args.profile_dir)
    )
    within = figures["acked"] and figures["acked"]["last_max"] <= 1000
    line = (
        f"fanout: 1 leader (Binance emulator) x {args.followers} followers on the broker's paper"
        f" venue ({args.followers} configurations of one target over {args.users} users),"
        f" {args.fills} leader fills {args.gap:g} s apart after one untimed: {figures['copies']}"
        f" copies; {_phrase('intent durable', figures['durable'])};"
        f" {_phrase('order acked', figures['acked'])};"
        f" every order acked within 1 s of its fill: {'yes' if within else 'NO'};"
        f" not filled: {figures['outcomes'] or 'none'}"
        f" (read timeouts: {figures['read_timeouts']});"
        f" engine RSS {figures['engine_rss_setup']:.0f} MB after setup,"
        f" {figures['engine_rss_after']:.0f} MB after the fan-out (broker"
        f" {figures['broker_rss_setup']:.0f}/{figures['broker_rss_after']:.0f} MB);"
        f" setup {figures['setup_s']:.0f} s ({args.followers} accounts registered in"
        f" {figures['accounts_s']:.0f} s, configurations started in {figures['starts_s']:.0f} s,"
        f" {figures['start_cpu']}); CPU of the idle mesh (share of a core):"
        f" {figures['idle'] or 'none'}; {figures['cpu']}"
    )
    if figures["profile"]:
        line += " (py-spy, CPU during the timed fills: " + "; ".join(figures["profile"]) + ")"
    print(line)
    print(f"ran in {time.monotonic() - started:.1f} s on {machine()}")
    if not args.no_record:
        append_row(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
