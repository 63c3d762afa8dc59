"""Sustained throughput: copied orders a second for a minute, open loop, on the paper venue.

The mesh runs as real processes (``meshctl.launcher.Mesh``, as ``copytrade up``), the broker with
its in-memory paper venue on (``BROKER_PAPER_VENUE=true``, docs/paper-venue.md). One leader on
the Binance emulator trades market orders at a fixed rate (``--rate`` fills a second, buys, or
with ``--sides alternate`` buy and sell in turn) for ``--seconds``; ``--followers`` paper
accounts copy it, ``--per-config`` of them per copy configuration (at most 20, the engine's
limit), with ``max_orders_per_minute`` lifted. So 5 fills/s to 100 followers offer 500 copies a
second. The leader is open-loop: each order leaves at its planned time whether or not earlier
ones (or the mesh) have caught up.

    .venv/bin/python bench/sustained.py                    # 5 fills/s x 100 followers, 60 s
    .venv/bin/python bench/sustained.py --rate 2 --seconds 10 --followers 20 --no-record
    .venv/bin/python bench/sustained.py --profile          # py-spy on every mesh process
    .venv/bin/python bench/sustained.py --venue emulators  # followers on the three emulators

Every figure comes from the mesh's own durable record, read after the run (``GET /orders``):
each copy's acknowledgement time is the leader's fill time at the emulator plus the intent's
``latency_ms`` (fill to the follower's order acknowledged). Printed and recorded:

* copies a second: overall (acknowledged copies over the time from the first timed leader fill to
  the last copy, plus one leader slot), and the series per second of the leader's window (its
  min and median; the first second, when the first copies are still on their way, is left out);
* copies made against expected (leader fills x followers), duplicates (two intents for one
  signal, account and leg), intents not filled by state and reason (skipped, rejected, unknown);
* errors: leader orders that failed, log records at level error or above in any mesh process
  written during the timed run and its drain (those of the start, set-up and stop are shown
  apart), a mesh process that exited, a duplicate, an intent rejected or still unknown;
* backlog: from the last leader fill to the last copy acknowledged; where copies waited (leader
  fill to intent written, intent written to acknowledged, how often a copied signal's intents
  were written) and the engine's calls to other services (count, mean time, from its gRPC
  client metrics), so a mesh that falls behind names the stage;
* RSS of every mesh process each second (first, after ``--warm-up`` seconds, last, max; flat
  when the last is within 10 % of the value after the warm-up), the whole series printed;
* CPU per copy of every mesh process (``benchlib.CpuMeter``) and the rate it allows on this
  machine, and with ``--profile`` the hottest code of each (``benchlib.Profiler``, py-spy).

The engine's Prometheus counters (``copy_trades_executed_total``, intents per state) are read
each second only to print progress and to know when every copy is settled; they are not figures.
Appends one row to bench/RESULTS.md (``--no-record`` does not).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import os
import pathlib
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "gen"), str(ROOT)]

from bench.benchlib import (  # noqa: E402 - after the sys.path setup
    CpuMeter,
    Profiler,
    append_row,
    machine,
    mesh_pids,
    percentile,
    py_spy,
    rss_mb,
)
from meshctl.api import ApiError, RestClient, SimAdmin  # noqa: E402 - after the sys.path setup
from meshctl.demo import create_user, leader_client, wait_for_copies  # noqa: E402
from meshctl.launcher import Mesh, Ports, free_ports  # noqa: E402 - after the sys.path setup

MAX_TARGETS = 20
"""The follower accounts one copy configuration may name (engine_svc.domain.settings)."""
MAX_ORDERS_PER_MINUTE = 6_000
"""The highest ``risk_limits.max_orders_per_minute`` the engine accepts."""
PAGE_SIZE = 5_000
"""The most intents ``GET /orders`` returns at once."""
LEADER_EQUITY = "1000000"
"""The leader's USDT; a paper account holds 100,000 USDT (BROKER_PAPER_BALANCES), so a copy is
a tenth of the leader's order (0.002 BTC for 0.02 BTC, 100 USDT at 50,000)."""
FOLLOWER_FUNDS = "100000"
"""What an emulator follower holds in its quote currency (--venue emulators)."""
FLAT = 0.10
"""RSS is flat when its last sample is within this fraction of its sample after the warm-up."""
TARGET_RATE = 500
TARGET_SECONDS = 60
"""Issue 14's target: at least this many copied orders a second for this long."""
MAX_BACKLOG = 1.0
"""The mesh keeps up when its last copy is acknowledged within this many seconds of the
leader's last fill (the fan-out target: every order acknowledged within 1 s of the signal)."""
SETUP_CONCURRENCY = 10
RPC_COUNT = "grpc_client_handling_seconds_count{"
ERROR_LEVELS = ('"level": "error"', '"level": "critical"', '"level":"error"', '"level":"critical"')


