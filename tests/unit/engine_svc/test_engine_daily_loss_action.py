"""The daily loss action (pure): the verdict per action, the close orders and the revaluation."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from engine_svc.copy.recorder import risk_action_event, roll_daily_risk
from engine_svc.domain import risk
from engine_svc.domain.model import (
    AssetBalance,
    ConfigSettings,
    CopyStatus,
    DailyRisk,
    MarketInfo,
    Portfolio,
    RiskLimits,
    Side,
)
from engine_svc.domain.settings import normalized, validate
from tests.fakes.configs import copy_config

DAY = "2026-12-04"
STARTED = DailyRisk(day=DAY, start_equity={"a1": D("10000")})


def limits(action: str = "", loss: str | None = "0.05") -> RiskLimits:
    return RiskLimits(max_daily_loss=D(loss) if loss else None, daily_loss_action=action)


@pytest.mark.parametrize(
    ("action", "status", "close"),
    [
        ("", CopyStatus.REDUCING, False),
        ("reduce_only", CopyStatus.REDUCING, False),
        ("close_all", CopyStatus.REDUCING, True),
        ("disable", CopyStatus.PAUSED, False),
    ],
)
def test_a_breach_takes_the_configured_action(action: str, status: CopyStatus, close: bool) -> None:
    verdict = risk.evaluate_daily_loss(
        CopyStatus.ACTIVE, "", STARTED, limits(action), {"a1": D("9400")}, DAY
    )
    assert verdict.status is status
    assert verdict.close_positions is close
    assert verdict.action == (action or "reduce_only")
    assert (verdict.account, verdict.loss, verdict.limit) == ("a1", D("0.06"), D("0.05"))
    assert verdict.reason.startswith("max_daily_loss: account a1 lost 6.00% since 00:00 UTC")
    assert risk.is_daily_loss_reason(verdict.reason)


def test_no_breach_only_records_the_start_equity_of_the_day() -> None:
    verdict = risk.evaluate_daily_loss(
        CopyStatus.ACTIVE, "", DailyRisk(), limits("close_all"), {"a1": D("10000")}, DAY
    )
    assert (verdict.status, verdict.action, verdict.close_positions) == (
        CopyStatus.ACTIVE,
        None,
        False,
    )
    assert verdict.daily == STARTED
    within = risk.evaluate_daily_loss(
        CopyStatus.ACTIVE, "", STARTED, limits("close_all"), {"a1": D("9500")}, DAY
    )
    assert within.action is None and within.status is CopyStatus.ACTIVE


def test_a_reducing_configuration_still_closes_and_a_paused_or_unlimited_one_is_not_judged() -> (
    None
):
    reducing = risk.evaluate_daily_loss(
        CopyStatus.REDUCING, "why", STARTED, limits("close_all"), {"a1": D("9000")}, DAY
    )
    assert (reducing.status, reducing.reason, reducing.close_positions) == (
        CopyStatus.REDUCING,
        "why",
        True,
    )
    for status, limit in (
        (CopyStatus.PAUSED, limits("disable")),
        (CopyStatus.ACTIVE, limits(loss=None)),
    ):
        verdict = risk.evaluate_daily_loss(status, "", STARTED, limit, {"a1": D("1")}, DAY)
        assert verdict.action is None and verdict.status is status


def test_a_new_utc_day_measures_afresh() -> None:
    verdict = risk.evaluate_daily_loss(
        CopyStatus.ACTIVE, "", STARTED, limits("disable"), {"a1": D("9000")}, "2026-12-05"
    )
    assert verdict.action is None
    assert verdict.daily == DailyRisk(day="2026-12-05", start_equity={"a1": D("9000")})


def test_daily_loss_action_is_validated_naming_the_field() -> None:
    settings = normalized(ConfigSettings(risk_limits=RiskLimits(daily_loss_action="sell_all")))
    assert [v.field for v in validate(settings)] == ["risk_limits.daily_loss_action"]
    assert normalized(ConfigSettings()).risk_limits.daily_loss_action == "reduce_only"


def test_close_keys_are_stable_per_day_and_distinct_per_symbol() -> None:
    first = risk.close_key("c1", "a1", "BTC/USDT", DAY)
    assert first == risk.close_key("c1", "a1", "BTC/USDT", DAY)
    assert first != risk.close_key("c1", "a1", "ETH/USDT", DAY)
    assert first != risk.close_key("c1", "a1", "BTC/USDT", "2026-12-05")
    assert first[1] < 0


MARKET = MarketInfo(
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    quantity_step=D("0.001"),
    min_quantity=D("0.001"),
    min_notional=D("10"),
    last_price=D("40000"),
)


def holding(free: str) -> Portfolio:
    return Portfolio(
        equity=D("10000"),
        quote_currency="USDT",
        balances=(AssetBalance("BTC", D(free), D(free), D(free) * 50000),),
    )


def test_close_sells_what_was_copied_at_most_what_is_free_rounded_down() -> None:
    positions = risk.copied_positions(
        [
            ("BTC/USDT", Side.BUY, D("0.1")),
            ("BTC/USDT", Side.SELL, D("0.02")),
            ("ETH/USDT", Side.BUY, D("1")),
            ("ETH/USDT", Side.SELL, D("1")),
        ]
    )
    assert positions == {"BTC/USDT": D("0.08")}
    assert risk.close_quantity(D("0.08"), holding("0.5"), MARKET) == D("0.080")
    assert risk.close_quantity(D("0.08"), holding("0.0555"), MARKET) == D("0.055")
    assert risk.close_quantity(D("0.08"), holding("0.0001"), MARKET) == 0
    assert risk.close_quantity(D("0.08"), None, MARKET) == 0


def test_equity_is_revalued_at_new_prices() -> None:
    portfolio = Portfolio(
        equity=D("10000"),
        quote_currency="USDT",
        balances=(
            AssetBalance("USDT", D("5000"), D("5000"), D("5000")),
            AssetBalance("BTC", D("0.1"), D("0.1"), D("5000")),
        ),
    )
    assert risk.revalued_equity(portfolio, {"BTC": D("40000")}) == D("9000")
    assert risk.revalued_equity(portfolio, {}) == D("10000")


def test_a_breach_found_on_a_leader_trade_takes_the_same_action() -> None:
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    config = copy_config(
        now,
        config_id="c1",
        user_id="u1",
        source_id="s1",
        target_exchange_ids=("a1",),
        settings=ConfigSettings(risk_limits=limits("disable")),
        daily_risk=STARTED,
    )
    state = roll_daily_risk(config, {"a1": Portfolio(D("9000"), "USDT")}, now)
    assert state.status is CopyStatus.PAUSED
    assert state.verdict is not None
    event = risk_action_event(config, state.verdict)
    assert event.action == "risk.daily_loss_action"
    assert event.after is not None
    assert (event.after["action"], event.after["loss"], event.after["account"]) == (
        "disable",
        "0.1",
        "a1",
    )
