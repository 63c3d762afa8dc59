"""Protection between trades: a price fall with no leader trade takes the daily loss action.

Two followers copy one leader on simulated Binance; the BTC price falls 20 % and the leader does
nothing. The ``close_all`` follower's configuration turns reducing and its copied BTC is sold
at the venue (the emulator's records are the truth); the ``disable`` follower's stops copying.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from meshctl.api import ApiError, RestClient, SimAdmin
from meshctl.demo import leader_client, register_keys
from meshctl.launcher import Mesh
from tests.e2e.helpers import wait_for

# One mesh on SQLite (CI's budget): the monitor's store reads and fenced writes run on both
# backends in tests/service/engine_svc/test_engine_risk_monitor.py.
pytestmark = pytest.mark.parametrize("mesh", ["sqlite"], indirect=True)


async def _start(api: RestClient, leader: str, follower: str, action: str) -> str:
    config = await api.call(
        "POST",
        "/start",
        {
            "source_exchange_id": leader,
            "target_exchange_ids": [follower],
            "risk_limits": {"max_daily_loss": 0.05, "daily_loss_action": action},
            "sync_settings": {"sync_interval": 1},
        },
    )
    assert config["config"]["risk_limits"]["daily_loss_action"] == action
    return str(config["config_id"])


async def test_a_price_fall_without_a_leader_trade_closes_or_disables_the_followers(
    mesh: Mesh, api: RestClient, binance: SimAdmin
) -> None:
    await binance.set_price("BTC/USDT", "50000")
    leader, leader_keys = await register_keys(api, binance, "binance", "leader", {"USDT": "100000"})
    closer, closer_keys = await register_keys(api, binance, "binance", "closer", {"USDT": "10000"})
    stopper, stopper_keys = await register_keys(
        api, binance, "binance", "stopper", {"USDT": "10000"}
    )
    with pytest.raises(ApiError) as refused:
        await api.call(
            "POST",
            "/start",
            {
                "source_exchange_id": leader,
                "target_exchange_ids": [closer],
                "risk_limits": {"max_daily_loss": 0.05, "daily_loss_action": "sell_everything"},
            },
        )
    assert refused.value.status == 400
    assert "risk_limits.daily_loss_action" in str(refused.value.body)
    close_all = await _start(api, leader, closer, "close_all")
    disable = await _start(api, leader, stopper, "disable")

    exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
    try:  # half the leader's equity in BTC: each follower copies half of its own
        await exchange.create_order("BTC/USDT", "market", "buy", 1)
    finally:
        await exchange.close()

    async def settled(config_id: str) -> bool:
        # Every copy of the leader's fills (one or more) has its outcome.
        counters = (await api.call("GET", f"/status/{config_id}"))["counters"]
        return int(counters.get("filled", 0)) > 0 and int(counters.get("in_flight", 0)) == 0

    await wait_for(lambda: settled(close_all))
    await wait_for(lambda: settled(disable))

    async def status(config_id: str) -> dict[str, Any]:
        return (await api.call("GET", f"/status/{config_id}"))["config"]

    # The copies recorded the day's start equity (10,000 each); before the fall nothing moves.
    for config_id in (close_all, disable):
        assert (await status(config_id))["status"] == "COPY_STATUS_ACTIVE"

    await binance.set_price("BTC/USDT", "40000")  # -20 % on half the equity: -10 % > 5 %

    async def moved(config_id: str, wanted: str) -> dict[str, Any] | None:
        config = await status(config_id)
        return config if config["status"] == wanted else None

    reducing = await wait_for(lambda: moved(close_all, "COPY_STATUS_REDUCING"))
    assert reducing["status_reason"].startswith("max_daily_loss: account ")
    assert "copied positions are closed" in reducing["status_reason"]
    paused = await wait_for(lambda: moved(disable, "COPY_STATUS_PAUSED"))
    assert paused["status_reason"].endswith("copying is disabled until resumed")

    async def sold() -> list[dict[str, Any]]:
        orders = await binance.orders(closer_keys["api_key"])
        return [
            o
            for o in orders
            if o["side"].lower() == "sell" and o["status"].lower() in ("filled", "closed")
        ]

    sells = await wait_for(sold)
    assert len(sells) == 1
    bought_total = sum(
        Decimal(str(o["filled_quantity"] if "filled_quantity" in o else o["quantity"]))
        for o in await binance.orders(closer_keys["api_key"])
        if o["side"].lower() == "buy"
    )
    # All the copied BTC is sold (less the fee the venue kept in BTC), and never more.
    assert bought_total * Decimal("0.99") <= Decimal(str(sells[0]["quantity"])) <= bought_total
    copied = (await api.call("GET", f"/orders/{close_all}"))["orders"]
    closes = [o for o in copied if o["reason"] == "daily_loss_close_all"]
    assert [o["client_order_id"] for o in closes] == [sells[0]["client_order_id"]]
    assert closes[0]["state"] == "INTENT_STATE_FILLED"
    assert not [o for o in await binance.orders(stopper_keys["api_key"]) if o["side"] == "sell"]
