"""Copy latency: from the leader's fill at the emulator to each follower order acknowledged there.

Both ends are read from the emulators' own records (the leader trade's ``time_ms`` and the
follower order's ``created_ms``, one clock on this machine), so the figure is what a user sees,
not what the engine believes. The mesh runs as real processes (``copytrade up`` does the same).

    .venv/bin/python bench/copy_latency.py      # 10 followers, 200 orders, WebSocket
    .venv/bin/python bench/copy_latency.py --mode polling --sync-interval 1
    .venv/bin/python bench/copy_latency.py --profile   # also sample every process with py-spy
    .venv/bin/python bench/copy_latency.py --baseline  # then the same with a direct copier

Prints p50, p99 and max, and appends a row to bench/RESULTS.md with the machine it ran on.
With ``--profile`` (needs ``py-spy`` on PATH or in the virtualenv; it is a tool, not a
dependency) every mesh process is sampled at 100 Hz while the leader trades, and the CPU each
one used and its hottest functions are printed and recorded: that is what bounds the latency.

With ``--baseline`` the same run then starts a direct copier (:class:`DirectCopier`: ccxt.pro
watching the leader's fills, a gather of market orders on the followers' own clients, no
durability) on fresh accounts at the same emulators, times its copies the same way, and
records both figure sets and the ratios mesh/baseline in one row.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import pathlib
import statistics
import sys
import tempfile
import time
from decimal import Decimal
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
)
from meshctl.api import RestClient, SimAdmin  # noqa: E402 - after the sys.path setup
from meshctl.demo import create_user, leader_client, register_keys, wait_for_copies  # noqa: E402 - after the sys.path setup
from meshctl.launcher import Mesh, Ports  # noqa: E402 - after the sys.path setup

MAX_TARGETS = 20
"""The follower accounts one copy configuration may name (engine_svc.domain.settings)."""


async def run(
    followers: int,
    orders: int,
    sync_interval: int,
    gap: float,
    websocket: bool,
    venues: list[str],
    profile: bool = False,
    baseline: bool = False,
) -> dict[str, Any]:
    """Run the scenario on a fresh mesh and return the latency figures in milliseconds.

    With ``baseline``, the direct copier then copies the same leader orders on the same
    emulators (fresh accounts; the mesh stays up, idle): its figures are under ``baseline``.
    Both phases are then warm: one untimed copied fill opens the mesh's follower connections
    first, as the baseline makes its clients (and loads their markets) before its timed fills.
    """
    with tempfile.TemporaryDirectory(prefix="copytrade-bench-") as tmp:
        mesh = Mesh(pathlib.Path(tmp), ports=Ports.free(), log_level="WARNING")
        mesh.start()
        try:
            await mesh.wait_ready()
            profiler = Profiler(mesh_pids(mesh), pathlib.Path(tmp)) if profile else None
            figures = await _scenario(
                mesh, followers, orders, sync_interval, gap, websocket, venues, profiler, baseline
            )
            if baseline:
                figures["baseline"] = await _baseline(mesh, followers, orders, gap, venues)
            return figures
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
    warm_up: bool = False,
) -> dict[str, Any]:
    token = await create_user(mesh, "bench")
    async with aiohttp.ClientSession() as session:
        api = RestClient(session, mesh.gateway_url, token)
        sims = {venue: SimAdmin(session, url) for venue, url in mesh.venue_urls.items()}
        sim = sims["binance"]
        leader_id, leader_keys = await register_keys(
            api, sim, "binance", "leader", {"USDT": "1000000"}
        )
        follower_keys, targets = [], []
        for index in range(followers):
            venue = venues[index % len(venues)]
            quote = "USDT" if venue == "binance" else "USD"
            exchange_id, keys = await register_keys(
                api, sims[venue], venue, f"follower {index}", {quote: "100000"}
            )
            follower_keys.append((venue, keys))
            targets.append(exchange_id)
        # A configuration copies to at most MAX_TARGETS accounts: more followers take several.
        config_ids = []
        for first in range(0, len(targets), MAX_TARGETS):
            started = await api.call(
                "POST",
                "/start",
                {
                    "source_exchange_id": leader_id,
                    "target_exchange_ids": targets[first : first + MAX_TARGETS],
                    "copy_settings": {"allow_quote_equivalence": True},
                    # The leader trades faster than the default 60 orders a minute per follower.
                    "risk_limits": {"max_orders_per_minute": 1000},
                    "sync_settings": {
                        "sync_interval": sync_interval,
                        "enable_websocket": websocket,
                    },
                },
            )
            config_ids.append(started["config_id"])
        exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
        window = orders * (gap + 0.02) + 2
        warm_trades: set[str] = set()
        # CPU of every mesh process from the first timed fill until every copy is reported.
        meter = CpuMeter(mesh_pids(mesh))
        try:
            if warm_up:
                # One copied fill first, not timed: every follower's connection is open (as the
                # baseline's clients are made up front) before the timed fills.
                await exchange.create_order("BTC/USDT", "market", "buy", 0.02)
                for config_id in config_ids:
                    await wait_for_copies(api, config_id, expected_signals=1, timeout=120)
                warm_trades = {str(t["trade_id"]) for t in await sim.trades(leader_keys["api_key"])}
            if profiler is not None:
                profiler.start(window)
            meter.start()
            for index in range(orders):
                await exchange.create_order(
                    "BTC/USDT", "market", "buy" if index % 2 == 0 else "sell", 0.02
                )
                await asyncio.sleep(gap)
        finally:
            await exchange.close()
        intents = []
        for config_id in config_ids:
            intents += await wait_for_copies(
                api, config_id, expected_signals=orders + len(warm_trades), timeout=120
            )
        meter.stop()
        leader_trades = {str(t["trade_id"]): t for t in await sim.trades(leader_keys["api_key"])}
        signal_of = {i["client_order_id"]: i["signal_id"] for i in intents}
        skipped = [
            f"{i['symbol']} {i['side']} {i['reason']}"
            for i in intents
            if i["state"] != "INTENT_STATE_FILLED"
        ]
        if skipped:
            print(f"not filled: {len(skipped)}: {skipped[:10]}")
        latencies = []
        last: dict[str, float] = {}
        quantities: dict[str, list[Decimal]] = collections.defaultdict(list)
        for venue, keys in follower_keys:
            for order in await sims[venue].orders(keys["api_key"]):
                signal = signal_of[order["client_order_id"]]
                if signal in warm_trades:
                    continue
                trade = leader_trades[signal]
                latencies.append(float(order["created_ms"] - trade["time_ms"]))
                last[signal] = max(last.get(signal, 0.0), latencies[-1])
                quantities[venue].append(Decimal(order["quantity"]))
    profile = profiler.report(window) if profiler is not None else []
    return {
        **figures_of(latencies, last),
        "profile": profile,
        "quantities": quantities,
        "cpu": meter.per_copy(len(latencies)),
    }


def figures_of(latencies: list[float], last: dict[str, float]) -> dict[str, Any]:
    """The latency figures of one phase, in milliseconds.

    ``last`` holds, per leader trade, the latency of its last follower's order: when the
    whole fan-out of that trade was at the venues.
    """
    return {
        "copies": len(latencies),
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
        "mean": statistics.fmean(latencies),
        "last_p50": percentile(list(last.values()), 0.5),
        "last_max": max(last.values()),
    }


LEADER_EQUITY = Decimal("1000000")
FOLLOWER_EQUITY = Decimal("100000")


def direct_client(venue: str, base_url: str, keys: dict[str, str]) -> Any:
    """An unmodified ccxt.pro client of one account at an emulator (as the broker builds it)."""
    import ccxt.pro

    from exchange_sim.ccxt_urls import binance_options, point_ccxt_at

    options: dict[str, Any] = {
        "binance": binance_options(),
        # Market buys sized in the base asset (the order's base_size is given below).
        "coinbase": {"createMarketBuyOrderRequiresPrice": False},
    }.get(venue, {})
    client = getattr(ccxt.pro, venue)(
        {
            "apiKey": keys["api_key"],
            "secret": keys["api_secret"],
            "enableRateLimit": False,
            "options": options,
        }
    )
    point_ccxt_at(client, base_url)
    return client


class DirectCopier:
    """The baseline: one asyncio task, no promise kept, no record kept.

    It watches the leader's fills on the Binance WebSocket (``watch_my_trades``) and, on each
    fill, sends every follower's market order at once (``asyncio.gather`` of ``create_order``
    on each follower's own ccxt client, made up front and reused). The quantity is the leader's
    times follower equity / leader equity (``equity_ratio`` as the mesh sizes it while every
    account is all cash). Kraken signs with a nonce that must rise per key, so a Kraken
    follower's orders go one at a time; nothing else waits. Failures are counted, not retried.
    """

    def __init__(self, leader: Any, followers: list[tuple[str, Any]], expected: int) -> None:
        self.leader = leader
        self.expected = expected
        self.all_seen = asyncio.Event()
        self.followers = followers
        self.locks = [
            asyncio.Lock() if venue == "kraken" else contextlib.nullcontext()
            for venue, _ in followers
        ]
        self.armed = False
        self.seen = asyncio.Event()
        self.sent: dict[str, str] = {}  # the copy's client order id -> the leader's trade id
        self.failures: collections.Counter[str] = collections.Counter()
        self.copies: set[asyncio.Task[None]] = set()
        self._trades: set[str] = set()
        self.count = 0

    async def watch(self) -> None:
        """Copy every new leader fill once the copier is armed (fills before it only say ready)."""
        while True:
            for trade in await self.leader.watch_my_trades():
                if trade["id"] in self._trades:
                    continue
                self._trades.add(trade["id"])
                if not self.armed:
                    self.seen.set()
                    continue
                self.count += 1
                task = asyncio.create_task(self.copy(trade, self.count))
                self.copies.add(task)
                task.add_done_callback(self.copies.discard)
                if self.count >= self.expected:
                    self.all_seen.set()

    async def copy(self, trade: dict[str, Any], number: int) -> None:
        quantity = Decimal(str(trade["amount"])) * FOLLOWER_EQUITY / LEADER_EQUITY
        await asyncio.gather(
            *(self._send(index, trade, number, quantity) for index in range(len(self.followers)))
        )

    async def _send(
        self, index: int, trade: dict[str, Any], number: int, quantity: Decimal
    ) -> None:
        venue, client = self.followers[index]
        client_order_id = f"d{number}f{index}"  # Kraken: 1-18 characters
        self.sent[client_order_id] = str(trade["id"])
        symbol = "BTC/USDT" if venue == "binance" else "BTC/USD"
        amount = client.amount_to_precision(symbol, str(quantity))
        params: dict[str, Any] = {"clientOrderId": client_order_id}
        if venue == "coinbase":
            params = {
                "client_order_id": client_order_id,
                "order_configuration": {"market_market_ioc": {"base_size": amount}},
            }
        try:
            async with self.locks[index]:
                await client.create_order(symbol, "market", trade["side"], amount, None, params)
        except Exception as e:
            self.failures[f"{venue} {type(e).__name__}"] += 1


async def _baseline(
    mesh: Mesh, followers: int, orders: int, gap: float, venues: list[str]
) -> dict[str, Any]:
    """The same leader orders and followers, copied by :class:`DirectCopier` (fresh accounts)."""
    async with aiohttp.ClientSession() as session:
        sims = {venue: SimAdmin(session, url) for venue, url in mesh.venue_urls.items()}
        sim = sims["binance"]
        leader_keys = await sim.create_account({"USDT": str(LEADER_EQUITY)})
        follower_keys = []
        for index in range(followers):
            venue = venues[index % len(venues)]
            quote = "USDT" if venue == "binance" else "USD"
            keys = await sims[venue].create_account({quote: str(FOLLOWER_EQUITY)})
            follower_keys.append((venue, keys))
        clients = [
            (venue, direct_client(venue, mesh.venue_urls[venue], keys))
            for venue, keys in follower_keys
        ]
        watcher = direct_client("binance", mesh.venue_urls["binance"], leader_keys)
        exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
        copier = DirectCopier(watcher, clients, orders)
        watching = asyncio.create_task(copier.watch())
        try:
            await asyncio.gather(*(client.load_markets() for _, client in clients))
            # Warm up: leader fills until the stream delivers one (it is subscribed); not copied.
            for _ in range(40):
                await exchange.create_order("BTC/USDT", "market", "buy", 0.02)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(copier.seen.wait(), 0.5)
                    break
            else:
                raise SystemExit("baseline: the leader's fill stream never delivered a fill")
            await asyncio.sleep(1)
            # The direct copier runs in this process: its CPU, and the emulators'.
            meter = CpuMeter({"copier": os.getpid(), **emulator_pids(mesh)})
            meter.start()
            copier.armed = True
            for index in range(orders):
                await exchange.create_order(
                    "BTC/USDT", "market", "buy" if index % 2 == 0 else "sell", 0.02
                )
                await asyncio.sleep(gap)
            await asyncio.wait_for(copier.all_seen.wait(), 120)
            if copier.copies:
                await asyncio.wait(set(copier.copies), timeout=120)
            meter.stop()
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            await exchange.close()
            await watcher.close()
            await asyncio.gather(*(client.close() for _, client in clients))
        if copier.failures:
            print(f"baseline failures: {dict(copier.failures)}")
        leader_trades = {str(t["trade_id"]): t for t in await sim.trades(leader_keys["api_key"])}
        latencies = []
        last: dict[str, float] = {}
        quantities: dict[str, list[Decimal]] = collections.defaultdict(list)
        for venue, keys in follower_keys:
            for order in await sims[venue].orders(keys["api_key"]):
                trade = leader_trades[copier.sent[order["client_order_id"]]]
                latencies.append(float(order["created_ms"] - trade["time_ms"]))
                last[str(trade["trade_id"])] = max(
                    last.get(str(trade["trade_id"]), 0.0), latencies[-1]
                )
                quantities[venue].append(Decimal(order["quantity"]))
    return {
        **figures_of(latencies, last),
        "quantities": quantities,
        "fills": copier.count,
        "cpu": meter.per_copy(len(latencies)),
    }


def emulator_pids(mesh: Mesh) -> dict[str, int]:
    """The mesh's exchange emulator processes (the baseline copies through them too)."""
    return {name: pid for name, pid in mesh_pids(mesh).items() if name == "exchange_sim"}


