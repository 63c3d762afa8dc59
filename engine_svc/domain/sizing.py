"""Sizing of a follower's copy (pure): each sizing mode, clamps and rounding to the venue step."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal, localcontext

from engine_svc.domain.model import Side


def equity_ratio(
    leader_quantity: Decimal, follower_equity: Decimal, leader_equity: Decimal
) -> Decimal:
    """Return the leader's quantity scaled by follower equity over leader equity.

    Parameters
    ----------
    leader_quantity
        The quantity the leader traded.
    follower_equity, leader_equity
        Both equities in the same (or an equivalent) quote currency; ``leader_equity`` > 0.
    """
    if leader_equity <= 0:
        raise ValueError("leader equity must be positive")
    return leader_quantity * follower_equity / leader_equity


def multiplier(leader_quantity: Decimal, factor: Decimal) -> Decimal:
    """Return the leader's quantity times ``factor``."""
    return leader_quantity * factor


def fixed_notional(notional: Decimal, price: Decimal) -> Decimal:
    """Return the quantity worth ``notional`` at ``price`` (> 0)."""
    if price <= 0:
        raise ValueError("price must be positive")
    return notional / price


def fixed_quantity(quantity: Decimal) -> Decimal:
    """Return ``quantity`` unchanged: every copy has the same size."""
    return quantity


def portfolio_fraction(follower_equity: Decimal, fraction: Decimal, price: Decimal) -> Decimal:
    """Return the quantity worth ``fraction`` of the follower's equity at ``price`` (> 0)."""
    if price <= 0:
        raise ValueError("price must be positive")
    return follower_equity * fraction / price


def proportional_exit(
    leader_quantity: Decimal,
    leader_position: Decimal,
    follower_position: Decimal,
) -> Decimal:
    """Return the follower's exit: the same fraction of its own position the leader sold.

    The leader selling 40% of its position makes the follower sell 40% of its own; selling
    more than the leader held counts as selling all of it.
    """
    if leader_position <= 0:
        raise ValueError("leader position must be positive")
    with localcontext() as context:
        context.rounding = ROUND_FLOOR  # never a hair more than the leader's share
        fraction = min(leader_quantity / leader_position, Decimal(1))
        return follower_position * fraction


def clamp_to_notional(quantity: Decimal, max_notional: Decimal, price: Decimal) -> Decimal:
    """Return ``quantity`` reduced so that ``quantity * price`` does not exceed ``max_notional``."""
    if price <= 0:
        return quantity
    return min(quantity, max_notional / price)


def round_down_to_step(quantity: Decimal, step: Decimal | None) -> Decimal:
    """Return the largest multiple of ``step`` not above ``quantity`` (never rounds up).

    Without a step (``None`` or 0) the quantity is returned unchanged.
    """
    if step is None or step <= 0:
        return quantity
    if quantity <= 0:
        return Decimal(0)
    with localcontext() as context:
        context.rounding = ROUND_FLOOR
        units = (quantity / step).to_integral_value(rounding=ROUND_DOWN)
    result = units * step
    # Keep the step's own precision: 0.00100 steps give 0.01000, not 0.0100000000.
    return result.quantize(step) if _has_fraction_digits(step) else result


def round_price_to_tick(price: Decimal, tick: Decimal | None, *, up: bool) -> Decimal:
    """Return ``price`` on the venue's tick grid, rounded up or down (never to the nearest).

    Without a tick (``None`` or 0) the price is returned unchanged.
    """
    if tick is None or tick <= 0:
        return price
    units = (price / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    result = units * tick
    return result.quantize(tick) if _has_fraction_digits(tick) else result


def slippage_band_price(
    reference: Decimal,
    side: Side,
    max_slippage: Decimal,
    tick: Decimal | None,
) -> Decimal:
    """Return the limit price of a copy that may move at most ``max_slippage`` from ``reference``.

    A buy pays at most ``reference * (1 + max_slippage)``, rounded down to the tick; a sell
    takes at least ``reference * (1 - max_slippage)``, rounded up to the tick. The rounding
    always goes inwards, so the band is never exceeded; a buy band narrower than one tick can
    round to zero (the caller skips such a copy).
    """
    buy = side is Side.BUY
    with localcontext() as context:
        context.rounding = ROUND_FLOOR if buy else ROUND_CEILING
        bound = reference * (Decimal(1) + max_slippage if buy else Decimal(1) - max_slippage)
        return round_price_to_tick(bound, tick, up=not buy)


def below_venue_minimum(
    quantity: Decimal,
    price: Decimal,
    min_notional: Decimal | None,
    min_quantity: Decimal | None,
) -> bool:
    """Return whether the venue would refuse ``quantity`` at ``price`` as too small."""
    if quantity <= 0:
        return True
    if min_quantity is not None and quantity < min_quantity:
        return True
    return min_notional is not None and notional_floor(quantity, price) < min_notional


def notional_floor(quantity: Decimal, price: Decimal) -> Decimal:
    """Return ``quantity * price`` rounded down when it has more digits than the context keeps.

    A minimum is then never met by a product that only rounding lifted over it.
    """
    with localcontext() as context:
        context.rounding = ROUND_FLOOR
        return quantity * price


def _has_fraction_digits(grid: Decimal) -> bool:
    # Whether a (finite) step or tick has digits after the point, e.g. 0.00100.
    exponent = grid.as_tuple().exponent
    return isinstance(exponent, int) and exponent < 0
