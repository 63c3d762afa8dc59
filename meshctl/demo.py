"""``copytrade demo``: a scripted copy against a fresh local mesh, proven by reconciliation.

A leader on simulated Binance trades (a market buy, a limit order that rests and
then fills when the price moves, a partial close); followers copy it. The demo
prints the leader's trades beside the followers' orders with sizes and
latencies, then the reconciliation report, and exits 0 only when every item
matched.
"""

from __future__ import annotations

import asyncio
import pathlib
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp

from meshctl.api import RestClient, SimAdmin
from meshctl.launcher import Mesh, Ports

TERMINAL = {
    "INTENT_STATE_FILLED",
    "INTENT_STATE_CANCELED",
    "INTENT_STATE_EXPIRED",
    "INTENT_STATE_REJECTED",
    "INTENT_STATE_SKIPPED",
}


@dataclass
class Follower:
    """A simulated follower account."""

    label: str
    venue: str
    balances: dict[str, str]


FOLLOWERS = [
    Follower("follower-binance", "binance", {"USDT": "10000"}),
    Follower("follower-coinbase", "coinbase", {"USD": "5000"}),
    Follower("follower-kraken", "kraken", {"USD": "2500"}),
    # Too small for most copies: under the venue's minimum they are skipped, with the reason.
    Follower("follower-tiny", "binance", {"USDT": "20"}),
]
COPY_SETTINGS = {"sizing_mode": "equity_ratio", "allow_quote_equivalence": True}
LEADER_BALANCES = {"USDT": "100000"}


def say(text: str = "") -> None:
    """Print one line of the demo's story at once."""
    print(text, flush=True)


async def create_user(mesh: Mesh, name: str = "demo", plan: str = "pro") -> str:
    """Create a user in the gateway's store and return its API token."""
    from gateway.users import add_user
    from meshkit import db

    database = await db.connect(mesh.gateway_database_url())
    try:
        _user_id, token = await add_user(database, name, plan)
    finally:
        await database.close()
    return token


