"""Coinbase error replies as ccxt 4.5.90 sees them (doc §3.7), authentication, duplicate client
order ids (§3.8), rate limits and faults."""

from __future__ import annotations

import time

import aiohttp
import ccxt
import pytest

from exchange_sim import SimCluster
from exchange_sim.coinbase import CoinbaseState
from exchange_sim.coinbase.limits import CoinbaseRateLimiter
from exchange_sim.core.ratelimit import KeyedWindows, WindowSpec
from tests.sim.sim_helpers import Admin, ExchangeFactory
from tests.sim.test_sim_coinbase_support import (
    VENUE,
    claims_for,
    legacy_headers,
    make_jwt,
    new_account,
)

pytest_plugins = ["tests.sim.test_sim_coinbase_support"]  # the cb_* / coinbase fixtures

ORDERS = "/api/v3/brokerage/orders"


def _order(
    client_id: str, config: dict[str, object], product: str = "BTC-USD", side: str = "BUY"
) -> dict[str, object]:
    return {
        "client_order_id": client_id,
        "product_id": product,
        "side": side,
        "order_configuration": config,
    }


async def test_insufficient_funds_is_a_200_failure_ccxt_raises_insufficient_funds(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    creds = await new_account(cb_admin, {"USD": "100"})
    ex = await coinbase(creds)
    with pytest.raises(ccxt.InsufficientFunds):
        await ex.create_order("BTC/USD", "limit", "buy", 0.01, 50000)  # 500 USD + fee
    with pytest.raises(ccxt.InsufficientFunds):
        await ex.create_order("BTC/USD", "market", "buy", 0.01, 50000)  # quote_size 500
    with pytest.raises(ccxt.InsufficientFunds):
        await ex.create_order("BTC/USD", "market", "sell", 0.01)  # no BTC
    assert await cb_admin.orders(creds["api_key"]) == []
    assert (await cb_admin.balances(creds["api_key"]))["USD"] == {"free": "100", "locked": "0"}


async def test_rule_breaches_come_back_as_200_failures_with_preview_reasons(
    cb_sim: SimCluster, cb_admin: Admin
) -> None:
    creds = await new_account(cb_admin)
    url = cb_sim.urls[VENUE] + ORDERS
    cases: dict[str, dict[str, object]] = {
        "PREVIEW_INVALID_SIZE_PRECISION": {
            "limit_limit_gtc": {"base_size": "0.000000001", "limit_price": "49000"}
        },
        "PREVIEW_INVALID_PRICE_PRECISION": {
            "limit_limit_gtc": {"base_size": "0.01", "limit_price": "49000.005"}
        },
        "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL": {
            "limit_limit_gtc": {"base_size": "0.00001", "limit_price": "50000"}
        },
        "PREVIEW_INVALID_BASE_SIZE_TOO_LARGE": {"market_market_ioc": {"base_size": "3401"}},
        "PREVIEW_INVALID_QUOTE_SIZE_PRECISION": {"market_market_ioc": {"quote_size": "10.001"}},
        "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY": {
            "limit_limit_gtc": {"base_size": "0.01", "limit_price": "50100", "post_only": True}
        },
        "PREVIEW_INVALID_ORDER_CONFIG": {
            "limit_limit_gtd": {
                "base_size": "0.01",
                "limit_price": "49000",
                "end_time": "2030-01-01T00:00:00Z",
            }
        },
    }
    for i, (reason, config) in enumerate(cases.items()):
        body = _order(f"bad-{i}", config)
        token = make_jwt(creds, claims_for(creds, f"POST {url.removeprefix('http://')}"))
        async with cb_admin.session.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            reply = await response.json()
        assert response.status == 200 and reply["success"] is False, reason
        assert reply["error_response"]["preview_failure_reason"] == reason
        assert reply["order_configuration"] == config and reply["order_id"] == ""
    assert await cb_admin.orders(creds["api_key"]) == []


async def test_rule_breaches_raise_exchange_error_and_a_met_stop_invalid_order(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    ex = await coinbase(await new_account(cb_admin))
    with pytest.raises(ccxt.ExchangeError, match="PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL") as small:
        await ex.create_order(
            "BTC/USD", "limit", "buy", 0.00001, 50000
        )  # 0.50 USD < quote_min_size 1
    assert type(small.value) is ccxt.ExchangeError
    with pytest.raises(
        ccxt.ExchangeError, match="PREVIEW_INVALID_PRICE_PRECISION"
    ):  # bypass ccxt's rounding
        await ex.v3PrivatePostBrokerageOrders(
            _order(
                "p-1",
                {
                    "limit_limit_gtc": {
                        "base_size": "0.01",
                        "limit_price": "49000.005",
                        "post_only": False,
                    }
                },
            )
        )
    with pytest.raises(ccxt.InvalidOrder, match="PREVIEW_STOP_PRICE_ABOVE_LAST_TRADE_PRICE"):
        await ex.create_order("BTC/USD", "limit", "sell", 0.1, 50500, {"stopLossPrice": 50100})
    with pytest.raises(ccxt.ExchangeError, match="PREVIEW_STOP_PRICE_BELOW_LAST_TRADE_PRICE"):
        await ex.create_order("BTC/USD", "limit", "buy", 0.1, 49000, {"stopLossPrice": 49900})


async def test_malformed_requests_are_400_invalid_argument_naming_the_field(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    ex = await coinbase(await new_account(cb_admin))
    with pytest.raises(ccxt.BadRequest, match=r"order_configuration\.limit_limit_gtc\.base_size"):
        await ex.v3PrivatePostBrokerageOrders(
            _order("m-1", {"limit_limit_gtc": {"base_size": "1e-3", "limit_price": "1"}})
        )
    with pytest.raises(ccxt.BadRequest, match="client_order_id"):
        await ex.v3PrivatePostBrokerageOrders(
            {
                "product_id": "BTC-USD",
                "side": "BUY",
                "order_configuration": {"market_market_ioc": {"base_size": "0.1"}},
            }
        )
    with pytest.raises(ccxt.BadRequest, match="clientOrderId: unknown field"):
        await ex.v3PrivatePostBrokerageOrders(
            {**_order("m-2", {"market_market_ioc": {"base_size": "0.1"}}), "clientOrderId": "typo"}
        )


async def test_unknown_orders_raise_exchange_error_on_fetch_and_bad_request_on_cancel(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    ex = await coinbase(await new_account(cb_admin))
    with pytest.raises(
        ccxt.ExchangeError, match="order with this orderID was not found"
    ) as fetched:
        await ex.fetch_order("6f1c1d22-0000-4000-8000-000000000042")
    assert not isinstance(
        fetched.value, ccxt.OrderNotFound
    )  # ccxt 4.5.90's Python broad rule never matches
    with pytest.raises(ccxt.BadRequest):
        await ex.cancel_order("6f1c1d22-0000-4000-8000-000000000042")
    filled = await ex.create_order("LTC/USD", "market", "sell", 1)
    with pytest.raises(ccxt.BadRequest):  # ended orders cannot be canceled
        await ex.cancel_order(filled["id"])
    other = await coinbase(await new_account(cb_admin))
    with pytest.raises(ccxt.ExchangeError, match="not found"):  # another key's order is invisible
        await other.fetch_order(filled["id"])


async def test_bad_or_foreign_jwt_signatures_raise_authentication_error(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    mine, theirs = await new_account(cb_admin), await new_account(cb_admin)
    forged = await coinbase(
        {"api_key": mine["api_key"], "api_secret": theirs["api_secret"]}, load=False
    )
    with pytest.raises(ccxt.AuthenticationError):
        await forged.fetch_balance()
    unknown = await coinbase(
        {"api_key": "organizations/x/apiKeys/y", "api_secret": mine["api_secret"]}, load=False
    )
    with pytest.raises(ccxt.AuthenticationError):
        await unknown.v3PrivateGetBrokerageAccounts()
    assert await cb_admin.orders(mine["api_key"]) == []


async def test_jwt_must_be_current_and_name_this_request(
    cb_sim: SimCluster, cb_admin: Admin
) -> None:
    creds = await new_account(cb_admin)
    base = cb_sim.urls[VENUE]
    path = "/api/v3/brokerage/accounts"
    host_uri = f"GET {base.removeprefix('http://')}{path}"

    async def status(claims: dict[str, object], header: dict[str, object] | None = None) -> int:
        token = make_jwt(creds, claims, header)
        async with cb_admin.session.get(
            base + path, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            return response.status

    now = int(time.time())
    assert await status(claims_for(creds, host_uri)) == 200
    assert await status(claims_for(creds, f"GET http://{host_uri[4:]}")) == 200  # as ccxt sends it
    assert (
        await status(claims_for(creds, f"GET api.coinbase.com{path}", iss="cdp")) == 200
    )  # official SDK form
    assert await status(claims_for(creds, host_uri, now=now - 300)) == 401  # expired
    assert (
        await status({**claims_for(creds, host_uri), "exp": now + 3600}) == 401
    )  # lives over 120 s
    assert await status(claims_for(creds, host_uri, now=now + 300)) == 401  # not yet valid
    assert await status(claims_for(creds, f"POST {host_uri[4:]}")) == 401  # other method
    assert await status(claims_for(creds, host_uri + "/other")) == 401  # other path
    assert await status(claims_for(creds, host_uri), {"alg": "HS256"}) == 401
    assert await status(claims_for(creds, host_uri), {"kid": "organizations/a/apiKeys/b"}) == 401


async def test_legacy_hmac_keys_work_and_stale_timestamps_are_refused(
    cb_sim: SimCluster, cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    legacy = await new_account(
        cb_admin, {"USD": "500"}, api_key="legacy-key-1", api_secret="legacy-secret-1"
    )
    ex = await coinbase(legacy)
    assert (await ex.fetch_balance())["USD"]["total"] == 500.0
    placed = await ex.create_order("LTC/USD", "limit", "buy", 1, 90)
    assert (await ex.fetch_order(placed["id"], "LTC/USD"))["status"] == "open"
    wrong = await coinbase({**legacy, "api_secret": "not-the-secret"}, load=False)
    with pytest.raises(ccxt.AuthenticationError):
        await wrong.fetch_balance()
    stale = await coinbase(legacy, load=False)
    stale.options["timeDifference"] = 60_000  # signs a timestamp a minute old
    # ccxt matches the exact id authentication_error before its broad "request timestamp expired"
    with pytest.raises(ccxt.AuthenticationError, match="request timestamp expired"):
        await stale.fetch_balance({"v3": True})
    headers = legacy_headers("legacy-key-1", "legacy-secret-1", "GET", "/v2/accounts?limit=5")
    async with cb_admin.session.get(
        cb_sim.urls[VENUE] + "/v2/accounts?limit=5", headers=headers
    ) as response:
        assert response.status == 200 and len((await response.json())["data"]) == 4


async def test_view_only_keys_read_but_orders_raise_permission_denied(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    creds = await new_account(cb_admin, can_trade=False)
    ex = await coinbase(creds)
    assert (await ex.fetch_balance())["USD"]["total"] == 1000000.0
    with pytest.raises(ccxt.PermissionDenied):
        await ex.create_order("BTC/USD", "limit", "buy", 0.01, 40000)
    with pytest.raises(ccxt.PermissionDenied):
        await ex.cancel_order("6f1c1d22-0000-4000-8000-000000000042")
    assert await cb_admin.orders(creds["api_key"]) == []


async def test_duplicate_client_order_id_returns_the_existing_order_and_places_nothing(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    creds = await new_account(cb_admin, {"USD": "6000"})
    ex = await coinbase(creds)
    first = await ex.create_order(
        "BTC/USD", "market", "buy", 0.1, 50000, {"client_order_id": "sig-42-f1"}
    )
    # the same id again, even for a different order and with the funds now spent: no new order
    again = await ex.create_order(
        "BTC/USD", "market", "buy", 0.1, 50000, {"client_order_id": "sig-42-f1"}
    )
    other = await ex.create_order(
        "ETH/USD", "limit", "sell", 1, 3500, {"client_order_id": "sig-42-f1"}
    )
    assert first["id"] == again["id"] == other["id"]
    assert other["clientOrderId"] == "sig-42-f1" and other["symbol"] == "BTC/USD"
    orders = await cb_admin.orders(creds["api_key"])
    assert [(o["client_order_id"], o["status"]) for o in orders] == [("sig-42-f1", "filled")]
    assert len(await cb_admin.trades(creds["api_key"])) == 1


async def test_order_rate_limit_answers_429_and_can_be_switched_off(
    cb_limited_admin: Admin, limited_coinbase: ExchangeFactory
) -> None:
    creds = await new_account(cb_limited_admin)
    ex = await limited_coinbase(creds)
    for i in range(3):
        await ex.create_order("LTC/USD", "limit", "buy", 1, 80 + i)
    with pytest.raises(ccxt.RateLimitExceeded, match="rate_limit_exceeded"):
        await ex.create_order("LTC/USD", "limit", "buy", 1, 85)
    assert len(await cb_limited_admin.orders(creds["api_key"])) == 3
    await ex.fetch_open_orders("LTC/USD")  # reads are not order-limited
    status = await cb_limited_admin.call("POST", "/_sim/rate-limits", {"enabled": False})
    assert status["enabled"] is False and status["orders_per_key"] == {"limit": 3, "interval": "1S"}
    await ex.create_order("LTC/USD", "limit", "buy", 1, 85)
    assert len(await cb_limited_admin.orders(creds["api_key"])) == 4


async def test_private_request_limit_is_per_key(
    cb_limited_sim: SimCluster, cb_limited_admin: Admin, limited_coinbase: ExchangeFactory
) -> None:
    state = cb_limited_sim.states[VENUE]
    assert isinstance(state, CoinbaseState) and isinstance(state.limiter, CoinbaseRateLimiter)
    state.limiter.private = KeyedWindows(
        WindowSpec(60_000, 4, "1M")
    )  # the real 300/min, scaled down
    busy = await limited_coinbase(await new_account(cb_limited_admin), load=False)
    calm = await limited_coinbase(await new_account(cb_limited_admin), load=False)
    for _ in range(4):
        await busy.v3PrivateGetBrokerageKeyPermissions()
    with pytest.raises(ccxt.RateLimitExceeded):
        await busy.v3PrivateGetBrokerageKeyPermissions()
    await calm.v3PrivateGetBrokerageKeyPermissions()


async def test_execute_then_504_places_the_order_and_a_retry_finds_it(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    creds = await new_account(cb_admin)
    ex = await coinbase(creds)
    await cb_admin.call(
        "POST",
        "/_sim/faults",
        {
            "method": "POST",
            "path": ORDERS,
            "status": 504,
            "body": "<html>504 Gateway Time-out</html>",
            "execute": True,
        },
    )
    with pytest.raises(ccxt.RequestTimeout):
        await ex.create_order(
            "BTC/USD", "limit", "buy", 0.1, 49000, {"client_order_id": "timeout-1"}
        )
    venue_truth = await cb_admin.orders(creds["api_key"])
    assert [(o["client_order_id"], o["status"]) for o in venue_truth] == [("timeout-1", "new")]
    retried = await ex.create_order(
        "BTC/USD", "limit", "buy", 0.1, 49000, {"client_order_id": "timeout-1"}
    )
    looked_up = await ex.fetch_order("timeout-1", None, {"client_order_id": "timeout-1"})
    assert retried["id"] == looked_up["id"] and looked_up["status"] == "open"
    assert len(await cb_admin.orders(creds["api_key"])) == 1


async def test_injected_error_bodies_map_as_ccxt_maps_them(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    ex = await coinbase(await new_account(cb_admin))
    await cb_admin.call(
        "POST",
        "/_sim/faults",
        [
            {
                "path": "/api/v3/brokerage/accounts",
                "status": 429,
                "body": {"error": "RATE_LIMIT_EXCEEDED", "message": "Too many requests"},
            },
            {"path": "/api/v3/brokerage/accounts", "status": 503, "body": "<html>down</html>"},
        ],
    )
    with pytest.raises(
        ccxt.ExchangeError
    ) as upper_case:  # the upper-case variant is not recognised
        await ex.fetch_balance({"v3": True})
    assert not isinstance(upper_case.value, ccxt.RateLimitExceeded)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await ex.fetch_balance({"v3": True})
    assert (await ex.fetch_balance({"v3": True}))["USD"]["free"] == 1000000.0


async def test_admin_api_reaches_accounts_whose_key_names_hold_slashes(
    cb_sim: SimCluster, cb_admin: Admin
) -> None:
    creds = await new_account(cb_admin, {"USD": "7"})
    assert creds["api_key"].startswith("organizations/") and "/apiKeys/" in creds["api_key"]
    assert creds["api_secret"].startswith("-----BEGIN EC PRIVATE KEY-----")
    assert (await cb_admin.balances(creds["api_key"]))["USD"] == {"free": "7", "locked": "0"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{cb_sim.urls[VENUE]}/_sim/accounts/unknown/orders") as response,
    ):
        assert response.status == 404
