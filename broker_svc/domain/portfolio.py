"""Valuation of an account's balances in one quote currency (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from broker_svc.domain.model import Balance, MarketLeverage, Position

QUOTE_EQUIVALENTS = ("USDT", "USDC", "USD")
"""Stable quotes that count 1:1 against each other for valuation."""


@dataclass(frozen=True)
class ValuedBalance:
    """A balance and its value in the portfolio's quote; ``value`` is ``None`` when unpriced."""

    balance: Balance
    value: Decimal | None


@dataclass(frozen=True)
class Portfolio:
    """Balances valued in ``quote_currency`` and their sum."""

    balances: tuple[ValuedBalance, ...]
    equity: Decimal
    quote_currency: str
    read_at: datetime
    positions: tuple[Position, ...] = ()
    leverages: tuple[MarketLeverage, ...] = ()
    """The leverage setting on each derivatives market, when asked for (venues with leverage)."""
    positions_requested_at: datetime | None = None
    """When the positions were asked for (venues with positions): the venue took them at some
    instant between this and ``read_at``, when they came back."""


def is_quote_equivalent(asset: str, quote: str) -> bool:
    """Return whether ``asset`` is worth exactly one unit of ``quote``."""
    if asset == quote:
        return True
    return asset in QUOTE_EQUIVALENTS and quote in QUOTE_EQUIVALENTS


def pricing_symbols(asset: str, quote: str) -> tuple[str, ...]:
    """Return the markets whose last price values ``asset`` in ``quote``, best first.

    The market against the quote itself comes first; when the quote is a stable quote, the
    markets against the other stable quotes follow (they count 1:1).
    """
    candidates = [f"{asset}/{quote}"]
    if quote in QUOTE_EQUIVALENTS:
        candidates += [f"{asset}/{other}" for other in QUOTE_EQUIVALENTS if other != quote]
    return tuple(candidates)


def value_portfolio(
    balances: Sequence[Balance],
    prices: Mapping[str, Decimal],
    quote: str,
    read_at: datetime,
) -> Portfolio:
    """Value every non-zero balance in ``quote`` with ``prices`` (symbol to last price).

    An asset without a price in any of its :func:`pricing_symbols` keeps ``value=None`` and
    adds nothing to the equity: an unknown value is never taken as zero silently.
    """
    valued: list[ValuedBalance] = []
    equity = Decimal(0)
    for balance in sorted(balances, key=lambda b: b.asset):
        if balance.total == 0:
            continue
        value: Decimal | None = None
        if is_quote_equivalent(balance.asset, quote):
            value = balance.total
        else:
            for symbol in pricing_symbols(balance.asset, quote):
                price = prices.get(symbol)
                if price is not None:
                    value = balance.total * price
                    break
        if value is not None:
            equity += value
        valued.append(ValuedBalance(balance, value))
    return Portfolio(tuple(valued), equity, quote, read_at)
