"""The pure diff of order mirroring: what a listing of the leader's orders says changed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from meshkit.vocabulary import OrderStatus, OrderType, Side, TimeInForce
from sync_svc.domain.model import LeaderOrder, SignalKind
from sync_svc.domain.orders import MirroredOrder, OrderChange, changes

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def order(order_id: str, minute: int = 0, **fields: object) -> LeaderOrder:
    base = LeaderOrder(
        order_id=order_id,
        symbol="BTC/USDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        status=OrderStatus.OPEN,
        quantity=D("0.1"),
        filled_quantity=D(0),
        price=D("40000"),
        stop_price=None,
        time_in_force=TimeInForce.GTC,
        created_at=T0 + timedelta(minutes=minute),
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]  # test overrides


def known(o: LeaderOrder, sequence: int) -> MirroredOrder:
    return MirroredOrder(
        o.order_id, o.symbol, o.side, o.type, o.quantity, o.price, o.stop_price,
        o.time_in_force, sequence,
    )  # fmt: skip


def kinds(found: list[OrderChange]) -> list[tuple[SignalKind, str, str, int]]:
    return [(c.kind, c.order.order_id, c.replaced_order_id, c.opened_sequence) for c in found]


def test_only_untouched_resting_limit_and_stop_orders_are_opened() -> None:
    listing = [
        order("limit"),
        order("stop", 1, type=OrderType.STOP_MARKET, price=None, stop_price=D("39000")),
        order("market", 2, type=OrderType.MARKET, price=None),
        order("partly", 3, status=OrderStatus.PARTIALLY_FILLED, filled_quantity=D("0.01")),
        order("done", 4, status=OrderStatus.FILLED),
    ]
    found, closed = changes([], listing)
    assert kinds(found) == [
        (SignalKind.ORDER_OPEN, "limit", "", 0),
        (SignalKind.ORDER_OPEN, "stop", "", 0),
    ]
    assert closed == []
    assert [c.signal_id for c in found] == ["order:limit:open", "order:stop:open"]


def test_a_listing_that_no_longer_shows_an_order_cancels_nothing() -> None:
    assert changes([known(order("a"), 3)], []) == ([], [])


def test_cancel_amend_in_place_and_fill_of_announced_orders() -> None:
    a, b, c = order("a"), order("b", 1), order("c", 2)
    mirrored = [known(a, 3), known(b, 4), known(c, 5)]
    listing = [
        dataclasses.replace(a, status=OrderStatus.CANCELED),
        dataclasses.replace(b, price=D("40500")),
        dataclasses.replace(c, status=OrderStatus.FILLED),
    ]
    found, closed = changes(mirrored, listing)
    assert kinds(found) == [
        (SignalKind.ORDER_CANCEL, "a", "", 3),
        (SignalKind.ORDER_AMEND, "b", "", 4),
    ]
    assert closed == ["c"]
    assert found[1].signal_id == "order:b:amend:4"  # named after the signal it amends


def test_a_cancel_replace_is_one_amend_only_for_the_same_symbol_side_and_type() -> None:
    old = order("old")
    listing = [
        dataclasses.replace(old, status=OrderStatus.CANCELED),
        order("other-side", 1, side=Side.SELL),
        order("new", 2, price=D("40100")),
    ]
    found, _ = changes([known(old, 7)], listing)
    assert kinds(found) == [
        (SignalKind.ORDER_AMEND, "new", "old", 7),
        (SignalKind.ORDER_OPEN, "other-side", "", 0),
    ]
    # The replacement is announced under its opening's id: it is never announced twice.
    assert found[0].signal_id == "order:new:open"


def test_a_pure_cancel_and_a_cancel_replace_together_keep_their_own_reasons() -> None:
    # Two resting buys of one market end in one backfill; one new order appears. The new one
    # is an IOC of about the second's size: it replaces the second, the first is cancelled.
    first = order("first", quantity=D("0.1"))
    second = order("second", 1, quantity=D("0.5"), time_in_force=TimeInForce.IOC)
    listing = [
        dataclasses.replace(first, status=OrderStatus.CANCELED),
        dataclasses.replace(second, status=OrderStatus.CANCELED),
        order("new", 2, quantity=D("0.45"), time_in_force=TimeInForce.IOC),
    ]
    found, _ = changes([known(first, 3), known(second, 4)], listing)
    assert kinds(found) == [
        (SignalKind.ORDER_CANCEL, "first", "", 3),
        (SignalKind.ORDER_AMEND, "new", "second", 4),
    ]


def test_the_closest_quantity_is_the_replaced_order_and_post_only_is_its_own_kind() -> None:
    small, large = order("small", quantity=D("0.1")), order("large", 1, quantity=D("1"))
    ended = [dataclasses.replace(o, status=OrderStatus.CANCELED) for o in (small, large)]
    found, _ = changes(
        [known(small, 3), known(large, 4)], [*ended, order("new", 2, quantity=D("0.9"))]
    )
    assert kinds(found) == [
        (SignalKind.ORDER_CANCEL, "small", "", 3),
        (SignalKind.ORDER_AMEND, "new", "large", 4),
    ]
    # A post-only order does not replace a good-till-cancelled one: a cancel and an open.
    found, _ = changes(
        [known(small, 3)],
        [ended[0], order("maker", 2, time_in_force=TimeInForce.POST_ONLY)],
    )
    assert kinds(found) == [
        (SignalKind.ORDER_CANCEL, "small", "", 3),
        (SignalKind.ORDER_OPEN, "maker", "", 0),
    ]
