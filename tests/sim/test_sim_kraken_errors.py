"""Kraken error replies as ccxt 4.5.90 surfaces them (docs/exchange-protocols.md §4.7), auth and
nonces, permissions and the withdraw probe, duplicate client ids, rate limits and faults."""

from __future__ import annotations

import time

import ccxt.async_support as ccxt_async
import pytest

from tests.sim.test_sim_kraken_support import (  # noqa: F401  (fixtures by name)
    KrakenAdmin,
    KrakenFactory,
    kadmin_fixture,
    kraken_fixture,
    kraken_limited_sim_fixture,
    kraken_sim_fixture,
    limited_kadmin_fixture,
    limited_kraken_fixture,
)

BTC = {"pair": "XXBTZUSD", "type": "buy", "ordertype": "market"}


async def _raises(call: object, exc_type: type[Exception], message: str) -> None:
    with pytest.raises(exc_type) as info:
        await call
    assert message in str(info.value), str(info.value)


async def test_order_rejections_map_to_ccxt_exceptions(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account({"USD": "100", "BTC": "1"}))
    await _raises(
        ex.create_order("BTC/USD", "market", "buy", 0.1),
        ccxt_async.InsufficientFunds,
        "EOrder:Insufficient funds",
    )
    await _raises(
        ex.create_order("BTC/USD", "market", "sell", 0.00001),
        ccxt_async.InvalidOrder,
        "EOrder:Order minimum not met",
    )
    with pytest.raises(ccxt_async.ExchangeError) as info:  # unmapped in ccxt: plain ExchangeError
        await ex.create_order("BTC/USD", "limit", "buy", 0.0001, 1000)
    assert type(info.value) is ccxt_async.ExchangeError and "EOrder:Cost minimum not met" in str(
        info.value
    )
    await _raises(
        ex.private_post_addorder({**BTC, "volume": "0.000000001"}),
        ccxt_async.InvalidOrder,
        "EGeneral:Invalid arguments:volume",
    )
    await _raises(
        ex.private_post_addorder({**BTC, "volume": "0"}),
        ccxt_async.InvalidOrder,
        "EGeneral:Invalid arguments:volume",
    )
    await _raises(
        ex.private_post_addorder(
            {**BTC, "ordertype": "limit", "volume": "0.001", "price": "50000.05"}
        ),
        ccxt_async.ExchangeError,
        "EOrder:Invalid price:XBTUSD price can only be specified up to 1 decimals.",
    )
    await _raises(
        ex.private_post_addorder({**BTC, "ordertype": "limit", "volume": "0.001"}),
        ccxt_async.InvalidOrder,
        "EGeneral:Invalid arguments:price",
    )
    await _raises(
        ex.private_post_addorder({**BTC, "pair": "XDGUSD", "volume": "1"}),
        ccxt_async.ExchangeError,
        "EQuery:Unknown asset pair",
    )
    await _raises(
        ex.public_get_ticker({"pair": "NOPE"}),
        ccxt_async.ExchangeError,
        "EQuery:Unknown asset pair",
    )
    await _raises(
        ex.create_order("BTC/USD", "limit", "buy", 0.001, 51000, {"postOnly": True}),
        ccxt_async.ExchangeError,
        "EOrder:Post only order",
    )
    await _raises(
        ex.create_order("BTC/USD", "limit", "buy", 0.001, 49000, {"timeInForce": "FOK"}),
        ccxt_async.ExchangeError,
        "EGeneral:Invalid arguments:timeinforce",
    )
    await _raises(
        ex.private_post_addorder({**BTC, "type": "sell", "volume": "100", "oflags": "viqc"}),
        ccxt_async.InvalidOrder,
        "EGeneral:Invalid arguments:viqc",
    )
    await _raises(
        ex.create_order("BTC/USD", "market", "sell", 0.001, None, {"reduceOnly": True}),
        ccxt_async.ExchangeError,
        "EGeneral:Invalid arguments:reduce_only",
    )


async def test_unknown_orders_on_cancel_and_query(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account())
    await _raises(
        ex.cancel_order("OAAAAA-AAAAA-AAAAAA"), ccxt_async.OrderNotFound, "EOrder:Unknown order"
    )
    await _raises(
        ex.fetch_order("OAAAAA-AAAAA-AAAAAA"), ccxt_async.InvalidOrder, "EOrder:Invalid order"
    )
    placed = await ex.create_order("BTC/USD", "market", "buy", 0.001)
    await _raises(
        ex.cancel_order(placed["id"]), ccxt_async.OrderNotFound, "EOrder:Unknown order"
    )  # already closed


