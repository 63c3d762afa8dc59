"""The copy decision: one signal, one configuration, one follower account → order or skip."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from engine_svc.domain.decision import decide, follower_symbols, symbol_filter
from engine_svc.domain.model import (
    CopySettings,
    CopyStatus,
    FollowerSnapshot,
    MarketInfo,
    OrderType,
    RiskLimits,
    Side,
    Signal,
    SkipReason,
    TimeInForce,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BTC = MarketInfo(
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    quantity_step=D("0.00001"),
    min_quantity=D("0.00001"),
    min_notional=D("10"),
    last_price=D("50000"),
)
FOLLOWER = FollowerSnapshot(equity=D("10000"), base_free=D("0"), base_total=D("0"))


def signal(**changes: object) -> Signal:
    base = Signal(
        source_id="s",
        sequence=1,
        signal_id="t1",
        symbol="BTC/USDT",
        side=Side.BUY,
        quantity=D("0.1"),
        price=D("50000"),
        order_type=OrderType.MARKET,
        event_time=NOW - timedelta(seconds=1),
        leader_equity=D("100000"),
    )
    return dataclasses.replace(base, **changes)


def run(
    sig: Signal | None = None,
    *,
    status: CopyStatus = CopyStatus.ACTIVE,
    limits: RiskLimits | None = None,
    copy: CopySettings | None = None,
    follower: FollowerSnapshot | None = FOLLOWER,
    market: MarketInfo | None = BTC,
):
    return decide(
        sig or signal(),
        status,
        limits or RiskLimits(),
        copy or CopySettings(),
        follower,
        market,
        NOW,
    )


def test_equity_ratio_sizes_by_follower_over_leader_equity() -> None:
    decision = run()
    assert not decision.skipped
    assert decision.quantity == D("0.01000")
    assert decision.symbol == "BTC/USDT"


def test_equity_ratio_rounds_down_to_the_venue_step() -> None:
    follower = dataclasses.replace(FOLLOWER, equity=D("12345.678"))
    assert run(follower=follower).quantity == D("0.01234")


def test_equity_ratio_without_leader_equity_is_skipped() -> None:
    for equity in (None, D("0"), D("-5")):
        decision = run(signal(leader_equity=equity))
        assert decision.reason == "leader_equity_unknown"


@pytest.mark.parametrize(
    ("copy", "sig", "expected"),
    [
        (CopySettings(sizing_mode="multiplier", multiplier=D("0.5")), signal(), D("0.05")),
        (CopySettings(sizing_mode="fixed_notional", fixed_notional=D("1000")), signal(), D("0.02")),
        (
            CopySettings(sizing_mode="fixed_quantity", fixed_quantity=D("0.003")),
            signal(),
            D("0.003"),
        ),
        (
            CopySettings(sizing_mode="portfolio_fraction"),
            signal(portfolio_fraction=D("0.25")),
            D("0.05"),
        ),
    ],
)
def test_each_sizing_mode_sizes_the_copy(copy: CopySettings, sig: Signal, expected: D) -> None:
    decision = run(sig, copy=copy)
    assert decision.reason == ""
    assert decision.quantity == expected


def test_portfolio_fraction_without_a_fraction_is_skipped() -> None:
    decision = run(copy=CopySettings(sizing_mode="portfolio_fraction"))
    assert decision.reason == "portfolio_fraction_unknown"


def test_copy_below_the_venue_minimum_notional_is_skipped_with_reason() -> None:
    follower = dataclasses.replace(
        FOLLOWER, equity=D("90")
    )  # 0.1 x 90 / 100000 = 0.00009 BTC = 4.5 USDT
    decision = run(follower=follower)
    assert decision.reason == "below_min_notional"
    assert decision.skipped


def test_copy_rounded_to_zero_is_below_the_venue_minimum() -> None:
    follower = dataclasses.replace(FOLLOWER, equity=D("1"))
    assert run(follower=follower).reason == "below_min_notional"


def test_copy_below_the_venue_minimum_quantity_is_skipped() -> None:
    market = dataclasses.replace(BTC, min_quantity=D("0.1"), min_notional=None)
    assert run(market=market).reason == "below_min_notional"


def test_sell_never_exceeds_the_free_base_balance() -> None:
    follower = FollowerSnapshot(equity=D("10000"), base_free=D("0.004"), base_total=D("0.004"))
    decision = run(signal(side=Side.SELL), follower=follower)
    assert decision.reason == ""
    assert decision.quantity == D("0.004")


def test_sell_without_a_position_is_skipped() -> None:
    decision = run(signal(side=Side.SELL))
    assert decision.reason == "no_position_to_reduce"


def test_exit_sells_the_same_fraction_of_the_follower_position() -> None:
    follower = FollowerSnapshot(equity=D("10000"), base_free=D("0.05"), base_total=D("0.05"))
    decision = run(
        signal(side=Side.SELL, quantity=D("0.4"), leader_position=D("1")), follower=follower
    )
    assert decision.quantity == D("0.02")


def test_max_trade_size_clamps_the_notional() -> None:
    decision = run(copy=CopySettings(max_trade_size=D("100")))
    assert decision.quantity == D("0.00200")


def test_copy_under_min_trade_size_is_skipped() -> None:
    decision = run(copy=CopySettings(min_trade_size=D("1000")))
    assert decision.reason == "below_min_trade_size"


def test_max_position_size_caps_a_buy_to_the_room_left() -> None:
    follower = FollowerSnapshot(equity=D("10000"), base_free=D("0.008"), base_total=D("0.008"))
    decision = run(limits=RiskLimits(max_position_size=D("0.05")), follower=follower)
    assert decision.quantity == D("0.00200")  # 5% of 10000 = 500 USDT = 0.01 BTC, 0.008 held


def test_buy_beyond_max_position_size_is_skipped() -> None:
    follower = FollowerSnapshot(equity=D("10000"), base_free=D("0.02"), base_total=D("0.02"))
    decision = run(limits=RiskLimits(max_position_size=D("0.05")), follower=follower)
    assert decision.reason == "max_position_size"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (CopyStatus.PAUSED, "paused"),
        (CopyStatus.HALTED, "halted"),
        (CopyStatus.STOPPED, "stopped"),
        (CopyStatus.REDUCING, "reducing"),
    ],
)
def test_a_configuration_that_does_not_copy_skips_with_its_status(
    status: CopyStatus, reason: str
) -> None:
    decision = run(status=status)
    assert decision.reason == reason
    assert decision.quantity == 0


def test_reducing_configuration_still_copies_exits() -> None:
    follower = FollowerSnapshot(equity=D("10000"), base_free=D("0.01"), base_total=D("0.01"))
    decision = run(signal(side=Side.SELL), status=CopyStatus.REDUCING, follower=follower)
    assert decision.reason == ""


def test_signal_older_than_the_max_age_is_stale() -> None:
    old = signal(event_time=NOW - timedelta(seconds=61))
    assert run(old).reason == "stale"
    assert run(old, copy=CopySettings(max_signal_age_seconds=120)).reason == ""


@pytest.mark.parametrize(
    ("copy", "reason"),
    [
        (CopySettings(exclude_symbols=("BTC/USDT",)), "symbol_excluded"),
        (CopySettings(include_symbols=("ETH/USDT",)), "symbol_not_included"),
        (CopySettings(include_symbols=("BTC/USDT",)), ""),
        (CopySettings(copy_all_trades=False), ""),
    ],
)
def test_symbol_filters_decide_which_trades_are_copied(copy: CopySettings, reason: str) -> None:
    assert run(copy=copy).reason == reason


def test_reducing_trades_are_skipped_unless_all_trades_are_copied() -> None:
    follower = FollowerSnapshot(equity=D("10000"), base_free=D("0.01"), base_total=D("0.01"))
    decision = run(
        signal(side=Side.SELL), copy=CopySettings(copy_all_trades=False), follower=follower
    )
    assert decision.reason == "reducing_trade_not_copied"


def test_missing_market_or_portfolio_is_skipped() -> None:
    assert run(market=None).reason == "market_unavailable"
    assert run(follower=None).reason == "portfolio_unavailable"


def test_signal_without_price_uses_the_follower_market_price() -> None:
    decision = run(
        signal(price=None), copy=CopySettings(sizing_mode="fixed_notional", fixed_notional=D("500"))
    )
    assert decision.quantity == D("0.01000")
    no_price = dataclasses.replace(BTC, last_price=None)
    assert run(signal(price=None), market=no_price).reason == "price_unknown"


@pytest.mark.parametrize(
    ("leader", "copy", "expected"),
    [
        ("BTC/USDT", CopySettings(), ["BTC/USDT", "BTC/USD", "BTC/USDC"]),
        ("BTC/USDT", CopySettings(allow_quote_equivalence=False), ["BTC/USDT"]),
        ("XBT/EUR", CopySettings(symbol_map={"XBT/EUR": "BTC/EUR"}), ["XBT/EUR", "BTC/EUR"]),
        (
            "BTC/USDT",
            CopySettings(symbol_map={"BTC/USDT": "BTC/EUR"}),
            ["BTC/USDT", "BTC/EUR", "BTC/USD", "BTC/USDC"],
        ),
        (
            "WBTC/USDT",
            CopySettings(symbol_map={"WBTC/USDT": "BTC/USDC"}),
            ["WBTC/USDT", "BTC/USDC", "BTC/USDT", "BTC/USD", "WBTC/USD", "WBTC/USDC"],
        ),
        ("BTC/USDT:USDT", CopySettings(), ["BTC/USDT:USDT"]),
    ],
)
def test_candidates_are_the_leader_symbol_then_the_map_then_quote_equivalents(
    leader: str, copy: CopySettings, expected: list[str]
) -> None:
    assert follower_symbols(leader, copy) == expected


def test_excluding_the_mapped_symbol_filters_the_leader_symbol() -> None:
    copy = CopySettings(symbol_map={"BTC/USDT": "BTC/USD"}, exclude_symbols=("BTC/USD",))
    assert symbol_filter("BTC/USDT", copy) is not None


HOLDER = FollowerSnapshot(equity=D("10000"), base_free=D("0.05"), base_total=D("0.05"))


@pytest.mark.parametrize(
    ("leader_quantity", "leader_position", "free", "total", "expected"),
    [
        ("0.4", "1", "0.05", "0.05", "0.02000"),  # 40% of the leader's, 40% of the follower's
        ("1", "1", "0.0500123", "0.0500123", "0.05001"),  # full close: all but sub-step dust
        ("3", "1", "0.05", "0.05", "0.05000"),  # sold more than it held: a full close
        ("0.5", "1", "0.01", "0.05", "0.01000"),  # half of 0.05 is 0.025, only 0.01 is free
        ("0.5", "2", "0.08", "0.08", "0.02000"),
    ],
)
def test_exit_reduces_the_follower_position_by_the_leaders_fraction(
    leader_quantity: str, leader_position: str, free: str, total: str, expected: str
) -> None:
    follower = FollowerSnapshot(equity=D("10000"), base_free=D(free), base_total=D(total))
    sig = signal(side=Side.SELL, quantity=D(leader_quantity), leader_position=D(leader_position))
    decision = run(sig, follower=follower)
    assert (decision.reason, decision.quantity) == ("", D(expected))


def test_full_close_leaves_less_than_one_step_and_never_oversells() -> None:
    follower = FollowerSnapshot(equity=D("10000"), base_free=D("0.123456789"), base_total=D("0.2"))
    sig = signal(side=Side.SELL, quantity=D("2"), leader_position=D("2"))
    decision = run(sig, follower=follower)
    assert decision.quantity == D("0.12345")
    left = follower.base_free - decision.quantity
    assert BTC.quantity_step is not None and D("0") <= left < BTC.quantity_step


def test_exit_is_sized_from_the_follower_position_whatever_the_sizing_mode() -> None:
    copy = CopySettings(sizing_mode="fixed_quantity", fixed_quantity=D("1"))
    sig = signal(side=Side.SELL, quantity=D("0.5"), leader_position=D("1"))
    assert run(sig, copy=copy, follower=HOLDER).quantity == D("0.02500")


def test_sell_without_the_leaders_position_is_sized_by_the_mode_and_capped_at_free() -> None:
    copy = CopySettings(sizing_mode="fixed_quantity", fixed_quantity=D("0.03"))
    assert run(signal(side=Side.SELL), copy=copy, follower=HOLDER).quantity == D("0.03000")
    copy = CopySettings(sizing_mode="fixed_quantity", fixed_quantity=D("1"))
    assert run(signal(side=Side.SELL), copy=copy, follower=HOLDER).quantity == D("0.05000")


def test_exits_are_not_copied_when_only_entries_are() -> None:
    copy = CopySettings(copy_all_trades=False)
    full_close = signal(side=Side.SELL, quantity=D("1"), leader_position=D("1"))
    assert run(full_close, copy=copy, follower=HOLDER).reason == "reducing_trade_not_copied"
    assert run(copy=copy).reason == ""


def test_exits_ignore_the_trade_size_clamps() -> None:
    copy = CopySettings(max_trade_size=D("100"), min_trade_size=D("5000"))
    sig = signal(side=Side.SELL, quantity=D("1"), leader_position=D("1"))
    assert run(sig, copy=copy, follower=HOLDER).quantity == D("0.05000")


TICKED = dataclasses.replace(BTC, price_tick=D("0.1"))


@pytest.mark.parametrize(
    ("side", "price", "slippage", "limit"),
    [
        (Side.BUY, "50000", "0.01", "50500.0"),
        (Side.BUY, "50000.37", "0.001", "50050.3"),  # 50050.37037 rounds down
        (Side.SELL, "50000.37", "0.001", "49950.4"),  # 49950.36963 rounds up
        (Side.SELL, "50000", "0", "50000.0"),
    ],
)
def test_max_slippage_turns_a_market_copy_into_a_limit_ioc_inside_the_band(
    side: Side, price: str, slippage: str, limit: str
) -> None:
    decision = run(
        signal(side=side, price=D(price)),
        limits=RiskLimits(max_slippage=D(slippage)),
        follower=HOLDER,
        market=TICKED,
    )
    assert decision.reason == ""
    assert (decision.order_type, decision.time_in_force, decision.price) == (
        OrderType.LIMIT,
        TimeInForce.IOC,
        D(limit),
    )


def test_without_max_slippage_the_copy_is_a_market_order() -> None:
    decision = run(market=TICKED)
    assert (decision.order_type, decision.price, decision.time_in_force) == (
        OrderType.MARKET,
        None,
        None,
    )


def test_slippage_band_of_a_signal_without_price_is_around_the_last_price() -> None:
    market = dataclasses.replace(TICKED, last_price=D("40000"))
    decision = run(signal(price=None), limits=RiskLimits(max_slippage=D("0.02")), market=market)
    assert decision.price == D("40800.0")


def test_a_buy_band_below_one_tick_is_skipped_as_price_unknown() -> None:
    coarse = dataclasses.replace(BTC, price_tick=D("100000"))
    assert run(limits=RiskLimits(max_slippage=D("0.01")), market=coarse).reason == "price_unknown"


def test_position_size_is_valued_at_the_limit_price_of_a_banded_buy() -> None:
    limits = RiskLimits(max_slippage=D("0.02"), max_position_size=D("0.1"))
    decision = run(signal(quantity=D("1")), limits=limits, market=TICKED)
    assert decision.price == D("51000.0")
    assert decision.quantity == D("0.01960")  # 1000 USDT / 51000, down to the step


def test_a_market_the_venue_does_not_have_is_skipped_as_not_on_venue() -> None:
    decision = run(market=None)
    assert decision.reason == "market_unavailable"
    decision = decide(
        signal(),
        CopyStatus.ACTIVE,
        RiskLimits(),
        CopySettings(),
        FOLLOWER,
        None,
        NOW,
        market_problem=SkipReason.SYMBOL_NOT_ON_VENUE,
    )
    assert (decision.symbol, decision.reason) == ("BTC/USDT", "symbol_not_on_venue")


def test_excluding_the_quote_equivalent_the_venue_resolved_filters_the_trade() -> None:
    usd = dataclasses.replace(BTC, symbol="BTC/USD", quote="USD")
    assert run(market=usd, copy=CopySettings(exclude_symbols=("BTC/USD",))).reason == (
        "symbol_excluded"
    )
    included = CopySettings(include_symbols=("BTC/USDT",))
    assert run(market=usd, copy=included).reason == ""
    assert run(market=usd, copy=CopySettings(include_symbols=("BTC/USD",))).reason == (
        "symbol_not_included"
    )
    assert run(market=usd).symbol == "BTC/USD"


def test_orders_over_the_accounts_rate_are_skipped() -> None:
    limits = RiskLimits(max_orders_per_minute=3)
    assert (
        decide(
            signal(),
            CopyStatus.ACTIVE,
            limits,
            CopySettings(),
            FOLLOWER,
            BTC,
            NOW,
            orders_last_minute=3,
        ).reason
        == "order_rate_limit"
    )
    assert (
        decide(
            signal(),
            CopyStatus.ACTIVE,
            limits,
            CopySettings(),
            FOLLOWER,
            BTC,
            NOW,
            orders_last_minute=2,
        ).reason
        == ""
    )


def test_a_new_position_correlated_with_a_held_one_is_skipped() -> None:
    limits = RiskLimits(correlation_limit=D("0.7"))

    def with_correlations(correlations: dict[str, D] | None) -> str:
        return decide(
            signal(),
            CopyStatus.ACTIVE,
            limits,
            CopySettings(),
            FOLLOWER,
            BTC,
            NOW,
            correlations=correlations,
        ).reason

    assert with_correlations({"ETH/USDT": D("0.75")}) == "correlation_limit"
    assert with_correlations({"ETH/USDT": D("0.5")}) == ""
    assert with_correlations(None) == "correlation_unknown"


def test_a_strategy_limit_fok_is_copied_as_a_limit_fok_at_its_price() -> None:
    # Before: a published limit FOK was copied as a market order (or a banded IOC).
    sig = signal(order_type=OrderType.LIMIT, price=D("49000"), time_in_force=TimeInForce.FOK)
    decision = run(sig, limits=RiskLimits(max_slippage=D("0.01")))
    assert (decision.order_type, decision.price, decision.time_in_force) == (
        OrderType.LIMIT,
        D("49000"),
        TimeInForce.FOK,
    )
    assert decision.stop_price is None


def test_a_strategy_stop_is_copied_as_a_stop_with_its_stop_price() -> None:
    market = dataclasses.replace(BTC, price_tick=D("0.1"))
    stop = run(signal(order_type=OrderType.STOP_MARKET, stop_price=D("48000")), market=market)
    assert (stop.order_type, stop.price, stop.stop_price, stop.time_in_force) == (
        OrderType.STOP_MARKET,
        None,
        D("48000"),
        None,
    )
    stop_limit = run(
        signal(
            order_type=OrderType.STOP_LIMIT,
            price=D("48100.05"),
            stop_price=D("48000"),
            time_in_force=TimeInForce.GTC,
        ),
        market=market,
    )
    # A buy's limit is rounded down to the tick: the copy never pays more than published.
    assert (stop_limit.order_type, stop_limit.price, stop_limit.stop_price) == (
        OrderType.STOP_LIMIT,
        D("48100.0"),
        D("48000"),
    )


def test_a_leader_venue_limit_fill_is_still_copied_as_a_market_order() -> None:
    fill = signal(
        order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC, exchange_name="binance"
    )
    decision = run(fill)
    assert (decision.order_type, decision.price, decision.time_in_force) == (
        OrderType.MARKET,
        None,
        None,
    )
