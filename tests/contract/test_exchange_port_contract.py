"""The exchange port contract: the paper venue and the ccxt port against each venue's emulator
(Binance, Coinbase, Kraken) must behave the same (docs/house-style.md II.6, hummingbot's
connector test idea). Venue facts (symbol, filters, paths) are data in each harness; the tests
never branch on a venue's name."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from broker_svc.adapters.paper_exchange import PaperVenue, paper_profile
from broker_svc.adapters.ratelimit import RateLimits
from broker_svc.domain.model import (
    Credentials,
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    StreamEvent,
    StreamState,
    TimeInForce,
    VenueProfile,
    WatchChannel,
)
from broker_svc.ports import ExchangePort
from meshkit import errors

MARK = Decimal("50000")


@dataclass(frozen=True)
class VenueFacts:
    """What a venue's BTC market looks like, and where its order endpoint lives."""

    name: str
    symbol: str
    quote: str
    step: Decimal
    tick: Decimal
    min_notional: Decimal
    create_path: str
    tiny_quantity: str
    tiny_mark: Decimal


BINANCE = VenueFacts(
    "binance",
    "BTC/USDT",
    "USDT",
    Decimal("0.00001"),
    Decimal("0.01"),
    Decimal("5"),
    "/api/v3/order",
    "0.00001",
    MARK,
)
COINBASE = VenueFacts(
    "coinbase",
    "BTC/USD",
    "USD",
    Decimal("0.00000001"),
    Decimal("0.01"),
    Decimal("1"),
    "/api/v3/brokerage/orders",
    "0.00001",
    MARK,
)
KRAKEN = VenueFacts(
    "kraken",
    "BTC/USD",
    "USD",
    Decimal("0.00000001"),
    Decimal("0.1"),
    Decimal("0.5"),
    "/0/private/AddOrder",
    "0.00005",
    Decimal("5000"),
)
FACTS = {facts.name: facts for facts in (BINANCE, COINBASE, KRAKEN)}


class PaperHarness:
    facts = BINANCE

    def __init__(self) -> None:
        self.venue = PaperVenue("binance")
        self.venue.set_price(self.facts.symbol, MARK)
        self.ports: list[ExchangePort] = []

    async def port(self, balances: dict[str, str]) -> ExchangePort:
        port = self.venue.connect(self.venue.add_account(balances))
        self.ports.append(port)
        return port

    async def port_with_bad_secret(self) -> ExchangePort:
        good = self.venue.add_account({"USDT": "1"})
        port = self.venue.connect(Credentials(good.api_key, "wrong"))
        self.ports.append(port)
        return port

    async def set_price(self, symbol: str, price: Decimal) -> None:
        self.venue.set_price(symbol, price)

    async def lose_next_create_reply(self) -> None:
        self.venue.fail("place_order", errors.OutcomeUnknown("504"), execute=True)

    async def close(self) -> None:
        for port in self.ports:
            await port.close()


class EmulatorHarness:
    def __init__(
        self,
        facts: VenueFacts,
        url: str,
        session: aiohttp.ClientSession,
        limits: RateLimits,
    ) -> None:
        from broker_svc.adapters.venues import VENUE_CLASSES

        self.facts = facts
        self.url = url
        self.session = session
        self.limits = limits
        self.cls = VENUE_CLASSES[facts.name]
        self.ports: list[ExchangePort] = []

    async def admin(self, path: str, body: Any) -> Any:
        async with self.session.post(self.url + path, json=body) as response:
            payload = await response.json()
            assert response.status == 200, payload
            return payload

    async def _port(self, credentials: Credentials) -> ExchangePort:
        port = self.cls(credentials, base_url=self.url, timeout_ms=5000, limits=self.limits)
        self.ports.append(port)
        return port

    async def port(self, balances: dict[str, str]) -> ExchangePort:
        made = await self.admin("/_sim/accounts", {"balances": balances})
        return await self._port(Credentials(made["api_key"], made["api_secret"]))

    async def port_with_bad_secret(self) -> ExchangePort:
        mine = await self.admin("/_sim/accounts", {"balances": {self.facts.quote: "1"}})
        other = await self.admin("/_sim/accounts", {"balances": {}})
        return await self._port(Credentials(mine["api_key"], other["api_secret"]))

    async def set_price(self, symbol: str, price: Decimal) -> None:
        await self.admin("/_sim/prices", {"symbol": symbol, "price": str(price)})

    async def lose_next_create_reply(self) -> None:
        await self.admin(
            "/_sim/faults",
            {
                "method": "POST",
                "path": self.facts.create_path,
                "status": 504,
                "execute": True,
                "count": 1,
            },
        )

    async def close(self) -> None:
        for port in self.ports:
            await port.close()


