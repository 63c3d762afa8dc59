"""Unmodified ccxt 4.5.90 (async) trading against the Coinbase emulator: markets, balances, the
order types ccxt sends for spot, lookups, cancels, fills and market data."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import ccxt
import pytest

from tests.sim.sim_helpers import Admin, ExchangeFactory
from tests.sim.test_sim_coinbase_support import new_account

pytest_plugins = ["tests.sim.test_sim_coinbase_support"]  # the cb_* / coinbase fixtures

D = Decimal


async def test_load_markets_reports_coinbase_increments_minimums_and_fee_tier(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    ex = await coinbase(await new_account(cb_admin))
    assert set(ex.markets) == {"BTC/USD", "ETH/USD", "LTC/USD"}
    btc = ex.market("BTC/USD")
    assert btc["id"] == "BTC-USD" and btc["spot"] and btc["active"]
    assert btc["precision"] == {"amount": 1e-08, "price": 0.01}
    assert btc["limits"]["amount"] == {"min": 1e-08, "max": 3400.0}
    assert btc["limits"]["cost"] == {"min": 1.0, "max": 150000000.0}
    assert (btc["maker"], btc["taker"]) == (0.006, 0.012)  # from transaction_summary
    assert {"BTC", "ETH", "LTC", "USD"} <= set(ex.currencies)
    assert ex.currencies["USD"]["type"] == "fiat" and ex.currencies["BTC"]["type"] == "crypto"


async def test_fetch_balance_v2_reports_totals_and_v3_splits_available_and_hold(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    ex = await coinbase(await new_account(cb_admin, {"USD": "10000", "BTC": "0.5"}))
    await ex.create_order("BTC/USD", "limit", "buy", 0.1, 40000)  # holds 4000 * 1.012
    v2 = await ex.fetch_balance()  # ccxt's default: /v2/accounts, free = total
    assert v2["USD"] == {"free": 10000.0, "used": 0.0, "total": 10000.0}
    assert v2["BTC"]["total"] == 0.5 and v2["ETH"]["total"] == 0.0
    v3 = await ex.fetch_balance({"v3": True})
    assert v3["USD"] == {"free": 5952.0, "used": 4048.0, "total": 10000.0}
    assert v3["BTC"] == {"free": 0.5, "used": 0.0, "total": 0.5}


async def test_market_buy_by_price_spends_the_quote_size_fee_included(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    creds = await new_account(cb_admin, {"USD": "10000"})
    ex = await coinbase(creds)
    with pytest.raises(
        ccxt.InvalidOrder, match="requires a price"
    ):  # ccxt's own check, nothing sent
        await ex.create_order("BTC/USD", "market", "buy", 0.1)
    placed = await ex.create_order("BTC/USD", "market", "buy", 0.1, 50000)  # quote_size 5000.00
    assert placed["status"] is None and placed["id"] and placed["clientOrderId"].startswith("ccxt-")
    order = await ex.fetch_order(placed["id"], "BTC/USD")
    assert order["status"] == "closed" and order["average"] == 50025.0
    assert order["info"]["order_configuration"] == {"market_market_ioc": {"quote_size": "5000"}}
    assert order["info"]["size_inclusive_of_fees"] is True
    spent = D(order["info"]["total_value_after_fees"])
    assert D("5000") - D("50025") * D("0.00000001") * D("1.012") < spent <= D("5000")
    assert D(order["info"]["total_fees"]) == (
        D(order["info"]["filled_value"]) * D("0.012")
    ).quantize(D("1e-8"), "ROUND_DOWN")
    balances = await cb_admin.balances(creds["api_key"])
    assert D(balances["USD"]["free"]) == D("10000") - spent and balances["USD"]["locked"] == "0"
    assert balances["BTC"]["free"] == order["info"]["filled_size"]


async def test_market_buy_with_cost_and_market_sell_walk_the_book(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    creds = await new_account(cb_admin)
    ex = await coinbase(creds)
    by_cost = await ex.create_market_buy_order_with_cost("ETH/USD", 100)
    assert (await ex.fetch_order(by_cost["id"]))["info"]["order_configuration"] == {
        "market_market_ioc": {"quote_size": "100"}
    }
    sold = await ex.create_order("BTC/USD", "market", "sell", 1.2)
    trades = await ex.fetch_my_trades("BTC/USD")
    assert [(t["price"], t["amount"]) for t in trades] == [
        (49975.0, 0.5),
        (49950.0, 0.5),
        (49925.0, 0.2),
    ]
    assert {t["order"] for t in trades} == {sold["id"]} and {t["takerOrMaker"] for t in trades} == {
        "taker"
    }
    assert trades[0]["fee"] == {
        "cost": pytest.approx(299.85),
        "currency": "USD",
    }  # 1.2 % of 24987.5
    order = await ex.fetch_order(sold["id"], "BTC/USD")
    assert order["status"] == "closed" and order["filled"] == 1.2 and order["amount"] == 1.2


async def test_limit_gtc_rests_then_fills_as_maker_after_a_price_move(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    creds = await new_account(cb_admin)
    ex = await coinbase(creds)
    placed = await ex.create_order("BTC/USD", "limit", "buy", 0.1, 49000)
    resting = await ex.fetch_order(placed["id"], "BTC/USD")
    assert (resting["status"], resting["timeInForce"], resting["price"], resting["amount"]) == (
        "open",
        "GTC",
        49000.0,
        0.1,
    )
    moved = await cb_admin.set_price("BTC/USD", "48990")
    assert [o["status"] for o in moved["orders"]] == ["filled"]
    filled = await ex.fetch_order(placed["id"], "BTC/USD")
    assert filled["status"] == "closed" and filled["average"] == 49000.0
    assert filled["info"]["total_fees"] == "29.4"  # 0.6 % maker of 4900
    (trade,) = await ex.fetch_my_trades("BTC/USD")
    assert trade["takerOrMaker"] == "maker" and trade["order"] == placed["id"]


async def test_ioc_limit_fills_what_crosses_and_cancels_the_rest(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    creds = await new_account(cb_admin)
    ex = await coinbase(creds)
    placed = await ex.create_order("BTC/USD", "limit", "buy", 1, 50030, {"timeInForce": "IOC"})
    order = await ex.fetch_order(placed["id"], "BTC/USD")
    assert order["info"]["order_configuration"] == {
        "sor_limit_ioc": {"base_size": "1", "limit_price": "50030"}
    }
    assert (order["status"], order["timeInForce"], order["filled"]) == ("canceled", "IOC", 0.5)
    assert order["info"]["status"] == "CANCELLED"
    assert (await cb_admin.balances(creds["api_key"]))["USD"]["locked"] == "0"


async def test_fok_that_cannot_fill_is_canceled_unfilled_and_one_that_can_fills(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    creds = await new_account(cb_admin)
    ex = await coinbase(creds)
    killed = await ex.create_order(
        "BTC/USD", "limit", "buy", 6, 60000, {"timeInForce": "FOK"}
    )  # book holds 5
    order = await ex.fetch_order(killed["id"], "BTC/USD")
    assert (order["status"], order["timeInForce"], order["filled"]) == ("canceled", "FOK", 0.0)
    assert order["amount"] is None and order["price"] is None  # ccxt does not read limit_limit_fok
    assert await ex.fetch_my_trades("BTC/USD") == []
    done = await ex.create_order("BTC/USD", "limit", "buy", 0.7, 50100, {"timeInForce": "FOK"})
    assert (await ex.fetch_order(done["id"], "BTC/USD"))["status"] == "closed"
    assert (await cb_admin.balances(creds["api_key"]))["USD"]["locked"] == "0"


async def test_stop_limit_waits_for_its_trigger_then_fills(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    creds = await new_account(cb_admin)
    ex = await coinbase(creds)
    placed = await ex.create_order("BTC/USD", "limit", "sell", 0.1, 48000, {"stopLossPrice": 49000})
    pending = await ex.fetch_order(placed["id"], "BTC/USD")
    assert (
        pending["info"]["order_configuration"]["stop_limit_stop_limit_gtc"]["stop_direction"]
        == "STOP_DIRECTION_STOP_DOWN"
    )
    assert (pending["status"], pending["type"], pending["triggerPrice"]) == (
        "open",
        "limit",
        49000.0,
    )
    assert pending["info"]["trigger_status"] == "STOP_PENDING"
    assert (await cb_admin.set_price("BTC/USD", "49500"))["orders"] == []
    touched = await cb_admin.set_price("BTC/USD", "49000")
    assert [o["status"] for o in touched["orders"]] == ["filled"]
    done = await ex.fetch_order(placed["id"], "BTC/USD")
    assert done["status"] == "closed" and done["average"] == 48975.5  # best bid under 49000
    assert done["info"]["trigger_status"] == "STOP_TRIGGERED"
    # ccxt's plain triggerPrice on a sell means STOP_UP (doc §3.4): it triggers on a rise
    rising = await ex.create_order("BTC/USD", "limit", "sell", 0.1, 50900, {"triggerPrice": 51000})
    assert (await cb_admin.set_price("BTC/USD", "51000"))["orders"][0]["status"] == "filled"
    assert (await ex.fetch_order(rising["id"], "BTC/USD"))["status"] == "closed"


async def test_orders_are_found_by_id_and_by_native_client_order_id(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    ex = await coinbase(await new_account(cb_admin))
    placed = await ex.create_order(
        "ETH/USD", "limit", "buy", 1, 2900, {"client_order_id": "copy-7f3a"}
    )
    assert placed["clientOrderId"] == "copy-7f3a"
    by_id = await ex.fetch_order(placed["id"], "ETH/USD")
    assert by_id["clientOrderId"] == "copy-7f3a" and by_id["symbol"] == "ETH/USD"
    # after a timeout the broker knows only its own id: the (deprecated) query parameter finds it
    found = await ex.fetch_order("copy-7f3a", "ETH/USD", {"client_order_id": "copy-7f3a"})
    assert found["id"] == placed["id"]
    listed = await ex.fetch_orders("ETH/USD")
    assert [o["id"] for o in listed if o["clientOrderId"] == "copy-7f3a"] == [placed["id"]]
    # ccxt drops the unified clientOrderId for coinbase: only the native parameter reaches the venue
    ignored = await ex.create_order(
        "ETH/USD", "limit", "buy", 1, 2900, {"clientOrderId": "unified-id"}
    )
    assert ignored["clientOrderId"].startswith("ccxt-")


async def test_cancel_releases_the_hold_and_open_orders_follow(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    creds = await new_account(cb_admin, {"USD": "100000"})
    ex = await coinbase(creds)
    first = await ex.create_order("BTC/USD", "limit", "buy", 0.1, 45000)
    second = await ex.create_order("ETH/USD", "limit", "buy", 1, 2500)
    assert {o["id"] for o in await ex.fetch_open_orders()} == {first["id"], second["id"]}
    assert [o["id"] for o in await ex.fetch_open_orders("BTC/USD")] == [first["id"]]
    canceled = await ex.cancel_order(first["id"], "BTC/USD")
    assert canceled["id"] == first["id"] and canceled["info"]["success"] is True
    assert [o["id"] for o in await ex.fetch_open_orders()] == [second["id"]]
    assert (await ex.fetch_order(first["id"]))["status"] == "canceled"
    assert (await cb_admin.balances(creds["api_key"]))["USD"][
        "locked"
    ] == "2530"  # only ETH's 2500 * 1.012
    assert [o["status"] for o in await cb_admin.orders(creds["api_key"])] == ["canceled", "new"]


async def test_fetch_my_trades_since_returns_only_later_fills(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    ex = await coinbase(await new_account(cb_admin))
    first = await ex.create_order("LTC/USD", "market", "sell", 1)
    (early,) = await ex.fetch_my_trades("LTC/USD")
    await asyncio.sleep(0.005)
    second = await ex.create_order("LTC/USD", "market", "sell", 2)
    later = await ex.fetch_my_trades("LTC/USD", early["timestamp"] + 1)
    assert [t["order"] for t in later] == [second["id"]] and early["order"] == first["id"]
    assert len(await ex.fetch_my_trades("LTC/USD")) == 2
    assert len(await ex.fetch_my_trades("BTC/USD")) == 0


async def test_orders_list_pages_with_a_cursor(cb_admin: Admin, coinbase: ExchangeFactory) -> None:
    ex = await coinbase(await new_account(cb_admin))
    ids = [(await ex.create_order("LTC/USD", "limit", "buy", 1, 90 + i))["id"] for i in range(3)]
    page = await ex.v3PrivateGetBrokerageOrdersHistoricalBatch({"limit": 2})
    assert [o["order_id"] for o in page["orders"]] == ids[:0:-1] and page["has_next"] is True
    rest = await ex.v3PrivateGetBrokerageOrdersHistoricalBatch(
        {"limit": 2, "cursor": page["cursor"]}
    )
    assert [o["order_id"] for o in rest["orders"]] == ids[:1] and rest["has_next"] is False


async def test_ticker_book_and_candles_follow_the_mark_price(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    ex = await coinbase(await new_account(cb_admin))
    await cb_admin.set_price("ETH/USD", "3100")
    ticker = await ex.fetch_ticker("ETH/USD")
    assert (ticker["last"], ticker["bid"], ticker["ask"]) == (3100.0, 3098.45, 3101.55)
    book = await ex.fetch_order_book("ETH/USD", 3)
    assert (
        book["bids"] == [[3098.45, 5.0], [3096.9, 5.0], [3095.35, 5.0]] and len(book["asks"]) == 3
    )
    candles = await ex.fetch_ohlcv("ETH/USD", "1m")
    assert (
        candles[-1][4] == 3100.0
        and candles[0][1] == 3000.0
        and max(c[2] for c in candles) == 3100.0
    )


async def test_key_permissions_reflect_the_account_flags(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    ex = await coinbase(await new_account(cb_admin, can_trade=True, can_withdraw=False))
    perms = await ex.v3PrivateGetBrokerageKeyPermissions()
    assert (perms["can_view"], perms["can_trade"], perms["can_transfer"]) == (True, True, False)
    viewer = await coinbase(await new_account(cb_admin, can_trade=False, can_withdraw=True))
    perms = await viewer.v3PrivateGetBrokerageKeyPermissions()
    assert (perms["can_trade"], perms["can_transfer"]) == (False, True)