@dataclass
class Sampler:
    """Each second: every mesh process's RSS, and the engine's copy counters (for progress)."""

    pids: dict[str, int]
    metrics_url: str
    rss: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    counters: dict[str, float] = field(default_factory=dict)
    base: dict[str, float] = field(default_factory=dict)
    started: float = 0.0

    async def scrape(self, session: aiohttp.ClientSession) -> dict[str, float]:
        """Read the engine's counters: acknowledged copies, intents entering each state, and
        the time its calls to other services took (count and sum per method)."""
        found: dict[str, float] = collections.defaultdict(float)
        try:
            async with session.get(
                self.metrics_url, timeout=aiohttp.ClientTimeout(total=2)
            ) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return dict(self.counters)
        for line in text.splitlines():
            if line.startswith("copy_trades_executed_total{"):
                found["acked"] += float(line.rpartition(" ")[2])
            elif line.startswith("copytrade_engine_intents_total{"):
                state = line.partition('state="')[2].partition('"')[0].lower()
                found[state] += float(line.rpartition(" ")[2])
            elif line.startswith(("grpc_client_handling_seconds_sum{", RPC_COUNT)):
                method = line.partition('grpc_method="')[2].partition('"')[0]
                kind = "count" if line.startswith(RPC_COUNT) else "sum"
                found[f"rpc_{kind} {method}"] += float(line.rpartition(" ")[2])
        return dict(found)

    def calls(self) -> list[str]:
        """The engine's calls to other services since :meth:`run` began: count, mean time."""
        rows = []
        for name in self.counters:
            if name.startswith("rpc_count "):
                method = name.partition(" ")[2]
                count = self.since_start(name)
                total = self.counters.get(f"rpc_sum {method}", 0.0) - self.base.get(
                    f"rpc_sum {method}", 0.0
                )
                if count > 0:
                    rows.append((total, f"{method} {count} x {1000 * total / count:.0f} ms"))
        return [row for _, row in sorted(rows, reverse=True)]

    def since_start(self, name: str) -> int:
        """A counter's growth since :meth:`run` began."""
        return round(self.counters.get(name, 0.0) - self.base.get(name, 0.0))

    async def run(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        """Sample every second until ``stop`` is set."""
        self.base = await self.scrape(session)
        self.counters = dict(self.base)
        self.started = time.monotonic()
        tick = self.started
        while not stop.is_set():
            for name, pid in self.pids.items():
                self.rss[name].append(rss_mb(pid))
            self.counters = await self.scrape(session)
            tick += 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(tick - time.monotonic(), 0.0))
        self.counters = await self.scrape(session)


@dataclass
class LeaderRun:
    """What the open-loop leader did."""

    planned: int
    placed: int = 0
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    late_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0


