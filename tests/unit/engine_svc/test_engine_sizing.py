"""Sizing modes, clamps and rounding to the venue step."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine_svc.domain import sizing
from engine_svc.domain.model import Side


@pytest.mark.parametrize(
    ("leader_quantity", "follower_equity", "leader_equity", "expected"),
    [
        (D("0.1"), D("10000"), D("100000"), D("0.01")),
        (D("2"), D("500"), D("1000"), D("1")),
        (D("1"), D("3000"), D("1000"), D("3")),
        (D("0.5"), D("0"), D("1000"), D("0")),
    ],
)
def test_equity_ratio_scales_the_leader_quantity_by_equity(
    leader_quantity: D,
    follower_equity: D,
    leader_equity: D,
    expected: D,
) -> None:
    assert sizing.equity_ratio(leader_quantity, follower_equity, leader_equity) == expected


def test_equity_ratio_refuses_a_leader_without_equity() -> None:
    with pytest.raises(ValueError, match="leader equity"):
        sizing.equity_ratio(D("1"), D("100"), D("0"))


@pytest.mark.parametrize(
    ("function", "args", "expected"),
    [
        (sizing.multiplier, (D("0.4"), D("2.5")), D("1.0")),
        (sizing.fixed_notional, (D("1000"), D("50000")), D("0.02")),
        (sizing.fixed_quantity, (D("0.3"),), D("0.3")),
        (sizing.portfolio_fraction, (D("10000"), D("0.05"), D("2500")), D("0.2")),
        (sizing.proportional_exit, (D("0.4"), D("1"), D("0.05")), D("0.020")),
        (sizing.proportional_exit, (D("3"), D("1"), D("0.05")), D("0.05")),
    ],
)
def test_each_sizing_mode_computes_its_quantity(
    function: Callable[..., D],
    args: tuple,
    expected: D,
) -> None:
    assert function(*args) == expected


@pytest.mark.parametrize("function", [sizing.fixed_notional])
def test_notional_sizing_refuses_a_zero_price(function) -> None:
    with pytest.raises(ValueError, match="price"):
        function(D("100"), D("0"))


@pytest.mark.parametrize(
    ("quantity", "step", "expected"),
    [
        (D("0.0123456"), D("0.00001"), D("0.01234")),
        (D("0.0099999"), D("0.001"), D("0.009")),
        (D("1.99"), D("1"), D("1")),
        (D("0.0001"), D("0.001"), D("0.000")),
        (D("5.5"), None, D("5.5")),
        (D("5.5"), D("0"), D("5.5")),
        (D("0.3"), D("0.1"), D("0.3")),
        (D("-1"), D("0.1"), D("0")),
    ],
)
def test_round_down_to_step_never_rounds_up(quantity: D, step: D | None, expected: D) -> None:
    assert sizing.round_down_to_step(quantity, step) == expected


@given(
    quantity=st.decimals(min_value=D("0"), max_value=D("1000000"), places=8),
    step=st.sampled_from([D("1"), D("0.1"), D("0.001"), D("0.00001"), D("0.25")]),
)
def test_rounded_quantity_is_a_step_multiple_within_one_step_below(quantity: D, step: D) -> None:
    rounded = sizing.round_down_to_step(quantity, step)
    assert rounded <= quantity
    assert quantity - rounded < step
    assert rounded % step == 0


def test_clamp_to_notional_caps_the_value_of_the_order() -> None:
    assert sizing.clamp_to_notional(D("1"), D("5000"), D("50000")) == D("0.1")
    assert sizing.clamp_to_notional(D("0.01"), D("5000"), D("50000")) == D("0.01")


@pytest.mark.parametrize(
    ("quantity", "price", "min_notional", "min_quantity", "below"),
    [
        (D("0.0002"), D("50000"), D("10"), None, False),
        (D("0.0002"), D("50000"), D("10.01"), None, True),
        (D("0.001"), D("50000"), None, D("0.01"), True),
        (D("0"), D("50000"), None, None, True),
        (D("0.01"), D("50000"), D("10"), D("0.01"), False),
    ],
)
def test_below_venue_minimum_checks_notional_and_quantity(
    quantity: D,
    price: D,
    min_notional: D | None,
    min_quantity: D | None,
    below: bool,
) -> None:
    assert sizing.below_venue_minimum(quantity, price, min_notional, min_quantity) is below


@pytest.mark.parametrize(
    ("price", "tick", "up", "expected"),
    [
        (D("100.07"), D("0.05"), False, D("100.05")),
        (D("100.07"), D("0.05"), True, D("100.10")),
        (D("100.05"), D("0.05"), True, D("100.05")),
        (D("123.456"), None, True, D("123.456")),
        (D("7"), D("5"), False, D("5")),
    ],
)
def test_prices_round_to_the_tick_in_the_asked_direction(
    price: D, tick: D | None, up: bool, expected: D
) -> None:
    assert sizing.round_price_to_tick(price, tick, up=up) == expected


@given(
    reference=st.decimals(min_value=D("0.0001"), max_value=D("1000000"), places=6),
    slippage=st.decimals(min_value=D("0"), max_value=D("0.999"), places=4),
    tick=st.sampled_from([None, D("0.01"), D("0.5"), D("0.00001"), D("1")]),
    side=st.sampled_from(list(Side)),
)
def test_slippage_band_price_never_leaves_the_band_and_sits_on_the_tick(
    reference: D, slippage: D, tick: D | None, side: Side
) -> None:
    price = sizing.slippage_band_price(reference, side, slippage, tick)
    if side is Side.BUY:
        assert price <= reference * (1 + slippage)
        assert tick is None or reference * (1 + slippage) - price < tick
    else:
        assert price >= reference * (1 - slippage)
        assert tick is None or price - reference * (1 - slippage) < tick
    assert tick is None or price % tick == 0
