"""The pure reconciliation kernel: one verdict per (signal, follower account), rule by rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from recon_svc.domain.model import (
    Counts,
    Intent,
    IntentState,
    Item,
    LeaderSignal,
    Outcome,
    Side,
    VenueOrder,
    VenueReport,
    VenueStatus,
)
from recon_svc.domain.reconcile import reconcile

SOURCE = "src-1"
ACCOUNT = "acct-a"
OTHER_ACCOUNT = "acct-b"
COID = "0b6f7d0e-5a55-5d7e-9a42-3c7a1e3e0001"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def signal(sequence: int = 1, symbol: str = "BTC/USDT") -> LeaderSignal:
    return LeaderSignal(
        source_id=SOURCE,
        sequence=sequence,
        signal_id=f"trade-{sequence}",
        symbol=symbol,
        side=Side.BUY,
        quantity=Decimal("2"),
        event_time=T0,
    )


def intent(
    state: IntentState = IntentState.FILLED,
    *,
    sequence: int = 1,
    account: str = ACCOUNT,
    client_order_id: str = COID,
    filled: str = "0.5",
    side: Side = Side.BUY,
    symbol: str = "BTC/USDT",
    reason: str = "",
    intent_id: str = "intent-1",
) -> Intent:
    return Intent(
        intent_id=intent_id,
        source_id=SOURCE,
        sequence=sequence,
        signal_id=f"trade-{sequence}",
        target_exchange_id=account,
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        state=state,
        reason=reason,
        filled_quantity=Decimal(filled),
        create_time=T0,
    )


def order(
    *,
    client_order_id: str = COID,
    filled: str = "0.5",
    side: Side = Side.BUY,
    symbol: str = "BTC/USDT",
    status: VenueStatus = VenueStatus.FILLED,
    venue_order_id: str = "v-1",
    account: str = ACCOUNT,
) -> VenueOrder:
    return VenueOrder(
        exchange_id=account,
        client_order_id=client_order_id,
        venue_order_id=venue_order_id,
        symbol=symbol,
        side=side,
        status=status,
        filled_quantity=Decimal(filled),
    )


def venue(*orders: VenueOrder, account: str = ACCOUNT) -> dict[str, VenueReport]:
    return {account: VenueReport(account, orders=tuple(orders))}


def judge(intents: list[Intent], venues: dict[str, VenueReport]) -> Item:
    items = reconcile([signal()], [ACCOUNT], intents, venues)
    assert len(items) == 1
    return items[0]


def test_signal_without_intent_is_missing() -> None:
    item = judge([], venue())
    assert item.outcome is Outcome.MISSING
    assert item.client_order_id == ""
    assert item.intent_state == ""


def test_signal_with_two_intents_for_one_account_is_duplicate() -> None:
    first = intent(intent_id="i-1")
    second = intent(intent_id="i-2", client_order_id="other-id", state=IntentState.SKIPPED)
    item = judge([first, second], venue(order()))
    assert item.outcome is Outcome.DUPLICATE
    assert "2 intents" in item.detail
    assert item.intent_state == "filled,skipped"


def test_skipped_intent_without_venue_order_matches_with_the_skip_reason() -> None:
    item = judge([intent(IntentState.SKIPPED, reason="below_min_notional", filled="0")], venue())
    assert item.outcome is Outcome.MATCHED
    assert item.detail == "below_min_notional"
    assert item.intent_state == "skipped"
    assert item.venue_filled_quantity is None


def test_skipped_intent_whose_id_the_venue_holds_is_mismatched() -> None:
    item = judge(
        [intent(IntentState.SKIPPED, reason="stale", filled="0")],
        venue(order(filled="0", status=VenueStatus.CANCELED)),
    )
    assert item.outcome is Outcome.MISMATCHED
    assert "stale" in item.detail and "v-1" in item.detail


@pytest.mark.parametrize(
    ("orders", "expected"),
    [
        ((), Outcome.MATCHED),
        ((order(filled="0", status=VenueStatus.REJECTED),), Outcome.MATCHED),
        ((order(filled="0", status=VenueStatus.CANCELED),), Outcome.MATCHED),
        ((order(filled="0.1", status=VenueStatus.CANCELED),), Outcome.MISMATCHED),
        ((order(filled="0.5", status=VenueStatus.FILLED),), Outcome.MISMATCHED),
        ((order(filled="0", status=VenueStatus.OPEN),), Outcome.MISMATCHED),
    ],
    ids=[
        "no-order",
        "rejected-order",
        "cancelled-unfilled",
        "cancelled-partial",
        "filled",
        "resting",
    ],
)
def test_rejected_intent_matches_only_when_the_venue_holds_no_filled_or_resting_order(
    orders: tuple[VenueOrder, ...],
    expected: Outcome,
) -> None:
    rejected = intent(IntentState.REJECTED, reason="INSUFFICIENT_FUNDS", filled="0")
    item = judge([rejected], venue(*orders))
    assert item.outcome is expected
    if expected is Outcome.MATCHED:
        assert "INSUFFICIENT_FUNDS" in item.detail


PLACED = [
    IntentState.FILLED,
    IntentState.PARTIALLY_FILLED,
    IntentState.CANCELED,
    IntentState.EXPIRED,
    IntentState.ACCEPTED,
]


@pytest.mark.parametrize("state", PLACED)
def test_placed_intent_without_venue_order_is_missing(state: IntentState) -> None:
    other = order(client_order_id="someone-elses-order")
    item = judge([intent(state)], venue(other))
    assert item.outcome is Outcome.MISSING
    assert item.venue_filled_quantity is None


@pytest.mark.parametrize(
    ("state", "status", "filled"),
    [
        (IntentState.FILLED, VenueStatus.FILLED, "0.5"),
        (IntentState.PARTIALLY_FILLED, VenueStatus.PARTIALLY_FILLED, "0.2"),
        (IntentState.CANCELED, VenueStatus.CANCELED, "0.2"),
        (IntentState.EXPIRED, VenueStatus.EXPIRED, "0"),
        (IntentState.ACCEPTED, VenueStatus.OPEN, "0"),
    ],
)
def test_placed_intent_equal_to_its_one_venue_order_is_matched(
    state: IntentState,
    status: VenueStatus,
    filled: str,
) -> None:
    item = judge([intent(state, filled=filled)], venue(order(filled=filled, status=status)))
    assert item.outcome is Outcome.MATCHED
    assert item.venue_filled_quantity == Decimal(filled)
    assert item.client_order_id == COID
    assert item.intent_state == state.value


def test_equal_quantities_written_differently_match() -> None:
    item = judge([intent(filled="0.50")], venue(order(filled="0.5000")))
    assert item.outcome is Outcome.MATCHED


def test_two_venue_orders_with_one_client_order_id_are_duplicate() -> None:
    # Binance accepts a client order id again once the first order with it has filled.
    first = order(venue_order_id="v-1", filled="0.5")
    reuse = order(venue_order_id="v-2", filled="0.5")
    item = judge([intent(filled="0.5")], venue(first, reuse))
    assert item.outcome is Outcome.DUPLICATE
    assert "v-1" in item.detail and "v-2" in item.detail
    assert item.venue_filled_quantity == Decimal("1.0")


@pytest.mark.parametrize(
    ("venue_filled", "intent_filled"),
    [("0.4", "0.5"), ("0.50000001", "0.5"), ("0", "0.5")],
)
def test_filled_quantity_that_differs_at_all_is_mismatched(
    venue_filled: str,
    intent_filled: str,
) -> None:
    item = judge([intent(filled=intent_filled)], venue(order(filled=venue_filled)))
    assert item.outcome is Outcome.MISMATCHED
    assert "filled_quantity" in item.detail
    assert item.venue_filled_quantity == Decimal(venue_filled)


def test_side_and_symbol_differences_are_each_named() -> None:
    item = judge(
        [intent()],
        venue(order(side=Side.SELL, symbol="BTC/USD")),
    )
    assert item.outcome is Outcome.MISMATCHED
    assert "side: intent buy, venue sell" in item.detail
    assert "symbol: intent BTC/USDT, venue BTC/USD" in item.detail
    assert "filled_quantity" not in item.detail


def test_closed_intent_whose_order_still_rests_is_mismatched() -> None:
    item = judge(
        [intent(IntentState.CANCELED, filled="0")],
        venue(order(filled="0", status=VenueStatus.OPEN)),
    )
    assert item.outcome is Outcome.MISMATCHED
    assert "state: intent canceled, venue open" in item.detail


@pytest.mark.parametrize("state", [IntentState.PENDING, IntentState.SENT, IntentState.UNKNOWN])
def test_unresolved_intent_is_error(state: IntentState) -> None:
    item = judge([intent(state, filled="0")], venue(order()))
    assert item.outcome is Outcome.ERROR
    assert "outcome not resolved yet" in item.detail


@pytest.mark.parametrize(
    "state",
    [IntentState.FILLED, IntentState.SKIPPED, IntentState.REJECTED, IntentState.ACCEPTED],
)
def test_missing_venue_report_is_unknown_never_flat(state: IntentState) -> None:
    item = judge([intent(state)], {})
    assert item.outcome is Outcome.ERROR
    assert "not read" in item.detail


def test_unreadable_venue_makes_the_item_an_error_with_the_reason() -> None:
    down = {ACCOUNT: VenueReport(ACCOUNT, error="UNAVAILABLE: venue down")}
    item = judge([intent()], down)
    assert item.outcome is Outcome.ERROR
    assert "UNAVAILABLE: venue down" in item.detail


def test_missing_and_duplicate_intents_keep_their_verdict_when_the_venue_is_down() -> None:
    down = {ACCOUNT: VenueReport(ACCOUNT, error="UNAVAILABLE")}
    assert judge([], down).outcome is Outcome.MISSING
    two = [intent(intent_id="i-1"), intent(intent_id="i-2", client_order_id="x")]
    assert judge(two, down).outcome is Outcome.DUPLICATE


def test_orders_of_another_account_do_not_count() -> None:
    other = {
        ACCOUNT: VenueReport(ACCOUNT),
        OTHER_ACCOUNT: VenueReport(OTHER_ACCOUNT, orders=(order(account=OTHER_ACCOUNT),)),
    }
    assert judge([intent()], other).outcome is Outcome.MISSING


def test_one_item_per_signal_and_account_ordered_by_sequence_then_account() -> None:
    signals = [signal(2), signal(1), signal(1)]
    intents = [
        intent(sequence=1, account=ACCOUNT, client_order_id="c-1a", intent_id="1a"),
        intent(sequence=1, account=OTHER_ACCOUNT, client_order_id="c-1b", intent_id="1b"),
        intent(sequence=2, account=ACCOUNT, client_order_id="c-2a", intent_id="2a"),
        intent(sequence=9, account=ACCOUNT, client_order_id="c-9a", intent_id="9a"),
    ]
    venues = {
        ACCOUNT: VenueReport(
            ACCOUNT,
            orders=(
                order(client_order_id="c-1a"),
                order(client_order_id="c-2a"),
                order(client_order_id="c-9a"),
            ),
        ),
        OTHER_ACCOUNT: VenueReport(
            OTHER_ACCOUNT, orders=(order(client_order_id="c-1b", account=OTHER_ACCOUNT),)
        ),
    }
    items = reconcile(signals, [OTHER_ACCOUNT, ACCOUNT, ACCOUNT], intents, venues)
    keys = [(i.sequence, i.target_exchange_id, i.outcome) for i in items]
    assert keys == [
        (1, ACCOUNT, Outcome.MATCHED),
        (1, OTHER_ACCOUNT, Outcome.MATCHED),
        (2, ACCOUNT, Outcome.MATCHED),
        (2, OTHER_ACCOUNT, Outcome.MISSING),
    ]
    assert items[2].signal_id == "trade-2"


def test_intent_of_another_source_does_not_answer_for_the_signal() -> None:
    stranger = replace(intent(), source_id="another-source")
    assert judge([stranger], venue(order())).outcome is Outcome.MISSING


def test_counts_are_derived_from_the_items() -> None:
    signals = [signal(1), signal(2), signal(3)]
    intents = [
        intent(sequence=1, client_order_id="c-1", intent_id="1"),
        intent(IntentState.PENDING, sequence=2, client_order_id="c-2", intent_id="2"),
    ]
    items = reconcile(signals, [ACCOUNT], intents, venue(order(client_order_id="c-1")))
    counts = Counts.of(items)
    assert counts == Counts(total=3, matched=1, missing=1, error=1)
    assert Counts.of([]) == Counts()


def test_intent_without_state_is_error() -> None:
    item = judge([replace(intent(), state=None)], venue(order()))
    assert item.outcome is Outcome.ERROR
    assert item.intent_state == ""


def test_placed_intent_without_client_order_id_is_error() -> None:
    item = judge([intent(client_order_id="")], venue(order(client_order_id="")))
    assert item.outcome is Outcome.ERROR
    assert "client order id" in item.detail


def test_venue_order_of_unknown_status_is_error() -> None:
    item = judge([intent()], venue(order(status=VenueStatus.UNKNOWN)))
    assert item.outcome is Outcome.ERROR