Harness = PaperHarness | EmulatorHarness


ALL_VENUES = ("paper", "binance", "coinbase", "kraken")


def _profile(name: str) -> VenueProfile:
    from broker_svc.adapters.venues import VENUE_CLASSES

    return paper_profile() if name == "paper" else VENUE_CLASSES[name].profile()


def _where(offered: Callable[[VenueProfile], bool], *, book: bool = False) -> Any:
    """Run a test on the venues whose profile offers what it exercises (and, with ``book``,
    only on the emulators: the paper venue fills at the mark without an order book). What a
    venue does not offer is refused by the broker before the port is called; the broker's
    tests check that refusal."""
    names = [n for n in ALL_VENUES if offered(_profile(n)) and not (book and n == "paper")]
    return pytest.mark.parametrize("venue", names, indirect=True)


@pytest.fixture(params=ALL_VENUES)
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """Each implementation of the exchange port, with BTC marked at 50000."""
    if request.param == "paper":
        paper = PaperHarness()
        yield paper
        await paper.close()
        return
    sim = pytest.importorskip("exchange_sim", reason="the emulators are not available")
    cluster = await sim.start_venues((request.param,))
    try:
        async with aiohttp.ClientSession() as session:
            harness = EmulatorHarness(
                FACTS[request.param],
                cluster.urls[request.param],
                session,
                RateLimits(enabled=False),
            )
            await harness.set_price(harness.facts.symbol, MARK)
            yield harness
            await harness.close()
    finally:
        await cluster.close()


def _cid() -> str:
    return str(uuid.uuid4())


def _market(venue: Harness, side: Side, quantity: str, cid: str | None = None) -> OrderRequest:
    return OrderRequest(
        cid or _cid(), venue.facts.symbol, side, OrderType.MARKET, Decimal(quantity)
    )


def _limit(
    venue: Harness,
    side: Side,
    quantity: str,
    price: str,
    tif: TimeInForce = TimeInForce.GTC,
) -> OrderRequest:
    return OrderRequest(
        _cid(),
        venue.facts.symbol,
        side,
        OrderType.LIMIT,
        Decimal(quantity),
        price=Decimal(price),
        time_in_force=tif,
    )


def _near_mark(price: Decimal | None) -> bool:
    return price is not None and abs(price - MARK) / MARK < Decimal("0.01")


async def _next(stream: AsyncIterator[Any], kind: type) -> Any:
    """Return the next item of ``kind`` from a watch, skipping other kinds."""
    while True:
        item = await asyncio.wait_for(anext(stream), timeout=10)
        if isinstance(item, kind):
            return item


async def test_markets_carry_precision_and_minimums(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "1000"})
    market = (await port.load_markets())[venue.facts.symbol]
    assert (market.base, market.quote) == ("BTC", venue.facts.quote)
    assert market.quantity_step == venue.facts.step
    assert market.price_tick == venue.facts.tick
    assert market.min_notional == venue.facts.min_notional


async def test_a_market_buy_fills_near_the_mark_under_the_callers_client_order_id(
    venue: Harness,
) -> None:
    port = await venue.port({venue.facts.quote: "10000"})
    request = _market(venue, Side.BUY, "0.01")
    order = await port.place_order(request)
    assert order.client_order_id == request.client_order_id
    assert order.status is OrderStatus.FILLED
    assert order.filled_quantity == Decimal("0.01") and order.quantity == Decimal("0.01")
    assert _near_mark(order.average_price)
    assert order.venue_order_id


async def test_an_order_is_found_by_its_client_order_id(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "10000"})
    placed = await port.place_order(_market(venue, Side.BUY, "0.01"))
    found = await port.fetch_order(placed.client_order_id, venue.facts.symbol)
    assert (found.venue_order_id, found.client_order_id, found.status) == (
        placed.venue_order_id,
        placed.client_order_id,
        OrderStatus.FILLED,
    )


@_where(lambda profile: not profile.symbol_required_for_lookup)
async def test_an_order_is_found_without_its_symbol_where_the_venue_allows(
    venue: Harness,
) -> None:
    port = await venue.port({venue.facts.quote: "10000"})
    placed = await port.place_order(_limit(venue, Side.BUY, "0.01", "40000"))
    found = await port.fetch_order(placed.client_order_id, "")
    assert (found.venue_order_id, found.status) == (placed.venue_order_id, OrderStatus.OPEN)


