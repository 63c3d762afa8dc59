"""The pure reconciliation kernel: one verdict per (leader signal, follower account).

``reconcile`` is a pure function of what sync, the engine and the venues reported. It never
guesses: a venue that was not read is "unknown" (an ERROR item), never "flat".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from recon_svc.domain.model import (
    CLOSED_STATES,
    LIVE_VENUE_STATUSES,
    PLACED_STATES,
    UNRESOLVED_STATES,
    Intent,
    IntentState,
    Item,
    LeaderSignal,
    Outcome,
    VenueOrder,
    VenueReport,
    VenueStatus,
)

NOT_READ = "the venue was not read"
UNRESOLVED = "outcome not resolved yet"

_Key = tuple[str, int, str]


def format_quantity(value: Decimal) -> str:
    """Return ``value`` without exponent or trailing zeros (``Decimal('1.50')`` → ``'1.5'``)."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def _venue_problem(report: VenueReport | None) -> str | None:
    if report is None:
        return NOT_READ
    if report.error is not None:
        return f"the venue could not be read: {report.error}"
    return None


def _filled(orders: Sequence[VenueOrder]) -> Decimal | None:
    if not orders:
        return None
    return sum((order.filled_quantity for order in orders), Decimal(0))


def _describe(orders: Sequence[VenueOrder]) -> str:
    return ", ".join(
        f"{order.venue_order_id or '?'} ({order.status.value},"
        f" filled {format_quantity(order.filled_quantity)})"
        for order in orders
    )


def _compare(intent: Intent, order: VenueOrder) -> list[str]:
    differences: list[str] = []
    if intent.side != order.side:
        differences.append(
            f"side: intent {intent.side.value if intent.side else 'none'},"
            f" venue {order.side.value if order.side else 'none'}",
        )
    if intent.symbol != order.symbol:
        differences.append(f"symbol: intent {intent.symbol}, venue {order.symbol}")
    if intent.filled_quantity != order.filled_quantity:
        differences.append(
            f"filled_quantity: intent {format_quantity(intent.filled_quantity)},"
            f" venue {format_quantity(order.filled_quantity)}",
        )
    assert intent.state is not None
    if intent.state in CLOSED_STATES and order.status in LIVE_VENUE_STATUSES:
        differences.append(f"state: intent {intent.state.value}, venue {order.status.value}")
    return differences


def _judge_one(intent: Intent, report: VenueReport | None) -> tuple[Outcome, str, Decimal | None]:
    state = intent.state
    if state is None:
        return Outcome.ERROR, "the engine reported the intent without a state", None
    if state in UNRESOLVED_STATES:
        return Outcome.ERROR, f"{UNRESOLVED} (intent {state.value})", None
    if not intent.client_order_id:
        return Outcome.ERROR, "the intent has no client order id", None
    problem = _venue_problem(report)
    if problem is not None:
        return Outcome.ERROR, problem, None
    assert report is not None
    orders = [o for o in report.orders if o.client_order_id == intent.client_order_id]
    filled = _filled(orders)
    if state is IntentState.SKIPPED:
        if orders:
            return (
                Outcome.MISMATCHED,
                f"skipped ({intent.reason or 'no reason'}) but the venue holds {_describe(orders)}",
                filled,
            )
        return Outcome.MATCHED, intent.reason or "skipped", None
    if state is IntentState.REJECTED:
        live = [o for o in orders if o.filled_quantity > 0 or o.status in LIVE_VENUE_STATUSES]
        if live:
            return (
                Outcome.MISMATCHED,
                f"rejected but the venue holds {_describe(live)}",
                filled,
            )
        detail = f"rejected: {intent.reason}" if intent.reason else "rejected"
        return Outcome.MATCHED, detail, filled
    if state in PLACED_STATES:
        if not orders:
            return Outcome.MISSING, f"intent {state.value} but the venue holds no such order", None
        if len(orders) > 1:
            return (
                Outcome.DUPLICATE,
                f"the venue holds {len(orders)} orders with this client order id: "
                f"{_describe(orders)}",
                filled,
            )
        order = orders[0]
        if order.status is VenueStatus.UNKNOWN:
            return Outcome.ERROR, "the venue reports the order's status as unknown", filled
        differences = _compare(intent, order)
        if differences:
            return Outcome.MISMATCHED, "; ".join(differences), filled
        return (
            Outcome.MATCHED,
            f"{state.value}: filled {format_quantity(order.filled_quantity)} at the venue"
            f" ({order.status.value})",
            filled,
        )
    return Outcome.ERROR, f"unexpected intent state {state.value}", None


