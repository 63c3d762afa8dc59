"""Order policies of the broker (pure): client order id reuse and safe resends."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from broker_svc.domain.model import Market, OrderRequest, OrderType, TimeInForce, VenueProfile


def differing_fields(request: OrderRequest, recorded: OrderRequest) -> list[str]:
    """Return the request fields in which ``request`` differs from the ``recorded`` one.

    A client order id names one order: a second request under the same id with another
    symbol, side, type, quantity or price is a different order, never a retry of the first.
    """
    names = ("symbol", "side", "type", "quantity", "price", "stop_price")
    return [name for name in names if getattr(request, name) != getattr(recorded, name)]


def unsupported_order(
    profile: VenueProfile, kind: OrderType, time_in_force: TimeInForce | None
) -> str | None:
    """Return why the venue cannot take an order of ``kind`` and ``time_in_force``, or ``None``.

    Pure lookup in the venue's order table: an order the venue cannot take is refused as it
    is, never turned into another type or time in force.
    """
    allowed = profile.time_in_forces_for(kind)
    if allowed is None:
        return f"{kind.value} orders are not supported at {profile.name}"
    if time_in_force is not None and time_in_force not in allowed:
        given = ", ".join(tif.value for tif in allowed) or "none"
        return (
            f"{kind.value} orders at {profile.name} cannot be {time_in_force.value}"
            f" (time in force allowed: {given})"
        )
    return None


def may_resend_after_absence(
    first_sent_at: datetime, now: datetime, safe_after_seconds: float
) -> bool:
    """Return whether an unresolved send may be repeated now that the venue says it has no order.

    A venue that reports "no such order" right after an ambiguous send may still receive the
    first request, which is in flight. Only once the venue would refuse that request as stale
    (Binance: ``recvWindow``) does its absence prove that the first send never executed.
    """
    return (now - first_sent_at).total_seconds() >= safe_after_seconds


def market_violations(request: OrderRequest, market: Market) -> list[tuple[str, str]]:
    """Return ``(field, why)`` for each way ``request`` breaks the market's precision or limits.

    The broker never rounds a caller's quantity or price: an order that is not a multiple of
    the venue's step or tick is refused, so what reaches the venue is exactly what was asked.
    The minimum notional is left to the venue, which knows the price a market order would get.
    """
    found: list[tuple[str, str]] = []
    step, tick = market.quantity_step, market.price_tick
    if step and request.quantity % step != 0:
        found.append(("quantity", f"must be a multiple of the quantity step {_plain(step)}"))
    if market.min_quantity and request.quantity < market.min_quantity:
        found.append(("quantity", f"is below the minimum quantity {_plain(market.min_quantity)}"))
    if market.max_quantity and request.quantity > market.max_quantity:
        found.append(("quantity", f"is above the maximum quantity {_plain(market.max_quantity)}"))
    for name in ("price", "stop_price"):
        value = getattr(request, name)
        if tick and value is not None and value % tick != 0:
            found.append((name, f"must be a multiple of the price tick {_plain(tick)}"))
    return found


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")
