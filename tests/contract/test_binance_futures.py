"""Unmodified ccxt 4.5.90 ``binanceusdm`` (async and pro) against the Binance emulator's USDⓈ-M
futures: what ccxt sends must be what the emulator serves, with the emulator's admin API
(``/_sim/futures/``) as ground truth (docs/exchange-protocols.md §2.9)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from exchange_sim import SimCluster, start_venues
from exchange_sim.ccxt_urls import point_ccxt_at

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture
async def venue() -> AsyncIterator[tuple[SimCluster, aiohttp.ClientSession]]:
    cluster = await start_venues(("binance",), ports={"binance": 0})
    async with aiohttp.ClientSession() as session:
        yield cluster, session
    await cluster.close()


async def _admin(
    session: aiohttp.ClientSession, base: str, method: str, path: str, body: Any = None
) -> Any:
    async with session.request(method, base + path, json=body) as response:
        payload = await response.json()
        assert response.status == 200, payload
        return payload


async def _funded(session: aiohttp.ClientSession, base: str, usdt: str = "10000") -> dict[str, str]:
    creds = await _admin(session, base, "POST", "/_sim/accounts", {"balances": {}})
    await _admin(
        session, base, "POST", f"/_sim/futures/accounts/{creds['api_key']}/wallet", {"amount": usdt}
    )
    return creds


def _client(module: Any, creds: dict[str, str], base: str) -> Any:
    exchange = module.binanceusdm(
        {"apiKey": creds["api_key"], "secret": creds["api_secret"], "enableRateLimit": False}
    )
    point_ccxt_at(exchange, base)
    return exchange


async def test_binanceusdm_trades_a_perpetual_end_to_end(
    venue: tuple[SimCluster, aiohttp.ClientSession],
) -> None:
    cluster, session = venue
    base = cluster.urls["binance"]
    creds = await _funded(session, base)
    key = creds["api_key"]
    ex = _client(ccxt_async, creds, base)
    try:
        markets = await ex.load_markets()
        market = markets[SYMBOL]
        assert market["swap"] and market["linear"] and market["settle"] == "USDT"
        assert market["precision"] == {"amount": 0.001, "price": 0.1, "base": 1e-08, "quote": 1e-08}
        assert market["limits"]["cost"]["min"] == 100 and market["limits"]["market"]["max"] == 120
        assert "ETH/USDT:USDT" in markets
        # fetch_ticker reads /fapi/v1/ticker/24hr: the mark is the last price.
        marks = await _admin(session, base, "GET", "/_sim/futures/prices")
        ticker = await ex.fetch_ticker(SYMBOL)
        assert Decimal(str(ticker["last"])) == Decimal(marks["BTCUSDT"]) > 0

        await ex.set_leverage(10, SYMBOL)
        await ex.set_margin_mode("isolated", SYMBOL)
        await ex.set_position_mode(True)  # hedge mode, then back to one-way
        await ex.set_position_mode(False)
        settings = await _admin(session, base, "GET", f"/_sim/futures/accounts/{key}/settings")
        assert settings["BTCUSDT"] == {"leverage": 10, "margin_type": "ISOLATED"}
        # fetch_leverages reads /fapi/v1/symbolConfig: every symbol's setting, flat or not.
        leverages = await ex.fetch_leverages()
        assert leverages[SYMBOL]["longLeverage"] == leverages[SYMBOL]["shortLeverage"] == 10
        assert leverages[SYMBOL]["marginMode"] == "isolated"
        assert leverages["ETH/USDT:USDT"]["longLeverage"] == 20  # the default, never set
        assert leverages["ETH/USDT:USDT"]["marginMode"] == "cross"
        with pytest.raises(ccxt.OperationRejected, match="-4059"):
            await ex.set_position_mode(False)  # already one-way

        opened = await ex.create_order(
            SYMBOL, "market", "buy", 0.1, None, {"clientOrderId": "open-1"}
        )
        assert opened["status"] == "closed" and opened["filled"] == 0.1
        assert opened["clientOrderId"] == "open-1" and opened["average"] == 50025.0

        resting = await ex.create_order(
            SYMBOL, "limit", "buy", 0.01, 45000, {"clientOrderId": "rest-1"}
        )
        assert resting["status"] == "open"
        assert [o["id"] for o in await ex.fetch_open_orders(SYMBOL)] == [resting["id"]]
        with pytest.raises(ccxt.ExchangeError, match="-4116"):  # the id is held by an open order
            await ex.create_order(SYMBOL, "limit", "buy", 0.01, 45000, {"clientOrderId": "rest-1"})
        canceled = await ex.cancel_order(resting["id"], SYMBOL)
        assert canceled["status"] == "canceled"

        stop = await ex.create_order(
            SYMBOL, "market", "sell", 0.1, None, {"stopLossPrice": 45000, "reduceOnly": True}
        )
        assert stop["status"] == "open" and stop["triggerPrice"] == 45000 and stop["reduceOnly"]
        algos = await _admin(session, base, "GET", f"/_sim/futures/accounts/{key}/algo-orders")
        assert [(a["type"], a["trigger_price"], a["status"]) for a in algos] == [
            ("stop_market", "45000", "new")
        ]

        await _admin(
            session, base, "POST", "/_sim/futures/prices", {"symbol": SYMBOL, "price": "51000"}
        )
        [position] = await ex.fetch_positions([SYMBOL])
        assert position["side"] == "long" and position["contracts"] == 0.1
        assert position["entryPrice"] == 50025.0 and position["marginMode"] == "isolated"
        assert position["unrealizedPnl"] == pytest.approx(97.5)  # 0.1 * (51000 - 50025)
        # isolated 10x long, MMR 0.4%: (0.1 * 50025 - 500.25) / (0.1 * 0.996)
        assert position["liquidationPrice"] == pytest.approx(45203.313, abs=0.01)
        truth = (await _admin(session, base, "GET", f"/_sim/futures/accounts/{key}/positions"))[0]
        assert Decimal(truth["liquidation_price"]) == pytest.approx(
            Decimal("45203.3132"), abs=0.001
        )

        balance = await ex.fetch_balance()
        fee = 0.1 * 50025 * 0.0005
        assert balance["USDT"]["total"] == pytest.approx(10000 - fee + 97.5)
        assert balance["USDT"]["used"] == pytest.approx(510.0)  # 0.1 * 51000 / 10

        closed = await ex.create_order(SYMBOL, "market", "sell", 0.5, None, {"reduceOnly": True})
        assert closed["filled"] == 0.1  # reduce-only is cut to the position
        assert await ex.fetch_positions([SYMBOL]) == []
        with pytest.raises(ccxt.ExchangeError, match="-2022"):
            await ex.create_order(SYMBOL, "market", "sell", 0.1, None, {"reduceOnly": True})

        orders = await _admin(session, base, "GET", f"/_sim/futures/accounts/{key}/orders")
        assert [(o["client_order_id"], o["status"]) for o in orders] == [
            ("open-1", "filled"),
            ("rest-1", "canceled"),
            (closed["clientOrderId"], "filled"),
        ]
        trades = await ex.fetch_my_trades(SYMBOL)
        assert sum(t["amount"] for t in trades) == pytest.approx(0.2)
    finally:
        await ex.close()


async def test_pro_watch_orders_receives_order_trade_update_and_positions(
    venue: tuple[SimCluster, aiohttp.ClientSession],
) -> None:
    cluster, session = venue
    base = cluster.urls["binance"]
    creds = await _funded(session, base)
    ex = _client(ccxt_pro, creds, base)
    try:
        await ex.load_markets()
        assert await ex.watch_positions([SYMBOL]) == []  # the REST snapshot: flat
        orders_task = asyncio.create_task(ex.watch_orders(SYMBOL))
        positions_task = asyncio.create_task(ex.watch_positions([SYMBOL]))
        for _ in range(500):  # wait for the listen-key socket, failing fast if the watch failed
            if orders_task.done():
                orders_task.result()
            if any(
                "listenKey=" in url and client.connected.done()
                for url, client in ex.clients.items()
            ):
                break
            await asyncio.sleep(0.01)
        placed = await ex.create_order(
            SYMBOL, "market", "sell", 0.2, None, {"clientOrderId": "ws-1"}
        )
        seen = await asyncio.wait_for(orders_task, 5)
        while seen[-1]["status"] != "closed":
            seen = await asyncio.wait_for(ex.watch_orders(SYMBOL), 5)
        assert seen[-1]["id"] == placed["id"] and seen[-1]["clientOrderId"] == "ws-1"
        assert seen[-1]["filled"] == 0.2 and seen[-1]["side"] == "sell"
        positions = await asyncio.wait_for(positions_task, 5)
        while not positions[-1]["contracts"]:
            positions = await asyncio.wait_for(ex.watch_positions([SYMBOL]), 5)
        assert positions[-1]["side"] == "short" and positions[-1]["contracts"] == 0.2
        assert positions[-1]["entryPrice"] == pytest.approx(49975.0)
    finally:
        await ex.close()


async def test_a_lost_order_reply_is_found_by_client_id_and_order_bursts_are_limited() -> None:
    cluster = await start_venues(("binance",), ports={"binance": 0}, rate_limits=True)
    base = cluster.urls["binance"]
    async with aiohttp.ClientSession() as session:
        creds = await _funded(session, base)
        ex = _client(ccxt_async, creds, base)
        try:
            await ex.load_markets()
            await _admin(
                session,
                base,
                "POST",
                "/_sim/faults",
                {"method": "POST", "path": "/fapi/v1/order", "status": 504, "execute": True},
            )
            with pytest.raises(ccxt.RequestTimeout):
                await ex.create_order(
                    SYMBOL, "market", "buy", 0.01, None, {"clientOrderId": "lost"}
                )
            found = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "lost"})
            assert found["status"] == "closed" and found["filled"] == 0.01
            results = await asyncio.gather(
                *(ex.create_order(SYMBOL, "limit", "buy", 0.01, 40000) for _ in range(10)),
                return_exceptions=True,
            )
            refused = [r for r in results if isinstance(r, Exception)]
            assert len(refused) == 1 and "-1015" in str(refused[0])  # 10 new orders a second
            assert isinstance(refused[0], ccxt.DDoSProtection)
        finally:
            await ex.close()
            await cluster.close()


async def test_the_broker_trades_a_futures_account_with_the_spot_keys(
    venue: tuple[SimCluster, aiohttp.ClientSession],
) -> None:
    from broker_svc.adapters.ratelimit import RateLimits
    from broker_svc.adapters.venues import CcxtVenues
    from broker_svc.domain.model import Credentials, OrderRequest, OrderStatus, OrderType, Side

    cluster, session = venue
    base = cluster.urls["binance"]
    creds = await _funded(session, base)
    # only the spot venue has a URL: the futures account shares it (one emulator port)
    venues = CcxtVenues({"binance": base}, rate_limits=RateLimits(enabled=False))
    port = venues.connect("binanceusdm", Credentials(creds["api_key"], creds["api_secret"]))
    try:
        markets = await port.load_markets()
        assert set(markets) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
        assert markets[SYMBOL].quantity_step == Decimal("0.001")
        assert (await port.fetch_key_permissions()).can_trade
        opened = await port.place_order(
            OrderRequest("fut-open", SYMBOL, Side.BUY, OrderType.MARKET, Decimal("0.01"))
        )
        assert opened.status is OrderStatus.FILLED and opened.filled_quantity == Decimal("0.01")
        closing = OrderRequest(
            "fut-close", SYMBOL, Side.SELL, OrderType.MARKET, Decimal("0.01"), reduce_only=True
        )
        assert (await port.place_order(closing)).status is OrderStatus.FILLED
        with pytest.raises(Exception, match="ReduceOnly"):  # nothing left to reduce
            await port.place_order(
                OrderRequest(
                    "fut-again",
                    SYMBOL,
                    Side.SELL,
                    OrderType.MARKET,
                    Decimal("0.01"),
                    reduce_only=True,
                )
            )
        found = await port.fetch_order("fut-open", SYMBOL)
        assert found.venue_order_id == opened.venue_order_id
        fills = await port.fetch_fills([SYMBOL], None)
        assert fills[0].venue_order_id == opened.venue_order_id
        assert sum(f.quantity for f in fills) == Decimal("0.02")
        [usdt] = [b for b in await port.fetch_balances() if b.asset == "USDT"]
        # bought at 50025, sold at 49975 (the book's spread): 0.5 lost, 0.5 in taker fees
        assert usdt.total == Decimal("9999")
        truth = await _admin(
            session, base, "GET", f"/_sim/futures/accounts/{creds['api_key']}/orders"
        )
        assert [(o["client_order_id"], o["reduce_only"]) for o in truth] == [
            ("fut-open", False),
            ("fut-close", True),
        ]
    finally:
        await port.close()
        await venues.close()


async def test_funding_is_announced_in_premium_index_and_charged_to_the_position(
    venue: tuple[SimCluster, aiohttp.ClientSession],
) -> None:
    cluster, session = venue
    base = cluster.urls["binance"]
    creds = await _funded(session, base)
    ex = _client(ccxt_async, creds, base)
    try:
        await ex.load_markets()
        await _admin(
            session, base, "POST", "/_sim/futures/funding", {"symbol": SYMBOL, "rate": "0.0003"}
        )
        rate = await ex.fetch_funding_rate(SYMBOL)
        assert rate["fundingRate"] == 0.0003 and rate["markPrice"] == 50000.0
        assert rate["fundingTimestamp"] % (8 * 3_600_000) == 0  # 00:00, 08:00, 16:00 UTC
        await ex.create_order(SYMBOL, "market", "buy", 0.1)
        before = (await ex.fetch_balance())["USDT"]["total"]
        await _admin(session, base, "POST", "/_sim/futures/funding", {"settle": True})
        [payment] = await ex.fetch_funding_history(SYMBOL)
        assert payment["amount"] == pytest.approx(-1.5)  # 0.1 * 50000 * 0.0003, paid by a long
        assert (await ex.fetch_balance())["USDT"]["total"] == pytest.approx(before - 1.5)
    finally:
        await ex.close()


async def test_the_broker_follows_a_futures_account_on_its_listen_key_stream(
    venue: tuple[SimCluster, aiohttp.ClientSession],
) -> None:
    from broker_svc.adapters.binance_usdm import BinanceUsdmExchange
    from broker_svc.adapters.ratelimit import RateLimits
    from broker_svc.domain.model import (
        Credentials,
        Fill,
        Order,
        OrderRequest,
        OrderStatus,
        OrderType,
        Side,
        StreamEvent,
        StreamState,
        TimeInForce,
        WatchChannel,
    )

    cluster, session = venue
    base = cluster.urls["binance"]
    creds = await _funded(session, base)
    port = BinanceUsdmExchange(
        Credentials(creds["api_key"], creds["api_secret"]),
        base_url=base,
        limits=RateLimits(enabled=False),
    )
    orders, fills = port.watch(WatchChannel.ORDERS), port.watch(WatchChannel.FILLS)

    async def next_of(stream: Any, kind: type) -> Any:
        while not isinstance(item := await asyncio.wait_for(anext(stream), 5), kind):
            pass
        return item

    try:
        for stream in (orders, fills):
            first = await asyncio.wait_for(anext(stream), 5)
            assert isinstance(first, StreamEvent) and first.state is StreamState.CONNECTED
        resting = await port.place_order(
            OrderRequest(
                "ws-rest",
                SYMBOL,
                Side.BUY,
                OrderType.LIMIT,
                Decimal("0.01"),
                Decimal("49000"),
                time_in_force=TimeInForce.GTC,
            )
        )
        seen = await next_of(orders, Order)
        assert (seen.client_order_id, seen.status) == ("ws-rest", OrderStatus.OPEN)
        await _admin(
            session, base, "POST", "/_sim/futures/prices", {"symbol": SYMBOL, "price": "48990"}
        )
        while seen.status is not OrderStatus.FILLED:
            seen = await next_of(orders, Order)
        fill = await next_of(fills, Fill)
        assert (fill.venue_order_id, fill.client_order_id) == (resting.venue_order_id, "ws-rest")
        assert (fill.quantity, fill.price) == (Decimal("0.01"), Decimal("49000"))
    finally:
        await orders.aclose()
        await fills.aclose()
        await port.close()
