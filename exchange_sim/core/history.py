"""Per-symbol history of mark prices and trades, and candles built from it."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from decimal import Decimal

from exchange_sim.core.decimals import ZERO, mul


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
