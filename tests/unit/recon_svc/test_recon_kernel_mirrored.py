"""A fill of a mirrored leader order (copy_mode orders) is judged by its mirrored copy."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from recon_svc.domain.model import Intent, IntentState, LeaderSignal, Outcome, VenueStatus
from recon_svc.domain.reconcile import mirrored_fills, positions, reconcile
from tests.unit.recon_svc.test_recon_domain import signal
from tests.unit.recon_svc.test_recon_kernel_real_account import (
    ACCOUNT,
    END,
    T0,
    copy,
    mesh_id,
    report,
    venue_order,
)

D = Decimal
OPEN, FILL = 1, 2
MIRROR = mesh_id("mirror-1")
SKIP = mesh_id("skip-2")


def mirrored_fill() -> LeaderSignal:
    # The leader's resting buy (signal 1, an order open) filled: signal 2, order_mirrored.
    base = signal(FILL)
    return replace(
        base, source_id="src-1", quantity=D("0.01"), order_mirrored=True, opened_sequence=OPEN
    )


def skipped() -> Intent:
    return copy(
        IntentState.SKIPPED,
        filled="0",
        quantity="0",
        reason="order_mirrored",
        client_order_id=SKIP,
        sequence=FILL,
    )


def mirror_copy(state: IntentState, *, filled: str, reason: str = "") -> Intent:
    return copy(
        state, filled=filled, quantity="0.01", reason=reason, client_order_id=MIRROR, sequence=OPEN
    )


CANCELLED_BY_HAND = mirror_copy(IntentState.CANCELED, filled="0", reason="canceled_at_venue")
CANCELLED_AT_VENUE = venue_order(MIRROR, filled="0", status=VenueStatus.CANCELED)


def test_a_mirrored_copy_cancelled_at_the_venue_makes_its_leader_fill_mismatched() -> None:
    items = reconcile(
        [mirrored_fill()],
        [ACCOUNT],
        [skipped(), CANCELLED_BY_HAND],
        {ACCOUNT: report(CANCELLED_AT_VENUE)},
    )
    assert len(items) == 1
    item = items[0]
    assert item.outcome is Outcome.MISMATCHED
    assert item.client_order_id == MIRROR
    assert "order_mirrored" in item.detail
    assert "should have filled 0.01, the venue filled 0" in item.detail


def test_a_mirrored_copy_that_filled_makes_its_leader_fill_matched() -> None:
    filled = mirror_copy(IntentState.FILLED, filled="0.01")
    venue = report(venue_order(MIRROR, filled="0.01"))
    items = reconcile([mirrored_fill()], [ACCOUNT], [skipped(), filled], {ACCOUNT: venue})
    assert [i.outcome for i in items] == [Outcome.MATCHED]
    assert "order_mirrored" in items[0].detail


def test_a_mirrored_copy_not_read_is_an_error_not_a_match() -> None:
    items = reconcile([mirrored_fill()], [ACCOUNT], [skipped()], {ACCOUNT: report()})
    assert [i.outcome for i in items] == [Outcome.ERROR]
    assert "not read" in items[0].detail


def test_a_mirrored_copy_cancelled_at_the_venue_leaves_the_position_short() -> None:
    intents = [skipped(), CANCELLED_BY_HAND]
    known = {i.client_order_id for i in intents}
    [item] = positions(
        {ACCOUNT: {"BTC/USDT"}},
        intents,
        {ACCOUNT: report(CANCELLED_AT_VENUE, btc="1")},
        known,
        T0,
        END,
        mirrored=mirrored_fills([mirrored_fill()]),
    )
    assert item.outcome is Outcome.MISMATCHED
    assert item.drift == D("-0.01")
    assert item.expected_position == D("1.01")


def test_a_mirrored_copy_that_filled_explains_the_position() -> None:
    intents = [skipped(), mirror_copy(IntentState.FILLED, filled="0.01")]
    known = {i.client_order_id for i in intents}
    [item] = positions(
        {ACCOUNT: {"BTC/USDT"}},
        intents,
        {ACCOUNT: report(venue_order(MIRROR, filled="0.01"), btc="1.01")},
        known,
        T0,
        END,
        mirrored=mirrored_fills([mirrored_fill()]),
    )
    assert item.outcome is Outcome.MATCHED
    assert item.drift == 0


def test_a_mirrored_fill_whose_copy_was_not_read_makes_the_position_an_error() -> None:
    [item] = positions(
        {ACCOUNT: {"BTC/USDT"}},
        [skipped()],
        {ACCOUNT: report()},
        {SKIP},
        T0,
        END,
        mirrored=mirrored_fills([mirrored_fill()]),
    )
    assert item.outcome is Outcome.ERROR
    assert "mirrored copy (signal 1) not read" in item.detail


def test_only_mirrored_fills_name_a_mirrored_copy() -> None:
    plain = replace(signal(3), source_id="src-1")
    assert mirrored_fills([mirrored_fill(), plain]) == {("src-1", FILL): OPEN}