async def trade_open_loop(
    exchange: Any, rate: float, seconds: float, quantity: float, sides: str
) -> LeaderRun:
    """Place ``rate`` market orders a second for ``seconds``, each at its planned time.

    An order is sent at its slot whether or not the earlier ones have returned (open loop); how
    late each left its slot is kept (the load generator itself falling behind would show there).
    """
    loop = asyncio.get_running_loop()
    result = LeaderRun(planned=round(rate * seconds))
    tasks: list[asyncio.Task[None]] = []

    async def place(index: int) -> None:
        side = "buy" if sides == "buy" or index % 2 == 0 else "sell"
        try:
            await exchange.create_order("BTC/USDT", "market", side, quantity)
            result.placed += 1
        except Exception as e:  # counted as an error of the run, never retried
            result.failures[type(e).__name__] += 1

    start = loop.time()
    for index in range(result.planned):
        slot = start + index / rate
        delay = slot - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        result.late_ms.append(max(loop.time() - slot, 0.0) * 1000)
        tasks.append(asyncio.create_task(place(index)))
    await asyncio.gather(*tasks)
    result.seconds = loop.time() - start
    return result


async def _bounded(calls: list[Any], limit: int = SETUP_CONCURRENCY) -> list[Any]:
    """Await ``calls`` (coroutines), at most ``limit`` at once, results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Any) -> Any:
        async with gate:
            return await call

    return list(await asyncio.gather(*(one(call) for call in calls)))


async def add_exchange(api: RestClient, venue: str, api_key: str, api_secret: str) -> str:
    """Register an account with the broker (``POST /exchanges``); return its exchange id."""
    reply = await api.call(
        "POST", "/exchanges", {"exchange_name": venue, "api_key": api_key, "api_secret": api_secret}
    )
    exchange_id: str = reply["exchange"]["exchange_id"]
    return exchange_id


async def add_follower(api: RestClient, sims: dict[str, SimAdmin], venue: str, index: int) -> str:
    """One follower account: at the paper venue (any keys; it starts funded) or an emulator."""
    if venue == "paper":
        return await add_exchange(api, "paper", f"bench-{index}", secrets.token_hex(16))
    quote = "USDT" if venue == "binance" else "USD"
    keys = await sims[venue].create_account({quote: FOLLOWER_FUNDS})
    return await add_exchange(api, venue, keys["api_key"], keys["api_secret"])


async def list_intents(api: RestClient, config_id: str) -> list[dict[str, Any]]:
    """Every intent of a configuration, page by page: by ``page_token`` where the engine gives
    one, else from the last page's newest ``start_time`` (repeats dropped)."""
    found: dict[str, dict[str, Any]] = {}
    start, token = "", ""
    while True:
        query = f"page_size={PAGE_SIZE}"
        if token:
            query += "&page_token=" + urllib.parse.quote(token)
        elif start:
            query += "&start_time=" + urllib.parse.quote(start)
        reply = await api.call("GET", f"/orders/{config_id}?{query}")
        page = reply.get("orders", [])
        fresh = [o for o in page if o["intent_id"] not in found]
        found.update((o["intent_id"], o) for o in fresh)
        token = reply.get("next_page_token", "")
        if not token and (len(page) < PAGE_SIZE or not fresh):
            return list(found.values())
        start = page[-1]["create_time"] if page else start


