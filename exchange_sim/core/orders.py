"""Order and trade records, and the enums that describe them."""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field
from decimal import Decimal

from exchange_sim.core.decimals import ZERO


class Side(enum.Enum):
    """Buy or sell."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(enum.Enum):
    """Order types (the Binance names; other venues map theirs onto these)."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    LIMIT_MAKER = "LIMIT_MAKER"
    STOP_LOSS = "STOP_LOSS"
    STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_LIMIT = "TAKE_PROFIT_LIMIT"

    @property
    def has_trigger(self) -> bool:
        """Stop-loss and take-profit types wait for a trigger price."""
        return self in _TRIGGERED

    @property
    def has_limit_price(self) -> bool:
        """Types that carry a limit price."""
        return self in _PRICED

    @property
    def is_market_like(self) -> bool:
        """Types that execute as a market order (at once, or once triggered)."""
        return self in (OrderType.MARKET, OrderType.STOP_LOSS, OrderType.TAKE_PROFIT)


_TRIGGERED = {
    OrderType.STOP_LOSS,
    OrderType.STOP_LOSS_LIMIT,
    OrderType.TAKE_PROFIT,
    OrderType.TAKE_PROFIT_LIMIT,
}
_PRICED = {
    OrderType.LIMIT,
    OrderType.LIMIT_MAKER,
    OrderType.STOP_LOSS_LIMIT,
    OrderType.TAKE_PROFIT_LIMIT,
}


class TimeInForce(enum.Enum):
    """How long the unfilled part of an order lives."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(enum.Enum):
    """Order life cycle (Binance names)."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"

    @property
    def is_open(self) -> bool:
        """NEW and PARTIALLY_FILLED orders are open."""
        return self in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class ExecutionType(enum.Enum):
    """What just happened to an order (the ``x`` of a Binance execution report)."""

    NEW = "NEW"
    TRADE = "TRADE"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    AMENDED = "AMENDED"  # price / quantity changed in place, same order id (Kraken, Coinbase)


@dataclass(frozen=True)
class OrderRequest:
    """What a client asked for, already parsed into core types.

    Exactly one of ``quantity`` / ``quote_quantity`` is set (quote only for market orders).
    """

    symbol: str
    side: Side
    type: OrderType
    client_order_id: str
    quantity: Decimal | None = None
    quote_quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce | None = None


@dataclass
class Order:
    """An order as the venue knows it. ``quantity`` is None only for a quote-sized market order
    that has not executed yet; afterwards it is the executed quantity."""

    order_id: int
    account_key: str
    symbol: str
    side: Side
    type: OrderType
    client_order_id: str
    created_ms: int
    updated_ms: int
    quantity: Decimal | None
    quote_quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    status: OrderStatus = OrderStatus.NEW
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    fee: Decimal = ZERO
    fee_asset: str = ""
    working_ms: int | None = None  # None while a stop order waits for its trigger
    locked_asset: str = ""
    locked_amount: Decimal = ZERO
    cancel_client_order_id: str | None = None
    trade_ids: list[int] = field(default_factory=list)
    awaiting_match: bool = False  # accepted while matching is held; matched when released

    @property
    def is_open(self) -> bool:
        """NEW or PARTIALLY_FILLED."""
        return self.status.is_open

    @property
    def is_working(self) -> bool:
        """On the book (not a stop waiting for its trigger)."""
        return self.working_ms is not None

    @property
    def remaining(self) -> Decimal:
        """Quantity still to fill (zero for a quote-sized order once done)."""
        if self.quantity is None:
            return ZERO
        return self.quantity - self.executed_qty

    def snapshot(self) -> Order:
        """A copy that later changes to this order do not touch."""
        clone = copy.copy(self)
        clone.trade_ids = list(self.trade_ids)
        return clone


@dataclass(frozen=True)
class Trade:
    """One fill of one order.

    ``execution_id`` names the matching pass that produced the fill: every fill of one order
    against several book levels (one taker execution) shares it, whatever the clock said between
    the fills; each maker fill has its own. Venues that merge an execution's fills group by it.
    """

    trade_id: int
    order_id: int
    account_key: str
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    fee: Decimal
    fee_asset: str
    is_maker: bool
    time_ms: int
    execution_id: int
