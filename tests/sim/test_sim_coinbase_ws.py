"""ccxt.pro 4.5.90 ``watch_orders`` over the emulated ``user`` channel; heartbeats; idle close."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import ccxt
import pytest

from exchange_sim import SimCluster
from exchange_sim.coinbase import CoinbaseState
from tests.sim.sim_helpers import Admin, ExchangeFactory
from tests.sim.test_sim_coinbase_support import VENUE, claims_for, make_jwt, new_account

pytest_plugins = ["tests.sim.test_sim_coinbase_support"]  # the cb_* / coinbase fixtures


async def _until(ex: Any, symbol: str, done: Any) -> list[dict[str, Any]]:
    """Call ``watch_orders`` until ``done(orders)`` holds."""
    for _ in range(20):
        orders = await asyncio.wait_for(ex.watch_orders(symbol), 5)
        if done(orders):
            return orders
    raise AssertionError("the expected order update never came")


async def test_watch_orders_sees_the_snapshot_then_a_market_fill(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    ex = await coinbase(await new_account(cb_admin), pro=True)
    resting = await ex.create_order(
        "BTC/USD", "limit", "buy", 0.1, 40000, {"client_order_id": "rest-1"}
    )
    snapshot = await asyncio.wait_for(
        ex.watch_orders("BTC/USD"), 5
    )  # resolves on the subscribe snapshot
    assert [(o["id"], o["status"], o["clientOrderId"]) for o in snapshot] == [
        (resting["id"], "open", "rest-1")
    ]
    placed = await ex.create_order(
        "BTC/USD", "market", "sell", 0.6, None, {"client_order_id": "fill-1"}
    )

    def filled(orders: list[dict[str, Any]]) -> bool:
        return any(o["id"] == placed["id"] and o["status"] == "closed" for o in orders)

    orders = await _until(ex, "BTC/USD", filled)
    final = next(o for o in orders if o["id"] == placed["id"] and o["status"] == "closed")
    assert (final["clientOrderId"], final["filled"], final["side"], final["remaining"]) == (
        "fill-1",
        0.6,
        "sell",
        0.0,
    )
    assert final["average"] == pytest.approx((0.5 * 49975 + 0.1 * 49950) / 0.6)
    assert final["info"]["number_of_fills"] == "2" and final["info"]["order_type"] == "Market"


async def test_watch_orders_sees_a_resting_order_fill_after_a_price_move(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    ex = await coinbase(await new_account(cb_admin), pro=True)
    placed = await ex.create_order("ETH/USD", "limit", "sell", 1, 3100)
    await asyncio.wait_for(ex.watch_orders("ETH/USD"), 5)  # snapshot with the resting order
    waiting = asyncio.create_task(
        _until(ex, "ETH/USD", lambda os: any(o["status"] == "closed" for o in os))
    )
    await asyncio.sleep(0.05)
    await cb_admin.set_price("ETH/USD", "3110")
    orders = await waiting
    assert [o["id"] for o in orders if o["status"] == "closed"] == [placed["id"]]


async def test_watch_my_trades_is_not_supported_by_ccxt_for_coinbase(
    cb_admin: Admin, coinbase: ExchangeFactory
) -> None:
    ex = await coinbase(await new_account(cb_admin), pro=True)
    assert ex.has["watchMyTrades"] is False
    with pytest.raises(ccxt.NotSupported):
        await ex.watch_my_trades("BTC/USD")


async def test_raw_user_channel_authenticates_and_numbers_its_messages(
    cb_sim: SimCluster, cb_admin: Admin
) -> None:
    creds = await new_account(cb_admin)
    other = await new_account(cb_admin)
    ws_url = cb_sim.urls[VENUE].replace("http://", "ws://") + "/ws"
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        forged = make_jwt(
            {"api_key": creds["api_key"], "api_secret": other["api_secret"]},
            claims_for(creds, None),
        )
        await ws.send_json(
            {"type": "subscribe", "channel": "user", "product_ids": [], "jwt": forged}
        )
        assert await ws.receive_json(timeout=5) == {
            "type": "error",
            "message": "authentication failure",
        }
        await ws.send_json({"type": "subscribe", "channel": "level2", "product_ids": ["BTC-USD"]})
        assert (await ws.receive_json(timeout=5))["type"] == "error"
        token = make_jwt(creds, claims_for(creds, None))
        await ws.send_json(
            {"type": "subscribe", "channel": "user", "product_ids": ["LTC-USD"], "jwt": token}
        )
        snapshot, ack = await ws.receive_json(timeout=5), await ws.receive_json(timeout=5)
        assert (
            snapshot["channel"],
            snapshot["events"][0]["type"],
            snapshot["events"][0]["orders"],
        ) == ("user", "snapshot", [])
        assert ack["channel"] == "subscriptions" and ack["events"] == [
            {"subscriptions": {"user": ["LTC-USD"]}}
        ]
        ex_orders = "/api/v3/brokerage/orders"
        body = {
            "client_order_id": "raw-ws",
            "product_id": "LTC-USD",
            "side": "SELL",
            "order_configuration": {"market_market_ioc": {"base_size": "1"}},
        }
        url = cb_sim.urls[VENUE] + ex_orders
        order_token = make_jwt(creds, claims_for(creds, f"POST {url.removeprefix('http://')}"))
        async with session.post(
            url, json=body, headers={"Authorization": f"Bearer {order_token}"}
        ) as response:
            assert (await response.json())["success"] is True
        accepted, fill = await ws.receive_json(timeout=5), await ws.receive_json(timeout=5)
    assert [m["sequence_num"] for m in (snapshot, ack, accepted, fill)] == [0, 1, 2, 3]
    assert (
        accepted["events"][0]["type"] == "update"
        and accepted["events"][0]["orders"][0]["status"] == "OPEN"
    )
    order = fill["events"][0]["orders"][0]
    assert (
        order["client_order_id"],
        order["status"],
        order["cumulative_quantity"],
        order["avg_price"],
        order["total_fees"],
    ) == ("raw-ws", "FILLED", "1", "99.95", "1.1994")


async def test_heartbeats_keep_a_socket_open_that_idles_out_without_them(
    cb_sim: SimCluster, cb_state: CoinbaseState
) -> None:
    cb_state.ws_heartbeat_s, cb_state.ws_idle_close_s = 0.05, 0.3
    ws_url = cb_sim.urls[VENUE].replace("http://", "ws://") + "/ws"
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url) as idle:
            closing = await idle.receive(timeout=5)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        async with session.ws_connect(ws_url) as kept:
            await kept.send_json({"type": "subscribe", "channel": "heartbeats"})
            ack = await kept.receive_json(timeout=5)
            assert ack["events"] == [{"subscriptions": {"heartbeats": ["heartbeats"]}}]
            beats = [await kept.receive_json(timeout=5) for _ in range(8)]  # 0.4 s > the idle limit
            assert [b["events"][0]["heartbeat_counter"] for b in beats] == list(range(1, 9))
            assert (
                beats[0]["channel"] == "heartbeats"
                and " +0000 UTC m=+" in beats[0]["events"][0]["current_time"]
            )
            assert not kept.closed


async def test_an_idle_user_socket_is_closed_and_the_next_watch_resubscribes(
    cb_admin: Admin, cb_state: CoinbaseState, coinbase: ExchangeFactory
) -> None:
    cb_state.ws_idle_close_s = 0.3
    ex = await coinbase(await new_account(cb_admin), pro=True)
    placed = await ex.create_order("LTC/USD", "limit", "buy", 1, 90)
    snapshot = await asyncio.wait_for(ex.watch_orders("LTC/USD"), 5)
    assert [o["id"] for o in snapshot] == [placed["id"]]
    with pytest.raises(ccxt.NetworkError):  # nothing happens for 0.3 s: the venue hangs up
        await asyncio.wait_for(ex.watch_orders("LTC/USD"), 5)
    cb_state.ws_idle_close_s = None
    again = await asyncio.wait_for(ex.watch_orders("LTC/USD"), 5)  # a new socket, a new snapshot
    assert placed["id"] in [o["id"] for o in again]
