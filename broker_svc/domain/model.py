"""Pure value types of the broker: orders, fills, markets, balances, accounts and credentials.

Everything here is a frozen dataclass over ``Decimal`` and aware UTC ``datetime``; nothing
does I/O. Adapters build these from venue answers and the codec turns them into protos.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from meshkit.vocabulary import OrderStatus, OrderType, Side, TimeInForce


@dataclass(frozen=True)
class OrderRequest:
    """An order to place, keyed by the caller's client order id."""

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    reduce_only: bool = False  # derivatives only: never grow the position


@dataclass(frozen=True)
class Position:
    """An open derivatives position as the venue reports it (``contracts`` never negative)."""

    symbol: str
    side: str  # "long" or "short"
    contracts: Decimal
    entry_price: Decimal | None = None
    mark_price: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    liquidation_price: Decimal | None = None
    leverage: Decimal | None = None
    margin_mode: str = ""
    hedged: bool = False
    contract_size: Decimal | None = None
    """The base quantity one contract stands for; ``None`` when the venue does not say."""


@dataclass(frozen=True)
class MarketLeverage:
    """An account's leverage setting on one derivatives market, a position open or not."""

    symbol: str
    leverage: Decimal
    margin_mode: str = ""  # "cross", "isolated" or empty when unknown


@dataclass(frozen=True)
class Order:
    """An order as the venue reports it."""

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    status: OrderStatus
    filled_quantity: Decimal = Decimal(0)
    price: Decimal | None = None
    stop_price: Decimal | None = None
    average_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    fee: Decimal | None = None
    fee_currency: str = ""

    @classmethod
    def taken(cls, request: OrderRequest, venue_order_id: str, **known: Any) -> Order:
        """Return the order the venue has just taken for ``request``: open, nothing filled."""
        fields: dict[str, Any] = {
            "client_order_id": request.client_order_id,
            "venue_order_id": venue_order_id,
            "symbol": request.symbol,
            "side": request.side,
            "type": request.type,
            "quantity": request.quantity,
            "status": OrderStatus.OPEN,
            "price": request.price,
            "stop_price": request.stop_price,
            "time_in_force": request.time_in_force,
        }
        return cls(**{**fields, **known})


@dataclass(frozen=True)
class Fill:
    """One trade of an account at a venue."""

    trade_id: str
    venue_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    trade_time: datetime
    client_order_id: str = ""
    fee: Decimal | None = None
    fee_currency: str = ""
    order_type: OrderType | None = None


@dataclass(frozen=True)
class Market:
    """A venue market with its precision and minimums."""

    symbol: str
    base: str
    quote: str
    quantity_step: Decimal | None = None
    price_tick: Decimal | None = None
    min_quantity: Decimal | None = None
    min_notional: Decimal | None = None
    max_quantity: Decimal | None = None
    active: bool = True
    contract_size: Decimal | None = None
    """The base quantity of one contract on a derivatives market; ``None`` on spot."""


@dataclass(frozen=True)
class Balance:
    """One asset of an account: free to trade and locked in resting orders."""

    asset: str
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        """Return free plus locked."""
        return self.free + self.locked


@dataclass(frozen=True)
class KeyPermissions:
    """What an API key may do, as the venue reports it."""

    can_trade: bool
    can_withdraw: bool
    can_transfer: bool = False


@dataclass(frozen=True)
class Credentials:
    """An API key and its secrets; the secrets never appear in a repr."""

    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    passphrase: str = field(default="", repr=False)

    @property
    def api_key_hint(self) -> str:
        """Return the last four characters of the API key, to tell keys apart."""
        return api_key_hint(self.api_key)


def api_key_hint(api_key: str) -> str:
    """Return the last four characters of ``api_key`` (all of it when shorter)."""
    return api_key[-4:]


@dataclass(frozen=True)
class ExchangeAccount:
    """A registered exchange account, without its secrets."""

    exchange_id: str
    user_id: str
    exchange_name: str
    label: str
    api_key_hint: str
    created_at: datetime
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class RateLimit:
    """One request budget of a venue."""

    name: str
    limit: int
    interval_seconds: int


OrderSupport = tuple[tuple[OrderType, tuple[TimeInForce, ...]], ...]
"""Per order type a venue takes, the time-in-force values it takes it with (empty: none may be
given, as for market and stop-market orders). An order without a time in force takes the venue
default. Listing (``ListSupportedExchanges``) and placing (``PlaceOrder``) read the same table."""


@dataclass(frozen=True)
class VenueProfile:
    """What the broker can do at one venue: the static part of its capabilities."""

    name: str
    order_support: OrderSupport
    features: tuple[str, ...]
    rate_limits: tuple[RateLimit, ...]
    main_quote: str
    symbol_required_for_lookup: bool
    resend_safe_after_seconds: float

    @property
    def order_types(self) -> tuple[OrderType, ...]:
        """Return the order types the broker can place at the venue."""
        return tuple(kind for kind, _ in self.order_support)

    @property
    def time_in_forces(self) -> tuple[TimeInForce, ...]:
        """Return every time in force the venue takes with at least one order type."""
        seen = {tif for _, tifs in self.order_support for tif in tifs}
        return tuple(tif for tif in TimeInForce if tif in seen)

    def time_in_forces_for(self, kind: OrderType) -> tuple[TimeInForce, ...] | None:
        """Return the time-in-force values allowed with ``kind``; ``None`` if not taken at all."""
        for supported, tifs in self.order_support:
            if supported is kind:
                return tifs
        return None


@dataclass(frozen=True)
class ConnectionReport:
    """What a credentials test found: reachable, authenticated and allowed to trade only."""

    reachable: bool
    authenticated: bool
    can_trade: bool
    can_withdraw: bool
    reason: str
    latency_ms: int

    @property
    def ok(self) -> bool:
        """Return whether the credentials are fit for copying."""
        return self.reachable and self.authenticated and self.can_trade and not self.can_withdraw


@dataclass(frozen=True)
class Candle:
    """One interval of a market's prices."""

    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class StreamState(enum.StrEnum):
    """What happened to a venue stream."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    GAP_SUSPECTED = "gap_suspected"


@dataclass(frozen=True)
class StreamEvent:
    """A change of a venue stream's state; ``detail`` says why, in words."""

    state: StreamState
    detail: str
    at: datetime


class WatchChannel(enum.StrEnum):
    """What a watch streams."""

    ORDERS = "orders"
    FILLS = "fills"


@dataclass(frozen=True)
class OrderHint:
    """What the broker already knows of an order, to find it at the venue more cheaply."""

    venue_order_id: str = ""
    sent_at: datetime | None = None
