"""The life of an intent (pure): allowed transitions, venue answers and the resend rule.

```
PENDING → SENT → ACCEPTED → PARTIALLY_FILLED* → FILLED | CANCELED | EXPIRED
        ↘ SKIPPED   ↘ REJECTED
                    ↘ UNKNOWN → (looked up) → any venue state, or SENT again once the venue
                                 has proved it never had the order, or SKIPPED
                                 (``stale_on_resend``) when that proof comes after the
                                 signal's ``max_signal_age``
```
A rate-limited send goes back from SENT to PENDING (the broker refused before sending).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine_svc.domain.decision import Decision
from engine_svc.domain.gate import status_block
from engine_svc.domain.ids import client_order_id
from engine_svc.domain.model import (
    CANCELED_AT_VENUE,
    SLIPPAGE_BAND,
    CopyStatus,
    Intent,
    IntentState,
    OrderStatus,
    Side,
    Signal,
    SkipReason,
    TimeInForce,
    is_derivative,
)
from engine_svc.domain.risk import CLOSE_ALL_REASON, CLOSE_SIGNAL_PREFIX

S = IntentState

_VENUE_STATES = frozenset(
    {
        S.ACCEPTED,
        S.PARTIALLY_FILLED,
        S.FILLED,
        S.CANCELED,
        S.EXPIRED,
        S.REJECTED,
    }
)

TRANSITIONS: dict[IntentState, frozenset[IntentState]] = {
    S.PENDING: frozenset({S.SENT, S.SKIPPED}),
    S.SENT: _VENUE_STATES | {S.UNKNOWN, S.PENDING, S.SENT, S.SKIPPED},
    S.UNKNOWN: _VENUE_STATES | {S.UNKNOWN, S.SENT, S.SKIPPED},
    S.ACCEPTED: frozenset(
        {S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED}
    ),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REJECTED: frozenset(),
    S.SKIPPED: frozenset(),
}

TERMINAL = frozenset(state for state, nexts in TRANSITIONS.items() if not nexts)
UNRESOLVED = frozenset({S.SENT, S.UNKNOWN, S.ACCEPTED, S.PARTIALLY_FILLED})
"""States the resolver looks up at the venue."""
OPEN_AT_VENUE = frozenset({S.ACCEPTED, S.PARTIALLY_FILLED})
"""States in which the venue shows the order open: it can still be cancelled there."""
RESTING = frozenset({S.SENT, S.UNKNOWN}) | OPEN_AT_VENUE
"""States in which an order may rest at the venue (what stop and the kill switch cancel)."""

NOT_FOUND_THRESHOLD = 3
"""Consecutive "not found" answers needed before an unknown order counts as never placed."""


class TransitionError(ValueError):
    """An intent was asked to move to a state it cannot reach from where it is."""


def can_transition(current: IntentState, target: IntentState) -> bool:
    """Return whether an intent in ``current`` may move to ``target``."""
    return target in TRANSITIONS[current]


def check_transition(current: IntentState, target: IntentState) -> None:
    """Raise :class:`TransitionError` unless ``current`` may move to ``target``."""
    if not can_transition(current, target):
        raise TransitionError(f"an intent cannot go from {current} to {target}")


_FROM_ORDER = {
    OrderStatus.OPEN: S.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED: S.PARTIALLY_FILLED,
    OrderStatus.FILLED: S.FILLED,
    OrderStatus.CANCELED: S.CANCELED,
    OrderStatus.EXPIRED: S.EXPIRED,
    OrderStatus.REJECTED: S.REJECTED,
    OrderStatus.UNKNOWN: S.UNKNOWN,
}


def state_from_order(status: OrderStatus) -> IntentState:
    """Return the intent state matching the venue's order status."""
    return _FROM_ORDER[status]


_LEADER_CANCELS = frozenset(
    {
        SkipReason.LEADER_ORDER_CANCELLED.value,
        SkipReason.LEADER_ORDER_AMENDED.value,
        SkipReason.DAILY_LOSS_CANCELLED.value,
    }
)


