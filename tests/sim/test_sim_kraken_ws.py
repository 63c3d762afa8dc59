"""ccxt.pro 4.5.90 ``watch_orders`` / ``watch_my_trades`` over the emulated WebSocket v2
``executions`` channel, and the raw frames behind them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import ccxt.pro as ccxt_pro

from meshkit.testing import eventually
from tests.sim.test_sim_kraken_support import (  # noqa: F401  (fixtures by name)
    KrakenAdmin,
    KrakenFactory,
    kadmin_fixture,
    kraken_fixture,
    kraken_sim_fixture,
)


def _orders(ex: ccxt_pro.kraken, symbol: str) -> dict[str, dict[str, Any]]:
    return dict(ex.orders.hashmap.get(symbol, {})) if ex.orders is not None else {}


async def test_watch_orders_and_my_trades_receive_a_fill(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account(), pro=True)
    earlier = await ex.create_order("BTC/USD", "market", "buy", 0.01)  # for the trades snapshot
    snapshot = await asyncio.wait_for(
        ex.watch_my_trades("BTC/USD"), 5
    )  # subscribes with snap_trades
    assert [t["order"] for t in snapshot] == [earlier["id"]]
    assert (
        snapshot[0]["fee"] == {"cost": 1.30065, "currency": "USD"}
        and snapshot[0]["takerOrMaker"] == "taker"
    )
    orders_task = asyncio.create_task(ex.watch_orders("BTC/USD"))
    trades_task = asyncio.create_task(ex.watch_my_trades("BTC/USD"))
    await asyncio.sleep(0.05)
    placed = await ex.create_order(
        "BTC/USD", "market", "buy", 0.6, None, {"clientOrderId": "ws-fill"}
    )
    first_orders = await asyncio.wait_for(orders_task, 5)
    first_trades = await asyncio.wait_for(trades_task, 5)
    assert first_orders[-1]["id"] == placed["id"]
    assert first_trades[0]["order"] == placed["id"] and first_trades[0]["price"] == 50025.0
    await eventually(
        lambda: _orders(ex, "BTC/USD").get(placed["id"], {}).get("status") == "closed", timeout=5
    )
    order = _orders(ex, "BTC/USD")[placed["id"]]
    assert order["amount"] == 0.6 and order["average"] == 50029.16666666
    assert order["info"]["cl_ord_id"] == "ws-fill"
    await eventually(
        lambda: len([t for t in ex.myTrades if t["order"] == placed["id"]]) == 2, timeout=5
    )
    fills = [t for t in ex.myTrades if t["order"] == placed["id"]]
    assert [(t["amount"], t["price"]) for t in fills] == [(0.5, 50025.0), (0.1, 50050.0)]


async def test_watch_orders_sees_a_resting_order_fill_after_a_price_move(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account(), pro=True)
    resting = await ex.create_order("ETH/USD", "limit", "buy", 1, 2900)
    snapshot = await asyncio.wait_for(ex.watch_orders("ETH/USD"), 5)  # open orders snapshot
    assert [(o["id"], o["status"]) for o in snapshot] == [(resting["id"], "open")]
    await kadmin.set_price("ETH/USD", "2890")
    await eventually(lambda: _orders(ex, "ETH/USD")[resting["id"]]["status"] == "closed", timeout=5)
    canceled = await ex.create_order("ETH/USD", "limit", "buy", 1, 2000)
    await ex.cancel_order(canceled["id"])
    await eventually(
        lambda: _orders(ex, "ETH/USD").get(canceled["id"], {}).get("status") == "canceled",
        timeout=5,
    )


async def test_raw_frames_separate_trade_and_filled_messages(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    creds = await kadmin.account()
    ex = await kraken(creds)
    token = (await ex.private_post_getwebsocketstoken())["result"]["token"]
    ws_url = ex.urls["api"]["public"].replace("http://", "ws://") + "/ws-auth/v2"
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        status = json.loads((await ws.receive()).data)
        assert status["channel"] == "status" and status["data"][0]["api_version"] == "v2"
        await ws.send_json(
            {
                "method": "subscribe",
                "params": {"channel": "executions", "token": "bad"},
                "req_id": 7,
            }
        )
        refused = json.loads((await ws.receive()).data)
        assert refused["success"] is False and refused["req_id"] == 7
        await ws.send_json(
            {
                "method": "subscribe",
                "req_id": 8,
                "params": {"channel": "executions", "token": token, "snap_trades": True},
            }
        )
        ack = json.loads((await ws.receive()).data)
        assert ack["success"] is True and ack["result"]["snap_trades"] is True
        snapshots = [json.loads((await ws.receive()).data) for _ in range(2)]
        assert [(m["type"], m["data"]) for m in snapshots] == [("snapshot", []), ("snapshot", [])]
        await ex.create_order("BTC/USD", "market", "sell", 0.7, None, {"userref": 5})
        frames = [json.loads((await ws.receive()).data) for _ in range(5)]
        assert [f["data"][0]["exec_type"] for f in frames] == [
            "pending_new",
            "new",
            "trade",
            "trade",
            "filled",
        ]
        assert all(len(f["data"]) == 1 and f["type"] == "update" for f in frames)
        trade = frames[3]["data"][0]
        assert (trade["order_status"], trade["last_qty"], trade["last_price"]) == (
            "partially_filled",
            0.2,
            49950.0,
        )
        assert trade["liquidity_ind"] == "t" and trade["fees"][0]["asset"] == "USD"
        filled = frames[4]["data"][0]
        assert (filled["order_status"], filled["cum_qty"], filled["order_userref"]) == (
            "filled",
            0.7,
            5,
        )
        assert [f["sequence"] for f in frames] == [3, 4, 5, 6, 7]
        await ws.send_json({"method": "ping", "req_id": 9})
        assert json.loads((await ws.receive()).data)["method"] == "pong"