def ratio(mesh: float, baseline: float) -> str:
    """``mesh / baseline`` to one decimal (a baseline of 0 ms counts as 1 ms)."""
    return f"{mesh / max(baseline, 1.0):.1f}"


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
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="then copy the same orders with a direct ccxt.pro copier (no durability) and compare",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="print the figures, add no row to RESULTS.md"
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
            args.baseline,
        )
    )
    mode = "websocket" if args.mode == "websocket" else f"polling {args.sync_interval}s"
    line = (
        f"copy_latency {mode}: {figures['copies']} copies "
        f"({args.orders} leader orders x {args.followers} followers on {'/'.join(venues)}): "
        f"p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms, max {figures['max']:.1f} ms, "
        f"mean {figures['mean']:.1f} ms, a trade's last follower p50 {figures['last_p50']:.0f} ms"
        f" max {figures['last_max']:.0f} ms"
    )
    base = figures.get("baseline")
    if base is not None:
        line += (
            f"; baseline (direct ccxt.pro copier, no durability; both phases warm, after one"
            f" untimed leader fill): {base['copies']} copies, "
            f"p50 {base['p50']:.1f} ms, p99 {base['p99']:.1f} ms, max {base['max']:.1f} ms, "
            f"mean {base['mean']:.1f} ms, last follower p50 {base['last_p50']:.0f} ms"
            f" max {base['last_max']:.0f} ms; mesh/baseline"
            f" p50 x{ratio(figures['p50'], base['p50'])}, "
            f"p99 x{ratio(figures['p99'], base['p99'])}; mesh {figures['cpu']};"
            f" baseline {base['cpu']}"
        )
        for phase, found in (("mesh", figures), ("baseline", base)):
            spans = [f"{v} {min(q)}-{max(q)}" for v, q in sorted(found["quantities"].items())]
            print(f"follower order quantities (BTC), {phase}: {', '.join(spans)}")
    if base is None:
        line += f"; {figures['cpu']}"
    if figures["profile"]:
        line += " (py-spy, CPU while the leader traded: " + "; ".join(figures["profile"]) + ")"
    print(line)
    print(f"ran in {time.monotonic() - started:.1f} s on {machine()}")
    if not args.no_record:
        append_row(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
