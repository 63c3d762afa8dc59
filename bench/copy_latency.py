"""Copy latency: from the leader's fill at the emulator to each follower order acknowledged there.

Both ends are read from the emulators' own records (the leader trade's ``time_ms`` and the
follower order's ``created_ms``, one clock on this machine), so the figure is what a user sees,
not what the engine believes. The mesh runs as real processes (``copytrade up`` does the same).

    .venv/bin/python bench/copy_latency.py                       # 10 followers, 200 orders, WebSocket
    .venv/bin/python bench/copy_latency.py --mode polling --sync-interval 1

Prints p50, p99 and max, and appends a row to bench/RESULTS.md with the machine it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime

import aiohttp

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "gen"), str(ROOT)]

from meshctl.api import RestClient, SimAdmin  # noqa: E402
from meshctl.demo import create_user, leader_client, wait_for_copies  # noqa: E402
from meshctl.launcher import Mesh, Ports  # noqa: E402


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


async def run(followers: int, orders: int, sync_interval: int, gap: float,
              websocket: bool, venues: list[str]) -> dict[str, float]:
    """Run the scenario on a fresh mesh and return the latency figures in milliseconds."""
    with tempfile.TemporaryDirectory(prefix="copytrade-bench-") as tmp:
        mesh = Mesh(pathlib.Path(tmp), ports=Ports.free(), log_level="WARNING")
        mesh.start()
        try:
            await mesh.wait_ready()
            return await _scenario(mesh, followers, orders, sync_interval, gap, websocket, venues)
        finally:
            mesh.stop()


async def _scenario(mesh: Mesh, followers: int, orders: int, sync_interval: int,
                    gap: float, websocket: bool, venues: list[str]) -> dict[str, float]:
    token = await create_user(mesh, "bench")
    async with aiohttp.ClientSession() as session:
        api = RestClient(session, mesh.gateway_url, token)
        sims = {venue: SimAdmin(session, url) for venue, url in mesh.venue_urls.items()}
        sim = sims["binance"]
        leader_keys = await sim.create_account({"USDT": "1000000"})
        leader_id = (await api.call("POST", "/exchanges", {
            "exchange_name": "binance", **{k: leader_keys[k] for k in ("api_key", "api_secret")},
        }))["exchange"]["exchange_id"]
        follower_keys, targets = [], []
        for index in range(followers):
            venue = venues[index % len(venues)]
            quote = "USDT" if venue == "binance" else "USD"
            keys = await sims[venue].create_account({quote: "100000"})
            follower_keys.append((venue, keys))
            targets.append((await api.call("POST", "/exchanges", {
                "exchange_name": venue, **{k: keys[k] for k in ("api_key", "api_secret")},
            }))["exchange"]["exchange_id"])
        config_id = (await api.call("POST", "/start", {
            "source_exchange_id": leader_id, "target_exchange_ids": targets,
            "copy_settings": {"allow_quote_equivalence": True},
            # The leader trades faster than the default 60 orders a minute per follower.
            "risk_limits": {"max_orders_per_minute": 1000},
            "sync_settings": {"sync_interval": sync_interval, "enable_websocket": websocket}}))["config_id"]
        exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
        try:
            for index in range(orders):
                await exchange.create_order("BTC/USDT", "market", "buy" if index % 2 == 0 else "sell", 0.02)
                await asyncio.sleep(gap)
        finally:
            await exchange.close()
        await wait_for_copies(api, config_id, expected_signals=orders, timeout=120)
        leader_trades = {str(t["trade_id"]): t for t in await sim.trades(leader_keys["api_key"])}
        intents = (await api.call("GET", f"/orders/{config_id}?page_size=5000"))["orders"]
        signal_of = {i["client_order_id"]: i["signal_id"] for i in intents}
        skipped = [f"{i['symbol']} {i['side']} {i['reason']}" for i in intents
                   if i["state"] != "INTENT_STATE_FILLED"]
        if skipped:
            print(f"not filled: {len(skipped)}: {skipped[:10]}")
        latencies = []
        for venue, keys in follower_keys:
            for order in await sims[venue].orders(keys["api_key"]):
                trade = leader_trades[signal_of[order["client_order_id"]]]
                latencies.append(float(order["created_ms"] - trade["time_ms"]))
    return {"copies": len(latencies), "p50": percentile(latencies, 0.5),
            "p99": percentile(latencies, 0.99), "max": max(latencies),
            "mean": statistics.fmean(latencies)}


def main() -> int:
    """Run the benchmark and record its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=10)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--venues", default="binance,coinbase,kraken",
                        help="follower venues, assigned in turn (the leader is on binance)")
    parser.add_argument("--sync-interval", type=int, default=1, help="polling interval, seconds")
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between leader orders")
    parser.add_argument("--mode", choices=["websocket", "polling"], default="websocket",
                        help="websocket: fills streamed (backfill every --sync-interval); polling only")
    args = parser.parse_args()
    started = time.monotonic()
    venues = [v.strip() for v in args.venues.split(",") if v.strip()]
    figures = asyncio.run(run(args.followers, args.orders, args.sync_interval, args.gap,
                              args.mode == "websocket", venues))
    mode = "websocket" if args.mode == "websocket" else f"polling {args.sync_interval}s"
    line = (f"copy_latency {mode}: {figures['copies']} copies "
            f"({args.orders} leader orders x {args.followers} followers on {'/'.join(venues)}): "
            f"p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms, max {figures['max']:.1f} ms, "
            f"mean {figures['mean']:.1f} ms")
    print(line)
    print(f"ran in {time.monotonic() - started:.1f} s on {machine()}")
    results = ROOT / "bench" / "RESULTS.md"
    if not results.exists():
        results.write_text("# Benchmark results\n\nEach row: date, scenario and figures, machine.\n\n")
    with results.open("a") as handle:
        handle.write(f"- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {line} — {machine()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