def outcome_of(intent: Intent, status: OrderStatus) -> tuple[IntentState, str | None]:
    """Return the state (and the reason to record, ``None`` to keep it) for a venue answer.

    An IOC copy is a slippage-banded copy: whatever the venue did not fill inside the band
    expired and is not chased, so its end (expired, or cancelled as some venues say) is
    EXPIRED with reason ``slippage_band``, whatever part of it filled, unless the user's stop
    or kill switch asked for the cancel: then it is CANCELED like any other copy.

    A cancel nobody in the mesh asked for, of an order the engine saw resting (ACCEPTED or
    PARTIALLY_FILLED), is what it is: CANCELED with reason ``canceled_at_venue`` (someone
    cancelled it at the venue), never a slippage band at work, which ends an IOC order as it
    is placed.
    """
    state = state_from_order(status)
    if state is S.CANCELED and intent.cancel_wanted:
        # A leader's cancel or amend (order mirroring), or a daily loss action, wrote its
        # reason with the wish.
        return state, intent.reason if intent.reason in _LEADER_CANCELS else ""
    if state is S.CANCELED and intent.state in OPEN_AT_VENUE:
        return state, CANCELED_AT_VENUE
    if intent.time_in_force is TimeInForce.IOC and state in (S.EXPIRED, S.CANCELED):
        return S.EXPIRED, SLIPPAGE_BAND
    if state is S.REJECTED:
        return state, "venue_rejected"
    if state is not S.UNKNOWN and intent.state in (S.SENT, S.UNKNOWN):
        return state, standing_reason(intent)
    return state, None


def standing_reason(intent: Intent) -> str:
    """Return the reason an intent keeps once the venue answers: why it was written at all.

    A copy of a leader's trade needs none (""); a daily loss ``close_all`` sell keeps
    ``daily_loss_close_all``, so the copied orders say why it was sold.
    """
    if intent.signal_id.startswith(CLOSE_SIGNAL_PREFIX):
        return CLOSE_ALL_REASON
    return ""


SENDABLE: dict[Side, tuple[CopyStatus, ...]] = {
    Side.BUY: (CopyStatus.ACTIVE,),
    Side.SELL: (CopyStatus.ACTIVE, CopyStatus.REDUCING),
}
"""The configuration states in which an order on each side may leave (checked atomically)."""


def exposure_side(intent: Intent) -> Side:
    """Return the side an intent counts as for the states it may leave in (:data:`SENDABLE`).

    Spot: its own side (a sell reduces). Derivatives: a reduce-only order counts as a sell (it
    only reduces), every other order as a buy (it opens or adds, long or short).
    """
    if is_derivative(intent.symbol):
        return Side.SELL if intent.reduce_only else Side.BUY
    return intent.side


def cancelled_on_status(intent: Intent, status: CopyStatus) -> bool:
    """Return whether a resting copy is cancelled when its configuration moves to ``status``.

    A daily loss action's move: REDUCING (``reduce_only``, ``close_all``) cancels the copies
    that would add exposure when they fill (:func:`exposure_side` a buy: on spot a buy, on
    derivatives an order that is not reduce-only); PAUSED (``disable``) cancels every one.
    """
    if status is CopyStatus.PAUSED:
        return True
    return status is CopyStatus.REDUCING and exposure_side(intent) is Side.BUY


def send_block(side: Side, status: CopyStatus) -> SkipReason | None:
    """Return why an order on ``side`` may not leave now that the configuration is ``status``.

    Checked again at send time: a pause, a kill switch or a loss limit that came after the
    intent was written stops it before it reaches the broker.
    """
    return status_block(side, status)


def venue_has_order(state: IntentState) -> bool:
    """Return whether reaching ``state`` proves the venue has (or had) the order."""
    return state in (S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED)


