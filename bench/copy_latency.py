"""Copy latency: from the leader's fill at the emulator to each follower order acknowledged there.

Both ends are read from the emulators' own records (the leader trade's ``time_ms`` and the
follower order's ``created_ms``, one clock on this machine), so the figure is what a user sees,
not what the engine believes. The mesh runs as real processes (``copytrade up`` does the same).

    .venv/bin/python bench/copy_latency.py      # 10 followers, 200 orders, WebSocket
    .venv/bin/python bench/copy_latency.py --mode polling --sync-interval 1
    .venv/bin/python bench/copy_latency.py --profile   # also sample every process with py-spy

Prints p50, p99 and max, and appends a row to bench/RESULTS.md with the machine it ran on.
With ``--profile`` (needs ``py-spy`` on PATH or in the virtualenv; it is a tool, not a
dependency) every mesh process is sampled at 100 Hz while the leader trades, and the CPU each
one used and its hottest functions are printed and recorded: that is what bounds the latency.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "gen"), str(ROOT)]

from meshctl.api import RestClient, SimAdmin  # noqa: E402 - after the sys.path setup
from meshctl.demo import create_user, leader_client, wait_for_copies  # noqa: E402 - after the sys.path setup
from meshctl.launcher import Mesh, Ports  # noqa: E402 - after the sys.path setup


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def machine() -> str:
    """Describe this machine in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


PROFILE_RATE = 100


def py_spy() -> str:
    """Return the py-spy executable, or exit saying how to get it."""
    found = shutil.which("py-spy") or shutil.which(
        "py-spy", path=str(pathlib.Path(sys.executable).parent)
    )
    if found is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


