"""The correlation limit on the real mesh: the emulators' synthetic history feeds it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from meshctl.api import RestClient, SimAdmin
from meshctl.demo import register_keys
from meshctl.launcher import Mesh

# One mesh on SQLite (CI's budget): nothing here is stored differently by PostgreSQL: the candles
# come from the emulators.
pytestmark = pytest.mark.parametrize("mesh", ["sqlite"], indirect=True)


async def _copied(api: RestClient, config_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        orders = (await api.call("GET", f"/orders/{config_id}"))["orders"]
        settled = [o for o in orders if o.get("state") not in ("INTENT_STATE_PENDING", None)]
        if len(settled) >= count and all(
            o["state"] in ("INTENT_STATE_FILLED", "INTENT_STATE_SKIPPED") for o in settled
        ):
            return orders
        assert time.monotonic() < deadline, f"the copies did not settle: {orders}"
        await asyncio.sleep(0.1)


async def test_correlation_limit_allows_an_unrelated_position_and_refuses_a_correlated_one(
    mesh: Mesh,
    api: RestClient,
    binance: SimAdmin,
) -> None:
    # The emulator starts with 30 days of seeded history in which BTC and ETH move together
    # and BNB on its own; the engine reads it through the broker's ListCandles.
    backtest_id = (await api.call("POST", "/backtests", {"name": "corr", "equity": 100000}))[
        "backtest_id"
    ]
    follower_id, keys = await register_keys(api, binance, "binance", "follower", {"USDT": "10000"})
    config_id = (
        await api.call(
            "POST",
            "/start",
            {
                "source_backtest_id": backtest_id,
                "target_exchange_ids": [follower_id],
                "risk_limits": {"correlation_limit": 0.5},
            },
        )
    )["config_id"]

    def buy(signal_id: str, symbol: str, quantity: float) -> dict[str, Any]:
        return {
            "signal_id": signal_id,
            "symbol": symbol,
            "side": "buy",
            "quantity": quantity,
            "order_type": "market",
        }

    path = f"/backtests/{backtest_id}/signals"
    for count, signal in enumerate(
        [buy("c-btc", "BTC/USDT", 0.1), buy("c-bnb", "BNB/USDT", 10), buy("c-eth", "ETH/USDT", 1)],
        start=1,
    ):
        await api.call("POST", path, {"signals": [signal]})
        copied = await _copied(api, config_id, count)

    outcomes = {o["symbol"]: (o["state"], o.get("reason", "")) for o in copied}
    assert outcomes["BTC/USDT"] == ("INTENT_STATE_FILLED", "")
    assert outcomes["BNB/USDT"] == ("INTENT_STATE_FILLED", "")
    assert outcomes["ETH/USDT"] == ("INTENT_STATE_SKIPPED", "correlation_limit")
    placed = sorted(o["symbol"] for o in await binance.orders(keys["api_key"]))
    assert placed == ["BNB/USDT", "BTC/USDT"]
