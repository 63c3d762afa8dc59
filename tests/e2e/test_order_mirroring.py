"""Order mirroring through the REST API and the emulators: copy_settings.copy_mode "orders".

One mesh, one leader on simulated Binance, followers on Binance and Kraken. The emulators'
records are the truth: a leader's resting limit order appears as a resting follower order of the
same type, side and time in force; the leader's cancel cancels it; a cancel-replace re-prices
it; a stop-limit order is mirrored with its stop; and when a mirrored order fills, the leader's
fill makes no second copy. Alongside, a second leader on simulated Kraken amends its order in
place (ccxt ``edit_order``: Kraken ``AmendOrder``, the same txid, a new price), and its Binance
follower's copy is re-priced.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import aiohttp
import ccxt.async_support as ccxt_async
import pytest

from exchange_sim.ccxt_urls import point_ccxt_at
from meshctl.api import ApiError, RestClient, SimAdmin
from meshctl.demo import leader_client, register_keys
from meshctl.launcher import Mesh

# One mesh on SQLite (CI's budget): the sync and engine stores of order mirroring run on both
# backends in tests/service/sync_svc and tests/service/engine_svc.
pytestmark = pytest.mark.parametrize("mesh", ["sqlite"], indirect=True)

Orders = list[dict[str, Any]]


async def _until(
    check: Callable[[], Awaitable[Any]],
    what: str,
    timeout: float = 20.0,  # noqa: ASYNC109 - a polling deadline
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def _at(orders: Orders, price: str) -> Orders:
    return [o for o in orders if o.get("price") and Decimal(str(o["price"])) == Decimal(price)]


def _status(order: dict[str, Any]) -> str:
    return str(order["status"]).lower()


async def test_leader_orders_are_mirrored_cancelled_amended_and_filled_once(
    mesh: Mesh,
    api: RestClient,
    binance: SimAdmin,
    session: aiohttp.ClientSession,
) -> None:
    kraken = SimAdmin(session, mesh.venue_urls["kraken"])
    await binance.set_price("BTC/USDT", "50000")
    await kraken.set_price("BTC/USD", "50000")
    leader_id, leader_keys = await register_keys(
        api, binance, "binance", "leader", {"USDT": "100000", "BTC": "1"}
    )
    follower_b, keys_b = await register_keys(
        api, binance, "binance", "follower-b", {"USDT": "10000", "BTC": "0.5"}
    )
    follower_k, keys_k = await register_keys(
        api, kraken, "kraken", "follower-k", {"USD": "10000", "BTC": "0.5"}
    )
    body: dict[str, Any] = {
        "source_exchange_id": leader_id,
        "target_exchange_ids": [follower_b, follower_k],
        "copy_settings": {
            "copy_mode": "mirror",
            "sizing_mode": "fixed_quantity",
            "fixed_quantity": "0.01",
        },
        "sync_settings": {"sync_interval": 1},
    }
    try:
        await api.call("POST", "/start", body)
    except ApiError as e:
        assert e.status == 400 and "copy_settings.copy_mode" in str(e.body), e.body
    else:
        raise AssertionError("an unknown copy_mode was accepted")
    body["copy_settings"]["copy_mode"] = "orders"
    config_id = (await api.call("POST", "/start", body))["config_id"]
    amended = asyncio.create_task(_an_in_place_amend_reprices_the_copy(mesh, api, binance, kraken))

    async def both() -> tuple[Orders, Orders]:
        return await binance.orders(keys_b["api_key"]), await kraken.orders(keys_k["api_key"])

    async def mirrored(price: str, status: str = "new") -> tuple[Orders, Orders] | None:
        on_binance, on_kraken = await both()
        found = [o for o in _at(on_binance, price) + _at(on_kraken, price) if _status(o) == status]
        return (on_binance, on_kraken) if len(found) == 2 else None

    leader = leader_client(mesh.venue_urls["binance"], leader_keys)
    try:
        # 1. A resting limit buy (GTC) is mirrored as a resting limit buy, GTC, at its price.
        first = await leader.create_order("BTC/USDT", "limit", "buy", 0.1, 45000)
        on_binance, on_kraken = await _until(lambda: mirrored("45000"), "the limit's copies")
        for order in on_binance + on_kraken:
            assert order["type"].upper() == "LIMIT" and order["side"].upper() == "BUY", order
            assert order["time_in_force"].upper() == "GTC", order
            assert Decimal(str(order["quantity"])) == Decimal("0.01"), order

        # 2. The leader's cancel cancels both copies.
        await leader.cancel_order(first["id"], "BTC/USDT")
        await _until(lambda: mirrored("45000", "canceled"), "the copies cancelled")

        # 3. A post-only limit, then a cancel-replace to a new price: the copy is re-priced.
        second = await leader.create_order(
            "BTC/USDT", "limit", "buy", 0.1, 44000, {"postOnly": True}
        )
        await _until(lambda: mirrored("44000"), "the post-only limit's copies")
        await leader.cancel_order(second["id"], "BTC/USDT")
        await leader.create_order("BTC/USDT", "limit", "buy", 0.1, 44500, {"postOnly": True})
        on_binance, on_kraken = await _until(lambda: mirrored("44500"), "the re-priced copies")
        assert all(_status(o) == "canceled" for o in _at(on_binance + on_kraken, "44000"))
        assert on_binance[-1]["type"].upper() == "LIMIT_MAKER", on_binance[-1]

        # 4. A stop-limit sell is mirrored with its stop price.
        await leader.create_order("BTC/USDT", "limit", "sell", 0.1, 39900, {"stopPrice": 40000})
        on_binance, on_kraken = await _until(lambda: mirrored("39900"), "the stop's copies")
        for order in _at(on_binance + on_kraken, "39900"):
            assert order["type"].upper() == "STOP_LOSS_LIMIT", order
            assert Decimal(str(order["stop_price"])) == Decimal("40000"), order
            assert order["side"].upper() == "SELL", order

        # 5. The price falls through 44500: the leader's order and its copies fill at their
        # venues; the leader's fill is skipped as order_mirrored, and no copy is made of it.
        await binance.set_price("BTC/USDT", "44400")
        await kraken.set_price("BTC/USD", "44400")
        await _until(lambda: mirrored("44500", "filled"), "the copies filled")

        async def skipped_fills() -> list[dict[str, Any]]:
            copied = (await api.call("GET", f"/orders/{config_id}"))["orders"]
            return [o for o in copied if o.get("reason") == "order_mirrored"]

        assert len(await _until(skipped_fills, "the leader's fill recorded")) == 2
        on_binance, on_kraken = await both()
        summary = [
            (o["symbol"], o["side"], o["type"], o["price"], o["status"])
            for o in on_binance + on_kraken
        ]
        assert len(on_binance) == len(on_kraken) == 4, summary
        assert not [o for o in on_binance + on_kraken if o["type"].upper() == "MARKET"]
    finally:
        await leader.close()
        await amended

    status = await api.call("GET", f"/status/{config_id}")
    assert status["config"]["status"] == "COPY_STATUS_ACTIVE", status
    assert status["config"]["copy_settings"]["copy_mode"] == "orders", status


T = TypeVar("T")


async def _sharing_the_key(call: Callable[[], Awaitable[T]]) -> T:
    """Run a Kraken call of a client that shares its API key with the mesh (which reads the
    leader's orders with it): Kraken refuses a nonce not above the key's last one, before doing
    anything, so a call that lost that race to the mesh's own is safe to make again."""
    for _ in range(10):
        try:
            return await call()
        except ccxt_async.InvalidNonce:
            await asyncio.sleep(0.05)
    return await call()


async def _an_in_place_amend_reprices_the_copy(
    mesh: Mesh, api: RestClient, binance: SimAdmin, kraken: SimAdmin
) -> None:
    """A Kraken leader's resting sell (above every price the main flow sets) amended in place
    from 52000 to 52500: its Binance follower's copy at 52000 is canceled and one rests at
    52500, once."""
    leader_id, leader_keys = await register_keys(
        api, kraken, "kraken", "amending-leader", {"USD": "1000", "BTC": "1"}
    )
    follower_id, follower_keys = await register_keys(
        api, binance, "binance", "amend-follower", {"USDT": "1000", "BTC": "0.5"}
    )
    body = {
        "source_exchange_id": leader_id,
        "target_exchange_ids": [follower_id],
        "copy_settings": {
            "copy_mode": "orders",
            "sizing_mode": "fixed_quantity",
            "fixed_quantity": "0.01",
        },
        "sync_settings": {"sync_interval": 1},
    }
    await api.call("POST", "/start", body)

    async def copies(price: str, status: str = "new") -> Orders:
        orders = await binance.orders(follower_keys["api_key"])
        return [o for o in _at(orders, price) if _status(o) == status]

    leader = ccxt_async.kraken(
        {
            "apiKey": leader_keys["api_key"],
            "secret": leader_keys["api_secret"],
            "enableRateLimit": False,
        }
    )
    point_ccxt_at(leader, mesh.venue_urls["kraken"])
    try:
        placed = await _sharing_the_key(
            lambda: leader.create_order("BTC/USD", "limit", "sell", 0.1, 52000)
        )
        await _until(lambda: copies("52000"), "the Kraken leader's limit's copy")
        await _sharing_the_key(
            lambda: leader.edit_order(placed["id"], "BTC/USD", "limit", "sell", 0.1, 52500)
        )
        at_leader = await kraken.orders(leader_keys["api_key"])
        assert [(_status(o), Decimal(str(o["price"]))) for o in at_leader] == [
            ("new", Decimal("52500"))
        ], at_leader  # amended in place: one order at the venue, the new price
        await _until(lambda: copies("52500"), "the re-priced copy")
        await _until(lambda: copies("52000", "canceled"), "the old copy canceled")
        orders = await binance.orders(follower_keys["api_key"])
        assert [(_status(o), o["side"].upper(), o["type"].upper()) for o in orders] == [
            ("canceled", "SELL", "LIMIT"),
            ("new", "SELL", "LIMIT"),
        ], orders
    finally:
        await leader.close()