def reconcile(
    signals: Iterable[LeaderSignal],
    targets: Iterable[str],
    intents: Iterable[Intent],
    venue_orders: Mapping[str, VenueReport],
) -> list[Item]:
    """Judge every (signal, target account) pair against the engine's intents and the venue.

    Rules for each pair: no intent is MISSING; more than one intent is DUPLICATE. With one
    intent: PENDING, SENT or UNKNOWN is ERROR (outcome not resolved yet); SKIPPED is MATCHED
    (detail = the skip reason) unless the venue holds an order with its client order id
    (MISMATCHED); REJECTED is MATCHED unless the venue holds a filled or resting order with that
    id (MISMATCHED); a placed intent (ACCEPTED, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED)
    needs exactly one venue order with its id (none is MISSING, several is DUPLICATE, which
    catches a venue that accepted a reused id) whose side, symbol and filled quantity equal the
    intent's (exact Decimal equality) and which does not still rest while the engine believes it
    closed; otherwise MISMATCHED, naming what differs. Whenever the verdict needs the venue and
    the venue was not read (no report for the account, or a report with an error), the item is
    ERROR with the reason: a missing report is unknown, never flat.

    Parameters
    ----------
    signals
        The leader's signals in the window. Repeats of one (source, sequence) count once.
    targets
        The follower accounts of the configuration.
    intents
        The engine's intents; those of other signals or accounts are ignored.
    venue_orders
        The venue's report per follower account id.

    Returns
    -------
    list[Item]
        One item per (signal, account), ordered by sequence, then account id.
    """
    by_key: dict[_Key, list[Intent]] = defaultdict(list)
    for intent in intents:
        by_key[(intent.source_id, intent.sequence, intent.target_exchange_id)].append(intent)
    unique: dict[tuple[str, int], LeaderSignal] = {}
    for signal in signals:
        unique.setdefault((signal.source_id, signal.sequence), signal)
    accounts = sorted(set(targets))
    items: list[Item] = []
    for (source_id, sequence), signal in sorted(unique.items(), key=lambda kv: kv[0][1]):
        for account in accounts:
            group = by_key.get((source_id, sequence, account), [])
            items.append(_judge(signal, account, group, venue_orders.get(account)))
    return items


def _judge(
    signal: LeaderSignal,
    account: str,
    group: Sequence[Intent],
    report: VenueReport | None,
) -> Item:
    if not group:
        return Item(
            sequence=signal.sequence,
            signal_id=signal.signal_id,
            target_exchange_id=account,
            client_order_id="",
            outcome=Outcome.MISSING,
            detail="the engine holds no intent for this signal and account",
            intent_state="",
            venue_filled_quantity=None,
        )
    if len(group) > 1:
        states = ",".join(i.state.value if i.state else "none" for i in group)
        return Item(
            sequence=signal.sequence,
            signal_id=signal.signal_id,
            target_exchange_id=account,
            client_order_id="",
            outcome=Outcome.DUPLICATE,
            detail=f"the engine holds {len(group)} intents for this signal and account: "
            + ", ".join(i.client_order_id or i.intent_id for i in group),
            intent_state=states,
            venue_filled_quantity=None,
        )
    intent = group[0]
    outcome, detail, filled = _judge_one(intent, report)
    return Item(
        sequence=signal.sequence,
        signal_id=signal.signal_id,
        target_exchange_id=account,
        client_order_id=intent.client_order_id,
        outcome=outcome,
        detail=detail,
        intent_state=intent.state.value if intent.state else "",
        venue_filled_quantity=filled,
    )
