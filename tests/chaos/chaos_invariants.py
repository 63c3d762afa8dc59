"""The invariant checker (pure): the engine's intents against the venues' orders and fills.

Kept apart from the harness so that it is unit-tested on made-up records (a checker that
cannot see a duplicate would make every chaos run pass).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

TERMINAL = frozenset(
    {
        "INTENT_STATE_FILLED",
        "INTENT_STATE_CANCELED",
        "INTENT_STATE_EXPIRED",
        "INTENT_STATE_REJECTED",
        "INTENT_STATE_SKIPPED",
    }
)
NO_ORDER = frozenset({"INTENT_STATE_REJECTED", "INTENT_STATE_SKIPPED"})


@dataclass
class Findings:
    """What the checker counted, and one line per violation."""

    intents: int = 0
    expected: int = 0
    duplicates: int = 0
    missing: int = 0
    unresolved: int = 0
    qty: int = 0
    phantom: int = 0
    rejects: int = 0
    exits: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def check(
    fills: Sequence[Mapping[str, Any]],
    intents: Sequence[Mapping[str, Any]],
    venue_orders: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    expect_rejected: str = "",
    rejects_sent: int | None = None,
    check_exits: bool = False,
) -> Findings:
    """Check one run.

    Parameters
    ----------
    fills
        The leader's fills at the venue (``trade_id``, ``side``, ``quantity``, ``symbol``).
    intents
        The configuration's intents as the REST API lists them.
    venue_orders
        Every follower account's orders at its venue (the emulator's admin record), by the
        follower's ``exchange_id``; every follower of the run must be a key.
    expect_rejected
        For a definitive-reject fault: the word every REJECTED intent's reason must hold.
    rejects_sent
        For a definitive-reject fault: how many copies met the reject (each must end
        REJECTED once: none retried, none lost); ``None`` leaves the count to the caller.
    check_exits
        Also count as violations the exits skipped ``no_position_to_reduce`` right after a
        filled entry (:func:`exits_skipped_after_a_filled_entry`): an exit sized before the
        outcome of its entry was known (a broker killed mid-order left it UNKNOWN).
    """
    found = Findings(intents=len(intents), expected=len(fills) * len(venue_orders))
    found.outcomes = Counter(
        str(i.get("state", "?")).removeprefix("INTENT_STATE_").lower()
        + (f" ({str(i['reason']).split(':')[0]})" if i.get("reason") else "")
        for i in intents
    )
    bad = found.violations

    # One intent per (leader fill, follower, leg): a copied derivatives reverse is two orders,
    # its close (leg 0) and its entry on the new side (leg 1).
    per_leg = Counter(
        (str(i.get("signal_id", "")), str(i.get("target_exchange_id", "")), int(i.get("leg") or 0))
        for i in intents
    )
    per_pair = {(signal_id, target) for signal_id, target, _ in per_leg}
    for (signal_id, target, leg), count in per_leg.items():
        if count > 1:
            found.duplicates += count - 1
            bad.append(
                f"duplicate intents: {count} for leader fill {signal_id} on follower {target}"
                + (f" (leg {leg})" if leg else "")
            )
    for exchange_id, orders in venue_orders.items():
        for cid, count in Counter(str(o.get("client_order_id", "")) for o in orders).items():
            if count > 1:
                found.duplicates += count - 1
                bad.append(
                    f"duplicate venue orders: {count} with client id {cid} on follower "
                    f"{exchange_id}"
                )
    for fill in fills:
        for exchange_id in venue_orders:
            if (str(fill["trade_id"]), exchange_id) not in per_pair:
                found.missing += 1
                bad.append(
                    f"missing: no intent for leader fill {fill['trade_id']} "
                    f"({fill.get('side')} {fill.get('quantity')} {fill.get('symbol')}) "
                    f"on follower {exchange_id}"
                )

    known: set[tuple[str, str]] = set()
    for intent in intents:
        state = str(intent.get("state", ""))
        cid = str(intent.get("client_order_id", ""))
        target = str(intent.get("target_exchange_id", ""))
        known.add((target, cid))
        label = (
            f"intent {intent.get('intent_id')} (fill {intent.get('signal_id')}, follower "
            f"{target}, {state.removeprefix('INTENT_STATE_')}"
            f"{' ' + str(intent['reason']) if intent.get('reason') else ''})"
        )
        if target not in venue_orders:
            bad.append(f"intent for an account outside the run: {label}")
            continue
        if state not in TERMINAL:
            found.unresolved += 1
            bad.append(f"unresolved: {label}")
            continue
        orders = [o for o in venue_orders[target] if str(o.get("client_order_id", "")) == cid]
        venue_filled = sum((_decimal(o.get("filled_quantity")) for o in orders), Decimal(0))
        engine_filled = _decimal(intent.get("filled_quantity"))
        if state in NO_ORDER:
            if orders:
                found.qty += 1
                bad.append(
                    f"qty: {label} but the venue holds {len(orders)} order(s) with its "
                    f"client id, filled {venue_filled}"
                )
        elif not orders:
            found.qty += 1
            bad.append(f"qty: {label} but the venue has no order with client id {cid}")
        elif venue_filled != engine_filled:
            found.qty += 1
            bad.append(
                f"qty: {label} recorded filled {engine_filled}, the venue filled {venue_filled}"
            )
    for exchange_id, orders in venue_orders.items():
        for order in orders:
            if (exchange_id, str(order.get("client_order_id", ""))) not in known:
                found.phantom += 1
                bad.append(
                    f"phantom: venue order {order.get('order_id')} with client id "
                    f"{order.get('client_order_id')} on follower {exchange_id} has no "
                    "intent"
                )

    if check_exits:
        for label in exits_skipped_after_a_filled_entry(intents):
            found.exits += 1
            bad.append(f"exit: {label}")

    if expect_rejected:
        rejected = [i for i in intents if i.get("state") == "INTENT_STATE_REJECTED"]
        for intent in rejected:
            if expect_rejected not in str(intent.get("reason", "")).lower():
                found.rejects += 1
                bad.append(
                    f"rejects: intent {intent.get('intent_id')} rejected with reason "
                    f"{intent.get('reason')!r}, expected one naming {expect_rejected!r}"
                )
        if rejects_sent is not None and len(rejected) != rejects_sent:
            found.rejects += 1
            bad.append(
                f"rejects: {rejects_sent} copies met a definitive reject, but "
                f"{len(rejected)} intents are REJECTED (a reject retried, or a copy lost)"
            )
    return found


def rejected_count(intents: Sequence[Mapping[str, Any]]) -> int:
    """Return how many intents ended REJECTED."""
    return sum(1 for i in intents if i.get("state") == "INTENT_STATE_REJECTED")


def exits_skipped_after_a_filled_entry(intents: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return the exits skipped ``no_position_to_reduce`` though the follower held the entry.

    For each configuration, follower account and market, the intents in sequence order: an
    exit skipped for having no position, whose latest earlier copy that filled anything was
    a filled buy (no sell in between that could have emptied the position), was sized from
    a position missing that buy. It happens when the exit is decided while the buy's outcome
    is not known yet (UNKNOWN after a broker killed mid-order, then found or re-sent).
    """
    found: list[str] = []
    latest: dict[tuple[str, str, str], str] = {}
    ordered = sorted(intents, key=lambda i: int(i.get("sequence") or 0))
    for intent in ordered:
        key = (
            str(intent.get("config_id", "")),
            str(intent.get("target_exchange_id", "")),
            str(intent.get("symbol", "")),
        )
        state = str(intent.get("state", ""))
        reason = str(intent.get("reason", ""))
        if state == "INTENT_STATE_SKIPPED" and reason.startswith("no_position_to_reduce"):
            if latest.get(key) == "ORDER_SIDE_BUY":
                found.append(
                    f"intent {intent.get('intent_id')} (fill {intent.get('signal_id')}, follower"
                    f" {key[1]}, {key[2]}) skipped no_position_to_reduce right after a filled"
                    " buy of the same market"
                )
            continue
        if _decimal(intent.get("filled_quantity")) > 0:
            latest[key] = str(intent.get("side", ""))
    return found
