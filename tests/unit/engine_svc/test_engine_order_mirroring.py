"""Order mirroring (``copy_settings.copy_mode``): the pure decisions and the setting's checks."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from engine_svc.domain import intents as rules
from engine_svc.domain.decision import SignalAction, decide, signal_action
from engine_svc.domain.model import (
    ConfigSettings,
    CopySettings,
    CopyStatus,
    FollowerSnapshot,
    IntentState,
    MarketInfo,
    OrderStatus,
    OrderType,
    RiskLimits,
    Side,
    Signal,
    SignalKind,
    SkipReason,
    TimeInForce,
)
from engine_svc.domain.settings import normalized, validate

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BTC = MarketInfo(
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    quantity_step=D("0.00001"),
    min_quantity=D("0.00001"),
    min_notional=D("10"),
    last_price=D("50000"),
    price_tick=D("0.1"),
)
FOLLOWER = FollowerSnapshot(equity=D("10000"), base_free=D("0.5"), base_total=D("0.5"))
ORDERS = CopySettings(copy_mode="orders")


def order_signal(**changes: object) -> Signal:
    base = Signal(
        source_id="s",
        sequence=7,
        signal_id="order:42:open",
        symbol="BTC/USDT",
        side=Side.BUY,
        quantity=D("0.1"),
        price=D("40000.07"),
        order_type=OrderType.LIMIT,
        event_time=NOW - timedelta(seconds=1),
        leader_equity=D("100000"),
        exchange_name="binance",
        kind=SignalKind.ORDER_OPEN,
        leader_order_id="42",
        time_in_force=TimeInForce.GTC,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # test overrides


def run(sig: Signal, limits: RiskLimits | None = None) -> object:
    return decide(sig, CopyStatus.ACTIVE, limits or RiskLimits(), ORDERS, FOLLOWER, BTC, NOW)


FILL = order_signal(kind=SignalKind.FILL, signal_id="t1", order_type=OrderType.MARKET)


@pytest.mark.parametrize(
    ("sig", "mode", "action"),
    [
        (FILL, "fills", SignalAction.COPY),
        (dataclasses.replace(FILL, order_mirrored=True), "fills", SignalAction.SKIP_MIRRORED),
        (FILL, "orders", SignalAction.COPY),
        (dataclasses.replace(FILL, order_mirrored=True), "orders", SignalAction.SKIP_MIRRORED),
        (order_signal(), "fills", SignalAction.IGNORE),
        (order_signal(kind=SignalKind.ORDER_CANCEL), "fills", SignalAction.CANCEL),
        (order_signal(kind=SignalKind.ORDER_AMEND), "fills", SignalAction.CANCEL),
        (order_signal(), "orders", SignalAction.COPY),
        (order_signal(kind=SignalKind.ORDER_CANCEL), "orders", SignalAction.CANCEL),
        (order_signal(kind=SignalKind.ORDER_AMEND), "orders", SignalAction.REPLACE),
    ],
)
def test_each_signal_kind_has_one_action_per_copy_mode(
    sig: Signal, mode: str, action: SignalAction
) -> None:
    assert signal_action(sig, mode) is action


def test_a_leader_limit_order_is_mirrored_with_its_type_price_and_time_in_force() -> None:
    decision = run(order_signal(time_in_force=TimeInForce.FOK))
    assert decision.order_type is OrderType.LIMIT  # type: ignore[attr-defined]
    assert decision.price == D("40000.0")  # type: ignore[attr-defined]  # a buy rounds down
    assert decision.time_in_force is TimeInForce.FOK  # type: ignore[attr-defined]
    assert decision.quantity == D("0.01")  # type: ignore[attr-defined]  # equity ratio 1:10
    assert decision.stop_price is None  # type: ignore[attr-defined]


def test_a_mirrored_order_ignores_the_slippage_band() -> None:
    decision = run(order_signal(), RiskLimits(max_slippage=D("0.001")))
    assert (decision.order_type, decision.price) == (OrderType.LIMIT, D("40000.0"))  # type: ignore[attr-defined]


def test_a_stop_limit_sell_keeps_its_stop_and_limit_rounded_inwards() -> None:
    sig = order_signal(
        side=Side.SELL,
        order_type=OrderType.STOP_LIMIT,
        price=D("38999.91"),
        stop_price=D("39000.01"),
        leader_position=D("1"),
    )
    decision = run(sig)
    assert decision.order_type is OrderType.STOP_LIMIT  # type: ignore[attr-defined]
    assert decision.price == D("39000.0")  # type: ignore[attr-defined]  # a sell rounds up
    assert decision.stop_price == D("39000.1")  # type: ignore[attr-defined]
    assert decision.quantity == D("0.05")  # type: ignore[attr-defined]  # 10% of 0.5 held


def test_a_stop_market_order_is_sized_and_checked_at_its_stop() -> None:
    sig = order_signal(
        order_type=OrderType.STOP_MARKET, price=None, stop_price=D("60000"), time_in_force=None
    )
    decision = run(sig)
    assert decision.order_type is OrderType.STOP_MARKET  # type: ignore[attr-defined]
    assert (decision.price, decision.stop_price) == (None, D("60000"))  # type: ignore[attr-defined]


def test_a_mirrored_order_still_passes_the_filters_and_the_gate() -> None:
    stale = order_signal(event_time=NOW - timedelta(minutes=5))
    assert run(stale).reason == SkipReason.STALE  # type: ignore[attr-defined]
    tiny = order_signal(quantity=D("0.00001"))
    assert run(tiny).reason == SkipReason.BELOW_MIN_NOTIONAL  # type: ignore[attr-defined]


def test_a_cancel_the_engine_wished_for_a_leader_keeps_its_reason() -> None:
    copy = rules.new_intent(
        "i",
        "c",
        order_signal(),
        "acct",
        run(order_signal()),
        NOW,  # type: ignore[arg-type]
    )
    resting = dataclasses.replace(
        copy,
        state=IntentState.ACCEPTED,
        cancel_wanted=True,
        reason=SkipReason.LEADER_ORDER_CANCELLED.value,
    )
    assert rules.outcome_of(resting, OrderStatus.CANCELED) == (
        IntentState.CANCELED,
        "leader_order_cancelled",
    )


@pytest.mark.parametrize("mode", ["fills", "orders"])
def test_both_copy_modes_are_valid(mode: str) -> None:
    settings = normalized(ConfigSettings(copy_settings=CopySettings(copy_mode=mode)))
    assert validate(settings) == []


def test_an_unknown_copy_mode_names_the_field() -> None:
    settings = normalized(ConfigSettings(copy_settings=CopySettings(copy_mode="positions")))
    found = validate(settings)
    assert [v.field for v in found] == ["copy_settings.copy_mode"]


def test_an_empty_copy_mode_means_fills() -> None:
    settings = normalized(ConfigSettings(copy_settings=CopySettings(copy_mode="")))
    assert settings.copy_settings.copy_mode == "fills"
