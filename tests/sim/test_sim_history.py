"""Synthetic price history: 30 seeded days before the start, served as real candles."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from engine_svc.domain.correlation import CANDLES, return_correlation
from engine_svc.domain.model import Candle
from exchange_sim.binance import new_binance_state
from exchange_sim.core.clock import ManualClock
from exchange_sim.core.history import HOUR_MS, synthetic_history

DAY_MS = 24 * HOUR_MS
NOW = 1_767_225_600_000 + 7 * 60_000  # not on the hour: bars must not depend on it


def test_the_walk_is_seeded_on_the_tick_grid_and_ends_at_the_initial_price() -> None:
    points = synthetic_history("BTC", Decimal("50000"), Decimal("0.01"), NOW, 30)
    assert points == synthetic_history("BTC", Decimal("50000"), Decimal("0.01"), NOW, 30)
    assert points != synthetic_history("BTC", Decimal("50000"), Decimal("0.01"), NOW, 30, 7)
    assert NOW - points[0][0] >= 30 * DAY_MS and points[-1][0] < NOW
    assert all(p % Decimal("0.01") == 0 and p > 0 for _, p in points)
    assert abs(points[-1][1] / Decimal(50000) - 1) < Decimal("0.05")
    assert synthetic_history("USDT", Decimal("1"), Decimal("0.0001"), NOW, 1)[0][1] == 1
    assert synthetic_history("BTC", Decimal("50000"), Decimal("0.01"), NOW, 0) == []


def _hourly(state, symbol: str, now_ms: int) -> list[Candle]:
    bars = state.engine.history.candles(symbol, HOUR_MS, now_ms=now_ms, limit=CANDLES)
    return [
        Candle(open_time=datetime.fromtimestamp(b.open_ms / 1000, UTC), close=b.close) for b in bars
    ]


@pytest.mark.parametrize("later_ms", [1_000, 6 * HOUR_MS])
def test_btc_and_eth_correlate_and_bnb_does_not(later_ms: int) -> None:
    clock = ManualClock(NOW)
    state = new_binance_state(clock=clock, history_days=30)
    daily = state.engine.history.candles("BTC/USDT", DAY_MS, now_ms=NOW, limit=1000)
    assert len(daily) >= 30 and daily[-1].close == Decimal(50000)
    btc, eth, bnb = (
        _hourly(state, s, NOW + later_ms) for s in ("BTC/USDT", "ETH/USDT", "BNB/USDT")
    )
    btc_eth, btc_bnb = return_correlation(btc, eth), return_correlation(btc, bnb)
    assert btc_eth is not None and btc_eth > Decimal("0.7")
    assert btc_bnb is not None and abs(btc_bnb) < Decimal("0.3")


def test_without_history_days_a_venue_starts_with_its_initial_price_only() -> None:
    state = new_binance_state(clock=ManualClock(NOW))
    assert state.engine.history.prices("BTC/USDT") == [(NOW, Decimal(50000))]
