"""The synthetic order book around a mark price, and how a taker order walks it.

The book is regenerated from the mark price for every order: liquidity taken by one order is
back for the next one. Level k (k = 1..N) of the asks is at ``mark * (1 + k * spacing)``
rounded up to the tick, of the bids at ``mark * (1 - k * spacing)`` rounded down, each holding
``level_qty``. A taker that exhausts all N levels fills what it could (IOC semantics).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from exchange_sim.core.decimals import CTX, ZERO, ceil_to_step, floor_to_step, mul
from exchange_sim.core.markets import Market
from exchange_sim.core.orders import Side


@dataclass(frozen=True)
class Level:
    """A price level (or a planned fill): ``qty`` of base at ``price``."""

    price: Decimal
    qty: Decimal


def asks(market: Market, mark: Decimal) -> list[Level]:
    """The ask side, best (lowest) first."""
    levels = []
    for k in range(1, market.book_levels + 1):
        raw = mul(mark, Decimal(1) + k * market.level_spacing)
        levels.append(Level(ceil_to_step(raw, market.tick_size), market.level_qty))
    return levels


def bids(market: Market, mark: Decimal) -> list[Level]:
    """The bid side, best (highest) first; levels at or below zero are left out."""
    levels = []
    for k in range(1, market.book_levels + 1):
        price = floor_to_step(mul(mark, Decimal(1) - k * market.level_spacing), market.tick_size)
        if price > ZERO:
            levels.append(Level(price, market.level_qty))
    return levels


def opposite_side(market: Market, mark: Decimal, side: Side) -> list[Level]:
    """The levels a taker on ``side`` trades against (asks for a buy, bids for a sell)."""
    return asks(market, mark) if side is Side.BUY else bids(market, mark)


def crosses(side: Side, limit: Decimal | None, level_price: Decimal) -> bool:
    """Whether a taker with this limit (None = market) may trade at ``level_price``."""
    if limit is None:
        return True
    return level_price <= limit if side is Side.BUY else level_price >= limit


def plan_quantity(
    levels: list[Level], side: Side, qty: Decimal, limit: Decimal | None
) -> list[Level]:
    """Fills for up to ``qty`` base, best level first, stopping at ``limit``."""
    fills: list[Level] = []
    left = qty
    for level in levels:
        if left <= ZERO or not crosses(side, limit, level.price):
            break
        take = min(left, level.qty)
        fills.append(Level(level.price, take))
        left -= take
    return fills


def plan_quote(levels: list[Level], budget: Decimal, step: Decimal) -> list[Level]:
    """Fills whose total ``price * qty`` stays within ``budget`` quote, in whole steps."""
    fills: list[Level] = []
    left = budget
    for level in levels:
        affordable = floor_to_step(CTX.divide(left, level.price), step)
        take = min(affordable, level.qty)
        if take <= ZERO:
            break
        fills.append(Level(level.price, take))
        left -= mul(level.price, take)
    return fills


def total_qty(fills: list[Level]) -> Decimal:
    """Sum of the planned quantities."""
    return sum((f.qty for f in fills), ZERO)


def total_quote(fills: list[Level]) -> Decimal:
    """Sum of price * quantity over the planned fills."""
    return sum((mul(f.price, f.qty) for f in fills), ZERO)
