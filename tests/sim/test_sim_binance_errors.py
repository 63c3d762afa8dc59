"""Binance error replies as ccxt 4.5.90 sees them, authentication, rate limits and faults."""

from __future__ import annotations

import asyncio
import time

import ccxt
import pytest

from exchange_sim import SimCluster
from tests.sim.sim_helpers import Admin, ExchangeFactory


async def test_insufficient_balance_raises_insufficient_funds(
    admin: Admin, binance: ExchangeFactory
) -> None:
    creds = await admin.account({"USDT": "100"})
    ex = await binance(creds)
    with pytest.raises(ccxt.InsufficientFunds):
        await ex.create_order("BTC/USDT", "market", "buy", 0.01)  # ~500 USDT
    with pytest.raises(ccxt.InsufficientFunds):
        await ex.create_order("BTC/USDT", "market", "sell", 0.01)  # no BTC
    assert await admin.orders(creds["api_key"]) == []
    assert (await admin.balances(creds["api_key"]))["USDT"] == {"free": "100", "locked": "0"}


async def test_lot_size_breach_raises_invalid_order(admin: Admin, binance: ExchangeFactory) -> None:
    ex = await binance(await admin.account())
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        await ex.create_order(
            "BTC/USDT", "limit", "buy", 10000, 1
        )  # above maxQty; ccxt does not check


async def test_price_filter_breach_raises_invalid_order(
    admin: Admin, binance: ExchangeFactory
) -> None:
    ex = await binance(await admin.account())
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):  # bypass ccxt's own rounding
        await ex.private_post_order(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": "49000.005",
            }
        )


async def test_notional_breach_raises_bad_request(admin: Admin, binance: ExchangeFactory) -> None:
    ex = await binance(await admin.account())
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL") as raised:
        await ex.create_order("BTC/USDT", "limit", "buy", 0.00001, 50000)  # 0.5 USDT < 5
    assert not isinstance(raised.value, ccxt.InvalidOrder)


async def test_history_spanning_more_than_a_day_is_refused(
    admin: Admin, binance: ExchangeFactory
) -> None:
    ex = await binance(await admin.account())
    day_ms = 86_400_000
    window = {"symbol": "BTCUSDT", "startTime": 0}
    assert await ex.private_get_mytrades({**window, "endTime": day_ms}) == []
    with pytest.raises(ccxt.BadRequest, match="More than 24 hours between startTime and endTime"):
        await ex.private_get_allorders({**window, "endTime": day_ms + 1})


async def test_unknown_order_raises_order_not_found(admin: Admin, binance: ExchangeFactory) -> None:
    ex = await binance(await admin.account())
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        await ex.fetch_order("424242", "BTC/USDT")
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        await ex.cancel_order("424242", "BTC/USDT")
    filled = await ex.create_order("BTC/USDT", "market", "buy", 0.001)
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):  # filled orders cannot be canceled
        await ex.cancel_order(filled["id"], "BTC/USDT")


async def test_bad_secret_raises_authentication_error(
    admin: Admin, binance: ExchangeFactory
) -> None:
    creds = await admin.account()
    ex = await binance({**creds, "api_secret": "0" * 64})
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        await ex.fetch_balance()
    unknown = await binance({"api_key": "nope", "api_secret": "0" * 64})
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        await unknown.fetch_balance()


async def test_unknown_symbol_raises_bad_symbol(admin: Admin, binance: ExchangeFactory) -> None:
    ex = await binance(await admin.account())
    with pytest.raises(ccxt.BadSymbol):
        await ex.public_get_ticker_price({"symbol": "DOGEUSDT"})
    with pytest.raises(ccxt.BadSymbol):
        await ex.private_post_order(
            {"symbol": "DOGEUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}
        )


async def test_stale_timestamp_is_rejected_with_1021(admin: Admin) -> None:
    creds = await admin.account()
    stale = int(time.time() * 1000) - 6000
    status, _, body = await admin.signed("GET", "/api/v3/account", creds, {}, timestamp=stale)
    assert (status, body["code"]) == (400, -1021)
    status, _, body = await admin.signed(
        "GET", "/api/v3/account", creds, {"recvWindow": 10000}, timestamp=stale
    )
    assert status == 200 and body["canTrade"] is True


async def test_signature_is_checked_over_the_raw_encoded_string(admin: Admin) -> None:
    creds = await admin.account()
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.001",
        "price": "49000",
        "newClientOrderId": "a_b-C",
    }
    status, headers, body = await admin.signed("POST", "/api/v3/order", creds, params)
    assert status == 200 and body["clientOrderId"] == "a_b-C" and body["status"] == "NEW"
    assert headers["X-MBX-ORDER-COUNT-10S"] == "1" and "X-MBX-USED-WEIGHT-1M" in headers


