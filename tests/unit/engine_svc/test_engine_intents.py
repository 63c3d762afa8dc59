"""The intent state machine, venue answers, the resend rule and the counters."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from engine_svc.domain import intents as rules
from engine_svc.domain.decision import Decision
from engine_svc.domain.ids import client_order_id
from engine_svc.domain.model import (
    CopyStatus,
    Intent,
    OrderStatus,
    OrderType,
    Side,
    Signal,
    TimeInForce,
)
from engine_svc.domain.model import IntentState as S

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.PENDING, S.SENT),
        (S.PENDING, S.SKIPPED),
        (S.SENT, S.FILLED),
        (S.SENT, S.UNKNOWN),
        (S.SENT, S.REJECTED),
        (S.SENT, S.PENDING),
        (S.UNKNOWN, S.FILLED),
        (S.UNKNOWN, S.SENT),
        (S.ACCEPTED, S.PARTIALLY_FILLED),
        (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED),
        (S.PARTIALLY_FILLED, S.CANCELED),
        (S.ACCEPTED, S.EXPIRED),
    ],
)
def test_allowed_transitions(current: S, target: S) -> None:
    assert rules.can_transition(current, target)
    rules.check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.PENDING, S.FILLED),
        (S.PENDING, S.UNKNOWN),
        (S.FILLED, S.CANCELED),
        (S.REJECTED, S.SENT),
        (S.SKIPPED, S.PENDING),
        (S.CANCELED, S.FILLED),
        (S.ACCEPTED, S.SENT),
        (S.PARTIALLY_FILLED, S.REJECTED),
        (S.ACCEPTED, S.UNKNOWN),
    ],
)
def test_forbidden_transitions_raise(current: S, target: S) -> None:
    assert not rules.can_transition(current, target)
    with pytest.raises(rules.TransitionError):
        rules.check_transition(current, target)


def test_terminal_states_have_no_way_out() -> None:
    assert {S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED, S.SKIPPED} == rules.TERMINAL


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (OrderStatus.OPEN, S.ACCEPTED),
        (OrderStatus.PARTIALLY_FILLED, S.PARTIALLY_FILLED),
        (OrderStatus.FILLED, S.FILLED),
        (OrderStatus.CANCELED, S.CANCELED),
        (OrderStatus.EXPIRED, S.EXPIRED),
        (OrderStatus.REJECTED, S.REJECTED),
        (OrderStatus.UNKNOWN, S.UNKNOWN),
    ],
)
def test_venue_status_maps_to_intent_state(status: OrderStatus, state: S) -> None:
    assert rules.state_from_order(status) is state


@pytest.mark.parametrize(
    ("count", "since_send", "allowed"),
    [
        (2, 60, False),
        (3, 9.9, False),
        (3, 10, True),
        (5, 30, True),
    ],
)
def test_resend_needs_three_not_founds_and_the_visibility_lag(
    count: int,
    since_send: float,
    allowed: bool,
) -> None:
    last_sent = NOW - timedelta(seconds=since_send)
    assert rules.may_resend(count, last_sent, NOW, 10) is allowed


def test_new_intent_records_the_decision_with_a_deterministic_client_order_id() -> None:
    signal = Signal(
        source_id="src",
        sequence=7,
        signal_id="t7",
        symbol="BTC/USDT",
        side=Side.BUY,
        quantity=D("0.1"),
        price=D("50000"),
        order_type=OrderType.MARKET,
        event_time=NOW,
    )
    pending = rules.new_intent("i1", "cfg", signal, "acct", Decision("BTC/USD", D("0.01")), NOW)
    skipped = rules.new_intent(
        "i2", "cfg", signal, "acct", Decision("BTC/USD", D(0), "paused"), NOW
    )
    assert pending.state is S.PENDING and pending.reason == ""
    assert skipped.state is S.SKIPPED and skipped.reason == "paused"
    assert pending.client_order_id == client_order_id("cfg", "src", 7, "acct", 0)
    assert pending.client_order_id == skipped.client_order_id
    assert pending.symbol == "BTC/USD" and pending.leader_quantity == D("0.1")


def test_counters_group_intents_by_outcome() -> None:
    counters = rules.count(
        {
            S.FILLED: 3,
            S.PARTIALLY_FILLED: 1,
            S.SKIPPED: 2,
            S.REJECTED: 1,
            S.UNKNOWN: 1,
            S.PENDING: 1,
            S.SENT: 1,
            S.ACCEPTED: 1,
            S.CANCELED: 1,
            S.EXPIRED: 1,
        },
        signals=9,
    )
    assert counters == rules.Counters(
        signals=9,
        intents=13,
        filled=4,
        skipped=2,
        rejected=1,
        unknown=1,
        in_flight=3,
        cancelled=2,
    )


def _intent(**changes: Any) -> Intent:
    signal = Signal(
        source_id="src",
        sequence=1,
        signal_id="t1",
        symbol="BTC/USDT",
        side=Side.BUY,
        quantity=D("0.1"),
        price=D("50000"),
        order_type=OrderType.MARKET,
        event_time=NOW,
    )
    decision = Decision(
        "BTC/USDT",
        D("0.01"),
        order_type=OrderType.LIMIT,
        price=D("50500"),
        time_in_force=TimeInForce.IOC,
    )
    changes.setdefault("state", S.SENT)
    written = rules.new_intent("i1", "cfg", signal, "acct", decision, NOW)
    return dataclasses.replace(written, **changes)


def test_new_intent_carries_the_limit_price_and_time_in_force_of_the_decision() -> None:
    intent = _intent()
    assert (intent.type, intent.price, intent.time_in_force) == (
        OrderType.LIMIT,
        D("50500"),
        TimeInForce.IOC,
    )


@pytest.mark.parametrize(
    ("time_in_force", "status", "state", "reason"),
    [
        (TimeInForce.IOC, OrderStatus.EXPIRED, S.EXPIRED, "slippage_band"),
        (TimeInForce.IOC, OrderStatus.CANCELED, S.EXPIRED, "slippage_band"),
        (TimeInForce.IOC, OrderStatus.FILLED, S.FILLED, ""),
        (None, OrderStatus.EXPIRED, S.EXPIRED, ""),
        (None, OrderStatus.CANCELED, S.CANCELED, ""),
        (None, OrderStatus.REJECTED, S.REJECTED, "venue_rejected"),
        (None, OrderStatus.UNKNOWN, S.UNKNOWN, None),
    ],
)
def test_what_a_banded_copy_does_not_fill_expires_with_the_slippage_band_reason(
    time_in_force: TimeInForce | None, status: OrderStatus, state: S, reason: str | None
) -> None:
    intent = _intent(time_in_force=time_in_force)
    assert rules.outcome_of(intent, status) == (state, reason)


def test_a_banded_copy_the_user_cancelled_is_cancelled_not_expired() -> None:
    # A stop or kill switch cancelled it: that is not the slippage band at work.
    resting = dataclasses.replace(_intent(time_in_force=TimeInForce.IOC), state=S.ACCEPTED)
    wanted = dataclasses.replace(resting, cancel_wanted=True)
    assert rules.outcome_of(wanted, OrderStatus.CANCELED) == (S.CANCELED, "")
    assert rules.outcome_of(wanted, OrderStatus.FILLED)[0] is S.FILLED


@pytest.mark.parametrize("time_in_force", [TimeInForce.IOC, None])
@pytest.mark.parametrize("seen", [S.ACCEPTED, S.PARTIALLY_FILLED])
def test_a_resting_copy_cancelled_at_the_venue_unasked_is_cancelled_at_venue_not_expired(
    time_in_force: TimeInForce | None, seen: S
) -> None:
    # Cancelled by hand at the venue: the follower lacks the position, and says so.
    resting = dataclasses.replace(_intent(time_in_force=time_in_force), state=seen)
    assert rules.outcome_of(resting, OrderStatus.CANCELED) == (S.CANCELED, "canceled_at_venue")
    assert rules.outcome_of(resting, OrderStatus.EXPIRED)[0] is S.EXPIRED


def test_a_later_answer_keeps_the_reason_already_recorded() -> None:
    accepted = _intent(time_in_force=None, state=S.ACCEPTED)
    assert rules.outcome_of(accepted, OrderStatus.PARTIALLY_FILLED) == (S.PARTIALLY_FILLED, None)


@pytest.mark.parametrize(
    ("status", "side", "reason"),
    [
        (CopyStatus.ACTIVE, Side.BUY, None),
        (CopyStatus.REDUCING, Side.SELL, None),
        (CopyStatus.REDUCING, Side.BUY, "reducing"),
        (CopyStatus.PAUSED, Side.SELL, "paused"),
        (CopyStatus.HALTED, Side.BUY, "halted"),
        (CopyStatus.STOPPED, Side.SELL, "stopped"),
    ],
)
def test_the_send_time_check_agrees_with_the_states_allowed_to_send(
    status: CopyStatus, side: Side, reason: str | None
) -> None:
    blocked = rules.send_block(side, status)
    assert (blocked.value if blocked else None) == reason
    assert (status in rules.SENDABLE[side]) is (reason is None)


@pytest.mark.parametrize(("age", "stale"), [(59, False), (60, False), (61, True)])
def test_a_resend_is_stale_once_the_leader_trade_is_older_than_max_signal_age(
    age: float, stale: bool
) -> None:
    intent = _intent(state=S.UNKNOWN)
    assert rules.resend_is_stale(intent, NOW + timedelta(seconds=age), 60) is stale
    assert rules.can_transition(S.UNKNOWN, S.SKIPPED) and rules.can_transition(S.SENT, S.SKIPPED)


@pytest.mark.parametrize("signal_id", ["daily_loss:2026-03-01", "correction:r1"])
def test_the_engines_own_orders_are_never_too_old_to_resend(signal_id: str) -> None:
    intent = _intent(state=S.UNKNOWN, signal_id=signal_id, sequence=0)
    assert not rules.resend_is_stale(intent, NOW + timedelta(hours=2), 60)