async def test_bad_credentials(kadmin: KrakenAdmin, kraken: KrakenFactory) -> None:
    creds = await kadmin.account()
    unknown = await kraken({"api_key": "not-a-key", "api_secret": creds["api_secret"]})
    await _raises(unknown.fetch_balance(), ccxt_async.AuthenticationError, "EAPI:Invalid key")
    other_secret = (await kadmin.account())["api_secret"]
    wrong = await kraken({"api_key": creds["api_key"], "api_secret": other_secret})
    with pytest.raises(ccxt_async.ExchangeError) as info:  # unmapped in ccxt
        await wrong.fetch_balance()
    assert type(info.value) is ccxt_async.ExchangeError and "EAPI:Invalid signature" in str(
        info.value
    )


async def test_signature_is_checked_over_the_raw_body(kadmin: KrakenAdmin) -> None:
    creds = await kadmin.account()
    good = await kadmin.private("Balance", creds)
    assert good["error"] == [] and good["result"]["ZUSD"] == "1000000.0000"
    tampered = await kadmin.private("Balance", creds, secret=(await kadmin.account())["api_secret"])
    assert tampered == {"error": ["EAPI:Invalid signature"], "result": {}}


async def test_a_reused_or_lower_nonce_is_refused(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    creds = await kadmin.account()
    nonce = time.time_ns() // 1000
    assert (await kadmin.private("Balance", creds, nonce=nonce))["error"] == []
    assert (await kadmin.private("Balance", creds, nonce=nonce))["error"] == ["EAPI:Invalid nonce"]
    assert (await kadmin.private("Balance", creds, nonce=nonce - 1))["error"] == [
        "EAPI:Invalid nonce"
    ]
    assert (await kadmin.private("Balance", creds, nonce=nonce + 1))["error"] == []
    ex = await kraken(creds)  # ccxt's nonce is in milliseconds: below the microseconds used above
    await _raises(ex.fetch_balance(), ccxt_async.InvalidNonce, "EAPI:Invalid nonce")


async def test_key_without_trade_permission_reads_but_cannot_trade(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    trader = await kraken(await kadmin.account())
    placed = await trader.create_order("BTC/USD", "limit", "buy", 0.01, 45000)
    ex = await kraken(await kadmin.account(can_trade=False))
    assert (await ex.fetch_balance())["USD"]["free"] == 1000000.0
    await _raises(
        ex.create_order("BTC/USD", "market", "buy", 0.001),
        ccxt_async.PermissionDenied,
        "EGeneral:Permission denied",
    )
    await _raises(
        ex.cancel_order(placed["id"]), ccxt_async.PermissionDenied, "EGeneral:Permission denied"
    )
    info = (await ex.private_post_getapikeyinfo())["result"]
    assert "modify-trades" not in info["permissions"] and "query-funds" in info["permissions"]


async def test_withdraw_enabled_keys_can_be_detected(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    safe = await kraken(await kadmin.account())
    risky_creds = await kadmin.account(can_withdraw=True)
    risky = await kraken(risky_creds)
    safe_info = (await safe.private_post_getapikeyinfo())["result"]
    risky_info = (await risky.private_post_getapikeyinfo())["result"]
    assert "withdraw-funds" not in safe_info["permissions"]
    assert (
        "withdraw-funds" in risky_info["permissions"]
        and risky_info["apiKey"] == risky_creds["api_key"]
    )
    assert "secret" not in risky_info and risky_creds["api_secret"] not in str(risky_info)
    await _raises(
        safe.private_post_withdrawmethods({"asset": "XBT"}),
        ccxt_async.PermissionDenied,
        "EGeneral:Permission denied",
    )
    methods = (await risky.private_post_withdrawmethods({"asset": "XBT"}))["result"]
    assert [m["method"] for m in methods] == ["Bitcoin"]
    await _raises(
        safe.private_post_withdrawinfo({"asset": "XBT", "key": "x", "amount": "0.1"}),
        ccxt_async.PermissionDenied,
        "EGeneral:Permission denied",
    )
    await _raises(
        risky.private_post_withdrawinfo({"asset": "XBT", "key": "x", "amount": "0.1"}),
        ccxt_async.InvalidAddress,
        "EFunding:Unknown withdraw key",
    )


async def test_cl_ord_id_is_unique_among_open_orders_only(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    creds = await kadmin.account()
    ex = await kraken(creds)
    first = await ex.create_order(
        "BTC/USD", "limit", "buy", 0.01, 45000, {"clientOrderId": "dup-1"}
    )
    with pytest.raises(ccxt_async.ExchangeError) as info:
        await ex.create_order("ETH/USD", "limit", "buy", 1, 2000, {"clientOrderId": "dup-1"})
    assert type(info.value) is ccxt_async.ExchangeError and "EOrder:Duplicate order" in str(
        info.value
    )
    assert [o["client_order_id"] for o in await kadmin.orders(creds["api_key"])] == [
        "dup-1"
    ]  # nothing placed
    await ex.cancel_order(first["id"])
    again = await ex.create_order(
        "BTC/USD", "limit", "buy", 0.01, 45000, {"clientOrderId": "dup-1"}
    )
    assert again["id"] != first["id"]


async def test_cl_ord_id_formats(kadmin: KrakenAdmin, kraken: KrakenFactory) -> None:
    ex = await kraken(await kadmin.account())
    for good in (
        "6d1b345e-2821-40e2-ad83-4ecb18a06876",
        "6d1b345e282140e2ad834ecb18a06876",
        "a" * 18,
    ):
        placed = await ex.create_order(
            "BTC/USD", "limit", "buy", 0.001, 45000, {"clientOrderId": good}
        )
        assert (await ex.fetch_order(placed["id"]))["clientOrderId"] == good
    for bad in ("a" * 19, "has space"):
        await _raises(
            ex.create_order("BTC/USD", "limit", "buy", 0.001, 45000, {"clientOrderId": bad}),
            ccxt_async.ExchangeError,
            "EGeneral:Invalid arguments:cl_ord_id",
        )
    await _raises(
        ex.create_order(
            "BTC/USD", "limit", "buy", 0.001, 45000, {"clientOrderId": "x", "userref": 1}
        ),
        ccxt_async.ExchangeError,
        "EGeneral:Invalid arguments:cl_ord_id",
    )


async def test_rate_limits_answer_like_kraken(
    limited_kadmin: KrakenAdmin, limited_kraken: KrakenFactory
) -> None:
    ex = await limited_kraken(await limited_kadmin.account())
    await ex.create_order("BTC/USD", "limit", "buy", 0.001, 45000)
    await _raises(
        ex.create_order("BTC/USD", "limit", "buy", 0.001, 45000),
        ccxt_async.DDoSProtection,
        "EOrder:Rate limit exceeded",
    )
    for _ in range(60):
        await ex.fetch_balance()
    await _raises(ex.fetch_balance(), ccxt_async.DDoSProtection, "EAPI:Rate limit exceeded")
    await _raises(ex.fetch_balance(), ccxt_async.DDoSProtection, "EGeneral:Temporary lockout")
    status = await limited_kadmin.call("POST", "/_sim/rate-limits", {"enabled": False})
    assert status["enabled"] is False and status["orders"]["limit"] == 1
    assert (await ex.fetch_balance())["USD"]["total"] == 1000000.0
    await ex.create_order("BTC/USD", "limit", "buy", 0.001, 45000)
    await ex.create_order("BTC/USD", "limit", "buy", 0.001, 45000)


async def test_execute_then_504_leaves_the_order_placed_and_findable(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    creds = await kadmin.account()
    ex = await kraken(creds)
    added = await kadmin.call(
        "POST",
        "/_sim/faults",
        {
            "method": "POST",
            "path": "/0/private/AddOrder",
            "status": 504,
            "body": "<html>504 Gateway Time-out</html>",
            "execute": True,
        },
    )
    assert added == {"added": 1}
    await _raises(
        ex.create_order("BTC/USD", "market", "buy", 0.01, None, {"clientOrderId": "lost-reply"}),
        ccxt_async.RequestTimeout,
        "504",
    )
    [truth] = await kadmin.orders(creds["api_key"])
    assert (truth["client_order_id"], truth["status"], truth["filled_quantity"]) == (
        "lost-reply",
        "filled",
        "0.01",
    )
    closed = await ex.fetch_closed_orders(params={"clientOrderId": "lost-reply"})
    [found] = [o for o in closed if o["clientOrderId"] == "lost-reply"]
    assert found["filled"] == 0.01 and found["status"] == "closed"


async def test_a_fault_without_execute_places_nothing(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    creds = await kadmin.account()
    ex = await kraken(creds)
    await kadmin.call(
        "POST",
        "/_sim/faults",
        {"path": "/0/private/AddOrder", "status": 503, "body": {"error": ["EService:Unavailable"]}},
    )
    await _raises(
        ex.create_order("BTC/USD", "market", "buy", 0.01),
        ccxt_async.ExchangeNotAvailable,
        "EService:Unavailable",
    )
    assert await kadmin.orders(creds["api_key"]) == []


async def test_public_endpoints_filter_and_refuse_unknown_names(kadmin: KrakenAdmin) -> None:
    assets = await kadmin.public("Assets", asset="XBT,ZUSD")
    assert (
        set(assets["result"]) == {"XXBT", "ZUSD"} and assets["result"]["XXBT"]["altname"] == "XBT"
    )
    assert await kadmin.public("Assets", asset="DOGE") == {
        "error": ["EQuery:Unknown asset"],
        "result": {},
    }
    pairs = await kadmin.public("AssetPairs", pair="XBTUSD", info="fees")
    assert pairs["result"]["XXBTZUSD"]["fees"][0] == [0, 0.26]
    assert (await kadmin.public("NoSuchMethod"))["error"] == ["EGeneral:Unknown method"]
    assert (await kadmin.public("OHLC", pair="XXBTZUSD", interval=2))["error"] == [
        "EGeneral:Invalid arguments:interval"
    ]
