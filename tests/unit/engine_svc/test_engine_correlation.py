"""Return correlations: log returns, Pearson's r on aligned candles, and what counts as held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from engine_svc.domain import correlation
from engine_svc.domain.model import AssetBalance, Candle, Portfolio

START = datetime(2026, 3, 1, tzinfo=UTC)


def candles(closes: list[str], *, skip: frozenset[int] = frozenset()) -> list[Candle]:
    return [
        Candle(open_time=START + timedelta(hours=i), close=D(close))
        for i, close in enumerate(closes)
        if i not in skip
    ]


def zigzag(n: int, low: str = "100", high: str = "110") -> list[str]:
    return [high if i % 2 else low for i in range(n)]


def test_log_returns_are_the_logs_of_consecutive_ratios() -> None:
    returns = correlation.log_returns([D("100"), D("110"), D("99")])
    assert [round(r, 6) for r in returns] == [D("0.095310"), D("-0.105361")]


def test_log_returns_refuse_a_non_positive_close() -> None:
    with pytest.raises(ValueError, match="positive"):
        correlation.log_returns([D("1"), D("0")])


@pytest.mark.parametrize(
    ("xs", "ys", "expected"),
    [
        (["1", "2", "3"], ["2", "4", "6"], D("1")),
        (["1", "2", "3"], ["3", "2", "1"], D("-1")),
        (["1", "2", "3", "4"], ["1", "3", "2", "4"], D("0.8")),
        (["1", "2", "3"], ["5", "5", "5"], D("0")),
    ],
)
def test_pearson_measures_linear_co_movement(xs: list[str], ys: list[str], expected: D) -> None:
    r = correlation.pearson([D(x) for x in xs], [D(y) for y in ys])
    assert r is not None and abs(r - expected) < D("1e-20")


def test_pearson_needs_two_points_of_equal_series() -> None:
    assert correlation.pearson([D("1")], [D("2")]) is None
    with pytest.raises(ValueError, match="same length"):
        correlation.pearson([D("1"), D("2")], [D("1")])


def test_markets_moving_together_correlate_fully_and_opposite_ones_negatively() -> None:
    first = candles(zigzag(48))
    assert correlation.return_correlation(first, candles(zigzag(48, "50", "55"))) == D("1")
    opposite = candles([("55" if i % 2 == 0 else "50") for i in range(48)])
    assert correlation.return_correlation(first, opposite) == D("-1")


def test_candles_are_matched_by_their_opening_time() -> None:
    closes = [str(100 + (i * 7) % 13) for i in range(48)]
    # The same prices, with hours 10 and 20 missing from one side: still perfectly correlated.
    r = correlation.return_correlation(candles(closes), candles(closes, skip=frozenset({10, 20})))
    assert r == D("1")


def test_too_short_a_shared_history_is_unknown() -> None:
    closes = zigzag(48)
    assert correlation.return_correlation(candles(closes[:20]), candles(closes)) is None
    late = [Candle(START + timedelta(hours=100 + i), D(c)) for i, c in enumerate(closes)]
    assert correlation.return_correlation(candles(closes), late) is None
    assert correlation.return_correlation(candles(closes[:10]), candles(closes), min_returns=5)


def test_a_flat_market_correlates_with_nothing() -> None:
    assert correlation.return_correlation(candles(zigzag(48)), candles(["1"] * 48)) == D("0")


def test_held_assets_leave_out_money_dust_and_the_asset_bought() -> None:
    portfolio = Portfolio(
        equity=D("10000"),
        quote_currency="USDT",
        balances=(
            AssetBalance("USDT", D("5000"), D("5000"), D("5000")),
            AssetBalance("USD", D("10"), D("10"), D("10")),
            AssetBalance("ETH", D("1"), D("1"), D("3000")),
            AssetBalance("SOL", D("0.01"), D("0.01"), D("1.5")),
            AssetBalance("BTC", D("0.01"), D("0.01"), D("500")),
            AssetBalance("ODD", D("7"), D("7"), None),
            AssetBalance("GONE", D("0"), D("0"), D("0")),
        ),
    )
    assert correlation.held_assets(portfolio, "BTC", "USDT", D("10")) == ["ETH", "ODD"]


def test_breaches_name_the_held_symbols_above_the_limit() -> None:
    found = {"ETH/USDT": D("0.91"), "SOL/USDT": D("0.9"), "XRP/USDT": D("-0.99")}
    assert correlation.breaches(found, D("0.9")) == ["ETH/USDT"]
