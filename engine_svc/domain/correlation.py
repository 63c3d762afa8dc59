"""Return correlation of two markets (pure): Pearson's r on log returns of aligned candles.

The correlation limit keeps a follower from opening a position that moves with one it already
holds. Returns are computed in ``Decimal`` (no float), on the candles both markets have in
common, so a missing interval in one series never pairs two different hours.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, localcontext

from engine_svc.domain.model import Candle, Portfolio

TIMEFRAME = "1h"
"""The candle interval the engine reads for correlations."""
CANDLES = 48
"""How many candles it reads (two days of hourly closes, 47 returns)."""
MIN_RETURNS = 24
"""The fewest aligned returns a correlation is computed from; fewer means "unknown"."""
QUOTE_ASSETS = frozenset({"USDT", "USD", "USDC"})
"""Assets that are money, never a position."""

_PRECISION = 40


def log_returns(closes: Sequence[Decimal]) -> list[Decimal]:
    """Return ``ln(close[i] / close[i-1])`` for each consecutive pair of positive closes.

    Raises
    ------
    ValueError
        When a close is not positive (a log return is undefined).
    """
    if any(close <= 0 for close in closes):
        raise ValueError("closes must be positive")
    with localcontext() as context:
        context.prec = _PRECISION
        return [(b / a).ln() for a, b in itertools.pairwise(closes)]


def pearson(xs: Sequence[Decimal], ys: Sequence[Decimal]) -> Decimal | None:
    """Return Pearson's correlation of two equally long series, in ``[-1, 1]``.

    Returns
    -------
    Decimal | None
        ``None`` with fewer than two points; 0 when either series does not move at all
        (a flat market is correlated with nothing).
    """
    if len(xs) != len(ys):
        raise ValueError("series must have the same length")
    n = len(xs)
    if n < 2:
        return None
    with localcontext() as context:
        context.prec = _PRECISION
        mean_x = sum(xs, Decimal(0)) / n
        mean_y = sum(ys, Decimal(0)) / n
        dx = [x - mean_x for x in xs]
        dy = [y - mean_y for y in ys]
        covariance = sum((a * b for a, b in zip(dx, dy, strict=True)), Decimal(0))
        var_x = sum((a * a for a in dx), Decimal(0))
        var_y = sum((b * b for b in dy), Decimal(0))
        if var_x == 0 or var_y == 0:
            return Decimal(0)
        r = covariance / (var_x * var_y).sqrt()
    return max(Decimal(-1), min(Decimal(1), +r))


def return_correlation(
    first: Iterable[Candle],
    second: Iterable[Candle],
    *,
    min_returns: int = MIN_RETURNS,
) -> Decimal | None:
    """Return the correlation of two markets' log returns over the candles they share.

    Candles are matched by their opening time; returns are taken between consecutive shared
    candles. ``None`` when fewer than ``min_returns`` returns remain (not enough history to
    judge), or when a close is not positive.
    """
    a = {candle.open_time: candle.close for candle in first}
    b = {candle.open_time: candle.close for candle in second}
    shared = sorted(a.keys() & b.keys())
    if len(shared) - 1 < max(min_returns, 2):
        return None
    try:
        returns_a = log_returns([a[t] for t in shared])
        returns_b = log_returns([b[t] for t in shared])
    except ValueError:
        return None
    return pearson(returns_a, returns_b)


def held_assets(portfolio: Portfolio, new_base: str, quote: str, min_value: Decimal) -> list[str]:
    """Return the assets of ``portfolio`` that count as held positions, sorted.

    Money (USDT, USD, USDC, the market's quote and the portfolio's quote) is never a position,
    nor is the asset being bought (its own adds are never blocked by correlation with itself).
    A balance valued below ``min_value`` is dust and ignored; a balance the broker could not
    value counts as held.
    """
    money = QUOTE_ASSETS | {quote, portfolio.quote_currency}
    return sorted(
        balance.asset
        for balance in portfolio.balances
        if balance.asset not in money
        and balance.asset != new_base
        and balance.total > 0
        and (balance.value is None or balance.value >= min_value)
    )


def breaches(correlations: Mapping[str, Decimal], limit: Decimal) -> list[str]:
    """Return the held symbols whose correlation with the new one exceeds ``limit``, sorted."""
    return sorted(symbol for symbol, r in correlations.items() if r > limit)
