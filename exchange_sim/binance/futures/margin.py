"""Pure position and margin arithmetic of a USDⓈ-M perpetual (Decimal only, no state, no I/O).

A position is a signed amount of base asset (positive long, negative short) with an average
entry price. The formulas are Binance's for a single maintenance bracket (maintenance amount 0):

* unrealised P&L = amount * (mark - entry)
* initial margin = |amount| * price / leverage
* maintenance margin = |amount| * mark * maintenance rate
* liquidation price (one position, ``side`` = +1 long / -1 short, ``Q`` = |amount|)::

      LP = (WB - TMM + UPNL - side * Q * entry) / (Q * MMR - side * Q)

  where WB is the wallet that backs the position (the isolated wallet, or the cross wallet),
  TMM and UPNL the maintenance margin and unrealised P&L of the *other* cross positions (0 for
  an isolated position). A result at or below zero means the position cannot be liquidated
  (reported as 0, as Binance does).
* funding: every ``FUNDING_INTERVAL_MS`` (00:00, 08:00, 16:00 UTC) a position receives
  ``-amount * mark * rate`` (longs pay shorts when the rate is positive).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from exchange_sim.core.decimals import CTX, ZERO

FUNDING_INTERVAL_MS = 8 * 3_600_000
ONE = Decimal(1)


def unrealized_pnl(amount: Decimal, entry: Decimal, mark: Decimal) -> Decimal:
    """Profit (negative: loss) of ``amount`` bought at ``entry`` and valued at ``mark``."""
    return CTX.multiply(amount, CTX.subtract(mark, entry))


def notional(amount: Decimal, price: Decimal) -> Decimal:
    """The signed value of ``amount`` at ``price``."""
    return CTX.multiply(amount, price)


def initial_margin(amount: Decimal, price: Decimal, leverage: int) -> Decimal:
    """Margin a position (or an order) of ``amount`` at ``price`` ties up at ``leverage``."""
    if leverage < 1:
        raise ValueError("leverage: must be at least 1")
    return CTX.divide(abs(notional(amount, price)), Decimal(leverage))


def maintenance_margin(amount: Decimal, mark: Decimal, rate: Decimal) -> Decimal:
    """Margin below which the position is liquidated."""
    return CTX.multiply(abs(notional(amount, mark)), rate)


def liquidation_price(
    amount: Decimal,
    entry: Decimal,
    wallet: Decimal,
    maint_rate: Decimal,
    *,
    other_maintenance: Decimal = ZERO,
    other_upnl: Decimal = ZERO,
) -> Decimal:
    """The mark price at which the position's margin balance meets its maintenance margin.

    0 when there is no position or the price would be at or below zero (no liquidation).
    """
    if amount == ZERO:
        return ZERO
    side = ONE if amount > ZERO else -ONE
    qty = abs(amount)
    numerator = wallet - other_maintenance + other_upnl - side * qty * entry
    denominator = qty * maint_rate - side * qty
    price = CTX.divide(numerator, denominator)
    return price if price > ZERO else ZERO


def funding_fee(amount: Decimal, mark: Decimal, rate: Decimal) -> Decimal:
    """What one funding event credits to the position's wallet (negative: a payment)."""
    return -CTX.multiply(CTX.multiply(amount, mark), rate)


def funding_times(after_ms: int, until_ms: int) -> list[int]:
    """Funding instants ``t`` with ``after_ms < t <= until_ms`` (multiples of 8 hours)."""
    first = (after_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
    return list(range(first, until_ms + 1, FUNDING_INTERVAL_MS))


def next_funding_ms(now_ms: int) -> int:
    """The next funding instant strictly after ``now_ms``."""
    return (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS


@dataclass(frozen=True)
class FillResult:
    """A position after a fill, and the P&L the fill realised."""

    amount: Decimal
    entry: Decimal
    realized: Decimal


def apply_fill(amount: Decimal, entry: Decimal, qty: Decimal, price: Decimal) -> FillResult:
    """Add a signed fill of ``qty`` at ``price`` to a position of ``amount`` at ``entry``.

    Adding to a position averages the entry price; reducing realises P&L at the old entry;
    crossing through zero closes the old position and opens the rest at ``price``.
    """
    if qty == ZERO:
        return FillResult(amount, entry, ZERO)
    if amount == ZERO or (amount > ZERO) == (qty > ZERO):
        total = amount + qty
        cost = CTX.add(CTX.multiply(amount, entry), CTX.multiply(qty, price))
        return FillResult(total, CTX.divide(cost, total), ZERO)
    closing = min(abs(qty), abs(amount))
    direction = ONE if amount > ZERO else -ONE
    realized = CTX.multiply(closing * direction, CTX.subtract(price, entry))
    total = amount + qty
    if total == ZERO:
        return FillResult(ZERO, ZERO, realized)
    if (total > ZERO) == (amount > ZERO):
        return FillResult(total, entry, realized)
    return FillResult(total, price, realized)