async def test_an_unknown_client_order_id_is_order_not_found(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "10"})
    with pytest.raises(errors.NotFound) as caught:
        await port.fetch_order(_cid(), venue.facts.symbol)
    assert caught.value.reason == "ORDER_NOT_FOUND"


async def test_a_limit_below_the_mark_rests_and_cancels_once(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "10000"})
    placed = await port.place_order(_limit(venue, Side.BUY, "0.01", "40000"))
    assert placed.status is OrderStatus.OPEN and placed.filled_quantity == 0
    assert placed.price == Decimal("40000")
    balances = {b.asset: b for b in await port.fetch_balances()}
    assert balances[venue.facts.quote].locked >= Decimal("400")
    cancelled = await port.cancel_order(placed.client_order_id, venue.facts.symbol)
    assert cancelled.status is OrderStatus.CANCELED
    assert cancelled.client_order_id == placed.client_order_id
    assert cancelled.venue_order_id == placed.venue_order_id
    with pytest.raises(errors.NotFound):
        await port.cancel_order(placed.client_order_id, venue.facts.symbol)


async def test_a_resting_limit_fills_when_the_price_crosses_it(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "10000"})
    placed = await port.place_order(_limit(venue, Side.BUY, "0.01", "49000"))
    await venue.set_price(venue.facts.symbol, Decimal("48900"))
    found = await port.fetch_order(placed.client_order_id, venue.facts.symbol)
    assert found.status is OrderStatus.FILLED
    assert found.average_price is not None and found.average_price <= Decimal("49000")


@_where(lambda profile: True, book=True)
async def test_a_limit_larger_than_the_book_fills_partly_and_rests(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "100000"})
    # The emulators' books hold 0.5 BTC a level, the first at mark x 1.0005 (50025).
    order = await port.place_order(_limit(venue, Side.BUY, "1", "50030"))
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.filled_quantity == Decimal("0.5") and order.quantity == Decimal("1")
    found = await port.fetch_order(order.client_order_id, venue.facts.symbol)
    assert (found.status, found.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, Decimal("0.5"))
    fills = await port.fetch_fills([venue.facts.symbol], None)
    assert sum(f.quantity for f in fills if f.venue_order_id == order.venue_order_id) == Decimal(
        "0.5"
    )


async def test_an_open_client_order_id_never_makes_a_second_order(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "10000"})
    request = _limit(venue, Side.BUY, "0.01", "40000")
    first = await port.place_order(request)
    try:
        again = await port.place_order(request)
    except errors.FailedPrecondition as e:
        assert e.reason == "DUPLICATE_CLIENT_ORDER_ID"
    else:  # Coinbase answers a repeat with the first order
        assert again.venue_order_id == first.venue_order_id


async def test_an_order_beyond_the_balance_is_insufficient_funds(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "100"})
    with pytest.raises(errors.FailedPrecondition) as caught:
        await port.place_order(_market(venue, Side.BUY, "0.01"))
    assert caught.value.reason == "INSUFFICIENT_FUNDS"


async def test_an_order_below_the_minimum_notional_is_refused(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "100"})
    await venue.set_price(venue.facts.symbol, venue.facts.tiny_mark)
    with pytest.raises(errors.InvalidArgument) as caught:
        await port.place_order(_market(venue, Side.BUY, venue.facts.tiny_quantity))
    assert caught.value.reason == "BELOW_MIN_NOTIONAL"


async def test_an_unknown_symbol_is_invalid_symbol(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "100"})
    request = OrderRequest(_cid(), "NOPE/USDT", Side.BUY, OrderType.MARKET, Decimal("1"))
    with pytest.raises(errors.InvalidArgument) as caught:
        await port.place_order(request)
    assert caught.value.reason == "INVALID_SYMBOL"


async def test_fills_since_a_time_come_oldest_first(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "10000", "BTC": "1"})
    before = datetime.now(UTC) - timedelta(seconds=2)
    buy = await port.place_order(_market(venue, Side.BUY, "0.01"))
    sell = await port.place_order(_market(venue, Side.SELL, "0.02"))
    fills = await port.fetch_fills([venue.facts.symbol], before)
    assert [f.venue_order_id for f in fills] == [buy.venue_order_id, sell.venue_order_id]
    assert [f.side for f in fills] == [Side.BUY, Side.SELL]
    assert sum((f.quantity for f in fills), Decimal(0)) == Decimal("0.03")
    assert all(_near_mark(f.price) and f.trade_time >= before for f in fills)
    assert all(f.client_order_id in (buy.client_order_id, sell.client_order_id, "") for f in fills)
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert await port.fetch_fills([venue.facts.symbol], later) == []
    everywhere = await port.fetch_fills([], before)
    assert [f.trade_id for f in everywhere] == [f.trade_id for f in fills]


