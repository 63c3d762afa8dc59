"""The risk gate: allow, reduce to fit or deny with a reason, for every limit in force."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest

from engine_svc.domain import gate
from engine_svc.domain.gate import GateLimits, GateState, ProposedOrder, Verdict
from engine_svc.domain.model import (
    CopySettings,
    CopyStatus,
    FollowerSnapshot,
    MarketInfo,
    RiskLimits,
    Side,
)

BTC = MarketInfo(
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    quantity_step=D("0.001"),
    min_quantity=D("0.001"),
    min_notional=D("10"),
    last_price=D("50000"),
)
FLAT = FollowerSnapshot(equity=D("10000"), base_free=D("0"), base_total=D("0"))
ACTIVE = GateState(CopyStatus.ACTIVE)


def buy(quantity: str, price: str = "50000") -> ProposedOrder:
    return ProposedOrder("BTC/USDT", Side.BUY, D(quantity), D(price))


def sell(quantity: str, price: str = "50000") -> ProposedOrder:
    return ProposedOrder("BTC/USDT", Side.SELL, D(quantity), D(price))


def holding(free: str, total: str | None = None, equity: str = "10000") -> FollowerSnapshot:
    return FollowerSnapshot(equity=D(equity), base_free=D(free), base_total=D(total or free))


def check(
    order: ProposedOrder,
    snapshot: FollowerSnapshot = FLAT,
    *,
    limits: GateLimits | None = None,
    state: GateState = ACTIVE,
    market: MarketInfo = BTC,
) -> gate.GateResult:
    return gate.check(order, snapshot, market, limits or GateLimits(), state)


def test_an_order_within_every_limit_is_allowed_rounded_down_to_the_step() -> None:
    result = check(buy("0.0109"))
    assert (result.verdict, result.quantity, result.reason) == (Verdict.ALLOW, D("0.010"), "")


@pytest.mark.parametrize(
    ("status", "side", "reason"),
    [
        (CopyStatus.PAUSED, Side.BUY, "paused"),
        (CopyStatus.PAUSED, Side.SELL, "paused"),
        (CopyStatus.HALTED, Side.SELL, "halted"),
        (CopyStatus.STOPPED, Side.SELL, "stopped"),
        (CopyStatus.REDUCING, Side.BUY, "reducing"),
        (CopyStatus.REDUCING, Side.SELL, ""),
        (CopyStatus.ACTIVE, Side.BUY, ""),
    ],
)
def test_the_configuration_state_decides_which_sides_may_be_sent(
    status: CopyStatus, side: Side, reason: str
) -> None:
    order = ProposedOrder("BTC/USDT", side, D("0.01"), D("50000"))
    result = check(order, holding("1"), state=GateState(status))
    assert result.reason == reason
    assert result.allowed is (reason == "")


@pytest.mark.parametrize(
    ("orders_last_minute", "limit", "reason"),
    [(59, 60, ""), (60, 60, "order_rate_limit"), (0, 1, ""), (1, 1, "order_rate_limit")],
)
def test_orders_beyond_the_per_minute_rate_are_denied(
    orders_last_minute: int, limit: int, reason: str
) -> None:
    result = check(
        buy("0.01"),
        limits=GateLimits(max_orders_per_minute=limit),
        state=GateState(CopyStatus.ACTIVE, orders_last_minute=orders_last_minute),
    )
    assert result.reason == reason


def test_the_rate_limit_defaults_to_sixty_orders_a_minute() -> None:
    limits = GateLimits.of(RiskLimits(), CopySettings())
    assert limits.max_orders_per_minute == 60
    five = GateLimits.of(RiskLimits(max_orders_per_minute=5), CopySettings())
    assert five.max_orders_per_minute == 5


@pytest.mark.parametrize(
    ("quantity", "held", "verdict", "approved", "reason"),
    [
        # 10% of 10000 = 1000 USDT = 0.02 BTC of room at 50000.
        ("0.01", "0", Verdict.ALLOW, "0.010", ""),
        ("0.05", "0", Verdict.REDUCE, "0.020", "max_position_size"),
        ("0.05", "0.015", Verdict.REDUCE, "0.005", "max_position_size"),
        ("0.05", "0.02", Verdict.DENY, "0", "max_position_size"),
        ("0.05", "0.0199", Verdict.DENY, "0", "max_position_size"),  # room under one step
        ("0.05", "0.0195", Verdict.DENY, "0", "max_position_size"),  # 0.0005 < min
    ],
)
def test_max_position_size_reduces_an_entry_to_fit_or_denies_it(
    quantity: str, held: str, verdict: Verdict, approved: str, reason: str
) -> None:
    result = check(buy(quantity), holding(held), limits=GateLimits(max_position_size=D("0.1")))
    assert (result.verdict, result.reason) == (verdict, reason)
    if verdict is not Verdict.DENY:
        assert result.quantity == D(approved)


def test_max_position_size_values_the_position_at_the_orders_worst_price() -> None:
    # At a 51000 limit price 1000 USDT buys only 0.0196 BTC: 0.019 after the step.
    result = check(buy("0.05", "51000"), limits=GateLimits(max_position_size=D("0.1")))
    assert result.quantity == D("0.019")
    assert (D("0.019") * D("51000")) <= D("1000")


def test_max_position_size_without_equity_denies_the_entry() -> None:
    unknown = FollowerSnapshot(equity=None, base_free=D("0"), base_total=D("0"))
    result = check(buy("0.01"), unknown, limits=GateLimits(max_position_size=D("0.1")))
    assert result.reason == "portfolio_unavailable"


def test_max_trade_size_clamps_an_entry_without_naming_a_limit() -> None:
    result = check(buy("0.05"), limits=GateLimits(max_trade_size=D("500")))
    assert (result.verdict, result.quantity, result.reason) == (Verdict.REDUCE, D("0.010"), "")


@pytest.mark.parametrize(
    ("quantity", "minimum", "reason"),
    [
        ("0.001", "100", "below_min_trade_size"),
        ("0.002", "100", ""),
        ("0.0001", "1", "below_min_notional"),
    ],
)
def test_min_trade_size_and_the_venue_minimum_skip_small_entries(
    quantity: str, minimum: str, reason: str
) -> None:
    result = check(buy(quantity), limits=GateLimits(min_trade_size=D(minimum)))
    assert result.reason == reason


def test_venue_minimum_quantity_and_largest_quantity_apply() -> None:
    small = dataclasses.replace(BTC, min_quantity=D("0.01"), min_notional=None)
    assert check(buy("0.009"), market=small).reason == "below_min_notional"
    capped = dataclasses.replace(BTC, max_quantity=D("0.5"))
    assert check(buy("2"), market=capped).quantity == D("0.500")


@pytest.mark.parametrize(
    ("correlations", "held_base", "reason"),
    [
        ({"ETH/USDT": D("0.9")}, "0", "correlation_limit"),
        ({"ETH/USDT": D("0.8")}, "0", ""),  # at the limit is not above it
        ({"ETH/USDT": D("-0.95")}, "0", ""),  # a hedge is not a concentration
        ({}, "0", ""),
        (None, "0", "correlation_unknown"),
        ({"ETH/USDT": D("0.99")}, "0.01", ""),  # an add to a held position is not new
        (None, "0.01", ""),
        ({"ETH/USDT": D("0.99")}, "0.0001", "correlation_limit"),  # 5 USDT of dust is no position
    ],
)
def test_correlation_limit_blocks_only_new_positions_correlated_with_held_ones(
    correlations: dict[str, D] | None, held_base: str, reason: str
) -> None:
    result = check(
        buy("0.01"),
        holding(held_base),
        limits=GateLimits(correlation_limit=D("0.8")),
        state=GateState(CopyStatus.ACTIVE, correlations=correlations),
    )
    assert result.reason == reason


@pytest.mark.parametrize(
    ("quantity", "free", "total", "approved"),
    [
        ("0.004", "0.010", "0.010", "0.004"),  # 40% of the position
        ("0.0109", "0.0109", "0.0109", "0.010"),  # full close: all that the step lets sell
        ("5", "0.0109", "0.0109", "0.010"),  # never more than is free
        ("0.010", "0.006", "0.010", "0.006"),  # locked in a resting order: only the free part
        ("0.0008", "0.0012", "0.0012", "0"),  # below the minimum quantity either way
        ("0.0006", "0.0010", "0.0010", "0"),
        ("0.0003", "0.0003", "0.0003", "0"),  # dust below one step: nothing to sell
    ],
)
def test_an_exit_never_oversells_and_rounds_down_to_the_step(
    quantity: str, free: str, total: str, approved: str
) -> None:
    result = check(sell(quantity), holding(free, total))
    if approved == "0":
        assert result.reason == "below_min_notional"
    else:
        assert result.allowed and result.quantity == D(approved)
        assert result.quantity <= D(free)


def test_an_exit_that_would_leave_unsellable_dust_sells_everything() -> None:
    fine = dataclasses.replace(
        BTC, quantity_step=D("0.0001"), min_quantity=D("0.0001"), min_notional=D("20")
    )
    # Selling 0.0005 of 0.0008 would leave 0.0003 (15 USDT): under the 20 USDT minimum.
    everything = check(sell("0.0005"), holding("0.0008"), market=fine)
    assert (everything.allowed, everything.quantity) == (True, D("0.0008"))
    # Leaving 0.0007 (35 USDT) is a sellable position: the exit stays partial.
    partial = check(sell("0.0005"), holding("0.0012"), market=fine)
    assert (partial.allowed, partial.quantity) == (True, D("0.0005"))


def test_an_exit_without_a_free_balance_has_no_position_to_reduce() -> None:
    assert check(sell("0.01"), holding("0", "0.5")).reason == "no_position_to_reduce"


def test_exits_ignore_the_trade_size_position_and_correlation_limits() -> None:
    limits = GateLimits(
        max_position_size=D("0.01"),
        correlation_limit=D("0"),
        min_trade_size=D("5000"),
        max_trade_size=D("10"),
    )
    result = check(sell("0.1"), holding("0.1"), limits=limits)
    assert (result.verdict, result.quantity) == (Verdict.ALLOW, D("0.100"))


def test_a_quantity_cut_by_a_limit_then_too_small_names_the_limit() -> None:
    result = check(
        buy("0.05"),
        holding("0.0195"),
        limits=GateLimits(max_position_size=D("0.1"), min_trade_size=D("1")),
    )
    assert result.reason == "max_position_size"


def test_an_order_without_a_price_or_a_quantity_is_denied() -> None:
    assert check(buy("0.01", "0")).reason == "price_unknown"
    assert check(buy("0")).reason == "zero_quantity"


def test_opens_position_treats_a_holding_below_the_venue_minimum_as_dust() -> None:
    assert gate.opens_position(FLAT, BTC, D("50000"))
    assert gate.opens_position(holding("0.0001"), BTC, D("50000"))  # 5 USDT
    assert not gate.opens_position(holding("0.0002"), BTC, D("50000"))  # 10 USDT
    no_minimum = dataclasses.replace(BTC, min_notional=None)
    assert not gate.opens_position(holding("0.0000001"), no_minimum, D("50000"))