class Profiler:
    """py-spy sampling every mesh process (busy stacks only) for the duration of the trades."""

    def __init__(self, mesh: Mesh, out: pathlib.Path) -> None:
        self.mesh = mesh
        self.out = out
        self.procs: list[tuple[str, pathlib.Path, subprocess.Popen[bytes]]] = []

    def start(self, seconds: float) -> None:
        exe = py_spy()
        for component in self.mesh.components:
            assert component.process is not None
            path = self.out / f"{component.name}.folded"
            self.procs.append(
                (
                    component.name,
                    path,
                    subprocess.Popen(
                        [
                            exe,
                            "record",
                            "--pid",
                            str(component.process.pid),
                            "--rate",
                            str(PROFILE_RATE),
                            "--format",
                            "raw",
                            "--duration",
                            str(max(1, round(seconds))),
                            "--output",
                            str(path),
                            "--nonblocking",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    ),
                )
            )

    def report(self, seconds: float) -> list[str]:
        """Wait for the samplers; return a line per process: CPU seconds and hottest frames."""
        lines = []
        for name, path, proc in self.procs:
            proc.wait(timeout=seconds + 30)
            if not path.exists():
                lines.append(f"{name}: no samples")
                continue
            total = 0
            under: collections.Counter[str] = collections.Counter()
            for row in path.read_text().splitlines():
                stack, _, count = row.rpartition(" ")
                if not count.isdigit():
                    continue
                total += int(count)
                for group in {_group_of(frame) for frame in stack.split(";")} - {""}:
                    under[group] += int(count)
            busy = total / PROFILE_RATE
            top = (
                ", ".join(f"{group} {100 * n / total:.0f}%" for group, n in under.most_common(5))
                if total
                else "-"
            )
            lines.append(f"{name} busy {busy:.1f} s of {seconds:.0f} s, under {top}")
        return lines


GROUPS = (
    "ccxt",
    "grpc",
    "google/protobuf",
    "aiohttp",
    "aiosqlite",
    "sqlite3",
    "psycopg",
    "json",
    "cryptography",
    "jwt",
    "hmac",
    "exchange_sim",
    "broker_svc",
    "engine_svc",
    "sync_svc",
    "recon_svc",
    "gateway",
    "meshkit",
)


def _group_of(frame: str) -> str:
    # "func (path/to/module.py:123)" -> the library or service the frame belongs to, if any.
    path = "/" + frame.rpartition("(")[2]  # py-spy shortens paths: "ccxt/base/exchange.py:1"
    for group in GROUPS:
        if f"/{group}/" in path or f"/{group}.py" in path:
            return group.replace("google/", "")
    return ""


async def run(
    followers: int,
    orders: int,
    sync_interval: int,
    gap: float,
    websocket: bool,
    venues: list[str],
    profile: bool = False,
) -> dict[str, Any]:
    """Run the scenario on a fresh mesh and return the latency figures in milliseconds."""
    with tempfile.TemporaryDirectory(prefix="copytrade-bench-") as tmp:
        mesh = Mesh(pathlib.Path(tmp), ports=Ports.free(), log_level="WARNING")
        mesh.start()
        try:
            await mesh.wait_ready()
            profiler = Profiler(mesh, pathlib.Path(tmp)) if profile else None
            return await _scenario(
                mesh, followers, orders, sync_interval, gap, websocket, venues, profiler
            )
        finally:
            mesh.stop()


async def _scenario(
    mesh: Mesh,
    followers: int,
    orders: int,
    sync_interval: int,
    gap: float,
    websocket: bool,
    venues: list[str],
    profiler: Profiler | None = None,
) -> dict[str, Any]:
    token = await create_user(mesh, "bench")
    async with aiohttp.ClientSession() as session:
        api = RestClient(session, mesh.gateway_url, token)
        sims = {venue: SimAdmin(session, url) for venue, url in mesh.venue_urls.items()}
        sim = sims["binance"]
        leader_keys = await sim.create_account({"USDT": "1000000"})
        leader_id = (
            await api.call(
                "POST",
                "/exchanges",
                {
                    "exchange_name": "binance",
                    **{k: leader_keys[k] for k in ("api_key", "api_secret")},
                },
            )
        )["exchange"]["exchange_id"]
        follower_keys, targets = [], []
        for index in range(followers):
            venue = venues[index % len(venues)]
            quote = "USDT" if venue == "binance" else "USD"
            keys = await sims[venue].create_account({quote: "100000"})
            follower_keys.append((venue, keys))
            targets.append(
                (
                    await api.call(
                        "POST",
                        "/exchanges",
                        {
                            "exchange_name": venue,
                            **{k: keys[k] for k in ("api_key", "api_secret")},
                        },
                    )
                )["exchange"]["exchange_id"]
            )
        config_id = (
            await api.call(
                "POST",
                "/start",
                {
                    "source_exchange_id": leader_id,
                    "target_exchange_ids": targets,
                    "copy_settings": {"allow_quote_equivalence": True},
                    # The leader trades faster than the default 60 orders a minute per follower.
                    "risk_limits": {"max_orders_per_minute": 1000},
                    "sync_settings": {
                        "sync_interval": sync_interval,
                        "enable_websocket": websocket,
                    },
                },
            )
        )["config_id"]
        exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
        window = orders * (gap + 0.02) + 2
        if profiler is not None:
            profiler.start(window)
        try:
            for index in range(orders):
                await exchange.create_order(
                    "BTC/USDT", "market", "buy" if index % 2 == 0 else "sell", 0.02
                )
                await asyncio.sleep(gap)
        finally:
            await exchange.close()
        await wait_for_copies(api, config_id, expected_signals=orders, timeout=120)
        leader_trades = {str(t["trade_id"]): t for t in await sim.trades(leader_keys["api_key"])}
        intents = (await api.call("GET", f"/orders/{config_id}?page_size=5000"))["orders"]
        signal_of = {i["client_order_id"]: i["signal_id"] for i in intents}
        skipped = [
            f"{i['symbol']} {i['side']} {i['reason']}"
            for i in intents
            if i["state"] != "INTENT_STATE_FILLED"
        ]
        if skipped:
            print(f"not filled: {len(skipped)}: {skipped[:10]}")
        latencies = []
        for venue, keys in follower_keys:
            for order in await sims[venue].orders(keys["api_key"]):
                trade = leader_trades[signal_of[order["client_order_id"]]]
                latencies.append(float(order["created_ms"] - trade["time_ms"]))
    profile = profiler.report(window) if profiler is not None else []
    return {
        "copies": len(latencies),
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
        "mean": statistics.fmean(latencies),
        "profile": profile,
    }


def main() -> int:
    """Run the benchmark and record its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=10)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument(
        "--venues",
        default="binance,coinbase,kraken",
        help="follower venues, assigned in turn (the leader is on binance)",
    )
    parser.add_argument("--sync-interval", type=int, default=1, help="polling interval, seconds")
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between leader orders")
    parser.add_argument(
        "--mode",
        choices=["websocket", "polling"],
        default="websocket",
        help="websocket: fills streamed (backfill every --sync-interval); polling only",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample every mesh process with py-spy while the leader trades",
    )
    args = parser.parse_args()
    if args.profile:
        py_spy()
    started = time.monotonic()
    venues = [v.strip() for v in args.venues.split(",") if v.strip()]
    figures = asyncio.run(
        run(
            args.followers,
            args.orders,
            args.sync_interval,
            args.gap,
            args.mode == "websocket",
            venues,
            args.profile,
        )
    )
    mode = "websocket" if args.mode == "websocket" else f"polling {args.sync_interval}s"
    line = (
        f"copy_latency {mode}: {figures['copies']} copies "
        f"({args.orders} leader orders x {args.followers} followers on {'/'.join(venues)}): "
        f"p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms, max {figures['max']:.1f} ms, "
        f"mean {figures['mean']:.1f} ms"
    )
    if figures["profile"]:
        line += " (py-spy, CPU while the leader traded: " + "; ".join(figures["profile"]) + ")"
    print(line)
    print(f"ran in {time.monotonic() - started:.1f} s on {machine()}")
    results = ROOT / "bench" / "RESULTS.md"
    if not results.exists():
        results.write_text(
            "# Benchmark results\n\nEach row: date, scenario and figures, machine.\n\n"
        )
    with results.open("a") as handle:
        handle.write(f"- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {line} — {machine()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
