"""Typed reports that reconciliation compares, and the report it produces.

Everything is a frozen dataclass over ``Decimal`` and aware UTC ``datetime``; nothing here
does I/O. The three inputs mirror what the other services report: the leader's signals (sync),
the engine's intents, and the venue's orders (broker).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from meshkit.vocabulary import Side


class IntentState(enum.StrEnum):
    """The state of one copied order as the engine recorded it."""

    PENDING = "pending"
    SENT = "sent"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"


PLACED_STATES = frozenset(
    {
        IntentState.ACCEPTED,
        IntentState.PARTIALLY_FILLED,
        IntentState.FILLED,
        IntentState.CANCELED,
        IntentState.EXPIRED,
    }
)
"""States of an intent the venue took: the venue must hold exactly one order for it."""

UNRESOLVED_STATES = frozenset({IntentState.PENDING, IntentState.SENT, IntentState.UNKNOWN})
"""States whose outcome nobody knows yet."""

CLOSED_STATES = frozenset({IntentState.FILLED, IntentState.CANCELED, IntentState.EXPIRED})
"""Placed states in which the engine believes the order no longer rests at the venue."""


class VenueStatus(enum.StrEnum):
    """The status of an order as the venue reports it."""

    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


CORRECTION_SIGNAL_PREFIX = "correction:"
"""The prefix of a correction intent's ``signal_id`` (the engine's ``CorrectPosition``)."""

LIVE_VENUE_STATUSES = frozenset({VenueStatus.OPEN, VenueStatus.PARTIALLY_FILLED})
"""Venue statuses of an order that still rests on the book and may fill further."""


class Outcome(enum.StrEnum):
    """The verdict on one signal for one follower account."""

    MATCHED = "matched"
    MISMATCHED = "mismatched"
    MISSING = "missing"
    DUPLICATE = "duplicate"
    ERROR = "error"
    EXTRA = "extra"


class ItemKind(enum.StrEnum):
    """What one item of a report checks."""

    COPY = "copy"
    """One leader signal for one follower account."""
    ORDER = "order"
    """One venue order no copy made (placed by hand, outside the mesh)."""
    POSITION = "position"
    """One symbol's position at one follower account: the venue against the copies."""
    READ = "read"
    """A service or venue that could not be read (always an ERROR item)."""


@dataclass(frozen=True)
class CopyConfig:
    """What reconciliation needs of a copy configuration."""

    config_id: str
    source_id: str
    target_exchange_ids: tuple[str, ...]
    create_time: datetime | None


@dataclass(frozen=True, slots=True)  # many of them at once: no __dict__ each
class LeaderSignal:
    """One entry of the leader's signal log."""

    source_id: str
    sequence: int
    signal_id: str
    symbol: str
    side: Side | None
    quantity: Decimal | None
    event_time: datetime | None
    is_fill: bool = True
    """A leader fill (judged per follower); False for a change of a leader's resting order
    (order mirroring), whose copies are checked as orders, not as signals."""
    leader_position: Decimal | None = None
    """The leader's position before the fill when sync knew it (on a derivatives market signed,
    negative short)."""
    order_mirrored: bool = False
    """A fill of a leader order an earlier signal mirrored (opened as an order): a configuration
    that mirrored it skips the fill (``order_mirrored``) and its copy is the mirrored order."""
    opened_sequence: int = 0
    """With ``order_mirrored``: the signal whose copies mirror the fill's order (its open, or
    its last amend), else 0."""


@dataclass(frozen=True, slots=True)  # many of them at once: no __dict__ each
class Intent:
    """One copied order: the engine's record of one signal for one follower account."""

    intent_id: str
    source_id: str
    sequence: int
    signal_id: str
    target_exchange_id: str
    client_order_id: str
    symbol: str
    side: Side | None
    state: IntentState | None
    reason: str
    filled_quantity: Decimal
    create_time: datetime | None = None
    quantity: Decimal = Decimal(0)
    """The quantity the engine decided (what the copy should have filled)."""
    leg: int = 0
    """Which order of the signal's copy at the account: 1 for the entry of a copied
    derivatives reverse (after leg 0 closed the position), else 0."""

    @property
    def is_correction(self) -> bool:
        """Return whether the intent is a correction a reconciliation asked the engine for.

        The engine writes a correction with ``signal_id`` ``"correction:<reconciliation id>"``
        and sequence 0 (no signal of the leader's log).
        """
        return self.signal_id.startswith(CORRECTION_SIGNAL_PREFIX)


@dataclass(frozen=True, slots=True)  # many of them at once: no __dict__ each
class VenueOrder:
    """One order as the follower's venue reports it."""

    exchange_id: str
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side | None
    status: VenueStatus
    filled_quantity: Decimal
    create_time: datetime | None = None


@dataclass(frozen=True, slots=True)  # many of them at once: no __dict__ each
class VenueFill:
    """One trade of a follower account as the venue reports it."""

    venue_order_id: str
    client_order_id: str
    symbol: str
    side: Side | None
    quantity: Decimal
    trade_time: datetime | None = None


