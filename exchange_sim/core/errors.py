"""Venue-neutral rejections raised by the core; each venue adapter maps them to its wire errors."""

from __future__ import annotations

import enum


class VenueError(Exception):
    """Base class: the venue refused a request and changed nothing."""


class UnknownSymbol(VenueError):
    """The symbol is not listed on this venue."""


class UnknownAccount(VenueError):
    """No account has this API key."""


class TradingNotAllowed(VenueError):
    """The account's key has no trading permission."""


class FilterKind(enum.Enum):
    """Which market rule an order broke."""

    PRICE = "price"  # tick size, min/max price (price and stop price)
    QUANTITY = "quantity"  # step size, min/max quantity
    MARKET_QUANTITY = "market_quantity"  # min/max quantity for market orders
    NOTIONAL = "notional"  # price * quantity below the minimum (or above the maximum)


class FilterFailure(VenueError):
    """An order broke a market filter."""

    def __init__(self, kind: FilterKind, detail: str = "") -> None:
        super().__init__(f"filter failure: {kind.value} {detail}".strip())
        self.kind = kind


class InsufficientBalance(VenueError):
    """The account lacks the free balance the order needs."""


class DuplicateClientOrderId(VenueError):
    """An open order of this account already uses this client order id."""


class WouldMatchImmediately(VenueError):
    """A post-only (maker) order would have taken liquidity."""


class WouldTriggerImmediately(VenueError):
    """A stop / take-profit order's trigger is already met by the current price."""


class OrderNotFound(VenueError):
    """No such order (or, for a cancel, no such open order)."""


class InvalidOrderRequest(VenueError):
    """The request is malformed for its order type (missing price, wrong time in force...)."""