def error_records(
    logs: pathlib.Path, window: tuple[datetime, datetime]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Log records at level error or above per component (rotated files included): those
    written in ``window`` (the timed run and its drain), and the others (start, set-up, stop)."""
    inside: dict[str, list[str]] = collections.defaultdict(list)
    outside: dict[str, list[str]] = collections.defaultdict(list)
    for path in sorted(logs.glob("*.log*")):
        name = path.name.partition(".log")[0]
        with path.open(errors="replace") as handle:
            for line in handle:
                if not any(level in line for level in ERROR_LEVELS):
                    continue
                try:
                    when = datetime.fromisoformat(json.loads(line)["time"])
                except (ValueError, KeyError, TypeError):
                    when = window[0]  # no time to tell: counted in the run
                (inside if window[0] <= when <= window[1] else outside)[name].append(line)
    return dict(inside), dict(outside)


def first_lines(records: list[str], limit: int = 3) -> list[str]:
    """The distinct messages of some log records, first line of each, shortened."""
    seen: dict[str, None] = {}
    for record in records:
        try:
            message = str(json.loads(record).get("message", record))
        except ValueError:
            message = record
        seen.setdefault(message.splitlines()[0][:160] if message else "-", None)
    return list(seen)[:limit]


def ms_of(stamp: str) -> float:
    """Milliseconds since the epoch of an RFC 3339 timestamp (``...Z``)."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000


@dataclass
class Options:
    """The command line."""

    rate: float
    seconds: float
    followers: int
    per_config: int
    venue: str
    quantity: float
    sides: str
    warm_up: int
    drain: float
    profile: bool
    keep: bool


async def run(options: Options) -> dict[str, Any]:
    """Start a mesh, run the scenario on it, stop it; return the figures."""
    data_dir = pathlib.Path(tempfile.mkdtemp(prefix="copytrade-sustained-"))
    ports = Ports.free()
    metrics_port = free_ports(
        1, exclude=[ports.gateway, ports.broker, ports.engine, ports.sync, ports.recon]
    )[0]
    component_env = {
        # The gateway's per-user and per-address limits would pace the setup's registrations.
        "gateway": {"GATEWAY_RATE_LIMIT_PER_SECOND": "0", "GATEWAY_IP_RATE_LIMIT_PER_SECOND": "0"},
        "engine": {"METRICS_PORT": str(metrics_port)},
    }
    if options.venue == "paper":
        component_env["broker"] = {"BROKER_PAPER_VENUE": "true"}
    mesh = Mesh(data_dir, ports=ports, log_level="WARNING", component_env=component_env)
    mesh.start()
    try:
        await mesh.wait_ready(timeout=120)
        figures = await _scenario(mesh, options, f"http://127.0.0.1:{metrics_port}/metrics")
        figures["exited"] = [
            f"{c.name} (code {c.process.returncode})"
            for c in mesh.components
            if c.process is not None and c.process.poll() is not None
        ]
    except BaseException:
        await asyncio.to_thread(mesh.stop)
        print(f"mesh logs kept in {data_dir}/logs")
        raise
    await asyncio.to_thread(mesh.stop)
    figures["log_errors"], figures["other_log_errors"] = error_records(
        data_dir / "logs", figures["window"]
    )
    if options.keep or figures["log_errors"] or figures["other_log_errors"]:
        print(f"mesh logs kept in {data_dir}/logs")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    return figures


async def _scenario(mesh: Mesh, options: Options, metrics_url: str) -> dict[str, Any]:
    token = await create_user(mesh, "bench")
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        api = RestClient(session, mesh.gateway_url, token)
        sims = {venue: SimAdmin(session, url) for venue, url in mesh.venue_urls.items()}
        sim = sims["binance"]
        leader_keys = await sim.create_account({"USDT": LEADER_EQUITY})
        leader_id = await add_exchange(
            api, "binance", leader_keys["api_key"], leader_keys["api_secret"]
        )
        venues = ["paper"] if options.venue == "paper" else ["binance", "coinbase", "kraken"]
        setup_started = time.monotonic()
        targets = await _bounded(
            [
                add_follower(api, sims, venues[index % len(venues)], index)
                for index in range(options.followers)
            ]
        )
        groups = [
            targets[first : first + options.per_config]
            for first in range(0, len(targets), options.per_config)
        ]
        config_ids = await _bounded(
            [
                api.call(
                    "POST",
                    "/start",
                    {
                        "source_exchange_id": leader_id,
                        "target_exchange_ids": group,
                        "copy_settings": {"allow_quote_equivalence": True},
                        "risk_limits": {"max_orders_per_minute": MAX_ORDERS_PER_MINUTE},
                        "sync_settings": {"enable_websocket": True},
                    },
                )
                for group in groups
            ]
        )
        config_ids = [reply["config_id"] for reply in config_ids]
        print(
            f"{options.followers} followers ({'/'.join(venues)}) in {len(config_ids)}"
            f" configurations, set up in {time.monotonic() - setup_started:.1f} s",
            flush=True,
        )
        exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
        try:
            # One copied fill first, not counted: the leader's stream and every follower's
            # venue session are open before the timed fills.
            await exchange.create_order("BTC/USDT", "market", "buy", options.quantity)
            for config_id in config_ids:
                await wait_for_copies(api, config_id, expected_signals=1, timeout=120)
            warm = {str(t["trade_id"]) for t in await sim.trades(leader_keys["api_key"])}
            pids = mesh_pids(mesh)
            sampler = Sampler(pids, metrics_url)
            stop = asyncio.Event()
            sampling = asyncio.create_task(sampler.run(session, stop))
            profiler = Profiler(pids, mesh.data_dir) if options.profile else None
            meter = CpuMeter(pids)
            meter.start()
            window_start = datetime.now(UTC)
            if profiler is not None:
                profiler.start(options.seconds)
            progress = asyncio.create_task(_progress(sampler, options))
            try:
                leader = await trade_open_loop(
                    exchange, options.rate, options.seconds, options.quantity, options.sides
                )
            finally:
                progress.cancel()
        finally:
            await exchange.close()
        trades = {str(t["trade_id"]): t for t in await sim.trades(leader_keys["api_key"])}
        timed = {tid: t for tid, t in trades.items() if tid not in warm}
        expected = len(timed) * options.followers
        settled = await _drain(sampler, expected, options.drain)
        meter.stop()
        window = (window_start, datetime.now(UTC))
        stop.set()
        await sampling
        profile = profiler.report(options.seconds) if profiler is not None else []
        intents: list[dict[str, Any]] = []
        for config_id in config_ids:
            intents += await list_intents(api, config_id)
    return {
        **_figures(intents, timed, options, expected),
        "settled": settled,
        "leader": leader,
        "rss": dict(sampler.rss),
        "cpu": meter,
        "profile": profile,
        "calls": sampler.calls(),
        "window": window,
    }


async def _progress(sampler: Sampler, options: Options) -> None:
    """Print the engine's counts every 5 seconds while the leader trades."""
    last, then = 0, time.monotonic()
    while True:
        await asyncio.sleep(5)
        acked, now = sampler.since_start("acked"), time.monotonic()
        print(
            f"  {now - sampler.started:5.0f} s: {acked} copies acknowledged"
            f" ({(acked - last) / (now - then):.0f}/s over the last 5 s; offered"
            f" {options.rate * options.followers:.0f}/s), {sampler.since_start('skipped')} skipped,"
            f" {sampler.since_start('rejected')} rejected",
            flush=True,
        )
        last, then = acked, now


async def _drain(sampler: Sampler, expected: int, budget: float) -> bool:
    """Wait until every expected copy is settled (acknowledged, skipped or rejected)."""
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        done = sum(sampler.since_start(name) for name in ("acked", "skipped", "rejected"))
        if done >= expected:
            return True
        await asyncio.sleep(0.5)
    print(f"not settled after {budget:.0f} s: {sampler.since_start('acked')} of {expected}")
    return False


def _figures(
    intents: list[dict[str, Any]],
    timed: dict[str, dict[str, Any]],
    options: Options,
    expected: int,
) -> dict[str, Any]:
    """The run's figures from the intents of its timed fills."""
    mine = [i for i in intents if i["signal_id"] in timed]
    per_key = collections.Counter(
        (i["signal_id"], i["target_exchange_id"], i.get("leg", 0)) for i in mine
    )
    duplicates = sum(n - 1 for n in per_key.values() if n > 1)
    states = collections.Counter(i["state"].removeprefix("INTENT_STATE_") for i in mine)
    reasons = collections.Counter(
        f"{i['state'].removeprefix('INTENT_STATE_').lower()}"
        f" {(i.get('reason') or '-').partition(':')[0]}"
        for i in mine
        if i["state"] != "INTENT_STATE_FILLED"
    )
    acks = sorted(
        float(timed[i["signal_id"]]["time_ms"]) + float(i.get("latency_ms", 0.0))
        for i in mine
        if i.get("venue_order_id")
    )
    latencies = [float(i.get("latency_ms", 0.0)) for i in mine if i.get("venue_order_id")]
    # Where a copy waited: from the leader's fill to its intent written (the signal reaching
    # the engine and being recorded), and from then to the venue's acknowledgement (sending).
    recorded = [ms_of(i["create_time"]) - float(timed[i["signal_id"]]["time_ms"]) for i in mine]
    # How often the engine wrote a copied signal's intents (its first intent of each signal
    # with a copy sent; a signal skipped as stale is written without reading anything).
    written: dict[str, float] = {}
    for i in (i for i in mine if i.get("venue_order_id")):
        stamp = ms_of(i["create_time"])
        written[i["signal_id"]] = min(stamp, written.get(i["signal_id"], stamp))
    ordered = sorted(written.values())
    gaps = [later - earlier for earlier, later in itertools.pairwise(ordered)]
    sending = [
        float(timed[i["signal_id"]]["time_ms"])
        + float(i.get("latency_ms", 0.0))
        - ms_of(i["create_time"])
        for i in mine
        if i.get("venue_order_id")
    ]
    first_fill = min(float(t["time_ms"]) for t in timed.values()) if timed else 0.0
    last_fill = max(float(t["time_ms"]) for t in timed.values()) if timed else 0.0
    buckets = collections.Counter(int((ack - first_fill) // 1000) for ack in acks)
    window = max(int(options.seconds), 1)
    series = [buckets.get(second, 0) for second in range(window)]
    steady = series[1:] or series
    # From the first timed fill to the last copy, plus the last fill's own slot: a mesh that
    # copied every fill at once would show exactly the offered rate.
    span = ((acks[-1] - first_fill) / 1000 + 1 / options.rate) if acks else 0.0
    return {
        "copies": len(acks),
        "expected": expected,
        "intents": len(mine),
        "duplicates": duplicates,
        "states": dict(states),
        "not_filled": dict(reasons),
        "fills": len(timed),
        "fill_span": (last_fill - first_fill) / 1000,
        "series": series,
        "rate_min": min(steady) if steady else 0,
        "rate_median": statistics.median(steady) if steady else 0,
        "overall": len(acks) / span if span > 0 else 0.0,
        "backlog": ((acks[-1] - last_fill) / 1000) if acks else float("nan"),
        "p50": percentile(latencies, 0.5) if latencies else float("nan"),
        "p99": percentile(latencies, 0.99) if latencies else float("nan"),
        "stages": (
            f"fill to intent written p50 {_p(recorded, 0.5)} p99 {_p(recorded, 0.99)} ms,"
            f" intent written to acknowledged p50 {_p(sending, 0.5)} p99 {_p(sending, 0.99)} ms;"
            f" a copied signal's intents written every p50 {_p(gaps, 0.5)} ms,"
            f" max {_p(gaps, 1.0)} ms"
        ),
    }


def _p(values: list[float], fraction: float) -> str:
    return f"{percentile(values, fraction):.0f}" if values else "-"


def rss_summary(
    rss: dict[str, list[float]], warm_up: int, copies: int
) -> tuple[list[str], list[str], bool]:
    """Per process: one phrase (first/after warm-up/last/max MB), its series; whether all flat.

    A process that is not flat also shows its growth per copy (first to last sample): what it
    keeps for each (the paper venue, inside the broker, keeps every order and fill)."""
    phrases, series, flat = [], [], True
    for name, samples in sorted(rss.items()):
        if not samples:
            continue
        after = samples[min(warm_up, len(samples) - 1)]
        ok = abs(samples[-1] - after) <= FLAT * after
        growth = 1024 * (samples[-1] - samples[0]) / max(copies, 1)
        flat = flat and ok
        phrases.append(
            f"{name} {samples[0]:.0f}/{after:.0f}/{samples[-1]:.0f}/{max(samples):.0f}"
            + ("" if ok else f" NOT FLAT, {growth:+.1f} KB per copy")
        )
        series.append(f"{name}: " + " ".join(f"{v:.0f}" for v in samples))
    return phrases, series, flat


def cpu_bound(used: dict[str, float], copies: int, intents: int) -> str:
    """What this CPU per copy allows on this machine: every core busy with the mesh, and the
    busiest process (one event loop) on a core of its own. Only when every intent was a copy
    (skipped intents cost CPU too, and would make a copy look dearer)."""
    total = sum(used.values())
    if copies <= 0 or copies != intents or total <= 0:
        return ""
    name, busiest = max(used.items(), key=lambda kv: kv[1])
    cores = os.cpu_count() or 1
    return (
        f" (at this CPU per copy, {cores} cores allow {cores * copies / total:.0f} copies/s,"
        f" the {name} on one core {copies / busiest:.0f}/s)"
    )


def main() -> int:
    """Run the benchmark and record its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=5.0, help="leader fills a second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the leader trades")
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument(
        "--per-config", type=int, default=MAX_TARGETS, help="followers per copy configuration"
    )
    parser.add_argument(
        "--venue",
        choices=["paper", "emulators"],
        default="paper",
        help="where the followers are: the broker's paper venue, or the three emulators in turn",
    )
    parser.add_argument("--quantity", type=float, default=0.02, help="each leader order, BTC")
    parser.add_argument(
        "--sides",
        choices=["buy", "alternate"],
        default="buy",
        help="buy: every fill an entry (each copy independent of the others); alternate: buy,"
        " sell, ... (each sell's copies wait for the outcome of the buy's copies they close)",
    )
    parser.add_argument(
        "--warm-up", type=int, default=10, help="RSS is compared with its sample at this second"
    )
    parser.add_argument(
        "--drain", type=float, default=180.0, help="seconds to wait for the last copies"
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample every mesh process with py-spy"
    )
    parser.add_argument("--keep", action="store_true", help="keep the mesh's logs")
    parser.add_argument(
        "--no-record", action="store_true", help="print the figures, add no row to RESULTS.md"
    )
    args = parser.parse_args()
    if not 1 <= args.per_config <= MAX_TARGETS:
        parser.error(f"--per-config must be between 1 and {MAX_TARGETS}")
    if args.profile:
        py_spy()
    options = Options(
        rate=args.rate,
        seconds=args.seconds,
        followers=args.followers,
        per_config=args.per_config,
        venue=args.venue,
        quantity=args.quantity,
        sides=args.sides,
        warm_up=args.warm_up,
        drain=args.drain,
        profile=args.profile,
        keep=args.keep,
    )
    started = time.monotonic()
    try:
        f = asyncio.run(run(options))
    except ApiError as e:
        raise SystemExit(f"the gateway refused the setup: {e}") from e
    leader: LeaderRun = f["leader"]
    phrases, series, flat = rss_summary(f["rss"], options.warm_up, f["copies"])
    log_errors = sum(len(records) for records in f["log_errors"].values())
    other_errors = sum(len(records) for records in f["other_log_errors"].values())
    errors = (
        sum(leader.failures.values())
        + log_errors
        + len(f["exited"])
        + f["duplicates"]
        + sum(n for s, n in f["states"].items() if s in ("REJECTED", "UNKNOWN"))
    )
    offered = options.rate * options.followers
    kept_up = f["settled"] and f["copies"] == f["expected"] and f["backlog"] <= MAX_BACKLOG
    met = (
        kept_up
        and errors == 0
        and flat
        and offered >= TARGET_RATE
        and options.seconds >= TARGET_SECONDS
    )
    verdict = (
        "TARGET MET"
        if met
        else f"target (>= {TARGET_RATE}/s for {TARGET_SECONDS} s, 0 errors, flat RSS) not met"
    )
    not_filled = ", ".join(f"{k} {n}" for k, n in sorted(f["not_filled"].items())) or "none"
    where = "paper venue" if options.venue == "paper" else "binance/coinbase/kraken emulators"
    line = (
        f"sustained, {options.rate:g} leader fills/s"
        f" ({'buys' if options.sides == 'buy' else 'buy and sell in turn'}, binance emulator,"
        f" open loop) for"
        f" {options.seconds:g} s x {options.followers} followers on the {where}"
        f" ({options.per_config} per configuration), offered {offered:.0f} copies/s:"
        f" {verdict}; {'kept up' if kept_up else 'FELL BEHIND'} (keeping up: every copy made, the"
        f" last within {MAX_BACKLOG:g} s of the last leader fill);"
        f" {f['overall']:.0f} copies/s overall, per second min {f['rate_min']}"
        f" median {f['rate_median']:g} (seconds 2-{len(f['series'])} of the leader's window);"
        f" {f['copies']} of {f['expected']} copies acknowledged ({f['fills']} leader fills over"
        f" {f['fill_span']:.1f} s), not filled: {not_filled}, duplicates {f['duplicates']};"
        f" errors {errors} (leader orders failed {sum(leader.failures.values())}, error log"
        f" records {log_errors}, processes exited {len(f['exited'])}; outside the timed run and"
        f" its drain, error log records {other_errors});"
        f" leader orders sent late of their slot p99 {percentile(leader.late_ms, 0.99):.0f} ms;"
        f" backlog {f['backlog']:.1f} s after the last leader fill; copy latency p50"
        f" {f['p50']:.0f} ms p99 {f['p99']:.0f} ms ({f['stages']});"
        f" RSS MB first/after {options.warm_up} s/last/max:"
        f" {', '.join(phrases)} ({'flat' if flat else 'NOT flat'}: the last within {FLAT:.0%}"
        f" of the one after the warm-up);"
        f" {f['cpu'].per_copy(f['copies'])}{cpu_bound(f['cpu'].used, f['copies'], f['intents'])}"
    )
    if f["calls"]:
        line += "; the engine's calls, count x mean: " + ", ".join(f["calls"][:4])
    if f["profile"]:
        line += " (py-spy, while the leader traded: " + "; ".join(f["profile"]) + ")"
    print(f"copies acknowledged per second of the leader's window: {f['series']}")
    print("RSS MB each second:\n  " + "\n  ".join(series))
    if leader.failures:
        print(f"leader orders failed: {dict(leader.failures)}")
    for name, records in sorted(f["log_errors"].items()):
        print(f"{name}: {len(records)} error log records in the run: {first_lines(records)}")
    for name, records in sorted(f["other_log_errors"].items()):
        print(
            f"{name}: {len(records)} error log records outside the run (start, set-up, stop):"
            f" {first_lines(records)}"
        )
    if f["exited"]:
        print(f"processes exited: {f['exited']}")
    print(
        f"leader: {leader.placed} of {leader.planned} orders placed in {leader.seconds:.1f} s,"
        f" sent late of its slot p99 {percentile(leader.late_ms, 0.99):.0f} ms"
        f" max {max(leader.late_ms, default=0):.0f} ms"
    )
    print(line)
    print(f"ran in {time.monotonic() - started:.1f} s on {machine()}")
    if not args.no_record:
        append_row(line)
    # A run that missed the target still measured it (the row says so); only a broken promise
    # (an error, a duplicate) fails the command, so `make bench` goes on to the next benchmark.
    return 1 if errors or f["duplicates"] else 0


if __name__ == "__main__":
    sys.exit(main())
