"""Configuration status changes and the daily loss limit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from engine_svc.domain import risk, status
from engine_svc.domain.model import CopyStatus as C
from engine_svc.domain.model import DailyRisk

Rule = Callable[[C, str], status.StatusChange]


@pytest.mark.parametrize(
    ("rule", "current", "expected", "changed"),
    [
        (status.pause, C.ACTIVE, C.PAUSED, True),
        (status.pause, C.REDUCING, C.PAUSED, True),
        (status.pause, C.PAUSED, C.PAUSED, False),
        (status.resume, C.PAUSED, C.ACTIVE, True),
        (status.resume, C.HALTED, C.ACTIVE, True),
        (status.resume, C.ACTIVE, C.ACTIVE, False),
        (status.stop, C.ACTIVE, C.STOPPED, True),
        (status.stop, C.STOPPED, C.STOPPED, False),
        (status.halt, C.PAUSED, C.HALTED, True),
        (status.halt, C.HALTED, C.HALTED, False),
        (status.halt, C.STOPPED, C.STOPPED, False),
    ],
)
def test_status_changes(rule: Rule, current: C, expected: C, changed: bool) -> None:
    change = rule(current, "")
    assert (change.status, change.changed) == (expected, changed)


def test_a_halt_says_why_and_a_second_halt_keeps_the_first_reason() -> None:
    why = f"{status.RECONCILE_FAILED}: binance did not answer"
    first = status.halt(C.ACTIVE, "", reason=why)
    assert (first.status, first.reason, first.changed) == (C.HALTED, why, True)
    again = status.halt(first.status, first.reason)
    assert (again.reason, again.changed) == (why, False)
    assert status.halt(C.REDUCING, "daily loss").reason == status.KILL_SWITCH


@pytest.mark.parametrize(
    ("rule", "current", "reason"),
    [
        (status.resume, C.STOPPED, "CONFIG_STOPPED"),
        (status.pause, C.STOPPED, "CONFIG_STOPPED"),
        (status.pause, C.HALTED, "CONFIG_HALTED"),
    ],
)
def test_impossible_status_changes_fail(rule: Rule, current: C, reason: str) -> None:
    with pytest.raises(status.StatusError) as caught:
        rule(current, "")
    assert caught.value.reason == reason


def test_daily_risk_records_start_equity_once_a_day() -> None:
    state = risk.roll(DailyRisk(), "2026-03-01", {"a": D("1000")})
    state = risk.roll(state, "2026-03-01", {"a": D("900"), "b": D("50")})
    assert state.start_equity == {"a": D("1000"), "b": D("50")}
    tomorrow = risk.roll(state, "2026-03-02", {"a": D("900")})
    assert tomorrow.start_equity == {"a": D("900")}


def test_daily_loss_beyond_the_limit_is_a_breach() -> None:
    state = DailyRisk("2026-03-01", {"a": D("1000")})
    assert risk.breached_accounts(state, {"a": D("949")}, D("0.05")) == ["a"]
    assert risk.breached_accounts(state, {"a": D("950")}, D("0.05")) == []
    assert risk.breached_accounts(state, {"a": D("1")}, None) == []


def test_utc_day_formats_the_date() -> None:
    assert risk.utc_day(datetime(2026, 3, 1, 23, 59, tzinfo=UTC)) == "2026-03-01"
