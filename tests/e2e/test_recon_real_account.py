"""Reconciling the follower's real account through REST, with the Binance emulator as the truth.

A copy cancelled by hand at the venue and an order placed by hand with the follower's own keys
are what the engine's intents alone never show: reconciliation reports them (mismatched, extra),
names the position drift, and with auto_correct converges the account to what the copies
should have left, through the engine's intent path (the emulator's balance is the proof).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from meshctl.api import RestClient, SimAdmin
from meshctl.demo import leader_client, register_keys
from meshctl.launcher import Mesh
from tests.e2e.helpers import rfc3339, wait_for

SYMBOL = "BTC/USDT"


async def _reconcile(api: RestClient, config_id: str, since: datetime, **settings: Any) -> Any:
    body: dict[str, Any] = {"config_id": config_id, "start_time": rfc3339(since)}
    if settings:
        body["settings"] = settings
    return (await api.call("POST", "/reconcile", body))["report"]


def _kind(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [i for i in report.get("items", []) if i.get("kind") == kind]


async def test_orders_by_hand_and_hand_cancels_are_reported_and_the_drift_corrected(
    mesh: Mesh, api: RestClient, binance: SimAdmin
) -> None:
    leader_id, leader_keys = await register_keys(
        api, binance, "binance", "leader", {"USDT": "100000"}
    )
    follower_id, follower_keys = await register_keys(
        api, binance, "binance", "follower", {"USDT": "10000"}
    )
    started = datetime.now(UTC) - timedelta(seconds=1)
    config_id = (
        await api.call(
            "POST",
            "/start",
            {
                "source_exchange_id": leader_id,
                "target_exchange_ids": [follower_id],
                "risk_limits": {"max_position_size": 0.5, "max_slippage": "0.01"},
                "sync_settings": {"sync_interval": 1},
            },
        )
    )["config_id"]
    leader = leader_client(mesh.venue_urls["binance"], leader_keys)
    follower = leader_client(mesh.venue_urls["binance"], follower_keys)
    try:

        async def copies(count: int, state: str) -> list[dict[str, Any]] | None:
            orders = (await api.call("GET", f"/orders/{config_id}")).get("orders", [])
            done = len(orders) == count and orders[-1]["state"] == state
            return orders if done else None

        # One copy fills; the next rests (matching held) and is cancelled by hand at the venue.
        await leader.create_order(SYMBOL, "market", "buy", 0.1)
        await wait_for(lambda: copies(1, "INTENT_STATE_FILLED"))
        await binance.hold_matching(True, SYMBOL)
        await leader.create_order(SYMBOL, "market", "buy", 0.1)
        resting = (await wait_for(lambda: copies(2, "INTENT_STATE_ACCEPTED")))[-1]
        await follower.cancel_order(resting["venue_order_id"], SYMBOL)
        await binance.hold_matching(False, SYMBOL)
        cancelled = (await wait_for(lambda: copies(2, "INTENT_STATE_CANCELED")))[-1]
        assert cancelled["reason"] == "canceled_at_venue"
        # And the follower buys some BTC by hand, with its own keys.
        by_hand = await follower.create_order(SYMBOL, "market", "buy", 0.002)
    finally:
        await leader.close()
        await follower.close()

    report = await _reconcile(api, config_id, started)

    venue_orders = {o["client_order_id"]: o for o in await binance.orders(follower_keys["api_key"])}
    [copy_item] = [
        i for i in _kind(report, "copy") if i["client_order_id"] == cancelled["client_order_id"]
    ]
    assert copy_item["outcome"] == "ITEM_OUTCOME_MISMATCHED"
    assert "cancelled at the venue, not by the engine" in copy_item["detail"]
    assert venue_orders[cancelled["client_order_id"]]["status"] == "canceled"
    [extra] = _kind(report, "order")
    assert extra["outcome"] == "ITEM_OUTCOME_EXTRA"
    assert extra["client_order_id"] == by_hand["clientOrderId"]
    assert venue_orders[by_hand["clientOrderId"]]["status"] == "filled"
    assert report["extra_count"] == 1
    [position] = _kind(report, "position")
    missing = Decimal(cancelled["quantity"]) - Decimal("0.002")  # not bought, minus bought by hand
    assert position["outcome"] == "ITEM_OUTCOME_MISMATCHED"
    assert Decimal(position["drift"]) == -missing
    held = Decimal((await binance.balances(follower_keys["api_key"]))["BTC"]["free"])
    assert Decimal(position["venue_position"]) == held
    target = Decimal(position["expected_position"])
    assert target == held + missing

    corrected = await _reconcile(api, config_id, started, auto_correct=True)

    [position] = _kind(corrected, "position")
    correction_id = position["correction_client_order_id"]
    assert correction_id and correction_id not in venue_orders

    async def converged() -> bool:
        orders = {o["client_order_id"]: o for o in await binance.orders(follower_keys["api_key"])}
        balances = await binance.balances(follower_keys["api_key"])
        order = orders.get(correction_id)
        done = order is not None and order["status"] == "filled"
        return done and Decimal(balances["BTC"]["free"]) == target

    await wait_for(converged)
    orders = [
        o
        for o in await binance.orders(follower_keys["api_key"])
        if o["client_order_id"] == correction_id
    ]
    assert len(orders) == 1 and orders[0]["side"] == "buy"
    assert Decimal(orders[0]["filled_quantity"]) == missing

    final = await _reconcile(api, config_id, started)
    [position] = _kind(final, "position")
    assert position["outcome"] == "ITEM_OUTCOME_MATCHED", position
