"""The real account, rule by rule: orders placed by hand, cancels at the venue, position drift."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from recon_svc.domain.model import (
    Counts,
    Intent,
    IntentState,
    Item,
    ItemKind,
    Outcome,
    Side,
    VenueFill,
    VenueOrder,
    VenueReport,
    VenueStatus,
)
from recon_svc.domain.reconcile import (
    expected_fill,
    extra_orders,
    is_mesh_client_order_id,
    positions,
    read_error,
    reconcile,
)
from tests.unit.recon_svc.test_recon_domain import signal

NAMESPACE = uuid.UUID("5b1c3a52-8a4e-5d7f-9c0b-6e2f41d3a7c9")
ACCOUNT = "acct-a"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
END = T0 + timedelta(hours=1)
D = Decimal


def mesh_id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


COPY = mesh_id("copy-1")
CORRECTION = mesh_id("correction-1")


def copy(
    state: IntentState = IntentState.FILLED,
    *,
    filled: str = "0.5",
    quantity: str = "0.5",
    reason: str = "",
    side: Side = Side.BUY,
    client_order_id: str = COPY,
    sequence: int = 1,
    signal_id: str = "",
) -> Intent:
    return Intent(
        intent_id=f"intent-{client_order_id[:8]}",
        source_id="src-1",
        sequence=sequence,
        signal_id=signal_id or f"trade-{sequence}",
        target_exchange_id=ACCOUNT,
        client_order_id=client_order_id,
        symbol="BTC/USDT",
        side=side,
        state=state,
        reason=reason,
        filled_quantity=D(filled),
        create_time=T0,
        quantity=D(quantity),
    )


def venue_order(
    client_order_id: str = COPY,
    *,
    filled: str = "0.5",
    side: Side = Side.BUY,
    status: VenueStatus = VenueStatus.FILLED,
    at: datetime = T0 + timedelta(minutes=1),
) -> VenueOrder:
    return VenueOrder(
        exchange_id=ACCOUNT,
        client_order_id=client_order_id,
        venue_order_id=f"v-{client_order_id}",
        symbol="BTC/USDT",
        side=side,
        status=status,
        filled_quantity=D(filled),
        create_time=at,
    )


def report(*orders: VenueOrder, btc: str | None = "1.5") -> VenueReport:
    balances = None if btc is None else {"BTC": D(btc), "USDT": D("100")}
    return VenueReport(
        ACCOUNT, orders=orders, balances=balances, balance_error=None if btc else "timeout"
    )


def drift_of(intents: list[Intent], venue: VenueReport) -> list[Item]:
    known = {i.client_order_id for i in intents}
    return positions({ACCOUNT: {"BTC/USDT"}}, intents, {ACCOUNT: venue}, known, T0, END)


@pytest.mark.parametrize(
    ("text", "mesh"),
    [
        (COPY, True),
        # A version 4 UUID (fixed: xdist workers must collect the same test ids).
        ("d5d7f4b6-d0ca-48e2-8bd2-f65b28f08824", False),
        (COPY.upper(), False),
        ("x-R4BD3S82abc", False),
        ("", False),
    ],
)
def test_only_a_canonical_uuid_v5_is_the_mesh_s_client_order_id(text: str, mesh: bool) -> None:
    assert is_mesh_client_order_id(text) is mesh


def test_an_order_placed_by_hand_in_the_window_is_extra_and_mesh_orders_are_not() -> None:
    by_hand = venue_order("web_123", filled="0.2")
    other_config = venue_order(mesh_id("another-config"))
    before = venue_order("web_old", at=T0 - timedelta(minutes=1))
    venue = report(venue_order(), by_hand, other_config, before)

    items = extra_orders({ACCOUNT: venue}, {COPY}, T0, END)

    [item] = items
    assert (item.outcome, item.kind, item.client_order_id, item.symbol) == (
        Outcome.EXTRA,
        ItemKind.ORDER,
        "web_123",
        "BTC/USDT",
    )
    assert item.venue_filled_quantity == D("0.2")
    assert "placed outside the mesh" in item.detail
    assert Counts.of(items).extra == 1


def test_an_unread_venue_has_no_extra_items() -> None:
    unread = VenueReport(ACCOUNT, error="UNAVAILABLE: venue down")
    assert extra_orders({ACCOUNT: unread}, set(), T0, END) == []


def test_a_copy_cancelled_at_the_venue_is_mismatched_naming_what_it_should_have_filled() -> None:
    cancelled = copy(IntentState.CANCELED, filled="0", reason="canceled_at_venue")
    venue = report(venue_order(filled="0", status=VenueStatus.CANCELED))

    [item] = reconcile([signal()], [ACCOUNT], [cancelled], {ACCOUNT: venue})

    assert item.outcome is Outcome.MISMATCHED
    assert "cancelled at the venue, not by the engine" in item.detail
    assert "should have filled 0.5" in item.detail


def test_a_copy_the_engine_still_sees_resting_but_the_venue_cancelled_is_mismatched() -> None:
    resting = copy(IntentState.ACCEPTED, filled="0")
    venue = report(venue_order(filled="0", status=VenueStatus.CANCELED))
    [item] = reconcile([signal()], [ACCOUNT], [resting], {ACCOUNT: venue})
    assert item.outcome is Outcome.MISMATCHED
    assert "state: intent accepted, venue canceled" in item.detail


def test_a_banded_copy_that_expired_is_still_matched() -> None:
    expired = copy(IntentState.EXPIRED, filled="0.2", reason="slippage_band")
    venue = report(venue_order(filled="0.2", status=VenueStatus.EXPIRED))
    [item] = reconcile([signal()], [ACCOUNT], [expired], {ACCOUNT: venue})
    assert item.outcome is Outcome.MATCHED


@pytest.mark.parametrize(
    ("intent", "expected"),
    [
        (copy(IntentState.FILLED, filled="0.5"), D("0.5")),
        (copy(IntentState.EXPIRED, filled="0.2", reason="slippage_band"), D("0.2")),
        (copy(IntentState.CANCELED, filled="0.1", reason="canceled_at_venue"), D("0.5")),
        (copy(IntentState.CANCELED, filled="0.1"), D("0.1")),
        (copy(IntentState.SKIPPED, filled="0"), D("0")),
        (copy(IntentState.REJECTED, filled="0"), D("0")),
        (copy(IntentState.SENT, filled="0"), None),
        (copy(IntentState.UNKNOWN, filled="0"), None),
    ],
)
def test_what_each_copy_should_have_filled(intent: Intent, expected: Decimal | None) -> None:
    assert expected_fill(intent) == expected


def test_a_position_the_copies_explain_is_matched() -> None:
    [item] = drift_of([copy()], report(venue_order()))
    assert (item.kind, item.outcome, item.drift) == (ItemKind.POSITION, Outcome.MATCHED, 0)
    assert (item.venue_position, item.expected_position) == (D("1.5"), D("1.5"))


def test_a_copy_cancelled_by_hand_leaves_the_account_short_by_its_quantity() -> None:
    cancelled = copy(IntentState.CANCELED, filled="0", reason="canceled_at_venue")
    [item] = drift_of([cancelled], report(venue_order(filled="0", status=VenueStatus.CANCELED)))
    assert item.outcome is Outcome.MISMATCHED
    assert (item.drift, item.venue_position, item.expected_position) == (
        D("-0.5"),
        D("1.5"),
        D("2.0"),
    )


def test_a_fill_placed_by_hand_is_drift_and_another_configurations_is_not() -> None:
    venue = report(
        venue_order(),
        venue_order("web_1", filled="0.2", side=Side.SELL),
        venue_order(mesh_id("other-config"), filled="3"),
    )
    [item] = drift_of([copy()], venue)
    assert item.drift == D("-0.2")
    assert "1 placed outside the mesh" in item.detail


def test_a_filled_correction_closes_the_drift() -> None:
    cancelled = copy(IntentState.CANCELED, filled="0", reason="canceled_at_venue")
    correction = copy(
        IntentState.FILLED,
        client_order_id=CORRECTION,
        sequence=0,
        signal_id="correction:7d0c9e7e-3f4b-4d59-a2a5-0e1c9b7f0d11",
        filled="0.5",
    )
    venue = report(venue_order(filled="0", status=VenueStatus.CANCELED), venue_order(CORRECTION))
    [item] = drift_of([cancelled, correction], venue)
    assert (item.outcome, item.drift) == (Outcome.MATCHED, 0)


def test_a_sell_copy_lowers_the_target() -> None:
    sold = copy(IntentState.FILLED, side=Side.SELL, filled="0.3")
    [item] = drift_of([sold], report(venue_order(side=Side.SELL, filled="0.3")))
    assert (item.outcome, item.drift) == (Outcome.MATCHED, 0)


def test_an_unresolved_copy_makes_the_position_an_error_not_a_drift() -> None:
    [item] = drift_of([copy(IntentState.UNKNOWN, filled="0")], report())
    assert item.outcome is Outcome.ERROR
    assert "not resolved yet" in item.detail
    assert item.drift is None


def test_unread_balances_make_the_position_an_error_with_the_drift_measured() -> None:
    cancelled = copy(IntentState.CANCELED, filled="0", reason="canceled_at_venue")
    [item] = drift_of([cancelled], report(btc=None))
    assert item.outcome is Outcome.ERROR
    assert item.drift == D("-0.5")
    assert "balances could not be read: timeout" in item.detail


def test_an_unread_venue_makes_the_position_an_error() -> None:
    unread = VenueReport(ACCOUNT, error="UNAVAILABLE: venue down")
    [item] = drift_of([copy()], unread)
    assert item.outcome is Outcome.ERROR
    assert "venue down" in item.detail


def test_a_read_error_names_what_could_not_be_read() -> None:
    item = read_error("the engine", "UPSTREAM_TIMEOUT: no answer in 3s")
    assert (item.kind, item.outcome) == (ItemKind.READ, Outcome.ERROR)
    assert item.detail == "the engine could not be read: UPSTREAM_TIMEOUT: no answer in 3s"


def fill(
    venue_order_id: str, client_order_id: str = "", *, quantity: str = "0.3", at: datetime = T0
) -> VenueFill:
    return VenueFill(venue_order_id, client_order_id, "BTC/USDT", Side.BUY, D(quantity), at)


def test_fills_by_hand_of_an_order_placed_before_the_window_are_extra_and_drift() -> None:
    inside = T0 + timedelta(minutes=5)
    venue = replace(
        report(venue_order()),
        fills=(
            fill(f"v-{COPY}", COPY, quantity="0.5", at=inside),  # the listed copy: counted once
            fill("old-1", "", at=inside),  # a resting order placed by hand earlier fills now
            fill("old-1", "", quantity="0.1", at=inside),
            fill("old-2", mesh_id("another-config"), at=inside),  # another configuration's
            fill("old-3", "", at=T0 - timedelta(minutes=1)),  # before the window
        ),
    )
    [extra] = extra_orders({ACCOUNT: venue}, {COPY}, T0, END)
    assert (extra.outcome, extra.kind, extra.venue_filled_quantity) == (
        Outcome.EXTRA,
        ItemKind.ORDER,
        D("0.4"),
    )
    assert "before the window" in extra.detail and "old-1" in extra.detail
    [item] = drift_of([copy()], venue)
    assert item.drift == D("0.4")
    assert "1 placed outside the mesh" in item.detail


def test_unread_fills_make_the_position_an_error() -> None:
    venue = replace(report(venue_order()), fills=None, fills_error="UPSTREAM_TIMEOUT: slow")
    [item] = drift_of([copy()], venue)
    assert item.outcome is Outcome.ERROR
    assert "the fills could not be read: UPSTREAM_TIMEOUT: slow" in item.detail
