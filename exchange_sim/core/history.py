"""Per-symbol history of mark prices and trades, and candles built from it.

A venue can also start with synthetic history (:func:`synthetic_history`): a deterministic,
seeded random walk per base asset ending at the market's initial price, so that candles (and
the return correlations the copy engine computes from them) exist for the days before start.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from exchange_sim.core.decimals import ZERO, mul

HOUR_MS = 3_600_000
SYNTHETIC_STEP_MS = 15 * 60_000
"""One synthetic price point every 15 minutes (hourly and daily candles have real bars)."""
SYNTHETIC_SEED = 20_260_101
"""The default seed: the same history at every start."""
SYNTHETIC_VOLATILITY = 0.004
"""The standard deviation of one step's log return (about 2 % a day)."""
SYNTHETIC_MARKET_BETA: dict[str, float] = {"BTC": 0.95, "ETH": 0.95}
"""How much of each asset's move is the common market factor: BTC and ETH move together
(return correlation about 0.95 x 0.95 = 0.9); every other asset moves on its own (0)."""
SYNTHETIC_FLAT = frozenset({"USDT", "USDC", "USD", "DAI", "EUR"})
"""Assets whose price does not walk (money)."""


@dataclass(frozen=True)
class Candle:
    """One OHLCV bar. ``open_ms`` is inclusive, ``close_ms`` = next open - 1."""

    open_ms: int
    close_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int


class _Series:
    """Time-ordered points with a bounded length."""

    def __init__(self, maxlen: int) -> None:
        self.times: list[int] = []
        self.values: list[tuple[Decimal, Decimal]] = []
        self._maxlen = maxlen

    def add(self, ts: int, a: Decimal, b: Decimal = ZERO) -> None:
        if self.times and ts < self.times[-1]:
            ts = self.times[-1]  # keep the series ordered even if the wall clock steps back
        self.times.append(ts)
        self.values.append((a, b))
        if len(self.times) > self._maxlen * 2:
            del self.times[: self._maxlen]
            del self.values[: self._maxlen]

    def between(self, start: int, end: int) -> range:
        """Indexes of points with start <= ts < end."""
        return range(bisect.bisect_left(self.times, start), bisect.bisect_left(self.times, end))

    def last_before(self, ts: int) -> tuple[Decimal, Decimal] | None:
        """The last point strictly before ``ts``."""
        i = bisect.bisect_left(self.times, ts)
        return self.values[i - 1] if i > 0 else None


