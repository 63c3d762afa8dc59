"""ccxt.pro 4.5.90 ``watch_orders`` over the emulated WebSocket v2 sees a Kraken ``AmendOrder``
(ccxt ``edit_order``) as the same order, still open, at its new price (``exec_type`` amended)."""

from __future__ import annotations

import asyncio
from typing import Any

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


async def test_watch_orders_sees_an_amend_in_place(
    kadmin: KrakenAdmin, kraken: KrakenFactory
) -> None:
    ex = await kraken(await kadmin.account(), pro=True)
    resting = await ex.create_order("ETH/USD", "limit", "buy", 1, 2900)
    snapshot = await asyncio.wait_for(ex.watch_orders("ETH/USD"), 5)
    assert [(o["id"], o["price"]) for o in snapshot] == [(resting["id"], 2900.0)]
    await ex.edit_order(resting["id"], "ETH/USD", "limit", "buy", 1, 2950)
    await eventually(lambda: _orders(ex, "ETH/USD")[resting["id"]]["price"] == 2950.0, timeout=5)
    assert _orders(ex, "ETH/USD")[resting["id"]]["status"] == "open"
    assert list(_orders(ex, "ETH/USD")) == [resting["id"]]