async def test_orders_over_a_window_come_oldest_first(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "10000"})
    start = datetime.now(UTC) - timedelta(seconds=2)
    first = await port.place_order(_market(venue, Side.BUY, "0.01"))
    await asyncio.sleep(0.002)
    second = await port.place_order(_limit(venue, Side.BUY, "0.01", "40000"))
    end = datetime.now(UTC) + timedelta(seconds=2)
    orders = await port.fetch_orders([venue.facts.symbol], start, end)
    assert [o.venue_order_id for o in orders] == [first.venue_order_id, second.venue_order_id]
    assert [o.status for o in orders] == [OrderStatus.FILLED, OrderStatus.OPEN]


async def test_balances_follow_a_trade(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "10000"})
    await port.place_order(_market(venue, Side.BUY, "0.01"))
    balances = {b.asset: b for b in await port.fetch_balances()}
    assert balances["BTC"].free == Decimal("0.01")
    assert Decimal("9400") < balances[venue.facts.quote].total < Decimal("9500.01")


async def test_the_last_price_is_the_mark(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "1"})
    assert await port.fetch_last_price(venue.facts.symbol) == MARK


async def test_candles_follow_the_price_history(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "1"})
    await venue.set_price(venue.facts.symbol, Decimal("51000"))
    await venue.set_price(venue.facts.symbol, Decimal("49000"))
    await venue.set_price(venue.facts.symbol, Decimal("50500"))
    candles = await port.fetch_candles(venue.facts.symbol, "1m", None, 5)
    assert candles and len(candles) <= 5
    last = candles[-1]
    assert last.close == Decimal("50500")
    assert last.high >= Decimal("51000") and last.low <= Decimal("49000")
    assert [c.open_time for c in candles] == sorted(c.open_time for c in candles)
    with pytest.raises(errors.InvalidArgument):
        await port.fetch_candles(venue.facts.symbol, "7m", None, 5)


async def test_a_trade_only_key_reports_trade_without_withdraw(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "1"})
    permissions = await port.fetch_key_permissions()
    assert permissions is not None
    assert (permissions.can_trade, permissions.can_withdraw) == (True, False)


async def test_a_wrong_secret_is_credentials_rejected(venue: Harness) -> None:
    port = await venue.port_with_bad_secret()
    with pytest.raises(errors.FailedPrecondition) as caught:
        await port.fetch_balances()
    assert caught.value.reason == "BROKER_CREDENTIALS_REJECTED"


async def test_a_create_whose_reply_is_lost_is_unknown_and_then_found(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "10000"})
    await venue.lose_next_create_reply()
    request = _market(venue, Side.BUY, "0.01")
    with pytest.raises(errors.OutcomeUnknown) as caught:
        await port.place_order(request)
    assert caught.value.reason == "ORDER_OUTCOME_UNKNOWN"
    found = await port.fetch_order(request.client_order_id, venue.facts.symbol)
    assert found.status is OrderStatus.FILLED


async def test_an_ioc_limit_that_does_not_cross_ends_unfilled(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "10000"})
    order = await port.place_order(_limit(venue, Side.BUY, "0.01", "40000", TimeInForce.IOC))
    assert order.status in (OrderStatus.EXPIRED, OrderStatus.CANCELED)
    assert order.filled_quantity == 0
    balances = {b.asset: b for b in await port.fetch_balances()}
    assert balances[venue.facts.quote].free == Decimal("10000")


@_where(lambda profile: TimeInForce.FOK in profile.time_in_forces, book=True)
async def test_a_fok_limit_that_cannot_fill_whole_ends_unfilled(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "100000"})
    # The book holds 0.5 BTC at the first level: 1 BTC at that price cannot fill whole.
    order = await port.place_order(_limit(venue, Side.BUY, "1", "50030", TimeInForce.FOK))
    assert order.status in (OrderStatus.EXPIRED, OrderStatus.CANCELED)
    assert order.filled_quantity == 0 and order.time_in_force is TimeInForce.FOK


