"""A leader's trade on simulated Binance reaches a follower through all services and the gateway."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp

from meshctl.api import ApiError, RestClient, SimAdmin
from meshctl.demo import create_user, leader_client, register_keys
from meshctl.launcher import Mesh
from tests.e2e.helpers import rfc3339, wait_for


async def test_leader_market_buy_is_copied_once_sized_by_equity_and_reconciled(
    mesh: Mesh,
    api: RestClient,
    binance: SimAdmin,
    session: aiohttp.ClientSession,
) -> None:
    leader_id, leader_keys = await register_keys(
        api, binance, "binance", "leader", {"USDT": "100000"}
    )
    follower_id, follower_keys = await register_keys(
        api, binance, "binance", "follower", {"USDT": "10000"}
    )
    started = datetime.now(UTC) - timedelta(seconds=1)
    config = await api.call(
        "POST",
        "/start",
        {
            "source_exchange_id": leader_id,
            "target_exchange_ids": [follower_id],
            "risk_limits": {"max_position_size": 0.5, "max_slippage": "0.01"},
            "sync_settings": {"sync_interval": 1},
        },
    )
    config_id = config["config_id"]
    assert config["status"] == "COPY_STATUS_ACTIVE"

    exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
    try:
        await exchange.create_order("BTC/USDT", "market", "buy", 0.1)
    finally:
        await exchange.close()

    async def follower_orders():
        return await binance.orders(follower_keys["api_key"])

    orders = await wait_for(follower_orders)
    await asyncio.sleep(1.5)  # a second poll must not copy the same fill again
    orders = await binance.orders(follower_keys["api_key"])
    assert len(orders) == 1
    order = orders[0]
    # 0.1 BTC x follower equity 10,000 / leader equity ~99,992 USDT, rounded down to 0.00001.
    assert Decimal(str(order["quantity"])) == Decimal("0.01")
    assert order["side"].lower() == "buy" and order["symbol"] in ("BTC/USDT", "BTCUSDT")

    copied = (await api.call("GET", f"/orders/{config_id}"))["orders"]
    assert len(copied) == 1
    assert copied[0]["client_order_id"] == order["client_order_id"]
    assert copied[0]["state"] == "INTENT_STATE_FILLED"
    assert copied[0]["quantity"] == "0.01"

    status = await api.call("GET", f"/status/{config_id}")
    assert status["counters"]["filled"] == "1" or status["counters"]["filled"] == 1

    stopped = await api.call("POST", "/stop", {"config_id": config_id})
    assert stopped["status"] == "COPY_STATUS_STOPPED"
    report = (
        await api.call(
            "POST",
            "/reconcile",
            {
                "config_id": config_id,
                "start_time": rfc3339(started),
                "end_time": rfc3339(datetime.now(UTC)),
            },
        )
    )["report"]
    # The copy, and the follower's BTC position it explains.
    assert report["total_count"] == 2
    assert report["matched_count"] == 2
    history = (await api.call("GET", f"/reconciliation-history/{config_id}"))["reports"]
    assert [r["reconciliation_id"] for r in history] == [report["reconciliation_id"]]


async def test_another_user_cannot_see_or_stop_my_copy(
    mesh: Mesh,
    api: RestClient,
    binance: SimAdmin,
    session: aiohttp.ClientSession,
) -> None:
    leader_id, _ = await register_keys(api, binance, "binance", "leader", {"USDT": "1000"})
    follower_id, _ = await register_keys(api, binance, "binance", "follower", {"USDT": "1000"})
    config_id = (
        await api.call(
            "POST",
            "/start",
            {"source_exchange_id": leader_id, "target_exchange_ids": [follower_id]},
        )
    )["config_id"]
    mallory = RestClient(session, mesh.gateway_url, await create_user(mesh, "mallory"))
    for method, path, body in [
        ("GET", f"/status/{config_id}", None),
        ("POST", "/stop", {"config_id": config_id}),
        ("GET", f"/orders/{config_id}", None),
    ]:
        try:
            await mallory.call(method, path, body)
        except ApiError as e:
            assert e.status == 404, (path, e.body)
        else:
            raise AssertionError(f"{path} answered another user's config")
    assert (await mallory.call("GET", "/configs")).get("configs", []) == []
    assert (await api.call("GET", f"/status/{config_id}"))["config"][
        "status"
    ] == "COPY_STATUS_ACTIVE"
