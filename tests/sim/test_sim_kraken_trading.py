"""Unmodified ccxt 4.5.90 (async) trading against the Kraken emulator: markets, balances, fills,
order types, lookups and history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import ccxt.async_support as ccxt_async
import pytest
from aiohttp import web

from exchange_sim.core.clock import ManualClock
from exchange_sim.core.engine import OrderUpdate
from exchange_sim.kraken import build_kraken_app, new_kraken_state, point_kraken_at
from tests.sim.test_sim_kraken_support import (  # noqa: F401  (fixtures by name)
    KrakenAdmin,
    KrakenFactory,
    kadmin_fixture,
    kraken_fixture,
    kraken_sim_fixture,
)

D = Decimal


async def test_load_markets_reports_kraken_ids_precision_limits_and_fees(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account())
    btc, eth, ltc = ex.market("BTC/USD"), ex.market("ETH/USD"), ex.market("LTC/USD")
    assert (btc["id"], btc["info"]["altname"], btc["wsId"]) == ("XXBTZUSD", "XBTUSD", "XBT/USD")
    assert (eth["id"], ltc["id"]) == ("XETHZUSD", "XLTCZUSD")
    assert btc["precision"] == {"amount": 1e-08, "price": 0.1}
    assert eth["precision"]["price"] == 0.01 and ltc["precision"]["price"] == 0.01
    assert btc["limits"]["amount"]["min"] == 0.00005 and btc["limits"]["cost"]["min"] == 0.5
    assert eth["limits"]["amount"]["min"] == 0.002 and ltc["limits"]["amount"]["min"] == 0.05
    assert (btc["taker"], btc["maker"]) == (0.0026, 0.0016)
    assert btc["active"] and btc["spot"] and not btc["margin"]
    assert ex.currencies["BTC"]["id"] == "XXBT" and ex.currencies["USD"]["id"] == "ZUSD"


async def test_fetch_balance_shows_free_and_held_funds(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account({"USD": "10000", "BTC": "0.5"}))
    balance = await ex.fetch_balance()
    assert balance["USD"] == {"free": 10000.0, "used": 0.0, "total": 10000.0}
    assert balance["BTC"]["total"] == 0.5
    assert set(balance["info"]["result"]) == {"XXBT", "ZUSD"}
    await ex.create_order("BTC/USD", "limit", "sell", 0.2, 60000)
    balance = await ex.fetch_balance()
    assert balance["BTC"] == {"free": 0.3, "used": 0.2, "total": 0.5}


async def test_create_order_returns_the_txid_only(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account())
    order = await ex.create_order("BTC/USD", "limit", "buy", 0.01, 40000.07)
    assert order["status"] is None and order["filled"] is None and order["timestamp"] is None
    assert order["id"].startswith("O") and len(order["id"]) == 19
    assert order["info"]["descr"] == {
        "order": "buy 0.01000000 XBTUSD @ limit 40000.1"
    }  # ccxt rounded the price
    assert (order["symbol"], order["side"], order["type"], order["price"]) == (
        "BTC/USD",
        "buy",
        "limit",
        40000.1,
    )


async def test_market_buy_fills_at_best_ask_and_charges_taker_fee(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    creds = await kadmin.account({"USD": "10000"})
    ex = await kraken(creds)
    placed = await ex.create_order("BTC/USD", "market", "buy", 0.1)
    order = await ex.fetch_order(placed["id"])
    assert order["status"] == "closed" and order["filled"] == 0.1 and order["remaining"] == 0.0
    assert order["average"] == 50025.0  # level 1: 50000 * 1.0005
    assert order["fee"] == {"cost": "13.00650", "rate": None, "currency": "USD"}  # 0.26 % of 5002.5
    assert order["info"]["descr"]["order"] == "buy 0.10000000 XBTUSD @ market"
    assert (await kadmin.balances(creds["api_key"]))["USD"] == {"free": "4984.4935", "locked": "0"}
    assert (await kadmin.balances(creds["api_key"]))["BTC"] == {"free": "0.1", "locked": "0"}


async def test_market_buy_walks_the_book_and_history_consolidates_taker_fills(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    creds = await kadmin.account()
    ex = await kraken(creds)
    placed = await ex.create_order("BTC/USD", "market", "buy", 1.2)
    order = await ex.fetch_order(placed["id"])
    assert order["filled"] == 1.2 and order["average"] == 50043.75  # 0.5@50025 0.5@50050 0.2@50075
    assert len(order["trades"]) == 1  # one consolidated taker record
    [trade] = await ex.fetch_my_trades("BTC/USD")
    assert (trade["amount"], trade["price"], trade["cost"]) == (1.2, 50043.75, 60052.5)
    assert (
        trade["fee"] == {"currency": "USD", "cost": 156.1365} and trade["takerOrMaker"] == "taker"
    )
    fills = await ex.fetch_my_trades("BTC/USD", params={"consolidate_taker": False})
    assert sorted(t["price"] for t in fills) == [50025.0, 50050.0, 50075.0]
    assert [t["trade_id"] for t in await kadmin.trades(creds["api_key"])] == ["1", "2", "3"]


async def test_market_buy_by_cost_spends_at_most_the_quote_amount(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account())
    placed = await ex.create_market_buy_order_with_cost("BTC/USD", 1000)
    assert (
        placed["cost"] == 1000.0 and placed["amount"] is None
    )  # ccxt reads the viqc descr as a cost
    order = await ex.fetch_order(placed["id"])
    assert order["filled"] == 0.01999 and order["cost"] <= 1000
    assert "viqc" in order["info"]["oflags"]


async def test_limit_gtc_rests_then_fills_as_maker_after_a_price_move(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    creds = await kadmin.account({"USD": "10000"})
    ex = await kraken(creds)
    placed = await ex.create_order("BTC/USD", "limit", "buy", 0.1, 49000)
    order = await ex.fetch_order(placed["id"])
    assert order["status"] == "open" and order["filled"] == 0.0 and order["price"] == 49000.0
    assert (await ex.fetch_balance())["USD"][
        "used"
    ] == 4912.74  # 4900 plus the highest fee rate, 0.26 %
    moved = await kadmin.set_price("BTC/USD", "48900")
    assert [o["status"] for o in moved["orders"]] == ["filled"]
    order = await ex.fetch_order(placed["id"])
    assert order["status"] == "closed" and order["average"] == 49000.0
    assert order["fee"]["cost"] == "7.84000"  # maker 0.16 % of 4900
    [trade] = await ex.fetch_my_trades("BTC/USD")
    assert trade["takerOrMaker"] == "maker"
    assert (await kadmin.balances(creds["api_key"]))["USD"] == {"free": "5092.16", "locked": "0"}


async def test_ioc_limit_fills_what_crosses_and_cancels_the_rest(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    creds = await kadmin.account()
    ex = await kraken(creds)
    placed = await ex.create_order("BTC/USD", "limit", "buy", 1, 50030, {"timeInForce": "IOC"})
    order = await ex.fetch_order(placed["id"])
    assert order["status"] == "canceled" and order["filled"] == 0.5 and order["remaining"] == 0.5
    assert order["info"]["reason"] == "Immediate or cancel"
    assert (await kadmin.balances(creds["api_key"]))["USD"]["locked"] == "0"


async def test_post_only_rests_and_is_reported_as_post_only(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account())
    placed = await ex.create_order("ETH/USD", "limit", "buy", 1, 2900, {"postOnly": True})
    order = await ex.fetch_order(placed["id"])
    assert order["status"] == "open" and order["postOnly"] is True


async def test_stop_loss_market_sell_triggers_when_the_price_falls(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account())
    placed = await ex.create_order("BTC/USD", "market", "sell", 0.1, None, {"stopLossPrice": 49000})
    assert placed["info"]["descr"]["order"] == "sell 0.10000000 XBTUSD @ stop loss 49000.0"
    assert placed["stopLossPrice"] == 49000.0
    order = await ex.fetch_order(placed["id"])
    assert order["status"] == "open" and order["info"]["descr"]["ordertype"] == "stop-loss"
    await kadmin.set_price("BTC/USD", "49500")
    assert (await ex.fetch_order(placed["id"]))["status"] == "open"
    await kadmin.set_price("BTC/USD", "48900")
    order = await ex.fetch_order(placed["id"])
    assert order["status"] == "closed" and order["filled"] == 0.1
    assert order["average"] == 48875.5  # best bid at 48900 * 0.9995, to the tick


async def test_stop_loss_limit_descr_and_trigger(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account())
    placed = await ex.create_order("BTC/USD", "limit", "sell", 0.1, 48800, {"stopLossPrice": 49000})
    assert (
        placed["info"]["descr"]["order"]
        == "sell 0.10000000 XBTUSD @ stop loss 49000.0 -> limit 48800.0"
    )
    assert (placed["triggerPrice"], placed["price"], placed["type"]) == (49000.0, 48800.0, "limit")
    order = await ex.fetch_order(placed["id"])
    assert (order["stopLossPrice"], order["price"]) == (49000.0, 48800.0)
    await kadmin.set_price("BTC/USD", "48900")
    order = await ex.fetch_order(placed["id"])
    assert order["status"] == "closed" and order["average"] == 48875.5


async def test_fetch_order_with_trades_lists_its_trade_ids(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account())
    placed = await ex.create_order(
        "ETH/USD", "market", "sell", 2, None, {"clientOrderId": "sell-eth-1"}
    )
    order = await ex.fetch_order(placed["id"])
    assert order["clientOrderId"] == "sell-eth-1" and order["side"] == "sell"
    [trade] = await ex.fetch_my_trades("ETH/USD")
    assert [t["id"] for t in order["trades"]] == [trade["id"]] and trade["order"] == placed["id"]


async def test_order_lookup_by_client_id_the_way_a_broker_does_after_a_timeout(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account())
    resting = await ex.create_order(
        "BTC/USD", "limit", "buy", 0.01, 45000, {"clientOrderId": "copy-1-a"}
    )
    filled = await ex.create_order(
        "BTC/USD", "market", "buy", 0.01, None, {"clientOrderId": "copy-1-b"}
    )
    await ex.create_order("BTC/USD", "limit", "buy", 0.01, 44000, {"clientOrderId": "other"})

    async def find(client_id: str) -> list[dict[str, object]]:
        open_ = await ex.fetch_open_orders(params={"clientOrderId": client_id})
        closed = await ex.fetch_closed_orders(params={"clientOrderId": client_id})
        return [o for o in open_ + closed if o["clientOrderId"] == client_id]  # filter client-side

    assert [o["id"] for o in await find("copy-1-a")] == [resting["id"]]
    assert [(o["id"], o["status"]) for o in await find("copy-1-b")] == [(filled["id"], "closed")]
    assert await find("never-sent") == []
    # The emulator does not filter OpenOrders by cl_ord_id (unverified on Kraken): clients must.
    assert len(await ex.fetch_open_orders(params={"clientOrderId": "copy-1-a"})) == 2
    # ccxt's fetch_order sends clientOrderId as userref, which Kraken only takes as an integer.
    with pytest.raises(ccxt_async.ExchangeError, match="Invalid arguments:userref"):
        await ex.fetch_order(resting["id"], params={"clientOrderId": "copy-1-a"})


async def test_userref_tags_orders_and_filters_queries(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account())
    tagged = await ex.create_order("BTC/USD", "limit", "buy", 0.01, 45000, {"userref": 42})
    await ex.create_order("BTC/USD", "limit", "buy", 0.01, 45000)
    [order] = await ex.fetch_open_orders(params={"userref": 42})
    assert order["id"] == tagged["id"] and order["clientOrderId"] == "42"
    assert (await ex.fetch_order(tagged["id"], params={"clientOrderId": "42"}))["id"] == tagged[
        "id"
    ]
    with pytest.raises(ccxt_async.OrderNotFound):  # known txid, other userref: empty result
        await ex.fetch_order(tagged["id"], params={"clientOrderId": "7"})


async def test_cancel_by_txid_and_by_client_id(kadmin: KrakenAdmin, kraken: KrakenFactory) -> None:
    creds = await kadmin.account()
    ex = await kraken(creds)
    first = await ex.create_order("BTC/USD", "limit", "buy", 0.01, 45000)
    second = await ex.create_order(
        "BTC/USD", "limit", "buy", 0.01, 45000, {"clientOrderId": "cancel-me"}
    )
    assert (await ex.cancel_order(first["id"]))["info"] == {"error": [], "result": {"count": 1}}
    await ex.cancel_order("", "BTC/USD", {"clientOrderId": "cancel-me"})
    for placed in (first, second):
        order = await ex.fetch_order(placed["id"])
        assert order["status"] == "canceled" and order["info"]["reason"] == "User requested"
    assert (await kadmin.balances(creds["api_key"]))["USD"]["locked"] == "0"
    with pytest.raises(ccxt_async.OrderNotFound):
        await ex.cancel_order(first["id"])


async def test_open_and_closed_orders(kadmin: KrakenAdmin, kraken: KrakenFactory) -> None:
    ex = await kraken(await kadmin.account())
    resting = await ex.create_order("ETH/USD", "limit", "buy", 1, 2800)
    market = await ex.create_order("LTC/USD", "market", "buy", 1)
    canceled = await ex.create_order("BTC/USD", "limit", "buy", 0.01, 45000)
    await ex.cancel_order(canceled["id"])
    assert [o["id"] for o in await ex.fetch_open_orders()] == [resting["id"]]
    assert await ex.fetch_open_orders("BTC/USD") == []
    closed = await ex.fetch_closed_orders()
    assert {(o["id"], o["status"]) for o in closed} == {
        (market["id"], "closed"),
        (canceled["id"], "canceled"),
    }
    assert [o["symbol"] for o in await ex.fetch_closed_orders("LTC/USD")] == ["LTC/USD"]
    raw = await ex.private_post_closedorders({"ofs": 1})
    assert raw["result"]["count"] == 2 and len(raw["result"]["closed"]) == 1


async def test_public_ticker_order_book_and_time(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account())
    await ex.create_order("BTC/USD", "market", "buy", 0.1)
    ticker = await ex.fetch_ticker("BTC/USD")
    assert (ticker["bid"], ticker["ask"], ticker["last"]) == (49975.0, 50025.0, 50000.0)
    assert ticker["baseVolume"] == 0.1
    book = await ex.fetch_order_book("ETH/USD", 3)
    assert [level[0] for level in book["asks"]] == [3001.5, 3003.0, 3004.5]
    assert [level[:2] for level in book["bids"]][:1] == [[2998.5, 5.0]]
    assert abs(await ex.fetch_time() - ex.milliseconds()) < 5000


# ---------------------------------------------------------------------- with a manual clock


@pytest.fixture
async def manual() -> AsyncIterator[tuple[ManualClock, KrakenAdmin]]:
    """A Kraken emulator on a manual clock (for time filters and candles) and its admin client."""
    clock = ManualClock()
    runner = web.AppRunner(build_kraken_app(new_kraken_state(clock=clock)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    async with aiohttp.ClientSession() as session:
        yield clock, KrakenAdmin(f"http://127.0.0.1:{runner.addresses[0][1]}", session)
    await runner.cleanup()


async def _manual_client(admin: KrakenAdmin) -> ccxt_async.kraken:
    creds = await admin.account()
    ex = ccxt_async.kraken(
        {"apiKey": creds["api_key"], "secret": creds["api_secret"], "enableRateLimit": False}
    )
    point_kraken_at(ex, admin.base_url)
    await ex.load_markets()
    return ex


async def test_fetch_my_trades_since_and_paging(manual: tuple[ManualClock, KrakenAdmin]) -> None:
    clock, admin = manual
    ex = await _manual_client(admin)
    try:
        t0 = clock.now_ms()
        first = await ex.create_order("BTC/USD", "market", "buy", 0.01)
        clock.advance(10_000)
        second = await ex.create_order("BTC/USD", "market", "sell", 0.01)
        clock.advance(10_000)
        third = await ex.create_order("ETH/USD", "market", "buy", 0.1)
        assert [t["order"] for t in await ex.fetch_my_trades(since=t0 + 5_000)] == [
            second["id"],
            third["id"],
        ]
        assert [t["order"] for t in await ex.fetch_my_trades("ETH/USD", since=t0)] == [third["id"]]
        assert [t["order"] for t in await ex.fetch_my_trades()] == [
            first["id"],
            second["id"],
            third["id"],
        ]
        page = await ex.private_post_tradeshistory({"ofs": 2})
        assert page["result"]["count"] == 3 and [
            t["ordertxid"] for t in page["result"]["trades"].values()
        ] == [first["id"]]  # newest first
        until = await ex.fetch_my_trades(params={"until": t0 + 15_000})
        assert [t["order"] for t in until] == [first["id"], second["id"]]
    finally:
        await ex.close()


async def test_a_book_walk_is_one_taker_record_even_when_the_clock_ticks_between_fills() -> None:
    """The cause of an old flake: fills were grouped by timestamp, so a millisecond tick between
    two level fills split one execution into two records. Here the clock moves on every fill."""
    clock = ManualClock()
    state = new_kraken_state(clock=clock)
    state.engine.subscribe(
        lambda event: clock.advance(1) if isinstance(event, OrderUpdate) and event.trade else None
    )
    runner = web.AppRunner(build_kraken_app(state), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with aiohttp.ClientSession() as session:
            admin = KrakenAdmin(f"http://127.0.0.1:{runner.addresses[0][1]}", session)
            ex = await _manual_client(admin)
            try:
                placed = await ex.create_order("BTC/USD", "market", "buy", 1.2)
                times = {t.time_ms for t in state.engine.all_trades("BTC/USD")}
                assert len(times) == 3  # the clock did tick between the three level fills
                order = await ex.fetch_order(placed["id"])
                assert len(order["trades"]) == 1  # still one consolidated taker record
                [trade] = await ex.fetch_my_trades("BTC/USD")
                assert (trade["amount"], trade["price"]) == (1.2, 50043.75)
                fills = await ex.fetch_my_trades("BTC/USD", params={"consolidate_taker": False})
                assert len(fills) == 3
            finally:
                await ex.close()
    finally:
        await runner.cleanup()


async def test_fetch_ohlcv_builds_candles_from_price_history(
    manual: tuple[ManualClock, KrakenAdmin],
) -> None:
    clock, admin = manual
    ex = await _manual_client(admin)
    try:
        start = clock.now_ms()
        await admin.set_price("BTC/USD", "50500")
        clock.advance(30_000)
        await admin.set_price("BTC/USD", "49500")
        clock.advance(60_000)
        await admin.set_price("BTC/USD", "51000")
        candles = await ex.fetch_ohlcv("BTC/USD", "1m", since=start)
        assert [c[0] for c in candles] == [start, start + 60_000]
        assert candles[0][1:5] == [50000.0, 50500.0, 49500.0, 49500.0]
        assert candles[1][1:5] == [49500.0, 51000.0, 49500.0, 51000.0]
    finally:
        await ex.close()
