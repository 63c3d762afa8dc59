"""The pure reconciliation kernel: what the copies should have produced against the venue.

``reconcile`` gives one verdict per (leader signal, follower account); ``extra_orders`` one
item per venue order no copy made (placed by hand); ``positions`` one item per (follower
account, symbol) comparing the venue's position with what the copies should have left. All
are pure functions of what sync, the engine and the venues reported. They never guess: a
venue that was not read is "unknown" (an ERROR item), never "flat".
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from meshkit.vocabulary import Side
from recon_svc.domain.model import (
    CLOSED_STATES,
    LIVE_VENUE_STATUSES,
    PLACED_STATES,
    UNRESOLVED_STATES,
    Intent,
    IntentState,
    Item,
    ItemKind,
    LeaderSignal,
    Outcome,
    VenueFill,
    VenueOrder,
    VenuePosition,
    VenueReport,
    VenueStatus,
)

NOT_READ = "the venue was not read"
UNRESOLVED = "outcome not resolved yet"
CANCELED_AT_VENUE = "canceled_at_venue"
"""The engine's reason for a copy it saw resting and that was cancelled at the venue unasked."""
ORDER_MIRRORED = "order_mirrored"
"""The engine's reason for a leader fill it skipped: its order's mirrored copy is the copy."""
_OPEN_STATES = frozenset({IntentState.ACCEPTED, IntentState.PARTIALLY_FILLED})
_ENDED_UNFILLED = frozenset({VenueStatus.CANCELED, VenueStatus.EXPIRED, VenueStatus.REJECTED})

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
    if intent.state in _OPEN_STATES and order.status in _ENDED_UNFILLED:
        # The engine has not seen it end yet: it ended at the venue without the engine.
        differences.append(f"state: intent {intent.state.value}, venue {order.status.value}")
    if intent.state is IntentState.CANCELED and intent.reason == CANCELED_AT_VENUE:
        differences.append(
            "cancelled at the venue, not by the engine: the copy should have filled"
            f" {format_quantity(max(intent.quantity, intent.filled_quantity))},"
            f" the venue filled {format_quantity(order.filled_quantity)}"
        )
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
    orders = list(report.orders_by_client_id.get(intent.client_order_id, ()))
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

    A fill of a mirrored leader order skipped as ``order_mirrored`` is judged by the mirrored
    copy (the intent of the signal's ``opened_sequence`` at the account, which must be among
    ``intents``): the rules above applied to that copy, so a copy cancelled at the venue is
    MISMATCHED; a mirrored copy that was not read (made before the intents read) is ERROR.

    Parameters
    ----------
    signals
        The leader's signals in the window. Repeats of one (source, sequence) count once.
    targets
        The follower accounts of the configuration.
    intents
        The engine's intents, with the mirrored copies of the window's mirrored fills; those
        of other signals or accounts are ignored.
    venue_orders
        The venue's report per follower account id.

    Returns
    -------
    list[Item]
        One item per (signal, account), ordered by sequence, then account id; then one per
        further leg the engine wrote (a copied derivatives reverse's entry, leg 1), judged the
        same way on its own.
    """
    by_key: dict[_Key, list[Intent]] = defaultdict(list)
    later_legs: dict[tuple[str, int, str, int], list[Intent]] = defaultdict(list)
    for intent in intents:
        if intent.leg:
            key = (intent.source_id, intent.sequence, intent.target_exchange_id, intent.leg)
            later_legs[key].append(intent)
            continue
        by_key[(intent.source_id, intent.sequence, intent.target_exchange_id)].append(intent)
    unique: dict[tuple[str, int], LeaderSignal] = {}
    for signal in signals:
        unique.setdefault((signal.source_id, signal.sequence), signal)
    accounts = sorted(set(targets))
    items: list[Item] = []
    for (source_id, sequence), signal in sorted(unique.items(), key=lambda kv: kv[0][1]):
        for account in accounts:
            group = by_key.get((source_id, sequence, account), [])
            mirror = by_key.get((source_id, signal.opened_sequence, account), [])
            items.append(_judge(signal, account, group, venue_orders.get(account), mirror))
            for (*_, leg), legged in sorted(
                (k, v) for k, v in later_legs.items() if k[:3] == (source_id, sequence, account)
            ):
                judged = _judge(signal, account, legged, venue_orders.get(account))
                items.append(replace(judged, detail=f"leg {leg}: {judged.detail}"))
    return items


def _judge(
    signal: LeaderSignal,
    account: str,
    group: Sequence[Intent],
    report: VenueReport | None,
    mirror: Sequence[Intent] = (),
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
    if outcome is Outcome.MATCHED and _skipped_as_mirrored(intent, signal):
        return _judge_mirrored(signal, account, intent, mirror, report)
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


def _skipped_as_mirrored(intent: Intent, signal: LeaderSignal) -> bool:
    return (
        intent.state is IntentState.SKIPPED
        and intent.reason == ORDER_MIRRORED
        and signal.order_mirrored
        and signal.opened_sequence > 0
    )


def _judge_mirrored(
    signal: LeaderSignal,
    account: str,
    skipped: Intent,
    mirror: Sequence[Intent],
    report: VenueReport | None,
) -> Item:
    # The fill was not copied because the leader's order was mirrored: the mirrored copy is
    # the copy, and the fill is matched only when that copy is.
    where = f"the mirrored copy (signal {signal.opened_sequence})"
    if not mirror:
        return Item(
            sequence=signal.sequence,
            signal_id=signal.signal_id,
            target_exchange_id=account,
            client_order_id=skipped.client_order_id,
            outcome=Outcome.ERROR,
            detail=f"{ORDER_MIRRORED}, but {where} was not read (made before the intents read)",
            intent_state=skipped.state.value if skipped.state else "",
            venue_filled_quantity=None,
        )
    if len(mirror) > 1:
        return Item(
            sequence=signal.sequence,
            signal_id=signal.signal_id,
            target_exchange_id=account,
            client_order_id="",
            outcome=Outcome.DUPLICATE,
            detail=f"{ORDER_MIRRORED}, but the engine holds {len(mirror)} mirrored copies"
            f" (signal {signal.opened_sequence}): "
            + ", ".join(i.client_order_id or i.intent_id for i in mirror),
            intent_state=",".join(i.state.value if i.state else "none" for i in mirror),
            venue_filled_quantity=None,
        )
    copy = mirror[0]
    outcome, detail, filled = _judge_one(copy, report)
    return Item(
        sequence=signal.sequence,
        signal_id=signal.signal_id,
        target_exchange_id=account,
        client_order_id=copy.client_order_id,
        outcome=outcome,
        detail=f"{ORDER_MIRRORED}: {where} {copy.client_order_id}: {detail}",
        intent_state=copy.state.value if copy.state else "",
        venue_filled_quantity=filled,
    )


def mirrored_fills(signals: Iterable[LeaderSignal]) -> dict[tuple[str, int], int]:
    """Return, for each fill of a mirrored leader order, the signal whose copies mirror it.

    Keyed by the fill's (source, sequence); the value is its ``opened_sequence``.
    """
    return {
        (s.source_id, s.sequence): s.opened_sequence
        for s in signals
        if s.is_fill and s.order_mirrored and s.opened_sequence > 0
    }


def is_mesh_client_order_id(client_order_id: str) -> bool:
    """Return whether a venue order's client order id is one the mesh makes.

    The engine derives every client order id as a UUIDv5 (docs/mesh-conventions.md "Ids,
    money, time"): a canonical lower-case UUID of version 5. An order placed by hand carries
    the venue's own id or none, never that.
    """
    if len(client_order_id) != 36:
        return False
    try:
        parsed = uuid.UUID(client_order_id)
    except ValueError:
        return False
    return str(parsed) == client_order_id and parsed.version == 5


def base_asset(symbol: str) -> str:
    """Return the base asset of a ccxt unified symbol (``"BTC/USDT"`` → ``"BTC"``)."""
    return symbol.split("/", 1)[0].split(":", 1)[0]


def is_derivative(symbol: str) -> bool:
    """Return whether a ccxt unified symbol names a derivatives market (``"BTC/USDT:USDT"``)."""
    return ":" in symbol


def position_side(signed: Decimal) -> str:
    """Return the side of a signed derivatives position: ``long``, ``short`` or ``flat``."""
    if signed == 0:
        return "flat"
    return "long" if signed > 0 else "short"


def _signed(side: Side | None, quantity: Decimal) -> Decimal:
    return -quantity if side is Side.SELL else quantity


def _in_window(order: VenueOrder, start: datetime, end: datetime) -> bool:
    return order.create_time is None or start <= order.create_time < end


def _fill_in_window(fill: VenueFill, start: datetime, end: datetime) -> bool:
    return fill.trade_time is None or start <= fill.trade_time < end


def _unlisted_fills(report: VenueReport) -> list[VenueFill]:
    # Fills of orders the order listing did not hold (placed before it began).
    listed = {order.venue_order_id for order in report.orders if order.venue_order_id}
    return [f for f in report.fills or () if f.venue_order_id not in listed]


def _by_hand(order: VenueOrder, known_ids: Collection[str]) -> bool:
    return order.client_order_id not in known_ids and not is_mesh_client_order_id(
        order.client_order_id
    )


def read_error(what: str, problem: str, account: str = "") -> Item:
    """Return the ERROR item saying that ``what`` could not be read, and why."""
    return Item(
        sequence=0,
        signal_id="",
        target_exchange_id=account,
        client_order_id="",
        outcome=Outcome.ERROR,
        detail=f"{what} could not be read: {problem}",
        intent_state="",
        venue_filled_quantity=None,
        kind=ItemKind.READ,
    )


def extra_orders(
    venue_orders: Mapping[str, VenueReport],
    known_ids: Collection[str],
    start: datetime,
    end: datetime,
) -> list[Item]:
    """Report every venue order no copy made: one EXTRA item per order placed by hand.

    An order is the mesh's when its client order id is one of the configuration's intents'
    (``known_ids``) or has the mesh's form (:func:`is_mesh_client_order_id`: another
    configuration's copy, or a copy of a signal outside the window); any other order the
    venue created in ``[start, end)`` was placed outside the mesh.

    Parameters
    ----------
    venue_orders
        The venue's report per follower account; unread ones are skipped (``positions``
        and the copy items say they were not read).
    known_ids
        The client order ids of the configuration's intents.
    start, end
        The window of venue creation times.

    Returns
    -------
    list[Item]
        ``kind`` "order", by account, then the venue's order (oldest first); then one per
        order the listing did not hold (placed before the window) whose fills by hand fall in
        the window.
    """
    items: list[Item] = []
    for account in sorted(venue_orders):
        report = venue_orders[account]
        if not report.readable:
            continue
        for order in report.orders:
            if not _by_hand(order, known_ids) or not _in_window(order, start, end):
                continue
            side = order.side.value if order.side else "?"
            items.append(
                Item(
                    sequence=0,
                    signal_id="",
                    target_exchange_id=account,
                    client_order_id=order.client_order_id,
                    outcome=Outcome.EXTRA,
                    detail=(
                        f"an order no copy made (placed outside the mesh): {side}"
                        f" {order.symbol}, {_describe([order])}"
                    ),
                    intent_state="",
                    venue_filled_quantity=order.filled_quantity,
                    kind=ItemKind.ORDER,
                    symbol=order.symbol,
                )
            )
        items.extend(_extra_fills(account, report, known_ids, start, end))
    return items


def _extra_fills(
    account: str,
    report: VenueReport,
    known_ids: Collection[str],
    start: datetime,
    end: datetime,
) -> list[Item]:
    # One EXTRA item per unlisted order whose fills were made by hand in the window.
    by_order: dict[str, list[VenueFill]] = defaultdict(list)
    for fill in _unlisted_fills(report):
        if _fill_by_hand(fill, known_ids) and _fill_in_window(fill, start, end):
            by_order[fill.venue_order_id].append(fill)
    items: list[Item] = []
    for venue_order_id, fills in by_order.items():
        first = fills[0]
        filled = sum((f.quantity for f in fills), Decimal(0))
        side = first.side.value if first.side else "?"
        items.append(
            Item(
                sequence=0,
                signal_id="",
                target_exchange_id=account,
                client_order_id=first.client_order_id,
                outcome=Outcome.EXTRA,
                detail=(
                    f"fills of an order no copy made (placed outside the mesh, before the"
                    f" window): {side} {first.symbol}, {venue_order_id or '?'} filled"
                    f" {format_quantity(filled)} in the window"
                ),
                intent_state="",
                venue_filled_quantity=filled,
                kind=ItemKind.ORDER,
                symbol=first.symbol,
            )
        )
    return items


def _fill_by_hand(fill: VenueFill, known_ids: Collection[str]) -> bool:
    return fill.client_order_id not in known_ids and not is_mesh_client_order_id(
        fill.client_order_id
    )


def expected_fill(intent: Intent) -> Decimal | None:
    """Return what the copy should have filled, or ``None`` while its outcome is unknown.

    Skipped and rejected copies should fill nothing; a copy cancelled at the venue without
    the engine (``canceled_at_venue``) should have filled its whole quantity; any other
    outcome the engine recorded from the venue (filled, part-filled, expired in its slippage
    band, cancelled by the user's stop) is what it should have filled.
    """
    state = intent.state
    if state is None or state in UNRESOLVED_STATES:
        return None
    if state in (IntentState.SKIPPED, IntentState.REJECTED):
        return Decimal(0)
    if state is IntentState.CANCELED and intent.reason == CANCELED_AT_VENUE:
        return max(intent.quantity, intent.filled_quantity)
    return intent.filled_quantity


def leader_positions_after(signals: Iterable[LeaderSignal]) -> dict[int, Decimal]:
    """Return the leader's signed position after each derivatives fill, by sequence.

    Only fills whose position before is known (sync's ``leader_position``) are given: that
    position plus the fill, signed by its side.
    """
    found: dict[int, Decimal] = {}
    for signal in signals:
        if not signal.is_fill or not is_derivative(signal.symbol):
            continue
        if signal.leader_position is None or signal.quantity is None:
            continue
        found[signal.sequence] = signal.leader_position + _signed(signal.side, signal.quantity)
    return found


def positions(
    symbols: Mapping[str, Collection[str]],
    intents: Iterable[Intent],
    venue_orders: Mapping[str, VenueReport],
    known_ids: Collection[str],
    start: datetime,
    end: datetime,
    leader_after: Mapping[int, Decimal] | None = None,
    mirrored: Mapping[tuple[str, int], int] | None = None,
) -> list[Item]:
    """Compare, per (follower account, symbol), the venue's position with the copies' target.

    The copies' target change is the signed sum of :func:`expected_fill` over the copies of
    the window's signals; for a fill skipped as ``order_mirrored`` that is its mirrored copy
    (``intents`` must hold it; one not read makes the item ERROR), so a mirrored copy
    cancelled at the venue is drift. The venue's change is the signed sum of what its orders filled:
    those of the copies and of the configuration's corrections (intents whose ``signal_id``
    starts with ``correction:``), and those placed by hand in ``[start, end)``; orders of other
    configurations (the mesh's form, not one of ``known_ids``) are left out. Fills of orders
    the listing did not hold (placed before it began) count the same way, by hand only when
    traded in ``[start, end)``; unread fills make the item ERROR. The drift is the
    venue's change minus the target's: 0 is MATCHED, anything else MISMATCHED. The venue's
    balance of the base asset is the position; the expected position is that balance minus
    the drift.
    A copy whose outcome is not known yet, an unread venue or unread balances make the item
    ERROR (the drift is given when it could be measured).

    Parameters
    ----------
    symbols
        The symbols to check per follower account.
    intents
        The copies of the window's signals and the configuration's corrections.
    venue_orders
        The venue's report (orders and balances) per follower account.
    known_ids
        The client order ids of all the configuration's intents that were read.
    start, end
        The window of venue creation times for orders placed by hand.
    leader_after
        On derivatives markets: the leader's signed position after each fill, by sequence
        (:func:`leader_positions_after`); the item's detail names the leader's position after
        the last fill the copies followed and what share of it the follower should hold.
    mirrored
        The window's fills of mirrored leader orders and the signal whose copies mirror each
        (:func:`mirrored_fills`).

    Returns
    -------
    list[Item]
        ``kind`` "position", by account, then symbol.
    """
    by_key: dict[tuple[str, str], list[Intent]] = defaultdict(list)
    for intent in intents:
        by_key[(intent.target_exchange_id, intent.symbol)].append(intent)
    items: list[Item] = []
    for account in sorted(symbols):
        report = venue_orders.get(account)
        for symbol in sorted(symbols[account]):
            items.append(
                _position(
                    account,
                    symbol,
                    by_key.get((account, symbol), []),
                    report,
                    known_ids,
                    start,
                    end,
                    leader_after or {},
                    mirrored or {},
                )
            )
    return items


def _position(
    account: str,
    symbol: str,
    intents: Sequence[Intent],
    report: VenueReport | None,
    known_ids: Collection[str],
    start: datetime,
    end: datetime,
    leader_after: Mapping[int, Decimal],
    mirrored: Mapping[tuple[str, int], int],
) -> Item:
    def item(
        outcome: Outcome,
        detail: str,
        drift: Decimal | None = None,
        venue_position: Decimal | None = None,
        expected_position: Decimal | None = None,
    ) -> Item:
        return Item(
            sequence=0,
            signal_id="",
            target_exchange_id=account,
            client_order_id="",
            outcome=outcome,
            detail=detail,
            intent_state="",
            venue_filled_quantity=None,
            kind=ItemKind.POSITION,
            symbol=symbol,
            expected_position=expected_position,
            venue_position=venue_position,
            drift=drift,
        )

    problem = _venue_problem(report)
    if problem is not None:
        return item(Outcome.ERROR, problem)
    assert report is not None
    copies = [i for i in intents if not i.is_correction]
    unresolved = [i.client_order_id or i.intent_id for i in copies if expected_fill(i) is None]
    read = {(i.source_id, i.sequence) for i in copies}
    unresolved += [
        f"the mirrored copy (signal {mirrored[(i.source_id, i.sequence)]}) not read"
        for i in copies
        if i.state is IntentState.SKIPPED
        and i.reason == ORDER_MIRRORED
        and (i.source_id, i.sequence) in mirrored
        and (i.source_id, mirrored[(i.source_id, i.sequence)]) not in read
    ]
    if unresolved:
        return item(
            Outcome.ERROR,
            f"{UNRESOLVED} for {len(unresolved)} copies: {', '.join(sorted(unresolved))}",
        )
    target = sum((_signed(i.side, expected_fill(i) or Decimal(0)) for i in copies), Decimal(0))
    own = {i.client_order_id for i in intents if i.client_order_id}
    venue = Decimal(0)
    by_hand: set[str] = set()
    for order in report.orders:
        if order.symbol != symbol:
            continue
        if order.client_order_id in own:
            venue += _signed(order.side, order.filled_quantity)
        elif _by_hand(order, known_ids) and _in_window(order, start, end):
            venue += _signed(order.side, order.filled_quantity)
            by_hand.add(order.venue_order_id or order.client_order_id)
    for fill in _unlisted_fills(report):
        if fill.symbol != symbol:
            continue
        if fill.client_order_id in own:
            venue += _signed(fill.side, fill.quantity)
        elif _fill_by_hand(fill, known_ids) and _fill_in_window(fill, start, end):
            venue += _signed(fill.side, fill.quantity)
            by_hand.add(fill.venue_order_id)
    drift = venue - target
    detail = (
        f"the copies should have changed the position by {_plus(target)},"
        f" the venue's orders changed it by {_plus(venue)}"
    )
    if by_hand:
        detail += f" ({len(by_hand)} placed outside the mesh)"
    detail += f": drift {_plus(drift)}"
    if any(i.state in UNRESOLVED_STATES for i in intents if i.is_correction):
        detail += "; a correction is in flight"
    if report.fills is None:
        reason = report.fills_error or NOT_READ
        return item(Outcome.ERROR, f"{detail}; the fills could not be read: {reason}", drift=drift)
    if report.balances is None:
        reason = report.balance_error or NOT_READ
        return item(
            Outcome.ERROR, f"{detail}; the balances could not be read: {reason}", drift=drift
        )
    if is_derivative(symbol):
        followed = [i.sequence for i in copies if i.sequence in leader_after]
        leader = leader_after[max(followed)] if followed else None
        return _derivative_position(item, symbol, report.positions, drift, detail, leader)
    asset = base_asset(symbol)
    balance = report.balances.get(asset, Decimal(0))
    expected = balance - drift
    detail += (
        f"; {asset} at the venue {format_quantity(balance)}, expected {format_quantity(expected)}"
    )
    return item(
        Outcome.MATCHED if drift == 0 else Outcome.MISMATCHED,
        detail,
        drift=drift,
        venue_position=balance,
        expected_position=expected,
    )


def _derivative_position(
    item: Callable[..., Item],
    symbol: str,
    held: Sequence[VenuePosition],
    drift: Decimal,
    detail: str,
    leader: Decimal | None,
) -> Item:
    # The venue's open position (net of a hedge-mode long and short) is what it holds; the
    # copies should have left it minus the drift.
    mine = [p for p in held if p.symbol == symbol]
    venue = sum((p.signed for p in mine), Decimal(0))
    expected = venue - drift
    entries = ", ".join(
        f"{p.side} {format_quantity(p.quantity)}"
        + (f" entry {format_quantity(p.entry_price)}" if p.entry_price is not None else "")
        for p in mine
    )
    detail += (
        f"; position at the venue {entries or 'flat'}, expected {_describe_position(expected)}"
    )
    if leader is not None:
        detail += f"; the leader holds {_describe_position(leader)} after the last fill copied"
        if leader != 0:
            share = format_quantity(round(expected / leader, 4))
            detail += f" (the expected position is {share} of it)"
    return item(
        Outcome.MATCHED if drift == 0 else Outcome.MISMATCHED,
        detail,
        drift=drift,
        venue_position=venue,
        expected_position=expected,
    )


def _describe_position(signed: Decimal) -> str:
    side = position_side(signed)
    return side if signed == 0 else f"{side} {format_quantity(abs(signed))}"


def _plus(value: Decimal) -> str:
    text = format_quantity(value)
    return text if value < 0 else f"+{text}"
