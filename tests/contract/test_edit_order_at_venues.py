"""Unmodified ccxt 4.5.90 (async) ``edit_order`` against each venue's emulator, the emulator's
admin records as ground truth (docs/exchange-protocols.md "Editing an order"):

- Binance spot: ``POST /api/v3/order/cancelReplace`` cancels the order and places a new one
  with a new id;
- Kraken: ``AmendOrder`` changes the order in place, same txid;
- Coinbase Advanced Trade: ``POST /api/v3/brokerage/orders/edit`` changes the order in place,
  same order id.

An edit of an order the venue does not know is the venue's refusal, and changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import pytest

from exchange_sim import SimCluster, start_venues
from exchange_sim.ccxt_urls import binance_options, point_ccxt_at

D = Decimal


class Venue:
    """One emulator, an admin session on it, and a funded ccxt client."""

    def __init__(self, name: str, cluster: SimCluster, session: aiohttp.ClientSession) -> None:
        self.name, self.cluster, self.session = name, cluster, session
        self.base = cluster.urls[name]
        self.api_key = ""
        self.ex: Any = None

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, self.base + path, json=body) as response:
            payload = await response.json()
            assert response.status == 200, payload
            return payload

    async def orders(self) -> list[dict[str, Any]]:
        return list(await self.admin("GET", f"/_sim/accounts/{self.api_key}/orders"))


_SETUP = {
    "binance": ("BTC/USDT", {"USDT": "10000"}),
    "kraken": ("BTC/USD", {"USD": "10000"}),
    "coinbase": ("BTC/USD", {"USD": "10000"}),
}


@pytest.fixture(params=tuple(_SETUP))
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[Venue]:
    name = request.param
    cluster = await start_venues((name,), ports={name: 0}, rate_limits=False)
    async with aiohttp.ClientSession() as session:
        v = Venue(name, cluster, session)
        creds = await v.admin("POST", "/_sim/accounts", {"balances": _SETUP[name][1]})
        v.api_key = creds["api_key"]
        config: dict[str, Any] = {
            "apiKey": creds["api_key"],
            "secret": creds["api_secret"],
            "enableRateLimit": False,
        }
        if name == "binance":
            config["options"] = binance_options()
        v.ex = getattr(ccxt_async, name)(config)
        point_ccxt_at(v.ex, v.base)
        try:
            yield v
        finally:
            await v.ex.close()
            await cluster.close()


async def test_a_price_change_of_a_resting_limit_moves_it_the_venues_way(venue: Venue) -> None:
    symbol = _SETUP[venue.name][0]
    placed = await venue.ex.create_order(symbol, "limit", "buy", 0.01, 40000)
    edited = await venue.ex.edit_order(placed["id"], symbol, "limit", "buy", 0.01, 41000)
    records = await venue.orders()
    if venue.name == "binance":  # cancel-replace: the old order canceled, a new id resting
        assert edited["id"] != placed["id"] and edited["status"] == "open"
        assert edited["price"] == 41000.0
        assert [(o["status"], D(o["price"])) for o in records] == [
            ("canceled", D(40000)),
            ("new", D(41000)),
        ]
        assert str(records[1]["order_id"]) == edited["id"]
    else:  # amended in place: one order, same id, the new price
        assert [(o["status"], D(o["price"]), D(o["quantity"])) for o in records] == [
            ("new", D(41000), D("0.01"))
        ]
        fetched = await venue.ex.fetch_order(placed["id"], symbol)
        assert fetched["id"] == placed["id"] and fetched["price"] == 41000.0
        assert fetched["status"] == "open"
    balances = await venue.admin("GET", f"/_sim/accounts/{venue.api_key}/balances")
    quote = next(iter(_SETUP[venue.name][1]))
    assert D(balances[quote]["locked"]) >= D(410)  # the hold follows the new price
    assert D(balances[quote]["locked"]) < D(415)


async def test_an_edit_of_an_unknown_order_is_the_venues_refusal(venue: Venue) -> None:
    symbol = _SETUP[venue.name][0]
    await venue.ex.create_order(symbol, "limit", "buy", 0.01, 40000)
    unknown = {
        "binance": "987654",
        "kraken": "OAAAAA-BBBBB-CCCCCC",
        "coinbase": "00000000-0000-4000-8000-000000000000",
    }[venue.name]
    if venue.name == "coinbase":  # HTTP 200 success false; ccxt 4.5.90 raises nothing
        edited = await venue.ex.edit_order(unknown, symbol, "limit", "buy", 0.01, 41000)
        assert edited["info"]["success"] is False
        assert edited["info"]["errors"][0]["edit_failure_reason"] == "ORDER_NOT_FOUND"
    else:
        await _refused(venue, unknown, symbol)
    records = await venue.orders()
    assert [(o["status"], D(o["price"])) for o in records] == [("new", D(40000))]


async def test_an_edit_of_a_filled_order_is_refused_and_changes_nothing(venue: Venue) -> None:
    symbol = _SETUP[venue.name][0]
    placed = await venue.ex.create_order(symbol, "limit", "buy", 0.01, 49000)
    await venue.admin("POST", "/_sim/prices", {"symbol": symbol, "price": "48900"})
    if venue.name == "coinbase":
        edited = await venue.ex.edit_order(placed["id"], symbol, "limit", "buy", 0.01, 41000)
        assert edited["info"]["errors"][0]["edit_failure_reason"] == (
            "ONLY_OPEN_ORDERS_CAN_BE_EDITED"
        )
    else:
        await _refused(venue, placed["id"], symbol)
    records = await venue.orders()
    assert [(o["status"], D(o["price"])) for o in records] == [("filled", D(49000))]


async def _refused(venue: Venue, order_id: str, symbol: str) -> None:
    """Binance: HTTP 400 ``-2022`` whose ``data.cancelResponse`` is ``-2011 Unknown order sent.``
    and nothing placed (STOP_ON_FAILURE; ccxt 4.5.90 raises a plain ExchangeError for it, not
    an OrderNotFound). Kraken: ``EOrder:Unknown order`` (ccxt: InvalidOrder)."""
    if venue.name == "binance":
        with pytest.raises(ccxt.ExchangeError, match="-2022") as raised:
            await venue.ex.edit_order(order_id, symbol, "limit", "buy", 0.01, 41000)
        assert type(raised.value) is ccxt.ExchangeError
        assert '"newOrderResult":"NOT_ATTEMPTED"' in str(raised.value).replace(" ", "")
        assert '"code":-2011' in str(raised.value).replace(" ", "")
    else:
        with pytest.raises(ccxt.InvalidOrder, match="EOrder:Unknown order"):
            await venue.ex.edit_order(order_id, symbol, "limit", "buy", 0.01, 41000)


@pytest.mark.parametrize("venue", ["kraken", "coinbase"], indirect=True)
async def test_an_in_place_edit_changes_the_size_and_a_crossing_price_takes(venue: Venue) -> None:
    symbol = _SETUP[venue.name][0]
    placed = await venue.ex.create_order(symbol, "limit", "buy", 0.01, 40000)
    await venue.ex.edit_order(placed["id"], symbol, "limit", "buy", 0.02, 40000)
    assert [(o["status"], D(o["quantity"])) for o in await venue.orders()] == [("new", D("0.02"))]
    await venue.ex.edit_order(placed["id"], symbol, "limit", "buy", 0.02, 50100)  # above the mark
    fetched = await venue.ex.fetch_order(placed["id"], symbol)
    assert fetched["id"] == placed["id"] and fetched["status"] == "closed"
    assert [(o["status"], D(o["filled_quantity"])) for o in await venue.orders()] == [
        ("filled", D("0.02"))
    ]


@pytest.mark.parametrize("venue", ["binance"], indirect=True)
async def test_binance_cancel_replace_modes_and_a_refused_new_order(venue: Venue) -> None:
    symbol = "BTC/USDT"
    # ALLOW_FAILURE: the cancel of an unknown order fails, the new order is placed anyway.
    with pytest.raises(ccxt.ExchangeError, match="-2021") as raised:
        await venue.ex.edit_order(
            "987654", symbol, "limit", "buy", 0.01, 41000, {"cancelReplaceMode": "ALLOW_FAILURE"}
        )
    text = str(raised.value).replace(" ", "")
    assert '"cancelResult":"FAILURE","newOrderResult":"SUCCESS"' in text
    assert [(o["status"], D(o["price"])) for o in await venue.orders()] == [("new", D(41000))]
    # The cancel succeeds and the venue refuses the new order (funds): HTTP 409 -2021, the old
    # order stays canceled and nothing new rests.
    placed = await venue.ex.create_order(symbol, "limit", "buy", 0.01, 40000)
    with pytest.raises(ccxt.ExchangeError, match="-2021") as raised:
        await venue.ex.edit_order(placed["id"], symbol, "limit", "buy", 1, 40000)
    text = str(raised.value).replace(" ", "")
    assert '"cancelResult":"SUCCESS","newOrderResult":"FAILURE"' in text
    assert '"code":-2010' in text
    assert [(o["status"], D(o["price"])) for o in await venue.orders()] == [
        ("new", D(41000)),
        ("canceled", D(40000)),
    ]