async def test_a_stop_limit_rests_until_its_stop_then_fills(venue: Harness) -> None:
    port = await venue.port({"BTC": "1"})
    request = OrderRequest(
        _cid(),
        venue.facts.symbol,
        Side.SELL,
        OrderType.STOP_LIMIT,
        Decimal("0.1"),
        price=Decimal("44000"),
        stop_price=Decimal("45000"),
        time_in_force=TimeInForce.GTC,
    )
    placed = await port.place_order(request)
    assert (placed.type, placed.status) == (OrderType.STOP_LIMIT, OrderStatus.OPEN)
    assert (placed.price, placed.stop_price) == (Decimal("44000"), Decimal("45000"))
    assert placed.created_at is not None and placed.created_at.year > 2000
    await venue.set_price(venue.facts.symbol, Decimal("44500"))
    found = await port.fetch_order(request.client_order_id, venue.facts.symbol)
    assert found.status is OrderStatus.FILLED
    assert found.average_price is not None and found.average_price >= Decimal("44000")


@_where(lambda profile: OrderType.STOP_MARKET in profile.order_types)
async def test_a_stop_market_order_waits_for_its_stop_where_offered(venue: Harness) -> None:
    port = await venue.port({"BTC": "1"})
    request = OrderRequest(
        _cid(),
        venue.facts.symbol,
        Side.SELL,
        OrderType.STOP_MARKET,
        Decimal("0.1"),
        stop_price=Decimal("45000"),
    )
    placed = await port.place_order(request)
    assert (placed.type, placed.status, placed.stop_price) == (
        OrderType.STOP_MARKET,
        OrderStatus.OPEN,
        Decimal("45000"),
    )
    await venue.set_price(venue.facts.symbol, Decimal("44900"))
    found = await port.fetch_order(request.client_order_id, venue.facts.symbol)
    assert found.status is OrderStatus.FILLED


async def test_a_fill_after_subscribing_arrives_on_the_watch_after_connected(
    venue: Harness,
) -> None:
    port = await venue.port({venue.facts.quote: "10000"})
    stream = port.watch(WatchChannel.FILLS)
    try:
        first = await asyncio.wait_for(anext(stream), timeout=10)
        assert isinstance(first, StreamEvent) and first.state is StreamState.CONNECTED
        placed = await port.place_order(_market(venue, Side.BUY, "0.01"))
        fill = await _next(stream, Fill)
        assert fill.venue_order_id == placed.venue_order_id
        assert fill.client_order_id in (placed.client_order_id, "")
        assert fill.quantity == Decimal("0.01") and _near_mark(fill.price)
    finally:
        await stream.aclose()


async def test_order_updates_arrive_on_the_watch_after_connected(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "10000"})
    stream = port.watch(WatchChannel.ORDERS)
    try:
        first = await asyncio.wait_for(anext(stream), timeout=10)
        assert isinstance(first, StreamEvent) and first.state is StreamState.CONNECTED
        placed = await port.place_order(_limit(venue, Side.BUY, "0.01", "40000"))
        seen = await _next(stream, type(placed))
        assert seen.venue_order_id == placed.venue_order_id
        assert seen.client_order_id == placed.client_order_id
        assert seen.status is OrderStatus.OPEN
        await port.cancel_order(placed.client_order_id, venue.facts.symbol)
        while seen.status is not OrderStatus.CANCELED:
            seen = await _next(stream, type(placed))
        assert seen.quantity == Decimal("0.01")
    finally:
        await stream.aclose()


@_where(
    lambda profile: TimeInForce.POST_ONLY in (profile.time_in_forces_for(OrderType.LIMIT) or ())
)
async def test_a_post_only_limit_rests_and_one_that_would_take_is_refused(venue: Harness) -> None:
    port = await venue.port({venue.facts.quote: "10000"})
    resting = await port.place_order(
        _limit(venue, Side.BUY, "0.01", "40000", TimeInForce.POST_ONLY)
    )
    assert (resting.status, resting.time_in_force) == (OrderStatus.OPEN, TimeInForce.POST_ONLY)
    # Crossing the book it would take: the venue refuses it, nothing is placed or filled.
    with pytest.raises(errors.InvalidArgument):
        await port.place_order(_limit(venue, Side.BUY, "0.01", "60000", TimeInForce.POST_ONLY))
    balances = {b.asset: b for b in await port.fetch_balances()}
    assert balances.get("BTC") is None or balances["BTC"].total == 0