def may_resend(
    not_found_count: int,
    last_sent_at: datetime | None,
    now: datetime,
    lag_seconds: float,
    *,
    fenced_never_placed: bool = False,
) -> bool:
    """Return whether an unknown order is proved never placed, so it may be sent again.

    It takes at least :data:`NOT_FOUND_THRESHOLD` consecutive "not found" answers *and* at
    least ``lag_seconds`` since the last send: right after a send a venue may not show an
    order it has (Binance was measured hiding existing orders for tens of seconds).

    ``fenced_never_placed`` is the other proof, a takeover's: the order was last sent by a
    replica whose lease on its source this one has since taken over, the broker was fenced
    at the new token before the lookup, and the broker has no attempt to place it. The old
    holder never reached a venue with it, and can no longer: it may be sent at once.
    """
    if fenced_never_placed:
        return True
    if not_found_count < NOT_FOUND_THRESHOLD:
        return False
    if last_sent_at is None:
        return True
    return (now - last_sent_at).total_seconds() >= lag_seconds


def resend_is_stale(intent: Intent, now: datetime, max_age_seconds: int) -> bool:
    """Return whether a re-send of ``intent`` at ``now`` would copy a trade too old to copy.

    A re-send is a copy made late: like a signal, it is not sent once the leader's trade is
    older than the configuration's ``max_signal_age``. The intent then ends SKIPPED with
    reason ``stale_on_resend`` (the venue proved it never had the order, so nothing is lost
    that was placed). An intent of no leader signal (sequence 0: the daily loss ``close_all``
    sell, a reconciliation's correction) is the engine's own order, copies no trade and is
    never too old.
    """
    if intent.sequence <= 0 or intent.signal_id.startswith(CLOSE_SIGNAL_PREFIX):
        return False
    return (now - intent.leader_event_time).total_seconds() > max_age_seconds


@dataclass(frozen=True)
class Counters:
    """A configuration's intents grouped by outcome."""

    signals: int = 0
    intents: int = 0
    filled: int = 0
    skipped: int = 0
    rejected: int = 0
    unknown: int = 0
    in_flight: int = 0
    cancelled: int = 0


def count(states: dict[IntentState, int], signals: int) -> Counters:
    """Return the counters of a configuration from its number of intents per state."""

    def total(*wanted: IntentState) -> int:
        return sum(states.get(state, 0) for state in wanted)

    return Counters(
        signals=signals,
        intents=sum(states.values()),
        filled=total(S.FILLED, S.PARTIALLY_FILLED),
        skipped=total(S.SKIPPED),
        rejected=total(S.REJECTED),
        unknown=total(S.UNKNOWN),
        in_flight=total(S.PENDING, S.SENT, S.ACCEPTED),
        cancelled=total(S.CANCELED, S.EXPIRED),
    )


def new_intent(
    intent_id: str,
    config_id: str,
    signal: Signal,
    target_exchange_id: str,
    decision: Decision,
    now: datetime,
    leg: int = 0,
) -> Intent:
    """Return the intent recording ``decision``: PENDING for an order, SKIPPED with its reason.

    The client order id is derived from the intent's key, so rebuilding the intent of the same
    signal for the same account gives the same id.
    """
    return Intent(
        intent_id=intent_id,
        config_id=config_id,
        source_id=signal.source_id,
        sequence=signal.sequence,
        signal_id=signal.signal_id,
        target_exchange_id=target_exchange_id,
        leg=leg,
        client_order_id=client_order_id(
            config_id,
            signal.source_id,
            signal.sequence,
            target_exchange_id,
            leg,
        ),
        symbol=decision.symbol,
        side=signal.side,
        type=decision.order_type,
        quantity=decision.quantity,
        price=decision.price,
        state=S.SKIPPED if decision.skipped else S.PENDING,
        reason=decision.reason,
        leader_quantity=signal.quantity,
        leader_price=signal.price,
        leader_event_time=signal.event_time,
        created_at=now,
        updated_at=now,
        time_in_force=decision.time_in_force,
        stop_price=decision.stop_price,
        reduce_only=decision.reduce_only,
        leverage=decision.leverage,
    )