@dataclass(frozen=True)
class VenuePosition:
    """An open derivatives position of a follower account as the venue reports it."""

    symbol: str
    side: str
    """``"long"`` or ``"short"``."""
    quantity: Decimal
    """The size in the base asset (contracts times the contract size), never negative."""
    entry_price: Decimal | None = None

    @property
    def signed(self) -> Decimal:
        """Return the size, negative for a short."""
        return -self.quantity if self.side == "short" else self.quantity


@dataclass(frozen=True)
class VenueHoldings:
    """What a follower account holds at its venue: balances and derivatives positions."""

    balances: Mapping[str, Decimal]
    """Each asset's total (an asset not listed holds 0)."""
    positions: tuple[VenuePosition, ...] = ()
    """The open derivatives positions (none at a spot venue)."""


@dataclass(frozen=True)
class VenueReport:
    """What one follower account's venue said: its orders, or why it could not be read."""

    exchange_id: str
    orders: tuple[VenueOrder, ...] = ()
    error: str | None = None
    balances: Mapping[str, Decimal] | None = None
    """Each asset's total at the venue (an asset not listed holds 0); ``None`` when unread."""
    balance_error: str | None = None
    """Why the balances could not be read."""
    positions: tuple[VenuePosition, ...] = ()
    """The open derivatives positions, read with the balances."""
    fills: tuple[VenueFill, ...] | None = ()
    """The account's trades in the listed symbols; ``None`` when they could not be read."""
    fills_error: str | None = None
    """Why the fills could not be read."""

    @property
    def readable(self) -> bool:
        """Return whether the venue was read."""
        return self.error is None

    @functools.cached_property
    def orders_by_client_id(self) -> Mapping[str, tuple[VenueOrder, ...]]:
        """The venue's orders by client order id, each id's in the venue's order."""
        found: dict[str, list[VenueOrder]] = {}
        for order in self.orders:
            found.setdefault(order.client_order_id, []).append(order)
        return {key: tuple(value) for key, value in found.items()}


@dataclass(frozen=True, slots=True)  # many of them at once: no __dict__ each
class Item:
    """The verdict on one signal for one follower account, with what was found."""

    sequence: int
    signal_id: str
    target_exchange_id: str
    client_order_id: str
    outcome: Outcome
    detail: str
    intent_state: str
    venue_filled_quantity: Decimal | None
    kind: ItemKind = ItemKind.COPY
    symbol: str = ""
    expected_position: Decimal | None = None
    """For a position: the balance the copies should have left (venue balance minus drift)."""
    venue_position: Decimal | None = None
    """For a position: the venue's balance of the base asset."""
    drift: Decimal | None = None
    """For a position: what the venue holds beyond what the copies should have left."""
    correction_client_order_id: str = ""


@dataclass(frozen=True)
class Counts:
    """How many items a report holds, in total and by outcome."""

    total: int = 0
    matched: int = 0
    mismatched: int = 0
    missing: int = 0
    duplicate: int = 0
    error: int = 0
    extra: int = 0

    @classmethod
    def of(cls, items: Iterable[Item]) -> Counts:
        """Count ``items`` by outcome.

        Parameters
        ----------
        items
            The items of one report.

        Returns
        -------
        Counts
            The total and the count of each outcome; they always add up.
        """
        by_outcome = {outcome: 0 for outcome in Outcome}
        total = 0
        for item in items:
            by_outcome[item.outcome] += 1
            total += 1
        return cls(
            total=total,
            matched=by_outcome[Outcome.MATCHED],
            mismatched=by_outcome[Outcome.MISMATCHED],
            missing=by_outcome[Outcome.MISSING],
            duplicate=by_outcome[Outcome.DUPLICATE],
            error=by_outcome[Outcome.ERROR],
            extra=by_outcome[Outcome.EXTRA],
        )

    def __add__(self, other: Counts) -> Counts:
        """Return the counts of two sets of items together (a report counted as it streams)."""
        return Counts(
            total=self.total + other.total,
            matched=self.matched + other.matched,
            mismatched=self.mismatched + other.mismatched,
            missing=self.missing + other.missing,
            duplicate=self.duplicate + other.duplicate,
            error=self.error + other.error,
            extra=self.extra + other.extra,
        )


@dataclass(frozen=True)
class Report:
    """One reconciliation report; ``items`` is empty when it is listed without them."""

    reconciliation_id: str
    config_id: str
    user_id: str
    start_time: datetime
    end_time: datetime
    created_at: datetime
    counts: Counts
    items: tuple[Item, ...] = ()
    items_paged: bool = False
    """The report holds more items than one reply carries: ``items`` is empty and they are
    read page by page (``ListReconciliationItems``)."""
    complete: bool = True
    """False while the report is being made (its items are still being written)."""
