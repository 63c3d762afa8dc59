"""Futures entries sized on margin (pure; ``copy_settings.futures_sizing`` margin): the follower
commits the same share of its equity as margin that the leader committed, at its own leverage
(the leader's, at most max_leverage); without the leader's leverage the entry is skipped."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from copytrade.engine.v1 import engine_service_pb2 as pb
from engine_svc import codec
from engine_svc.domain import futures
from engine_svc.domain.decision import decide
from engine_svc.domain.model import (
    ConfigSettings,
    CopySettings,
    CopyStatus,
    FollowerSnapshot,
    MarketInfo,
    OrderType,
    PositionEffect,
    RiskLimits,
    Side,
    Signal,
    SkipReason,
)
from engine_svc.domain.settings import normalized, validate
from engine_svc.settings_json import _copy_settings, copy_settings_json

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
MARGIN = CopySettings(futures_sizing="margin")


def follower(position: str = "0", equity: str = "10000") -> FollowerSnapshot:
    held = D(position)
    return FollowerSnapshot(D(equity), abs(held), abs(held), position=held)


def signal(**changes: object) -> Signal:
    # The leader (equity 10,000) buys 0.5 BTC at 50,000 at 10x: 25,000 of notional, 2,500 of
    # margin, a quarter of its equity committed.
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
    sig: Signal, copy: CopySettings, max_leverage: str, snapshot: FollowerSnapshot | None = None
):
    limits = RiskLimits(max_leverage=D(max_leverage))
    return decide(sig, CopyStatus.ACTIVE, limits, copy, snapshot or follower(), PERP, NOW)


def test_below_max_leverage_margin_sizing_equals_notional_sizing() -> None:
    # Follower at 10x too (max_leverage 20): 2,500 of margin is 25,000 of notional, 0.5 BTC.
    by_margin = run(signal(), MARGIN, "20")
    by_notional = run(signal(), CopySettings(), "20")
    assert by_margin.quantity == by_notional.quantity == D("0.500")
    assert by_margin.leverage == by_notional.leverage == 10


def test_above_max_leverage_the_followers_margin_share_is_kept_at_its_lower_leverage() -> None:
    # Follower at 3x (max_leverage 3): the same 2,500 of margin (a quarter of its 10,000) buys
    # 7,500 of notional, 0.15 BTC; sized on notional it would buy 0.5 BTC (25,000, 8,333 margin).
    decision = run(signal(), MARGIN, "3")
    assert not decision.skipped
    assert decision.quantity == D("0.150") and decision.leverage == 3
    assert decision.quantity * D("50000") / decision.leverage == D("2500")
    assert run(signal(), CopySettings(), "3").quantity == D("0.500")


def test_the_sizing_mode_scales_the_leaders_margin() -> None:
    half = CopySettings(futures_sizing="margin", sizing_mode="multiplier", multiplier=D("0.5"))
    # Half the leader's 2,500 margin at 3x: 3,750 of notional.
    assert run(signal(), half, "3").quantity == D("0.075")
    # A follower with twice the equity commits the same quarter: 5,000 margin at 3x.
    assert run(signal(), MARGIN, "3", follower(equity="20000")).quantity == D("0.300")


def test_an_unknown_leader_leverage_is_skipped_never_guessed() -> None:
    decision = run(signal(leader_leverage=None), MARGIN, "3")
    assert decision.skipped and decision.reason == SkipReason.LEADER_LEVERAGE_UNKNOWN.value
    # Sized on notional it is copied at max_leverage, as before.
    assert not run(signal(leader_leverage=None), CopySettings(), "3").skipped


def test_a_mapped_spot_leader_is_margined_in_full() -> None:
    spot = signal(
        symbol="BTC/USDT",
        quantity=D("0.1"),
        leader_leverage=None,
        position_effect=PositionEffect.UNSPECIFIED,
    )
    copy = dataclasses.replace(MARGIN, symbol_map={"BTC/USDT": "BTC/USDT:USDT"})
    decision = run(spot, copy, "3")
    # A spot buy (5,000 of 10,000) is paid in full, leverage 1: the follower commits its half
    # as margin at 1x, never guessing a leverage.
    assert (decision.quantity, decision.leverage) == (D("0.100"), 1)
    assert futures.margin_leverage(spot) == 1


def test_a_reverse_entry_under_margin_keeps_the_leaders_leverage() -> None:
    reverse = signal(
        side=Side.SELL,
        quantity=D("1.5"),
        leader_position=D("1"),
        position_effect=PositionEffect.REVERSE,
    )
    entry = futures.reverse_entry(reverse)
    assert entry is not None
    decision = run(entry, MARGIN, "3")
    assert decision.quantity == D("0.150") and decision.leverage == 3


def test_futures_sizing_is_validated_naming_the_field() -> None:
    assert normalized(ConfigSettings()).copy_settings.futures_sizing == "notional"
    bad = ConfigSettings(copy_settings=CopySettings(futures_sizing="leverage"))
    assert [v.field for v in validate(normalized(bad))] == ["copy_settings.futures_sizing"]
    fixed = CopySettings(
        futures_sizing="margin", sizing_mode="fixed_notional", fixed_notional=D("100")
    )
    violations = validate(normalized(ConfigSettings(copy_settings=fixed)))
    assert [v.field for v in violations] == ["copy_settings.futures_sizing"]
    assert "equity_ratio or multiplier" in violations[0].description


@pytest.mark.parametrize("value", ["margin", "notional"])
def test_futures_sizing_round_trips_the_wire_and_the_store(value: str) -> None:
    copy = CopySettings(futures_sizing=value)
    assert _copy_settings(copy_settings_json(copy)).futures_sizing == value
    message = pb.CopySettings(futures_sizing=value)
    found: list = []
    assert codec.parse_section("copy_settings", message, found).futures_sizing == value
    assert not found
    # A row stored before the field existed reads as notional.
    assert _copy_settings('{"sizing_mode": "equity_ratio"}').futures_sizing == "notional"
