"""A strategy source publishes its trades through the API; a repeated publish copies once."""

from __future__ import annotations

import asyncio
import time

from meshctl.api import ApiError, RestClient, SimAdmin
from meshctl.launcher import Mesh


async def test_a_strategy_publish_repeated_three_times_is_copied_once(
    mesh: Mesh,
    api: RestClient,
    binance: SimAdmin,
) -> None:
    backtest = await api.call("POST", "/backtests", {"name": "trend", "equity": 100000})
    backtest_id = backtest["backtest_id"]
    keys = await binance.create_account({"USDT": "10000"})
    follower_id = (
        await api.call(
            "POST",
            "/exchanges",
            {
                "exchange_name": "binance",
                "api_key": keys["api_key"],
                "api_secret": keys["api_secret"],
            },
        )
    )["exchange"]["exchange_id"]
    config_id = (
        await api.call(
            "POST",
            "/start",
            {"source_backtest_id": backtest_id, "target_exchange_ids": [follower_id]},
        )
    )["config_id"]

    signal = {
        "signal_id": "trend-0001",
        "symbol": "BTC/USDT",
        "side": "buy",
        "quantity": 0.1,
        "price": 50000,
        "order_type": "market",
    }
    replies = [
        await api.call("POST", f"/backtests/{backtest_id}/signals", {"signals": [signal]})
        for _ in range(3)
    ]
    assert [r.get("accepted", 0) for r in replies] == [1, 0, 0]
    assert len({tuple(r["sequences"]) for r in replies}) == 1

    deadline = time.monotonic() + 20
    while not await binance.orders(keys["api_key"]):
        assert time.monotonic() < deadline, "the strategy trade was never copied"
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    orders = await binance.orders(keys["api_key"])
    assert len(orders) == 1
    copied = (await api.call("GET", f"/orders/{config_id}"))["orders"]
    assert [c["signal_id"] for c in copied] == ["trend-0001"]
    assert copied[0]["quantity"] == "0.01"


async def test_publishing_to_another_users_strategy_is_not_found(
    mesh: Mesh,
    api: RestClient,
    session,
    binance: SimAdmin,
) -> None:
    from meshctl.demo import create_user

    backtest_id = (await api.call("POST", "/backtests", {"name": "mine"}))["backtest_id"]
    mallory = RestClient(session, mesh.gateway_url, await create_user(mesh, "mallory"))
    try:
        await mallory.call(
            "POST",
            f"/backtests/{backtest_id}/signals",
            {
                "signals": [
                    {
                        "signal_id": "x",
                        "symbol": "BTC/USDT",
                        "side": "buy",
                        "quantity": 1,
                        "order_type": "market",
                    }
                ]
            },
        )
    except ApiError as e:
        assert e.status == 404
    else:
        raise AssertionError("another user published to my strategy")