async def register_keys(
    api: RestClient, sim: SimAdmin, venue: str, label: str, balances: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """Open a simulated account and register it with the broker; return (exchange_id, keys).

    The keys (``api_key``, ``api_secret``) are what a ccxt client of the account needs.
    """
    keys = await sim.create_account(balances, can_trade=True, can_withdraw=False)
    return await _add_exchange(api, venue, label, keys), keys


async def register_futures_keys(
    api: RestClient, sim: SimAdmin, label: str, usdt: str
) -> tuple[str, dict[str, str]]:
    """Open a simulated account with ``usdt`` in its USDⓈ-M futures wallet and register it
    with the broker as ``binanceusdm``; return (exchange_id, keys)."""
    keys = await sim.create_account({}, can_trade=True, can_withdraw=False)
    await sim.fund_futures(keys["api_key"], usdt)
    return await _add_exchange(api, "binanceusdm", label, keys), keys


async def _add_exchange(api: RestClient, venue: str, label: str, keys: dict[str, str]) -> str:
    reply = await api.call(
        "POST",
        "/exchanges",
        {
            "exchange_name": venue,
            "api_key": keys["api_key"],
            "api_secret": keys["api_secret"],
            "label": label,
        },
    )
    exchange_id: str = reply["exchange"]["exchange_id"]
    return exchange_id


async def register(
    api: RestClient, sim: SimAdmin, venue: str, label: str, balances: dict[str, str]
) -> tuple[str, str]:
    """Open a simulated account and register it with the broker; return (exchange_id, api_key)."""
    exchange_id, keys = await register_keys(api, sim, venue, label, balances)
    return exchange_id, keys["api_key"]


def leader_client(base_url: str, keys: dict[str, str]) -> Any:
    """Return an unmodified ccxt async Binance client pointed at the emulator."""
    import ccxt.async_support as ccxt

    from exchange_sim.ccxt_urls import binance_options, point_ccxt_at

    exchange = ccxt.binance(
        {
            "apiKey": keys["api_key"],
            "secret": keys["api_secret"],
            "enableRateLimit": False,
            "options": binance_options(),
        }
    )
    point_ccxt_at(exchange, base_url)
    return exchange


def futures_client(base_url: str, keys: dict[str, str]) -> Any:
    """Return an unmodified ccxt async Binance USDⓈ-M (``binanceusdm``) client pointed at the
    Binance emulator, which serves the futures API on the same port."""
    import ccxt.async_support as ccxt

    from exchange_sim.ccxt_urls import point_ccxt_at

    exchange = ccxt.binanceusdm(
        {"apiKey": keys["api_key"], "secret": keys["api_secret"], "enableRateLimit": False}
    )
    point_ccxt_at(exchange, base_url)
    return exchange


async def wait_for_copies(
    api: RestClient,
    config_id: str,
    expected_signals: int,
    timeout: float = 60.0,  # noqa: ASYNC109 - a polling budget, checked between polls
) -> list[dict[str, Any]]:
    """Wait until the config has an intent per follower for each leader fill, all terminal."""
    deadline = time.monotonic() + timeout
    orders: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        orders = (await api.call("GET", f"/orders/{config_id}?page_size=5000")).get("orders", [])
        signals = {o["sequence"] for o in orders}
        if len(signals) >= expected_signals and all(o["state"] in TERMINAL for o in orders):
            return orders
        await asyncio.sleep(0.2)
    raise TimeoutError(f"copies not settled after {timeout}s: {len(orders)} intents so far")


def print_partial_close(
    leader_trades: list[dict[str, Any]], orders: list[dict[str, Any]], labels: dict[str, str]
) -> None:
    """Show that each follower closed the same fraction of its own position as the leader."""
    btc = [t for t in leader_trades if t["symbol"] == "BTC/USDT"]
    bought = sum(Decimal(str(t["amount"])) for t in btc if t["side"] == "buy")
    sold = sum(Decimal(str(t["amount"])) for t in btc if t["side"] == "sell")
    if not bought or not sold:
        return
    say(
        f"\npartial close: the leader sold {sold / bought:.0%} of its BTC position; each follower "
        "sold that share of its own:"
    )
    by_target: dict[str, dict[str, Decimal]] = {}
    for order in orders:
        if not order["symbol"].startswith("BTC/") or not order.get("filled_quantity"):
            continue
        side = "buy" if order["side"].endswith("BUY") else "sell"
        sides = by_target.setdefault(
            order["target_exchange_id"], {"buy": Decimal(0), "sell": Decimal(0)}
        )
        sides[side] += Decimal(order["filled_quantity"])
    for target, sides in sorted(by_target.items(), key=lambda item: labels.get(item[0], "")):
        if sides["buy"]:
            say(
                f"  {labels.get(target, '?'):<20} bought {sides['buy']} BTC, sold {sides['sell']} "
                f"({sides['sell'] / sides['buy']:.0%})"
            )


def _short(state: str) -> str:
    return state.removeprefix("INTENT_STATE_").lower()


def print_copies(
    leader_trades: list[dict[str, Any]], orders: list[dict[str, Any]], labels: dict[str, str]
) -> None:
    """Print each leader fill beside its copies."""
    by_signal: dict[str, list[dict[str, Any]]] = {}
    for order in orders:
        by_signal.setdefault(order["signal_id"], []).append(order)
    say(f"{'leader trade':<34} {'follower':<20} {'copy':<22} {'outcome':<28} {'latency':>9}")
    say("-" * 117)
    for trade in leader_trades:
        leader = f"{trade['side']} {trade['amount']} {trade['symbol']} @ {trade['price']}"
        copies = by_signal.get(str(trade["id"]), [])
        if not copies:
            say(f"{leader:<34} {'-':<20} {'(no copy found)':<22}")
        for index, copy in enumerate(
            sorted(copies, key=lambda o: labels.get(o["target_exchange_id"], ""))
        ):
            side = copy["side"].removeprefix("ORDER_SIDE_").lower()
            size = f"{side} {copy.get('filled_quantity') or copy.get('quantity', '0')}"
            outcome = _short(copy["state"]) + (f" ({copy['reason']})" if copy.get("reason") else "")
            latency = f"{copy.get('latency_ms', 0):.1f} ms" if copy.get("venue_order_id") else "-"
            say(
                f"{leader if index == 0 else '':<34} "
                f"{labels.get(copy['target_exchange_id'], '?'):<20} "
                f"{size:<22} {outcome:<28} {latency:>9}"
            )


async def run_demo(data_dir: pathlib.Path, database_url: str | None = None) -> int:
    """Run the scripted scenario on a fresh mesh in ``data_dir``; return the exit code."""
    if data_dir.exists():  # noqa: ASYNC240 - once, before the mesh starts: nothing runs yet
        shutil.rmtree(data_dir)
    mesh = Mesh(data_dir, ports=Ports.free(), shared_database_url=database_url, log_level="WARNING")
    say(f"starting a fresh mesh in {data_dir} ...")
    mesh.start()
    try:
        await mesh.wait_ready()
        return await _scenario(mesh)
    finally:
        mesh.stop()


async def _scenario(mesh: Mesh) -> int:
    token = await create_user(mesh)
    async with aiohttp.ClientSession() as session:
        api = RestClient(session, mesh.gateway_url, token)
        sims = {venue: SimAdmin(session, url) for venue, url in mesh.venue_urls.items()}
        leader_id, leader_keys = await register_keys(
            api, sims["binance"], "binance", "leader", LEADER_BALANCES
        )
        labels = {leader_id: "leader"}
        targets = []
        for follower in FOLLOWERS:
            exchange_id, _ = await register(
                api, sims[follower.venue], follower.venue, follower.label, follower.balances
            )
            labels[exchange_id] = follower.label
            targets.append(exchange_id)
        say(
            f"leader on simulated binance with {LEADER_BALANCES}; followers: "
            + ", ".join(f"{f.label} {f.balances}" for f in FOLLOWERS)
        )
        started = datetime.now(UTC)
        config = await api.call(
            "POST",
            "/start",
            {
                "source_exchange_id": leader_id,
                "target_exchange_ids": targets,
                "risk_limits": {
                    "max_position_size": 0.5,
                    "max_daily_loss": 0.1,
                    "max_slippage": 0.01,
                },
                "copy_settings": COPY_SETTINGS,
                "sync_settings": {"sync_interval": 1},
            },
        )
        config_id = config["config_id"]
        say(f"copy config {config_id} started ({config['status']})")

        exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
        try:
            say("leader: market buy 0.2 BTC/USDT")
            await exchange.create_order("BTC/USDT", "market", "buy", 0.2)
            say("leader: limit buy 1 ETH/USDT at 2990 (rests), then the price falls to 2985")
            await exchange.create_order("ETH/USDT", "limit", "buy", 1, 2990)
            await asyncio.sleep(0.5)
            await sims["binance"].set_price("ETH/USDT", "2985")
            say("leader: partial close, sell 0.08 BTC/USDT (40% of the position)")
            await asyncio.sleep(0.5)
            await exchange.create_order("BTC/USDT", "market", "sell", 0.08)
            trades = []
            for symbol in ("BTC/USDT", "ETH/USDT"):
                trades += await exchange.fetch_my_trades(symbol)
        finally:
            await exchange.close()
        trades.sort(key=lambda t: (t["timestamp"], int(t["id"])))
        orders = await wait_for_copies(api, config_id, expected_signals=len(trades))
        say()
        print_copies(trades, orders, labels)
        print_partial_close(trades, orders, labels)
        latencies = sorted(o["latency_ms"] for o in orders if o.get("venue_order_id"))
        if latencies:
            say(
                f"\nfill-to-copy latency: median {latencies[len(latencies) // 2]:.1f} ms, "
                f"max {latencies[-1]:.1f} ms over {len(latencies)} copies "
                "(leader fills streamed over the venue's WebSocket, REST backfill every second)"
            )
        report = (
            await api.call(
                "POST",
                "/reconcile",
                {
                    "config_id": config_id,
                    "start_time": started.isoformat().replace("+00:00", "Z"),
                    "end_time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                },
            )
        )["report"]
        say(
            "\nreconciliation: "
            + ", ".join(
                f"{k.removesuffix('_count')}={report.get(k, 0)}"
                for k in (
                    "total_count",
                    "matched_count",
                    "mismatched_count",
                    "missing_count",
                    "duplicate_count",
                    "error_count",
                )
            )
        )
        for item in report.get("items", []):
            say(
                f"  seq {item['sequence']:>3} {labels.get(item['target_exchange_id'], '?'):<20} "
                f"{item['outcome'].removeprefix('ITEM_OUTCOME_').lower():<10} "
                f"{item.get('detail', '')}"
            )
        await show_order_mirroring(api, mesh, leader_id, leader_keys, targets[0], labels)
        await show_correlation_limit(api, sims["binance"])
        await show_daily_loss_action(api, sims, config_id, labels)
        await show_futures_copy(api, mesh, sims["binance"])
        await api.call("POST", "/stop", {"config_id": config_id})
        total = int(report.get("total_count", 0))
        ok = total > 0 and int(report.get("matched_count", 0)) == total
        say(
            "\nDEMO OK: every leader trade has exactly one proven outcome per follower"
            if ok
            else "\nDEMO FAILED: see the report above"
        )
        return 0 if ok else 1


async def show_order_mirroring(
    api: RestClient,
    mesh: Mesh,
    leader_id: str,
    leader_keys: dict[str, str],
    target: str,
    labels: dict[str, str],
    deadline_seconds: float = 20.0,
) -> None:
    """Show ``copy_mode`` ``orders``: a leader's resting limit order is mirrored, then cancelled.

    A second configuration copies the leader's orders (not its fills) to one follower. The
    leader rests a limit buy below the market: the follower gets the same resting limit order;
    the leader cancels it: the copy is cancelled too.
    """
    say(
        "\norder mirroring: a second config with copy_mode orders;"
        " the leader rests a limit buy below the market, then cancels it"
    )
    config_id = (
        await api.call(
            "POST",
            "/start",
            {
                "source_exchange_id": leader_id,
                "target_exchange_ids": [target],
                "copy_settings": {
                    "copy_mode": "orders",
                    "sizing_mode": "fixed_quantity",
                    "fixed_quantity": "0.001",
                },
                "sync_settings": {"sync_interval": 1},
            },
        )
    )["config_id"]

    async def copy_in(states: set[str]) -> dict[str, Any] | None:
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            orders = (await api.call("GET", f"/orders/{config_id}")).get("orders", [])
            found = [o for o in orders if o["state"] in states]
            if found:
                return found[0]
            await asyncio.sleep(0.2)
        return None

    exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
    try:
        ticker = await exchange.fetch_ticker("BTC/USDT")
        price = int(Decimal(str(ticker["last"])) * Decimal("0.9"))
        placed = await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, price)
        say(f"  {'leader':<16} limit buy 0.01 BTC/USDT at {price} (rests)")
        copy = await copy_in({"INTENT_STATE_ACCEPTED"})
        if copy is not None:
            say(
                f"  {labels.get(copy['target_exchange_id'], '?'):<16}"
                f" {copy['type'].removeprefix('ORDER_TYPE_').lower()}"
                f" {copy['side'].removeprefix('ORDER_SIDE_').lower()} {copy['quantity']}"
                f" {copy['symbol']} at {copy['price']}: {_short(copy['state'])} (the copy rests)"
            )
        await exchange.cancel_order(placed["id"], "BTC/USDT")
        say(f"  {'leader':<16} cancels its order")
        copy = await copy_in({"INTENT_STATE_CANCELED"})
        if copy is not None:
            say(
                f"  {labels.get(copy['target_exchange_id'], '?'):<16} the copy is"
                f" {_short(copy['state'])}: {copy['reason']}"
            )
    finally:
        await exchange.close()
        await api.call("POST", "/stop", {"config_id": config_id})


async def show_correlation_limit(
    api: RestClient, sim: SimAdmin, deadline_seconds: float = 20.0
) -> None:
    """Show ``correlation_limit`` measuring the emulators' 30 days of synthetic history.

    A strategy buys BTC for a fresh follower under ``correlation_limit`` 0.5, then BNB (it moves
    on its own: copied), then ETH (it moves with BTC: skipped as ``correlation_limit``).
    """
    say(
        "\ncorrelation: a strategy copied under correlation_limit 0.5 buys BTC, then BNB"
        " (uncorrelated), then ETH (moves with BTC)"
    )
    follower_id, _ = await register(api, sim, "binance", "follower-correlation", {"USDT": "10000"})
    source = (await api.call("POST", "/backtests", {"name": "correlation", "equity": 100000}))[
        "backtest_id"
    ]
    config_id = (
        await api.call(
            "POST",
            "/start",
            {
                "source_backtest_id": source,
                "target_exchange_ids": [follower_id],
                "risk_limits": {"correlation_limit": 0.5},
            },
        )
    )["config_id"]
    try:
        for number, (symbol, quantity) in enumerate(
            (("BTC/USDT", 0.1), ("BNB/USDT", 10), ("ETH/USDT", 1)), start=1
        ):
            signal = {
                "signal_id": f"corr-{number}",
                "symbol": symbol,
                "side": "buy",
                "quantity": quantity,
                "order_type": "market",
            }
            await api.call("POST", f"/backtests/{source}/signals", {"signals": [signal]})
            copy: dict[str, Any] | None = None
            deadline = time.monotonic() + deadline_seconds
            while copy is None and time.monotonic() < deadline:
                orders = (await api.call("GET", f"/orders/{config_id}")).get("orders", [])
                done = [o for o in orders if o["symbol"] == symbol and o["state"] in TERMINAL]
                copy = done[0] if done else None
                if copy is None:
                    await asyncio.sleep(0.2)
            if copy is not None:
                say(
                    f"  {'follower-correlation':<20} buy {copy['quantity']:>8} {symbol:<9}"
                    f" {_short(copy['state']):<9} {copy.get('reason', '')}"
                )
    finally:
        await api.call("POST", "/stop", {"config_id": config_id})


async def show_daily_loss_action(
    api: RestClient,
    sims: dict[str, SimAdmin],
    config_id: str,
    labels: dict[str, str],
    deadline_seconds: float = 20.0,
) -> None:
    """Show protection between trades: BTC falls with no leader trade, and close_all sells.

    The daily loss limit is tightened to 1 % with ``daily_loss_action`` ``close_all``; BTC then
    falls 30 % on every venue while the leader does nothing. The engine's risk monitor sees the
    loss, moves the configuration to reducing and sells the BTC it copied.
    """
    say(
        "\nrisk: max_daily_loss 1% with daily_loss_action close_all;"
        " BTC falls 30% on every venue and the leader does nothing"
    )
    await api.call(
        "PATCH",
        f"/configs/{config_id}",
        {"risk_limits": {"max_daily_loss": 0.01, "daily_loss_action": "close_all"}},
    )
    for sim in sims.values():
        for symbol, price in (await sim.prices()).items():
            if symbol.startswith(("BTC", "XBT")):
                await sim.set_price(symbol, str(Decimal(str(price)) * Decimal("0.7")))
    deadline = time.monotonic() + deadline_seconds
    closes: list[dict[str, Any]] = []
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = (await api.call("GET", f"/status/{config_id}"))["config"]
        orders = (await api.call("GET", f"/orders/{config_id}?page_size=5000")).get("orders", [])
        closes = [o for o in orders if o.get("reason") == "daily_loss_close_all"]
        moved = status["status"] != "COPY_STATUS_ACTIVE"
        if moved and closes and all(o["state"] in TERMINAL for o in closes):
            break
        await asyncio.sleep(0.2)
    state = str(status.get("status", "?")).removeprefix("COPY_STATUS_")
    say(f"  status {state}: {status.get('status_reason', '')}")
    for order in closes:
        say(
            f"  {labels.get(order['target_exchange_id'], '?'):<20} sell {order['quantity']:>10}"
            f" {order['symbol']:<9} {_short(order['state']):<9} {order['reason']}"
        )


PERPETUAL = "BTC/USDT:USDT"


async def show_futures_copy(
    api: RestClient, mesh: Mesh, sim: SimAdmin, deadline_seconds: float = 30.0
) -> None:
    """Show one futures copy: a leader on Binance USDⓈ-M at 10x opens a BTC perpetual
    long, a follower capped by ``max_leverage`` 2 gets its proportional share, the leader halves
    it and the follower's reduce-only exit halves its own; the follower's position as the status
    shows it, and its reconciliation."""
    say(
        f"\nfutures: a leader on binanceusdm at 10x buys 6 {PERPETUAL}, then sells half;"
        " the follower copies under max_leverage 2"
    )
    leader_id, leader_keys = await register_futures_keys(api, sim, "leader-futures", "100000")
    follower_id, follower_keys = await register_futures_keys(api, sim, "follower-futures", "10000")
    started = datetime.now(UTC)
    config_id = (
        await api.call(
            "POST",
            "/start",
            {
                "source_exchange_id": leader_id,
                "target_exchange_ids": [follower_id],
                "risk_limits": {"max_leverage": "2"},
                "sync_settings": {"sync_interval": 1},
            },
        )
    )["config_id"]
    exchange = futures_client(mesh.venue_urls["binance"], leader_keys)
    try:
        await exchange.set_leverage(10, PERPETUAL)
        seen: set[str] = set()
        for side, amount in (("buy", 6), ("sell", 3)):
            await exchange.create_order(PERPETUAL, "market", side, amount)
            signals = len(await exchange.fetch_my_trades(PERPETUAL))
            orders = await wait_for_copies(api, config_id, signals, deadline_seconds)
            copies = [o for o in orders if o["intent_id"] not in seen]
            seen.update(o["intent_id"] for o in copies)
            leader = [
                p
                for p in await sim.futures_positions(leader_keys["api_key"])
                if Decimal(p["amount"])
            ]
            say(
                f"  {'leader-futures':<20} {side} {amount} in {len(copies)} fills -> position"
                + "".join(f" {p['amount']} at {p['leverage']}x" for p in leader)
            )
            filled = sum((Decimal(o.get("filled_quantity") or "0") for o in copies), Decimal(0))
            notes = sorted({o["reason"].split(":")[0] for o in copies if o.get("reason")})
            say(
                f"  {'follower-futures':<20} copied {side} {filled}"
                + (" reduce-only" if any(o.get("reduce_only") for o in copies) else "")
                + (f" ({', '.join(notes)})" if notes else "")
            )
        status = await api.call("GET", f"/status/{config_id}")
        for position in status.get("positions", []):
            if position.get("symbol"):
                say(
                    f"  {'follower-futures':<20} status: {position['side']}"
                    f" {position['quantity']} {position['asset']} entry {position['entry_price']}"
                    f" mark {position.get('mark_price', '?')}"
                    f" unrealised {position.get('unrealized_pnl', '?')}"
                )
        truth = [
            p for p in await sim.futures_positions(follower_keys["api_key"]) if Decimal(p["amount"])
        ]
        say(
            f"  {'follower-futures':<20} the venue's record:"
            + "".join(f" {p['amount']} at {p['leverage']}x" for p in truth)
        )
        report = (
            await api.call(
                "POST",
                "/reconcile",
                {"config_id": config_id, "start_time": started.isoformat().replace("+00:00", "Z")},
            )
        )["report"]
        for item in report.get("items", []):
            if item.get("kind") == "position":
                say(
                    f"  {'follower-futures':<20} reconciliation:"
                    f" {item['outcome'].removeprefix('ITEM_OUTCOME_').lower()}"
                    f" venue {item.get('venue_side', '?')} {item.get('venue_position', '?')},"
                    f" expected {item.get('expected_side', '?')}"
                    f" {item.get('expected_position', '?')}"
                )
    finally:
        await exchange.close()
        await api.call("POST", "/stop", {"config_id": config_id})


def main(data_dir: pathlib.Path, database_url: str | None = None) -> int:
    """Entry point of ``copytrade demo``."""
    try:
        return asyncio.run(run_demo(data_dir, database_url))
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        print(f"demo failed: {e}", file=sys.stderr)
        return 1
