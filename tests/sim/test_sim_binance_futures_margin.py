"""The pure futures arithmetic (exchange_sim.binance.futures.margin) and the engine's funding
and liquidation on a manual clock."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from exchange_sim.binance.errors import BinanceError
from exchange_sim.binance.futures import margin
from exchange_sim.binance.futures.engine import (
    FOrderRequest,
    FOrderType,
    FuturesEngine,
    MarginType,
    PositionSide,
)
from exchange_sim.binance.futures.markets import DEFAULT_PERPETUALS
from exchange_sim.core.accounts import AccountBook
from exchange_sim.core.clock import ManualClock
from exchange_sim.core.orders import Side

D = Decimal
HOUR = 3_600_000


def test_unrealized_pnl_is_signed_by_the_position() -> None:
    assert margin.unrealized_pnl(D("0.1"), D("50000"), D("51000")) == D("100")
    assert margin.unrealized_pnl(D("-0.1"), D("50000"), D("51000")) == D("-100")


def test_initial_and_maintenance_margin() -> None:
    assert margin.initial_margin(D("-0.2"), D("50000"), 10) == D("1000")
    assert margin.maintenance_margin(D("0.2"), D("50000"), D("0.004")) == D("40")
    with pytest.raises(ValueError, match="leverage"):
        margin.initial_margin(D("1"), D("1"), 0)


def test_isolated_liquidation_price_follows_binance_formula() -> None:
    # long 0.1 BTC at 50000 with 500 USDT isolated (10x), MMR 0.4%:
    # LP = (0.1 * 50000 - 500) / (0.1 * (1 - 0.004)) = 4500 / 0.0996
    long = margin.liquidation_price(D("0.1"), D("50000"), D("500"), D("0.004"))
    assert long.quantize(D("0.01")) == D("45180.72")
    # short: LP = (500 + 5000) / (0.1 * 1.004)
    short = margin.liquidation_price(D("-0.1"), D("50000"), D("500"), D("0.004"))
    assert short.quantize(D("0.01")) == D("54780.88")
    # at the liquidation price the margin balance equals the maintenance margin
    balance = D("500") + margin.unrealized_pnl(D("0.1"), D("50000"), long)
    assert abs(balance - margin.maintenance_margin(D("0.1"), long, D("0.004"))) < D("1e-20")


def test_cross_liquidation_counts_other_positions_and_floors_at_zero() -> None:
    alone = margin.liquidation_price(D("0.1"), D("50000"), D("2000"), D("0.004"))
    with_loser = margin.liquidation_price(
        D("0.1"), D("50000"), D("2000"), D("0.004"), other_maintenance=D("10"), other_upnl=D("-500")
    )
    assert with_loser > alone
    assert margin.liquidation_price(D("0.1"), D("50000"), D("6000"), D("0.004")) == 0
    assert margin.liquidation_price(D("0"), D("0"), D("100"), D("0.004")) == 0


def test_funding_fee_longs_pay_shorts_when_the_rate_is_positive() -> None:
    assert margin.funding_fee(D("0.1"), D("50000"), D("0.0001")) == D("-0.5")
    assert margin.funding_fee(D("-0.1"), D("50000"), D("0.0001")) == D("0.5")
    assert margin.funding_fee(D("0.1"), D("50000"), D("-0.0002")) == D("1")


def test_funding_instants_are_every_eight_hours_utc() -> None:
    day = 1_767_225_600_000  # 2026-01-01T00:00Z
    assert margin.funding_times(day, day + 8 * HOUR - 1) == []
    assert margin.funding_times(day, day + 16 * HOUR) == [day + 8 * HOUR, day + 16 * HOUR]
    assert margin.next_funding_ms(day + 1) == day + 8 * HOUR


@pytest.mark.parametrize(
    ("amount", "entry", "qty", "price", "expected"),
    [
        ("0", "0", "0.1", "50000", ("0.1", "50000", "0")),
        ("0.1", "50000", "0.1", "52000", ("0.2", "51000", "0")),
        ("0.2", "51000", "-0.1", "53000", ("0.1", "51000", "200")),
        ("0.1", "51000", "-0.3", "50000", ("-0.2", "50000", "-100")),
        ("-0.2", "50000", "0.2", "49000", ("0", "0", "200")),
    ],
)
def test_apply_fill_averages_realises_and_flips(
    amount: str, entry: str, qty: str, price: str, expected: tuple[str, str, str]
) -> None:
    result = margin.apply_fill(D(amount), D(entry), D(qty), D(price))
    assert (result.amount, result.entry, result.realized) == tuple(D(x) for x in expected)


def _engine() -> tuple[FuturesEngine, ManualClock, str]:
    clock = ManualClock(1_767_225_600_000 + HOUR)  # 01:00 UTC
    accounts = AccountBook()
    accounts.add("k", "s", now_ms=clock.now_ms())
    engine = FuturesEngine(DEFAULT_PERPETUALS, clock, accounts)
    engine.deposit("k", D("10000"))
    return engine, clock, "k"


def _market(side: Side, qty: str, *, reduce_only: bool = False) -> FOrderRequest:
    return FOrderRequest(
        "BTCUSDT", side, FOrderType.MARKET, f"t-{side.value}-{qty}", D(qty), reduce_only=reduce_only
    )


def test_funding_is_applied_at_the_eight_hour_mark_of_the_venue_clock() -> None:
    engine, clock, key = _engine()
    engine.place_order(key, _market(Side.BUY, "0.1"))
    before = engine.account(key).wallet_balance
    clock.advance(6 * HOUR)  # 07:00: no funding yet
    assert engine.account(key).wallet_balance == before
    clock.advance(HOUR)  # 08:00: one funding event at mark 50000, rate 0.01%
    assert engine.account(key).wallet_balance == before - D("0.5")
    assert [i.kind for i in engine.incomes(key)][-1] == "FUNDING_FEE"


def test_reduce_only_is_capped_and_refused_without_a_position() -> None:
    engine, _, key = _engine()
    with pytest.raises(BinanceError) as refused:
        engine.place_order(key, _market(Side.SELL, "0.1", reduce_only=True))
    assert refused.value.code == -2022
    engine.place_order(key, _market(Side.BUY, "0.1"))
    closed = engine.place_order(key, _market(Side.SELL, "0.5", reduce_only=True))
    assert closed.executed_qty == D("0.1")
    assert [p.amount for p in engine.positions(key)] == [0]


def test_an_isolated_position_is_liquidated_at_its_liquidation_price() -> None:
    engine, _, key = _engine()
    engine.set_leverage(key, "BTCUSDT", 10)
    engine.set_margin_type(key, "BTCUSDT", MarginType.ISOLATED)
    engine.place_order(key, _market(Side.BUY, "0.1"))
    liq = engine.positions(key)[0].liquidation_price
    assert D("45000") < liq < D("45300")
    engine.set_mark_price("BTCUSDT", D("46000"))
    assert engine.positions(key)[0].amount == D("0.1")
    touched = engine.set_mark_price("BTCUSDT", D("45000"))
    assert [o.client_order_id.startswith("autoclose-") for o in touched] == [True]
    assert engine.positions(key)[0].amount == 0
    # the loss is about the isolated margin: the rest of the wallet is untouched
    assert D("9400") < engine.account(key).wallet_balance < D("9500")


def test_margin_is_insufficient_beyond_the_leverage() -> None:
    engine, _, key = _engine()
    engine.set_leverage(key, "BTCUSDT", 2)
    with pytest.raises(BinanceError) as refused:
        engine.place_order(key, _market(Side.BUY, "0.5"))  # 25000 notional needs 12500
    assert refused.value.code == -2019
    engine.place_order(key, _market(Side.BUY, "0.3"))


def test_a_stop_market_algo_order_triggers_at_the_mark_and_closes_the_position() -> None:
    engine, _, key = _engine()
    engine.place_order(key, _market(Side.BUY, "0.1"))
    stop = FOrderRequest(
        "BTCUSDT",
        Side.SELL,
        FOrderType.STOP_MARKET,
        "sl-1",
        D("0.1"),
        trigger_price=D("49000"),
        reduce_only=True,
    )
    with pytest.raises(BinanceError) as immediate:
        engine.place_algo(key, FOrderRequest(**{**stop.__dict__, "trigger_price": D("50500")}))
    assert immediate.value.code == -2021
    algo = engine.place_algo(key, stop)
    assert engine.set_mark_price("BTCUSDT", D("49500")) == []
    [child] = engine.set_mark_price("BTCUSDT", D("48900"))
    assert (child.client_order_id, child.status.value, child.executed_qty) == (
        "sl-1",
        "FILLED",
        D("0.1"),
    )
    [after] = engine.algos(key)
    assert (after.algo_id, after.status.value, after.actual_order_id) == (
        algo.algo_id,
        "FINISHED",
        child.order_id,
    )
    assert engine.positions(key)[0].amount == 0


def test_hedge_mode_holds_a_long_and_a_short_and_checks_position_sides() -> None:
    engine, _, key = _engine()
    with pytest.raises(BinanceError) as one_way:
        engine.place_order(key, replace(_market(Side.BUY, "0.1"), position_side=PositionSide.LONG))
    assert one_way.value.code == -4061
    engine.set_dual_side(key, True)
    with pytest.raises(BinanceError) as mismatch:
        engine.place_order(key, _market(Side.BUY, "0.1"))  # BOTH in hedge mode
    assert mismatch.value.code == -4061
    with pytest.raises(BinanceError) as reduce_flag:
        engine.place_order(
            key,
            replace(_market(Side.SELL, "0.1", reduce_only=True), position_side=PositionSide.LONG),
        )
    assert reduce_flag.value.code == -1106
    engine.place_order(key, replace(_market(Side.BUY, "0.2"), position_side=PositionSide.LONG))
    short = replace(_market(Side.SELL, "0.1"), position_side=PositionSide.SHORT)
    engine.place_order(key, replace(short, client_order_id="short-1"))
    sides = {p.side: p.amount for p in engine.positions(key)}
    assert sides == {PositionSide.LONG: D("0.2"), PositionSide.SHORT: D("-0.1")}
    closing = replace(_market(Side.SELL, "0.5"), position_side=PositionSide.LONG)
    assert engine.place_order(key, replace(closing, client_order_id="c")).executed_qty == D("0.2")
    with pytest.raises(BinanceError) as busy:
        engine.set_dual_side(key, False)  # the short is still open
    assert busy.value.code == -4068
