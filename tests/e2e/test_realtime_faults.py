"""Leader fills reach the follower exactly once while the venue's stream misbehaves.

The leader's fills come over the Binance emulator's WebSocket; the emulator silently drops 10% of
them while pings continue, then closes every stream socket (a dropped connection or an expired
subscription), then the broker itself is killed and restarted. REST backfill must fill every hole,
and the per-source dedupe must keep stream and backfill from copying a fill twice.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from meshctl.api import RestClient, SimAdmin
from meshctl.demo import leader_client
from meshctl.launcher import Mesh

TRADES = 18


async def _register(
    api: RestClient, sim: SimAdmin, balances: dict[str, str]
) -> tuple[str, dict[str, str]]:
    keys = await sim.create_account(balances)
    reply = await api.call(
        "POST",
        "/exchanges",
        {"exchange_name": "binance", "api_key": keys["api_key"], "api_secret": keys["api_secret"]},
    )
    return reply["exchange"]["exchange_id"], keys


async def test_every_leader_fill_is_copied_once_through_drops_closes_and_a_broker_restart(
    mesh: Mesh,
    api: RestClient,
    binance: SimAdmin,
) -> None:
    leader_id, leader_keys = await _register(api, binance, {"USDT": "1000000"})
    follower_id, follower_keys = await _register(api, binance, {"USDT": "100000"})
    config_id = (
        await api.call(
            "POST",
            "/start",
            {
                "source_exchange_id": leader_id,
                "target_exchange_ids": [follower_id],
                "sync_settings": {"sync_interval": 1, "enable_websocket": True},
            },
        )
    )["config_id"]
    await binance._call("POST", "streams", {"drop_fraction": 0.1, "seed": 11})

    exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
    try:
        for index in range(TRADES):
            if index == TRADES // 3:
                closed = await binance._call(
                    "POST", "streams/close", {"reason": "subscription expired"}
                )
                assert closed["closed"] >= 1
            if index == 2 * TRADES // 3:
                mesh.kill("broker")
                mesh.restart("broker")
                await mesh.wait_ready(timeout=30)
            await exchange.create_order("BTC/USDT", "market", "buy", 0.002)
            await asyncio.sleep(0.1)
    finally:
        await exchange.close()

    deadline = time.monotonic() + 60
    while True:
        intents = (await api.call("GET", f"/orders/{config_id}?page_size=1000"))["orders"]
        if len({i["sequence"] for i in intents}) >= TRADES and all(
            i["state"] == "INTENT_STATE_FILLED" for i in intents
        ):
            break
        unfinished = [
            (i["sequence"], i["state"], i.get("reason", ""))
            for i in intents
            if i["state"] != "INTENT_STATE_FILLED"
        ]
        assert time.monotonic() < deadline, (
            f"{len(intents)} copies after 60 s; unfinished {unfinished}"
        )
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.5)  # two more backfills must not copy anything again

    leader_trades = await binance.trades(leader_keys["api_key"])
    follower_orders = await binance.orders(follower_keys["api_key"])
    intents = (await api.call("GET", f"/orders/{config_id}?page_size=1000"))["orders"]
    dropped = (await binance._call("GET", "streams"))["dropped"]
    assert dropped >= 1, "the fault did not drop any stream event"
    assert len(leader_trades) == TRADES
    assert sorted(i["signal_id"] for i in intents) == sorted(
        str(t["trade_id"]) for t in leader_trades
    )
    assert sorted(int(i["sequence"]) for i in intents) == list(range(1, TRADES + 1))
    assert len(follower_orders) == TRADES
    assert len({o["client_order_id"] for o in follower_orders}) == TRADES
    recorded = {i["client_order_id"]: Decimal(i["filled_quantity"]) for i in intents}
    for order in follower_orders:
        assert Decimal(str(order["filled_quantity"])) == recorded[order["client_order_id"]] > 0


async def test_polling_only_at_one_second_copies_every_fill_once(
    mesh: Mesh,
    api: RestClient,
    binance: SimAdmin,
) -> None:
    leader_id, leader_keys = await _register(api, binance, {"USDT": "1000000"})
    follower_id, follower_keys = await _register(api, binance, {"USDT": "100000"})
    config_id = (
        await api.call(
            "POST",
            "/start",
            {
                "source_exchange_id": leader_id,
                "target_exchange_ids": [follower_id],
                "sync_settings": {"sync_interval": 1, "enable_websocket": False},
            },
        )
    )["config_id"]
    exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
    try:
        for _ in range(4):
            await exchange.create_order("BTC/USDT", "market", "buy", 0.002)
    finally:
        await exchange.close()
    deadline = time.monotonic() + 20
    while len(await binance.orders(follower_keys["api_key"])) < 4:
        assert time.monotonic() < deadline, "polling did not copy every fill"
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.2)  # two more polls overlap the same window
    assert len(await binance.orders(follower_keys["api_key"])) == 4
    status = await api.call("GET", f"/status/{config_id}")
    assert status["sync_mode"] == "SYNC_MODE_POLLING"


async def test_a_sync_interval_out_of_range_is_refused_naming_the_field(
    mesh: Mesh,
    api: RestClient,
    binance: SimAdmin,
) -> None:
    from meshctl.api import ApiError

    leader_id, _ = await _register(api, binance, {"USDT": "1000"})
    follower_id, _ = await _register(api, binance, {"USDT": "1000"})
    for interval in (3601, -1):
        try:
            await api.call(
                "POST",
                "/start",
                {
                    "source_exchange_id": leader_id,
                    "target_exchange_ids": [follower_id],
                    "sync_settings": {"sync_interval": interval},
                },
            )
        except ApiError as e:
            assert e.status == 400
            assert "sync_settings.sync_interval" in str(e.body)
        else:
            raise AssertionError(f"sync_interval {interval} was accepted")
    assert (await api.call("GET", "/configs")).get("configs", []) == []
