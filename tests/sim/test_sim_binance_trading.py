"""Unmodified ccxt 4.5.90 (async) trading against the Binance emulator: fills, books, balances."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tests.sim.sim_helpers import Admin, ExchangeFactory

D = Decimal


async def test_load_markets_reports_precision_and_limits(
    admin: Admin, binance: ExchangeFactory
) -> None:
    ex = await binance(await admin.account())
    btc, eth, bnb = ex.market("BTC/USDT"), ex.market("ETH/USDT"), ex.market("BNB/USDT")
    assert btc["id"] == "BTCUSDT" and btc["spot"] and btc["active"]
    assert btc["precision"]["amount"] == 0.00001 and btc["precision"]["price"] == 0.01
    assert eth["precision"]["amount"] == 0.0001
    assert bnb["precision"]["price"] == 0.1 and bnb["precision"]["amount"] == 0.001
    assert btc["limits"]["amount"] == {"min": 0.00001, "max": 9000.0}
    assert btc["limits"]["cost"]["min"] == 5.0
    assert btc["limits"]["market"]["max"] == 100.0


async def test_fetch_balance_shows_the_funded_assets(
    admin: Admin, binance: ExchangeFactory
) -> None:
    ex = await binance(await admin.account({"USDT": "10000", "BTC": "0.5"}))
    balance = await ex.fetch_balance()
    assert balance["USDT"] == {"free": 10000.0, "used": 0.0, "total": 10000.0}
    assert balance["BTC"]["free"] == 0.5
    assert balance["ETH"]["total"] == 0.0  # every listed asset is reported, as on Binance


async def test_market_buy_fills_at_best_ask_and_charges_quote_fee(
    admin: Admin, binance: ExchangeFactory
) -> None:
    creds = await admin.account({"USDT": "10000"})
    ex = await binance(creds)
    order = await ex.create_order("BTC/USDT", "market", "buy", 0.1)
    assert order["status"] == "closed" and order["filled"] == 0.1
    assert order["average"] == 50025.0  # level 1: 50000 * 1.0005
    assert order["fee"] == {"currency": "USDT", "cost": 5.0025}
    balances = await admin.balances(creds["api_key"])
    # 10000 - 0.1 * 50025 - 0.1% fee, exactly
    assert balances["USDT"] == {"free": "4992.4975", "locked": "0"}
    assert balances["BTC"] == {"free": "0.1", "locked": "0"}


async def test_market_buy_walks_the_book(admin: Admin, binance: ExchangeFactory) -> None:
    creds = await admin.account()
    ex = await binance(creds)
    order = await ex.create_order("BTC/USDT", "market", "buy", 1.2)
    assert order["status"] == "closed" and order["filled"] == 1.2
    assert [t["price"] for t in order["trades"]] == [50025.0, 50050.0, 50075.0]
    assert order["average"] > 50025.0
    trades = await admin.trades(creds["api_key"])
    assert sum(D(t["quote_quantity"]) for t in trades) == D("60052.5")


async def test_market_order_larger_than_the_book_fills_what_it_can(
    admin: Admin, binance: ExchangeFactory
) -> None:
    ex = await binance(await admin.account())
    order = await ex.create_order("BTC/USDT", "market", "buy", 6)  # the book holds 10 x 0.5
    assert order["status"] == "expired" and order["filled"] == 5.0


async def test_market_buy_by_cost_spends_at_most_the_quote_amount(
    admin: Admin, binance: ExchangeFactory
) -> None:
    ex = await binance(await admin.account())
    order = await ex.create_order("BTC/USDT", "market", "buy", 0.1, 50000)  # quoteOrderQty=5000
    assert order["status"] == "closed"
    assert 0 < order["cost"] <= 5000 and order["filled"] == 0.09995


async def test_ioc_limit_fills_what_crosses_and_expires_the_rest(
    admin: Admin, binance: ExchangeFactory
) -> None:
    creds = await admin.account()
    ex = await binance(creds)
    order = await ex.create_order("BTC/USDT", "limit", "buy", 1, 50030, {"timeInForce": "IOC"})
    assert order["status"] == "expired" and order["filled"] == 0.5 and order["remaining"] == 0.5
    assert (await admin.balances(creds["api_key"]))["USDT"]["locked"] == "0"


async def test_fok_that_cannot_fill_expires_with_nothing_filled(
    admin: Admin, binance: ExchangeFactory
) -> None:
    creds = await admin.account()
    ex = await binance(creds)
    order = await ex.create_order("BTC/USDT", "limit", "buy", 1, 50030, {"timeInForce": "FOK"})
    assert order["status"] == "expired" and order["filled"] == 0.0
    assert await admin.trades(creds["api_key"]) == []
    assert (await admin.balances(creds["api_key"]))["USDT"] == {"free": "1000000", "locked": "0"}


async def test_gtc_limit_rests_then_fills_as_maker_after_a_price_move(
    admin: Admin, binance: ExchangeFactory
) -> None:
    creds = await admin.account({"USDT": "10000"})
    ex = await binance(creds)
    order = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 49000)
    assert order["status"] == "open" and order["filled"] == 0.0
    assert (await admin.balances(creds["api_key"]))["USDT"] == {
        "free": "5095.1",
        "locked": "4904.9",
    }
    moved = await admin.set_price("BTC/USDT", "48990")
    assert [o["status"] for o in moved["orders"]] == ["filled"]
    fetched = await ex.fetch_order(order["id"], "BTC/USDT")
    assert (
        fetched["status"] == "closed" and fetched["filled"] == 0.1 and fetched["average"] == 49000.0
    )
    (trade,) = await ex.fetch_my_trades("BTC/USDT")
    assert trade["takerOrMaker"] == "maker" and trade["fee"]["cost"] == 4.9
    assert (await admin.balances(creds["api_key"]))["USDT"] == {"free": "5095.1", "locked": "0"}


async def test_stop_limit_sell_triggers_when_the_price_falls(
    admin: Admin, binance: ExchangeFactory
) -> None:
    creds = await admin.account({"BTC": "1"})
    ex = await binance(creds)
    order = await ex.create_order("BTC/USDT", "limit", "sell", 0.1, 48900, {"stopPrice": 49000})
    assert order["info"]["type"] == "STOP_LOSS_LIMIT"
    assert (await ex.fetch_order(order["id"], "BTC/USDT"))["status"] == "open"
    await admin.set_price("BTC/USDT", "49500")  # not yet
    assert (await ex.fetch_order(order["id"], "BTC/USDT"))["status"] == "open"
    await admin.set_price("BTC/USDT", "48950")  # through the stop: sells into the bids
    fetched = await ex.fetch_order(order["id"], "BTC/USDT")
    assert fetched["status"] == "closed" and fetched["filled"] == 0.1
    (trade,) = await ex.fetch_my_trades("BTC/USDT")
    assert trade["price"] == 48925.52 and trade["side"] == "sell"  # 48950 * 0.9995 down to the tick


async def test_stop_market_buy_triggers_when_the_price_rises(
    admin: Admin, binance: ExchangeFactory
) -> None:
    creds = await admin.account({"USDT": "10000"})
    ex = await binance(creds)
    order = await ex.create_order("BTC/USDT", "market", "buy", 0.01, None, {"stopPrice": 51000})
    assert order["info"]["type"] == "STOP_LOSS"
    await admin.set_price("BTC/USDT", "51000")
    fetched = await ex.fetch_order(order["id"], "BTC/USDT")
    assert fetched["status"] == "closed" and fetched["average"] == 51025.5


async def test_fetch_order_by_client_order_id(admin: Admin, binance: ExchangeFactory) -> None:
    ex = await binance(await admin.account())
    placed = await ex.create_order(
        "ETH/USDT", "limit", "buy", 1, 2900, {"clientOrderId": "copy-0001"}
    )
    fetched = await ex.fetch_order(None, "ETH/USDT", {"clientOrderId": "copy-0001"})
    assert fetched["id"] == placed["id"] and fetched["clientOrderId"] == "copy-0001"
    assert fetched["status"] == "open" and fetched["price"] == 2900.0


async def test_cancel_releases_the_locked_funds(admin: Admin, binance: ExchangeFactory) -> None:
    creds = await admin.account({"USDT": "10000"})
    ex = await binance(creds)
    order = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 49000)
    canceled = await ex.cancel_order(order["id"], "BTC/USDT")
    assert canceled["status"] == "canceled"
    assert canceled["info"]["origClientOrderId"] == order["clientOrderId"]
    assert (await admin.balances(creds["api_key"]))["USDT"] == {"free": "10000", "locked": "0"}
    assert (await ex.fetch_order(order["id"], "BTC/USDT"))["status"] == "canceled"


async def test_fetch_open_orders_lists_only_open_ones(
    admin: Admin, binance: ExchangeFactory
) -> None:
    ex = await binance(await admin.account())
    resting = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 49000)
    await ex.create_order("BTC/USDT", "market", "buy", 0.1)
    other = await ex.create_order("ETH/USDT", "limit", "sell", 1, 3100)
    assert [o["id"] for o in await ex.fetch_open_orders("BTC/USDT")] == [resting["id"]]
    assert [o["id"] for o in await ex.fetch_open_orders("ETH/USDT")] == [other["id"]]


async def test_fetch_my_trades_since_returns_later_trades_by_increasing_id(
    admin: Admin, binance: ExchangeFactory
) -> None:
    ex = await binance(await admin.account())
    first = await ex.create_order("BTC/USDT", "market", "buy", 0.6)  # two fills
    await asyncio.sleep(0.01)
    second = await ex.create_order("BTC/USDT", "market", "sell", 0.2)
    trades = await ex.fetch_my_trades("BTC/USDT")
    assert [int(t["id"]) for t in trades] == sorted(int(t["id"]) for t in trades) and len(
        trades
    ) == 3
    later = await ex.fetch_my_trades("BTC/USDT", since=second["timestamp"])
    assert [t["order"] for t in later] == [second["id"]]
    assert {t["order"] for t in trades} == {first["id"], second["id"]}


async def test_fetch_orders_returns_every_state(admin: Admin, binance: ExchangeFactory) -> None:
    ex = await binance(await admin.account())
    filled = await ex.create_order("BTC/USDT", "market", "buy", 0.1)
    await asyncio.sleep(0.01)  # distinct millisecond timestamps for the `since` check
    resting = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 49000)
    canceled = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 48000)
    await ex.cancel_order(canceled["id"], "BTC/USDT")
    orders = await ex.fetch_orders("BTC/USDT")
    assert [(o["id"], o["status"]) for o in orders] == [
        (filled["id"], "closed"),
        (resting["id"], "open"),
        (canceled["id"], "canceled"),
    ]
    since = await ex.fetch_orders("BTC/USDT", since=resting["timestamp"])
    assert [o["id"] for o in since] == [resting["id"], canceled["id"]]


async def test_duplicate_client_order_id_is_rejected_while_open_and_accepted_after_fill(
    admin: Admin, binance: ExchangeFactory
) -> None:
    import ccxt

    creds = await admin.account()
    ex = await binance(creds)
    first = await ex.create_order(
        "BTC/USDT", "limit", "buy", 0.1, 49000, {"clientOrderId": "dup-1"}
    )
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 49000, {"clientOrderId": "dup-1"})
    await admin.set_price("BTC/USDT", "48000")  # the first one fills
    again = await ex.create_order(
        "BTC/USDT", "market", "buy", 0.1, None, {"clientOrderId": "dup-1"}
    )
    assert again["id"] != first["id"] and again["status"] == "closed"
    assert [o["client_order_id"] for o in await admin.orders(creds["api_key"])] == [
        "dup-1",
        "dup-1",
    ]
    # a lookup by client order id finds the most recent order using it
    assert (await ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "dup-1"}))["id"] == again["id"]


async def test_client_order_id_of_a_canceled_order_can_be_reused(
    admin: Admin, binance: ExchangeFactory
) -> None:
    ex = await binance(await admin.account())
    first = await ex.create_order(
        "BTC/USDT", "limit", "buy", 0.1, 49000, {"clientOrderId": "dup-2"}
    )
    await ex.cancel_order(first["id"], "BTC/USDT")
    again = await ex.create_order(
        "BTC/USDT", "limit", "buy", 0.1, 49000, {"clientOrderId": "dup-2"}
    )
    assert again["status"] == "open"


async def test_post_only_that_would_take_is_rejected(
    admin: Admin, binance: ExchangeFactory
) -> None:
    import ccxt

    ex = await binance(await admin.account())
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 50100, {"postOnly": True})
    resting = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 49900, {"postOnly": True})
    assert resting["status"] == "open" and resting["postOnly"]


async def test_stop_that_would_trigger_at_once_is_rejected(
    admin: Admin, binance: ExchangeFactory
) -> None:
    import ccxt

    ex = await binance(await admin.account())
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        await ex.create_order("BTC/USDT", "limit", "sell", 0.1, 50900, {"stopPrice": 51000})


async def test_market_sell_pays_the_fee_in_quote(admin: Admin, binance: ExchangeFactory) -> None:
    creds = await admin.account({"BTC": "1"})
    ex = await binance(creds)
    order = await ex.create_order("BTC/USDT", "market", "sell", 0.2)
    assert order["average"] == 49975.0
    # 0.2 * 49975 = 9995, minus 0.1% = 9.995
    assert (await admin.balances(creds["api_key"]))["USDT"]["free"] == "9985.005"


async def test_ohlcv_ticker_and_order_book_come_from_the_mark_price(
    admin: Admin, binance: ExchangeFactory
) -> None:
    ex = await binance(await admin.account())
    await admin.set_price("ETH/USDT", "3100")
    await admin.set_price("ETH/USDT", "2950")
    ticker = await ex.fetch_ticker("ETH/USDT")
    assert ticker["last"] == 2950.0 and ticker["high"] == 3100.0 and ticker["low"] == 2950.0
    assert ticker["bid"] == 2948.52 and ticker["ask"] == 2951.48
    book = await ex.fetch_order_book("ETH/USDT", 5)
    assert book["asks"][0] == [2951.48, 5.0] and len(book["bids"]) == 5
    (candle,) = await ex.fetch_ohlcv("ETH/USDT", "1d", limit=1)
    assert candle[2] == 3100.0 and candle[3] == 2950.0 and candle[4] == 2950.0
