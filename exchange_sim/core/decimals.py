"""Decimal helpers: parsing without floats, step rounding and venue-style formatting."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Context, Decimal, InvalidOperation

#: Enough digits for any price * quantity the emulator meets (prices up to 1e7, 8 decimals).
CTX = Context(prec=50)
ZERO = Decimal(0)
EIGHT_PLACES = Decimal("0.00000001")


def to_decimal(value: object, field: str) -> Decimal:
    """Parse a str, int or Decimal into a finite Decimal; floats and bools are refused.

    Raises ``ValueError`` naming ``field`` so callers can report which input was bad.
    """
    if isinstance(value, (bool, float)):
        raise ValueError(f"{field}: give a decimal string, not a float")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, (int, str)):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{field}: {value!r} is not a decimal number") from None
    else:
        raise ValueError(f"{field}: {value!r} is not a decimal number")
    if not result.is_finite():
        raise ValueError(f"{field}: {value!r} is not a finite number")
    return result


def fmt8(value: Decimal) -> str:
    """Format with exactly eight decimals, as Binance does (``"0.00100000"``)."""
    return format(value.quantize(EIGHT_PLACES, rounding=ROUND_DOWN, context=CTX), "f")


def fmt_plain(value: Decimal) -> str:
    """Format without exponent and without trailing zeros (``"0.001"``, ``"50000"``)."""
    if value == 0:
        return "0"
    return format(value.normalize(CTX), "f")


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Round ``value`` down to a whole number of ``step`` (no rounding when step is 0)."""
    if step == 0:
        return value
    units = CTX.divide(value, step).to_integral_value(rounding=ROUND_FLOOR)
    return CTX.multiply(units, step)


def ceil_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Round ``value`` up to a whole number of ``step`` (no rounding when step is 0)."""
    if step == 0:
        return value
    units = CTX.divide(value, step).to_integral_value(rounding=ROUND_CEILING)
    return CTX.multiply(units, step)


def is_multiple(value: Decimal, step: Decimal, base: Decimal = ZERO) -> bool:
    """True when ``value - base`` is a whole number of ``step`` (always true when step is 0)."""
    if step == 0:
        return True
    return CTX.remainder(CTX.subtract(value, base), step) == 0


def mul(a: Decimal, b: Decimal) -> Decimal:
    """Multiply exactly (50 significant digits)."""
    return CTX.multiply(a, b)


def fee_of(notional: Decimal, rate: Decimal) -> Decimal:
    """The commission on ``notional`` at ``rate``, truncated to eight decimals.

    Truncation keeps the sum of fees on any split of an order at or below the fee on the whole,
    so the funds locked for a resting buy always cover what its fills consume.
    """
    return CTX.multiply(notional, rate).quantize(EIGHT_PLACES, rounding=ROUND_DOWN, context=CTX)


def lock_amount(notional: Decimal, rate: Decimal) -> Decimal:
    """The quote to lock for a buy of ``notional`` with fees at ``rate`` (rounded up to 1e-8)."""
    gross = CTX.multiply(notional, CTX.add(Decimal(1), rate))
    return gross.quantize(EIGHT_PLACES, rounding=ROUND_CEILING, context=CTX)