async def test_account_without_trade_permission_is_refused_orders(
    admin: Admin, binance: ExchangeFactory
) -> None:
    creds = await admin.account(can_trade=False, can_withdraw=False)
    ex = await binance(creds)
    restrictions = await ex.sapi_get_account_apirestrictions()
    assert (
        restrictions["enableSpotAndMarginTrading"] is False
        and restrictions["enableWithdrawals"] is False
    )
    assert restrictions["enableReading"] is True
    status, _, body = await admin.signed(
        "POST",
        "/api/v3/order",
        creds,
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"},
    )
    assert (status, body["code"]) == (401, -2015)
    fresh = await binance(creds)  # a client with no earlier successful private call
    with pytest.raises(ccxt.AuthenticationError):
        await fresh.create_order("BTC/USDT", "market", "buy", 0.001)


async def test_malformed_order_parameters_get_binance_codes(admin: Admin) -> None:
    creds = await admin.account()
    base = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001"}
    cases = [
        ({**base, "type": "LIMIT", "price": "49000"}, -1102),  # no timeInForce
        ({**base, "type": "MARKET", "price": "49000"}, -1106),  # price not taken
        (
            {**base, "type": "LIMIT", "timeInForce": "GTC", "price": "1e3"},
            -1100,
        ),  # not a plain decimal
        ({**base, "type": "SPLIT"}, -1116),
        ({**base, "type": "MARKET", "newClientOrderId": "x" * 37}, -1100),  # Binance id rule
        ({**base, "type": "MARKET", "icebergQty": "1"}, -1104),  # not supported
    ]
    for params, code in cases:
        status, _, body = await admin.signed("POST", "/api/v3/order", creds, params)
        assert (status, body["code"]) == (400, code), params


async def test_order_burst_over_ten_per_second_gets_429_then_418(
    limited_admin: Admin, limited_binance: ExchangeFactory
) -> None:
    ex = await limited_binance(await limited_admin.account())
    results = await asyncio.gather(
        *(ex.create_order("BTC/USDT", "limit", "buy", 0.001, 40000) for _ in range(12)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 2 and all(isinstance(r, ccxt.DDoSProtection) for r in refused)
    assert "429" in str(refused[0]) and "-1015" in str(refused[0])
    with pytest.raises(ccxt.DDoSProtection, match="418"):  # kept sending inside Retry-After
        await ex.fetch_balance()
    with pytest.raises(ccxt.DDoSProtection, match="418"):  # and stays banned
        await ex.fetch_ticker("BTC/USDT")
    status = await limited_admin.call("POST", "/_sim/rate-limits", {"enabled": False})
    assert status["enabled"] is False
    assert (await ex.fetch_balance())["USDT"]["free"] > 0


async def test_request_weight_over_1200_per_minute_gets_429_with_retry_after(
    limited_admin: Admin,
) -> None:
    url = limited_admin.base_url + "/api/v3/exchangeInfo"  # weight 20: 60 fit in a minute
    for _ in range(60):
        async with limited_admin.session.get(url) as response:
            assert response.status == 200
    async with limited_admin.session.get(url) as response:
        assert response.status == 429
        assert int(response.headers["Retry-After"]) > 0
        assert response.headers["X-MBX-USED-WEIGHT-1M"] == "1200"
        assert (await response.json())["code"] == -1003
    async with limited_admin.session.get(limited_admin.base_url + "/api/v3/ping") as response:
        assert response.status == 418 and int(response.headers["Retry-After"]) >= 60


async def test_fault_with_execute_places_the_order_then_answers_504(
    admin: Admin, binance: ExchangeFactory
) -> None:
    creds = await admin.account()
    ex = await binance(creds)
    await admin.call(
        "POST",
        "/_sim/faults",
        {
            "method": "POST",
            "path": "/api/v3/order",
            "status": 504,
            "body": "",
            "execute": True,
            "count": 1,
        },
    )
    with pytest.raises(ccxt.RequestTimeout):
        await ex.create_order(
            "BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "lost-reply"}
        )
    (order,) = await admin.orders(creds["api_key"])
    assert order["client_order_id"] == "lost-reply" and order["status"] == "filled"
    found = await ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "lost-reply"})
    assert found["status"] == "closed"
    assert await admin.call("GET", "/_sim/faults") == []  # used up


