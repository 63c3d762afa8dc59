"""Order mirroring (pure): what a listing of the leader's orders says changed since the last one.

The sync service logs a leader's resting orders for configurations in ``copy_mode`` ``orders``.
Each poll lists the leader's orders at its venue and compares them with the orders the log has
announced and not yet seen end (:class:`MirroredOrder`):

- an order resting untouched (status open, nothing filled) that the log has not announced is
  an ``order_open``, if it is a limit, stop-market or stop-limit order;
- an announced order whose price, stop price or quantity changed in place is an ``order_amend``;
- an announced order that the venue shows cancelled, expired or rejected is an
  ``order_cancel``, unless a new order of the same symbol, side, type and time in force (post
  only is one) appears in the same listing: that is a cancel-replace, one ``order_amend``
  naming both. Several ended orders that could each be replaced by one new order: the pair
  with the closest quantities goes first (then the oldest), so a pure cancel stays a cancel;
- an announced order the venue shows filled is closed without a signal (its fills are logged
  as fills that carry ``order_mirrored``);
- an announced order missing from the listing is left as it is: unknown is never "cancelled".

The store, inside the append's transaction, has the last word on exactly once: it never
announces an order one of whose fills is logged, and never announces an order twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from meshkit.vocabulary import OrderStatus, OrderType, Side, TimeInForce
from sync_svc.domain.model import LeaderOrder, SignalKind

MIRRORABLE_TYPES = frozenset({OrderType.LIMIT, OrderType.STOP_MARKET, OrderType.STOP_LIMIT})
"""The leader order types that rest at a venue and are mirrored."""
_ENDED_UNFILLED = frozenset({OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED})


@dataclass(frozen=True)
class MirroredOrder:
    """A leader order the log announced and has not seen end, as last announced."""

    order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    time_in_force: TimeInForce | None
    sequence: int
    """The sequence of the signal that opened or last amended it."""


@dataclass(frozen=True)
class OrderChange:
    """One change to log: an order opened, cancelled or amended (``order`` as it is now)."""

    kind: SignalKind
    order: LeaderOrder
    opened_sequence: int = 0
    replaced_order_id: str = ""

    @property
    def signal_id(self) -> str:
        """Return the log's id of the change: repeating a change never logs it twice.

        An open and a cancel-replace share the id of the new order's opening, so an order is
        announced once, whichever way. An amend in place is named after the signal it amends
        (each amend moves it on), so amending back to an earlier price is a new amend.
        """
        order = self.order
        if self.kind is SignalKind.ORDER_CANCEL:
            return f"order:{order.order_id}:cancel"
        if self.kind is SignalKind.ORDER_AMEND and not self.replaced_order_id:
            return f"order:{order.order_id}:amend:{self.opened_sequence}"
        return f"order:{order.order_id}:open"


def is_mirrorable(order: LeaderOrder) -> bool:
    """Return whether ``order`` rests untouched at the venue and is of a mirrored type."""
    return (
        order.type in MIRRORABLE_TYPES
        and order.status is OrderStatus.OPEN
        and order.filled_quantity == 0
    )


def _amended(known: MirroredOrder, order: LeaderOrder) -> bool:
    return (known.quantity, known.price, known.stop_price) != (
        order.quantity,
        order.price,
        order.stop_price,
    )


def _replaces(known: MirroredOrder, order: LeaderOrder) -> bool:
    # A venue without a time in force rests the order good till cancelled.
    return (known.symbol, known.side, known.type, known.time_in_force or TimeInForce.GTC) == (
        order.symbol,
        order.side,
        order.type,
        order.time_in_force or TimeInForce.GTC,
    )


def _replacements(
    ended: Sequence[MirroredOrder], new: Sequence[LeaderOrder]
) -> dict[str, LeaderOrder]:
    # Each ended order's replacement, if any: among the pairs that may be a cancel-replace,
    # the closest quantities first, then the oldest ended order and the oldest new one.
    pairs = sorted(
        (abs(known.quantity - order.quantity), i, j)
        for i, known in enumerate(ended)
        for j, order in enumerate(new)
        if _replaces(known, order)
    )
    found: dict[str, LeaderOrder] = {}
    taken: set[int] = set()
    for _, i, j in pairs:
        if ended[i].order_id in found or j in taken:
            continue
        found[ended[i].order_id] = new[j]
        taken.add(j)
    return found


def changes(
    mirrored: Iterable[MirroredOrder],
    listing: Sequence[LeaderOrder],
) -> tuple[list[OrderChange], list[str]]:
    """Return the changes to log (in a stable order) and the announced orders to close quietly.

    Parameters
    ----------
    mirrored
        The orders the log announced and has not seen end.
    listing
        The leader's orders as its venue lists them now (any status).

    Returns
    -------
    tuple[list[OrderChange], list[str]]
        The changes, cancels and amends first, then opens, oldest order first; and the ids of
        announced orders the venue shows filled (closed without a signal).
    """
    known = {order.order_id: order for order in mirrored}
    ordered = sorted(listing, key=lambda o: (o.created_at is None, o.created_at, o.order_id))
    new = [o for o in ordered if o.order_id not in known and is_mirrorable(o)]
    replacements = _replacements(
        [known[o.order_id] for o in ordered if o.order_id in known and o.status in _ENDED_UNFILLED],
        new,
    )
    taken: set[str] = set()
    result: list[OrderChange] = []
    closed: list[str] = []
    for order in ordered:
        previous = known.get(order.order_id)
        if previous is None:
            continue
        if order.status is OrderStatus.FILLED:
            closed.append(order.order_id)
        elif order.status in _ENDED_UNFILLED:
            replacement = replacements.get(order.order_id)
            if replacement is None:
                result.append(OrderChange(SignalKind.ORDER_CANCEL, order, previous.sequence))
            else:
                taken.add(replacement.order_id)
                result.append(
                    OrderChange(
                        SignalKind.ORDER_AMEND,
                        replacement,
                        previous.sequence,
                        replaced_order_id=previous.order_id,
                    )
                )
        elif order.status is OrderStatus.OPEN and _amended(previous, order):
            result.append(OrderChange(SignalKind.ORDER_AMEND, order, previous.sequence))
    result += [OrderChange(SignalKind.ORDER_OPEN, o) for o in new if o.order_id not in taken]
    return result, closed
