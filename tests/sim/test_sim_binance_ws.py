"""ccxt.pro 4.5.90 ``watch_orders`` / ``watch_my_trades`` over the emulated WebSocket API."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

import aiohttp

from exchange_sim import SimCluster
from tests.sim.sim_helpers import Admin, ExchangeFactory


async def _wait_until_subscribed(ex: object, watchers: list[asyncio.Task[object]]) -> None:
    url = ex.urls["api"]["ws"]["ws-api"]["spot"]
    for _ in range(200):
        client = ex.clients.get(url)
        if (
            client is not None
            and "authenticate:signature:spot" not in client.futures
            and "spot" in client.subscriptions
        ):
            return
        for task in watchers:
            if task.done():
                task.result()  # surface a failed subscription
        await asyncio.sleep(0.01)
    raise AssertionError("the user data stream subscription was not confirmed")


async def test_watch_orders_and_my_trades_receive_a_fill(
    admin: Admin, binance: ExchangeFactory
) -> None:
    creds = await admin.account()
    ex = await binance(creds, pro=True)
    orders_task = asyncio.create_task(ex.watch_orders("BTC/USDT"))
    trades_task = asyncio.create_task(ex.watch_my_trades("BTC/USDT"))
    await _wait_until_subscribed(ex, [orders_task, trades_task])
    placed = await ex.create_order(
        "BTC/USDT", "market", "buy", 0.6, None, {"clientOrderId": "ws-fill"}
    )
    orders = await asyncio.wait_for(orders_task, 5)
    trades = await asyncio.wait_for(trades_task, 5)
    assert orders[-1]["id"] == placed["id"] and orders[-1]["clientOrderId"] == "ws-fill"
    assert trades[0]["order"] == placed["id"] and trades[0]["price"] == 50025.0
    assert trades[0]["fee"] == {"cost": 25.0125, "currency": "USDT"}
    while len(ex.myTrades) < 2:  # the second fill (0.1 at 50050) follows
        await asyncio.wait_for(ex.watch_my_trades("BTC/USDT"), 5)
    assert [t["amount"] for t in ex.myTrades] == [0.5, 0.1]
    order = ex.orders.hashmap["BTC/USDT"][placed["id"]]
    assert order["status"] == "closed" and order["filled"] == 0.6


async def test_watch_orders_sees_a_resting_order_fill_after_a_price_move(
    admin: Admin, binance: ExchangeFactory
) -> None:
    creds = await admin.account()
    ex = await binance(creds, pro=True)
    first = asyncio.create_task(ex.watch_orders("ETH/USDT"))
    await _wait_until_subscribed(ex, [first])
    placed = await ex.create_order("ETH/USDT", "limit", "buy", 1, 2900)
    assert (await asyncio.wait_for(first, 5))[-1]["status"] == "open"
    filled = asyncio.create_task(ex.watch_orders("ETH/USDT"))
    await asyncio.sleep(0)
    await admin.set_price("ETH/USDT", "2890")
    orders = await asyncio.wait_for(filled, 5)
    assert orders[-1]["id"] == placed["id"] and orders[-1]["status"] == "closed"


async def test_raw_subscription_pushes_wrapped_events_and_answers_ping(
    sim: SimCluster, admin: Admin
) -> None:
    creds = await admin.account()
    ws_url = sim.urls["binance"].replace("http://", "ws://") + "/ws-api/v3"
    params = {"apiKey": creds["api_key"], "recvWindow": 10000, "timestamp": int(time.time() * 1000)}
    payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    params["signature"] = hmac.new(
        creds["api_secret"].encode(), payload.encode(), hashlib.sha256
    ).hexdigest()
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        await ws.send_json(
            {
                "id": "bad",
                "method": "userDataStream.subscribe.signature",
                "params": {**params, "signature": "0" * 64},
            }
        )
        rejected = await ws.receive_json(timeout=5)
        assert rejected["status"] == 401 and rejected["error"]["code"] == -1022
        await ws.send_json(
            {"id": "1", "method": "userDataStream.subscribe.signature", "params": params}
        )
        reply = await ws.receive_json(timeout=5)
        assert reply["status"] == 200 and isinstance(reply["result"]["subscriptionId"], int)
        await ws.send_json({"id": 2, "method": "ping"})
        assert (await ws.receive_json(timeout=5)) == {
            "id": 2,
            "status": 200,
            "result": {},
            "rateLimits": [],
        }
        status, _, _ = await admin.signed(
            "POST",
            "/api/v3/order",
            creds,
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"},
        )
        assert status == 200
        events = [await ws.receive_json(timeout=5) for _ in range(3)]
    assert all(e["subscriptionId"] == reply["result"]["subscriptionId"] for e in events)
    new, trade, position = (e["event"] for e in events)
    assert (new["e"], new["x"], new["X"], new["t"]) == ("executionReport", "NEW", "NEW", -1)
    assert (trade["x"], trade["X"], trade["l"], trade["L"], trade["n"], trade["N"]) == (
        "TRADE",
        "FILLED",
        "0.00100000",
        "50025.00000000",
        "0.05002500",
        "USDT",
    )
    assert trade["t"] > 0 and trade["m"] is False and trade["Z"] == "50.02500000"
    assert position["e"] == "outboundAccountPosition"
    assert {b["a"]: b["f"] for b in position["B"]} == {
        "BTC": "10.00100000",
        "USDT": "999949.92497500",
    }
    assert json.dumps(new)  # plain JSON, no Decimal leaks
