"""A strategy source publishes its trades through the API; a repeated publish copies once."""

from __future__ import annotations

import asyncio
import time

from meshctl.api import ApiError, RestClient, SimAdmin
from meshctl.demo import register_keys
from meshctl.launcher import Mesh


async def test_a_strategy_publish_repeated_three_times_is_copied_once(
    mesh: Mesh,
    api: RestClient,
    binance: SimAdmin,
) -> None:
    backtest = await api.call("POST", "/backtests", {"name": "trend", "equity": 100000})
    backtest_id = backtest["backtest_id"]
    follower_id, keys = await register_keys(api, binance, "binance", "follower", {"USDT": "10000"})
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


async def test_strategy_limit_and_stop_orders_reach_the_follower_venue_as_published(
    mesh: Mesh,
    api: RestClient,
    binance: SimAdmin,
) -> None:
    # What each venue takes, as the broker lists it (and enforces at PlaceOrder).
    listed = (await api.call("GET", "/supported-exchanges"))["exchanges"]
    tables = {
        venue["exchange_name"]: {
            entry["order_type"]: entry.get("time_in_forces", [])
            for entry in venue["order_capabilities"]
        }
        for venue in listed
    }
    gtc, ioc, fok, post = (f"TIME_IN_FORCE_{name}" for name in ("GTC", "IOC", "FOK", "POST_ONLY"))
    assert tables["binance"] == {
        "ORDER_TYPE_MARKET": [],
        "ORDER_TYPE_LIMIT": [gtc, ioc, fok, post],
        "ORDER_TYPE_STOP_MARKET": [],
        "ORDER_TYPE_STOP_LIMIT": [gtc, ioc, fok],
    }
    assert tables["coinbase"] == {
        "ORDER_TYPE_MARKET": [],
        "ORDER_TYPE_LIMIT": [gtc, ioc, fok, post],
        "ORDER_TYPE_STOP_LIMIT": [gtc],
    }
    assert tables["kraken"] == {
        "ORDER_TYPE_MARKET": [],
        "ORDER_TYPE_LIMIT": [gtc, ioc, post],
        "ORDER_TYPE_STOP_MARKET": [],
        "ORDER_TYPE_STOP_LIMIT": [gtc],
    }

    backtest_id = (await api.call("POST", "/backtests", {"name": "orders", "equity": 100000}))[
        "backtest_id"
    ]
    follower_id, keys = await register_keys(api, binance, "binance", "follower", {"USDT": "10000"})
    await api.call(
        "POST", "/start", {"source_backtest_id": backtest_id, "target_exchange_ids": [follower_id]}
    )
    common = {"symbol": "BTC/USDT", "side": "buy", "quantity": 0.1}
    signals = [
        {
            **common,
            "signal_id": "fok-1",
            "order_type": "limit",
            "price": 51000,
            "time_in_force": "fok",
        },
        {**common, "signal_id": "stop-1", "order_type": "stop_market", "stop_price": 55000},
    ]
    reply = await api.call("POST", f"/backtests/{backtest_id}/signals", {"signals": signals})
    assert reply["accepted"] == 2

    deadline = time.monotonic() + 20
    while len(orders := await binance.orders(keys["api_key"])) < 2:
        assert time.monotonic() < deadline, f"the strategy orders were not copied: {orders}"
        await asyncio.sleep(0.1)
    seen = sorted(
        (o["type"], o["time_in_force"], o["price"], o["stop_price"], o["status"]) for o in orders
    )
    # The emulator's records: a limit FOK at the published price (never a market order), and a
    # STOP_LOSS (Binance's stop-market, no time in force) at the published trigger, resting.
    assert seen == [
        ("limit", "FOK", "51000", None, "filled"),
        ("stop_loss", None, None, "55000", "new"),
    ]