class PriceHistory:
    """Mark prices (each ``set price``) and trades per symbol, for klines and 24h tickers."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self._maxlen = maxlen
        self._prices: dict[str, _Series] = {}
        self._trades: dict[str, _Series] = {}

    def record_price(self, symbol: str, ts: int, price: Decimal) -> None:
        """Remember that the mark price became ``price`` at ``ts``."""
        self._prices.setdefault(symbol, _Series(self._maxlen)).add(ts, price)

    def record_trade(self, symbol: str, ts: int, price: Decimal, qty: Decimal) -> None:
        """Remember a fill (for volumes)."""
        self._trades.setdefault(symbol, _Series(self._maxlen)).add(ts, qty, mul(price, qty))

    def prices(self, symbol: str) -> list[tuple[int, Decimal]]:
        """All remembered (timestamp, price) points of ``symbol``, oldest first."""
        series = self._prices.get(symbol)
        if series is None:
            return []
        return [(t, v[0]) for t, v in zip(series.times, series.values, strict=True)]

    def candles(
        self,
        symbol: str,
        interval_ms: int,
        *,
        now_ms: int,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        """Candles aligned to ``interval_ms``; a bar without price points repeats the last price.

        With ``start_ms`` the first ``limit`` bars from there; otherwise the last ``limit`` bars
        up to ``end_ms`` (or now). Bars before the first known price are not produced.
        """
        prices = self._prices.get(symbol)
        if prices is None or not prices.times or limit <= 0:
            return []
        first = prices.times[0] // interval_ms * interval_ms
        last = min(end_ms if end_ms is not None else now_ms, now_ms) // interval_ms * interval_ms
        if start_ms is not None:
            begin = max(first, -(-start_ms // interval_ms) * interval_ms)
            opens = range(begin, min(last, begin + (limit - 1) * interval_ms) + 1, interval_ms)
        else:
            begin = max(first, last - (limit - 1) * interval_ms)
            opens = range(begin, last + 1, interval_ms)
        return [self._bar(symbol, prices, t, interval_ms) for t in opens]

    def _bar(self, symbol: str, prices: _Series, open_ms: int, interval_ms: int) -> Candle:
        carried = prices.last_before(open_ms)
        points = [prices.values[i][0] for i in prices.between(open_ms, open_ms + interval_ms)]
        open_ = carried[0] if carried is not None else points[0]
        path = [open_, *points]
        volume = quote_volume = ZERO
        count = 0
        trades = self._trades.get(symbol)
        if trades is not None:
            for i in trades.between(open_ms, open_ms + interval_ms):
                qty, quote = trades.values[i]
                volume += qty
                quote_volume += quote
                count += 1
        return Candle(
            open_ms,
            open_ms + interval_ms - 1,
            open_,
            max(path),
            min(path),
            path[-1],
            volume,
            quote_volume,
            count,
        )


@functools.lru_cache(maxsize=64)
def _walk_factors(base: str, steps: int, seed: int) -> tuple[Decimal, ...]:
    """Return ``price(now - k steps) / price(now)`` for k = ``steps`` .. 1, oldest first.

    The market factor and each asset's own moves are separate seeded streams, so an asset's
    path is the same on every venue and at every start with the same seed.
    """
    if base in SYNTHETIC_FLAT:
        return (Decimal(1),) * steps
    beta = SYNTHETIC_MARKET_BETA.get(base, 0.0)
    own = math.sqrt(1.0 - beta * beta)
    market = random.Random(f"{seed}:market")
    mine = random.Random(f"{seed}:{base}")
    log_level = 0.0  # log(price / price now), walking back from now
    factors: list[Decimal] = []
    for _ in range(steps):
        step = SYNTHETIC_VOLATILITY * (beta * market.gauss(0.0, 1.0) + own * mine.gauss(0.0, 1.0))
        log_level -= step  # the price one step earlier is this step's return away
        factors.append(Decimal(repr(round(math.exp(log_level), 9))))
    factors.reverse()
    return tuple(factors)


def synthetic_history(
    base: str,
    initial_price: Decimal,
    tick: Decimal,
    now_ms: int,
    days: int,
    seed: int = SYNTHETIC_SEED,
) -> list[tuple[int, Decimal]]:
    """Return ``days`` of synthetic (timestamp, price) points before ``now_ms``, oldest first.

    The walk ends, one step after its last point, at ``initial_price``; prices are on the
    ``tick`` grid and never below one tick. Deterministic for the same arguments.
    """
    if days <= 0:
        return []
    steps = days * 24 * HOUR_MS // SYNTHETIC_STEP_MS + 1  # the first a whole ``days`` back
    # On the step grid (whole quarter hours), so hourly candles hold the same steps whenever
    # the venue starts; the last synthetic point is the grid point before ``now_ms``.
    last_ms = (now_ms - 1) // SYNTHETIC_STEP_MS * SYNTHETIC_STEP_MS
    first_ms = last_ms - (steps - 1) * SYNTHETIC_STEP_MS
    points: list[tuple[int, Decimal]] = []
    for k, factor in enumerate(_walk_factors(base, steps, seed)):
        ts = first_ms + k * SYNTHETIC_STEP_MS
        if ts < 0:
            continue
        price = (initial_price * factor).quantize(tick, rounding=ROUND_HALF_EVEN)
        points.append((ts, max(price, tick)))
    return points