@pytest.mark.parametrize("execute", [True, False])
async def test_fault_reset_drops_the_connection_with_or_without_the_order(
    admin: Admin, binance: ExchangeFactory, execute: bool
) -> None:
    # T22: the request reached the venue, the connection was reset before any answer.
    creds = await admin.account()
    ex = await binance(creds)
    await admin.call(
        "POST",
        "/_sim/faults",
        {"method": "POST", "path": "/api/v3/order", "reset": True, "execute": execute},
    )
    with pytest.raises(ccxt.NetworkError):
        await ex.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "reset"})
    orders = await admin.orders(creds["api_key"])
    assert [o["client_order_id"] for o in orders] == (["reset"] if execute else [])
    assert await admin.call("GET", "/_sim/faults") == []  # used up
    await ex.create_order("BTC/USDT", "market", "buy", 0.01)  # the next request is served


async def test_fault_without_execute_changes_nothing(
    admin: Admin, binance: ExchangeFactory
) -> None:
    creds = await admin.account()
    ex = await binance(creds)
    await admin.call(
        "POST",
        "/_sim/faults",
        [
            {
                "method": "POST",
                "path": "/api/v3/*",
                "status": 503,
                "body": {"code": -1008, "msg": "Server is busy."},
            },
            {
                "method": "GET",
                "path": "/api/v3/account",
                "status": 500,
                "body": "<html>oops</html>",
                "count": 2,
            },
        ],
    )
    with pytest.raises(ccxt.ExchangeError, match="-1008"):
        await ex.create_order("BTC/USDT", "market", "buy", 0.01)
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await ex.fetch_balance()
    assert (await ex.fetch_balance())["USDT"]["free"] == 1000000.0
    assert await admin.orders(creds["api_key"]) == []


async def test_fault_delay_only_slows_the_real_reply(
    admin: Admin, binance: ExchangeFactory
) -> None:
    ex = await binance(await admin.account())
    await admin.call("POST", "/_sim/faults", {"path": "/api/v3/ticker/price", "delay_s": 0.2})
    started = time.monotonic()
    assert (await ex.fetch_ticker("BTC/USDT"))["last"] == 50000.0
    assert time.monotonic() - started < 5  # ticker/24hr is not delayed
    started = time.monotonic()
    await ex.public_get_ticker_price({"symbol": "BTCUSDT"})
    assert time.monotonic() - started >= 0.2


async def test_admin_api_validates_its_input(sim: SimCluster, admin: Admin) -> None:
    bad = await admin.call("POST", "/_sim/accounts", {"balances": {"USDT": 1.5e400}}, expect=400)
    assert "balances.USDT" in bad["error"]
    assert (
        "count"
        in (await admin.call("POST", "/_sim/faults", {"path": "/x", "count": 0}, expect=400))[
            "error"
        ]
    )
    assert (
        "symbol"
        in (await admin.call("POST", "/_sim/prices", {"symbol": "X/Y", "price": "1"}, expect=400))[
            "error"
        ]
    )
    assert (
        "price"
        in (
            await admin.call(
                "POST", "/_sim/prices", {"symbol": "BTC/USDT", "price": "-1"}, expect=400
            )
        )["error"]
    )
    await admin.call("GET", "/_sim/accounts/nobody/orders", expect=404)
    assert await admin.call("GET", "/_sim/prices") == {
        "BTC/USDT": "50000",
        "ETH/USDT": "3000",
        "BNB/USDT": "600",
    }


@pytest.mark.parametrize(
    "path", ["/_sim/accounts/nobody/orders", "/_sim/futures/accounts/nobody/wallet"]
)
async def test_the_admin_api_answers_404_for_an_unknown_account(admin: Admin, path: str) -> None:
    assert await admin.call("GET", path, expect=404) == {"error": "api_key: no such account"}
