"""Copying a futures leader's position changes (pure): leverage, entries cut or skipped as
max_leverage, reduce-only exits proportional to the follower's own position, liquidations
copied as closes, and spot ↔ futures copies refused unless symbol_map names them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from engine_svc.domain import futures
from engine_svc.domain.decision import decide, pre_check
from engine_svc.domain.intents import exposure_side, new_intent
from engine_svc.domain.model import (
    ConfigSettings,
    CopySettings,
    CopyStatus,
    FollowerSnapshot,
    MarketInfo,
    OrderType,
    Portfolio,
    PositionEffect,
    RiskLimits,
    Side,
    Signal,
    SkipReason,
    VenuePosition,
)
from engine_svc.domain.settings import normalized, validate

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PERP = MarketInfo(
    symbol="BTC/USDT:USDT",
    base="BTC",
    quote="USDT",
    quantity_step=D("0.001"),
    min_quantity=D("0.001"),
    min_notional=D("100"),
    last_price=D("50000"),
    contract_size=D("1"),
)
SPOT = dataclasses.replace(PERP, symbol="BTC/USDT", contract_size=None)
LIMITS = RiskLimits(max_leverage=D("3"))


def follower(position: str = "0", equity: str = "10000") -> FollowerSnapshot:
    held = D(position)
    return FollowerSnapshot(D(equity), abs(held), abs(held), position=held)


def signal(**changes: object) -> Signal:
    base = Signal(
        source_id="s",
        sequence=1,
        signal_id="t1",
        symbol="BTC/USDT:USDT",
        side=Side.BUY,
        quantity=D("0.5"),
        price=D("50000"),
        order_type=OrderType.MARKET,
        event_time=NOW - timedelta(seconds=1),
        leader_equity=D("10000"),
        leader_position=D("0"),
        exchange_name="binanceusdm",
        position_effect=PositionEffect.OPEN,
        leader_leverage=D("10"),
    )
    return dataclasses.replace(base, **changes)


def run(
    sig: Signal,
    snapshot: FollowerSnapshot,
    *,
    limits: RiskLimits = LIMITS,
    copy: CopySettings | None = None,
    market: MarketInfo = PERP,
    status: CopyStatus = CopyStatus.ACTIVE,
):
    return decide(sig, status, limits, copy or CopySettings(), snapshot, market, NOW)


@pytest.mark.parametrize(
    ("max_leverage", "leader", "expected"),
    [("3", "10", 3), ("3", "2", 2), ("3", None, 3), (None, "10", 1), ("2.9", None, 2)],
)
def test_the_follower_leverage_is_the_leaders_at_most_max_leverage(
    max_leverage: str | None, leader: str | None, expected: int
) -> None:
    limit = D(max_leverage) if max_leverage else None
    assert futures.target_leverage(limit, D(leader) if leader else None) == expected


def test_an_entry_is_sized_on_notional_and_sets_the_leverage_first() -> None:
    decision = run(signal(), follower())
    assert not decision.skipped
    # 0.5 x follower equity 10,000 / leader equity 10,000: 25,000 of notional, under 3 x 10,000.
    assert decision.quantity == D("0.500")
    assert decision.leverage == 3 and not decision.reduce_only


def test_an_entry_beyond_equity_times_max_leverage_is_cut_to_fit() -> None:
    decision = run(signal(quantity=D("1")), follower())
    assert not decision.skipped
    # 0.98 x 3 x 10,000 / 50,000 = 0.588 (the rest is left for the fee and the price).
    assert decision.quantity == D("0.588")


def test_a_lower_leader_leverage_caps_the_entry_lower() -> None:
    decision = run(signal(quantity=D("1"), leader_leverage=D("2")), follower())
    assert decision.leverage == 2 and decision.quantity == D("0.392")


def test_an_entry_with_no_room_left_under_max_leverage_is_skipped() -> None:
    decision = run(signal(), follower(position="0.6"))
    assert decision.skipped and decision.reason == SkipReason.MAX_LEVERAGE.value


def test_an_entry_cut_below_the_venue_minimum_says_max_leverage() -> None:
    decision = run(signal(), follower(position="0.5879"))
    assert decision.reason == SkipReason.MAX_LEVERAGE.value


def test_a_short_entry_opens_a_short_sized_the_same() -> None:
    decision = run(signal(side=Side.SELL), follower())
    assert not decision.skipped and decision.quantity == D("0.500") and not decision.reduce_only


def test_the_leaders_half_close_halves_the_followers_own_position_reduce_only() -> None:
    sig = signal(
        side=Side.SELL,
        quantity=D("0.25"),
        leader_position=D("0.5"),
        position_effect=PositionEffect.REDUCE,
    )
    decision = run(sig, follower(position="0.2"))
    assert decision.reduce_only and decision.leverage is None
    assert decision.quantity == D("0.100")


def test_a_close_of_a_short_buys_back_the_followers_whole_short() -> None:
    sig = signal(
        side=Side.BUY,
        quantity=D("0.5"),
        leader_position=D("-0.5"),
        position_effect=PositionEffect.CLOSE,
    )
    decision = run(sig, follower(position="-0.3"))
    assert decision.reduce_only and decision.quantity == D("0.300")


@pytest.mark.parametrize("held", ["0", "-0.2"])
def test_an_exit_never_opens_the_other_side(held: str) -> None:
    sig = signal(
        side=Side.SELL,
        quantity=D("0.25"),
        leader_position=D("0.5"),
        position_effect=PositionEffect.REDUCE,
    )
    decision = run(sig, follower(position=held))
    assert decision.skipped and decision.reason == SkipReason.NO_POSITION_TO_REDUCE.value


def test_a_reverse_is_copied_as_the_close_of_the_followers_position() -> None:
    sig = signal(
        side=Side.SELL,
        quantity=D("1"),
        leader_position=D("0.5"),
        position_effect=PositionEffect.REVERSE,
    )
    decision = run(sig, follower(position="0.2"))
    assert decision.reduce_only and decision.quantity == D("0.200")


@pytest.mark.parametrize(
    ("effect", "leader_position"),
    [(PositionEffect.CLOSE, D("0.5")), (PositionEffect.UNSPECIFIED, None)],
)
def test_a_liquidation_closes_the_whole_follower_position_at_market(
    effect: PositionEffect, leader_position: D | None
) -> None:
    sig = signal(
        side=Side.SELL,
        quantity=D("0.5"),
        price=D("30000"),
        leader_position=leader_position,
        position_effect=effect,
        liquidation=True,
    )
    limits = dataclasses.replace(LIMITS, max_slippage=D("0.01"))
    decision = run(sig, follower(position="0.2"), limits=limits)
    assert decision.reduce_only and decision.quantity == D("0.200")
    assert decision.order_type is OrderType.MARKET


def test_a_liquidation_is_copied_even_when_reducing_trades_are_not() -> None:
    copy = CopySettings(copy_all_trades=False)
    reduce = signal(side=Side.SELL, leader_position=D("0.5"), position_effect=PositionEffect.REDUCE)
    liquidated = dataclasses.replace(reduce, liquidation=True)
    assert pre_check(reduce, CopyStatus.ACTIVE, copy, NOW) is SkipReason.REDUCING_TRADE_NOT_COPIED
    assert pre_check(liquidated, CopyStatus.ACTIVE, copy, NOW) is None


def test_a_reducing_configuration_copies_a_short_close_but_no_new_short() -> None:
    close = signal(side=Side.BUY, leader_position=D("-0.5"), position_effect=PositionEffect.CLOSE)
    opening = signal(side=Side.SELL)
    assert not run(close, follower(position="-0.2"), status=CopyStatus.REDUCING).skipped
    skipped = run(opening, follower(), status=CopyStatus.REDUCING)
    assert skipped.reason == SkipReason.REDUCING.value


def test_a_reduce_only_exit_below_the_min_notional_is_still_sent() -> None:
    sig = signal(
        side=Side.SELL,
        quantity=D("0.25"),
        leader_position=D("0.5"),
        position_effect=PositionEffect.REDUCE,
    )
    decision = run(sig, follower(position="0.002"))  # 0.001 x 50,000 = 50 < 100
    assert decision.reduce_only and decision.quantity == D("0.001")


def test_a_spot_trade_to_a_futures_market_is_refused_unless_mapped() -> None:
    spot = signal(symbol="BTC/USDT", position_effect=PositionEffect.UNSPECIFIED)
    assert run(spot, follower()).reason == SkipReason.MARKET_TYPE_MISMATCH.value
    mapped = CopySettings(symbol_map={"BTC/USDT": "BTC/USDT:USDT"})
    assert not run(spot, follower(), copy=mapped).skipped
    futures_to_spot = run(signal(), FollowerSnapshot(D("10000"), D("0"), D("0")), market=SPOT)
    assert futures_to_spot.reason == SkipReason.MARKET_TYPE_MISMATCH.value


def test_a_mapped_spot_leaders_sell_gives_up_its_share_of_the_futures_long() -> None:
    spot_sell = signal(
        symbol="BTC/USDT",
        side=Side.SELL,
        quantity=D("0.1"),
        leader_position=D("0.4"),
        position_effect=PositionEffect.UNSPECIFIED,
    )
    mapped = CopySettings(symbol_map={"BTC/USDT": "BTC/USDT:USDT"})
    decision = run(spot_sell, follower(position="0.2"), copy=mapped)
    assert decision.reduce_only and decision.quantity == D("0.050")


def test_the_follower_snapshot_of_a_futures_market_is_its_signed_position() -> None:
    portfolio = Portfolio(
        equity=D("10000"),
        quote_currency="USDT",
        positions=(VenuePosition("BTC/USDT:USDT", "short", D("3"), contract_size=D("0.1")),),
    )
    snapshot = FollowerSnapshot.of(portfolio, "BTC", "BTC/USDT:USDT")
    assert snapshot.position == D("-0.3") and snapshot.equity == D("10000")
    assert FollowerSnapshot.of(portfolio, "BTC", "BTC/USDT").position is None


def test_a_reduce_only_buy_leaves_a_reducing_configuration_and_a_short_entry_does_not() -> None:
    exit_ = new_intent("i", "c", signal(side=Side.BUY), "x", run_exit(), NOW)
    entry = new_intent(
        "i", "c", signal(side=Side.SELL), "x", run(signal(side=Side.SELL), follower()), NOW
    )
    assert exit_.reduce_only and exposure_side(exit_) is Side.SELL
    assert not entry.reduce_only and entry.leverage == 3 and exposure_side(entry) is Side.BUY


def run_exit():
    close = signal(side=Side.BUY, leader_position=D("-0.5"), position_effect=PositionEffect.CLOSE)
    return run(close, follower(position="-0.2"))


@pytest.mark.parametrize("value", ["0", "0.5", "126"])
def test_max_leverage_out_of_range_is_refused_naming_the_field(value: str) -> None:
    settings = ConfigSettings(risk_limits=RiskLimits(max_leverage=D(value)))
    assert [v.field for v in validate(normalized(settings))] == ["risk_limits.max_leverage"]


def test_counterparts_of_spot_and_perpetual_symbols() -> None:
    assert futures.counterpart("BTC/USDT:USDT") == "BTC/USDT"
    assert futures.counterpart("BTC/USDT") == "BTC/USDT:USDT"


def test_a_futures_signal_keeps_its_position_fields_in_the_inbox() -> None:
    from engine_svc.settings_json import signal_from_json, signal_json

    sig = signal(
        side=Side.SELL,
        leader_position=D("-0.5"),
        position_effect=PositionEffect.REVERSE,
        liquidation=True,
    )
    assert signal_from_json(signal_json(sig)) == sig


def test_close_all_buys_back_a_copied_short_and_sells_a_copied_long_within_the_position() -> None:
    from engine_svc.domain import risk

    copied = risk.copied_positions(
        [
            ("BTC/USDT:USDT", Side.SELL, D("0.3")),
            ("ETH/USDT:USDT", Side.BUY, D("2")),
            ("BTC/USDT", Side.SELL, D("1")),
        ]
    )
    assert copied == {"BTC/USDT:USDT": D("-0.3"), "ETH/USDT:USDT": D("2")}
    portfolio = Portfolio(
        equity=D("10000"),
        quote_currency="USDT",
        positions=(VenuePosition("BTC/USDT:USDT", "short", D("0.2")),),
    )
    assert risk.close_quantity(D("-0.3"), portfolio, PERP) == D("0.2")
    assert risk.close_quantity(D("0.3"), portfolio, PERP) == 0  # no long to sell: never a short
