"""The trading words every service shares: side, order type, time in force, order status.

One declaration for the whole mesh (each service's domain re-exports them from its model), and
one table per word for the wire in :mod:`meshkit.codec`. Pure: the standard library only, so
that the services' pure domain packages may import it (tests/guards/test_domain_is_pure.py).
"""

from __future__ import annotations

import enum


class Side(enum.StrEnum):
    """The direction of an order or a fill."""

    BUY = "buy"
    SELL = "sell"


class OrderType(enum.StrEnum):
    """How an order executes at the venue."""

    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"

    @property
    def has_limit_price(self) -> bool:
        """Return whether orders of this type carry a limit price."""
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT)

    @property
    def has_stop_price(self) -> bool:
        """Return whether orders of this type carry a stop price."""
        return self in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)


class TimeInForce(enum.StrEnum):
    """How long a limit order may rest."""

    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    POST_ONLY = "post_only"
    """A maker-only limit order: the venue refuses it when it would match at once."""


class OrderStatus(enum.StrEnum):
    """The state of an order as the venue (or the broker) knows it."""

    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """Return whether the order can change no more."""
        return self in (
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
            OrderStatus.REJECTED,
        )
