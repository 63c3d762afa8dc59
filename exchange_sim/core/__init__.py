"""Venue-independent emulator core: markets, accounts, matching, fees, faults, clocks.

Nothing in this package speaks HTTP: the venue adapters (``exchange_sim.binance``,
``exchange_sim.coinbase``, ``exchange_sim.kraken``) translate their wire protocols to and from
these types.
Money is ``Decimal`` everywhere; floats never touch a price, a quantity or a balance.
"""

from exchange_sim.core.accounts import Account, AccountBook, Balance
from exchange_sim.core.clock import Clock, ManualClock, WallClock
from exchange_sim.core.engine import BalanceUpdate, FeeSchedule, MatchingEngine, OrderUpdate
from exchange_sim.core.errors import (
    DuplicateClientOrderId,
    FilterFailure,
    FilterKind,
    InsufficientBalance,
    InvalidOrderRequest,
    OrderNotFound,
    TradingNotAllowed,
    UnknownAccount,
    UnknownSymbol,
    VenueError,
    WouldMatchImmediately,
    WouldTriggerImmediately,
)
from exchange_sim.core.faults import FaultRegistry, FaultRule
from exchange_sim.core.markets import Market
from exchange_sim.core.orders import (
    ExecutionType,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    Trade,
)
from exchange_sim.core.state import VenueState

__all__ = [
    "Account",
    "AccountBook",
    "Balance",
    "BalanceUpdate",
    "Clock",
    "DuplicateClientOrderId",
    "ExecutionType",
    "FaultRegistry",
    "FaultRule",
    "FeeSchedule",
    "FilterFailure",
    "FilterKind",
    "InsufficientBalance",
    "InvalidOrderRequest",
    "ManualClock",
    "Market",
    "MatchingEngine",
    "Order",
    "OrderNotFound",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Side",
    "TimeInForce",
    "Trade",
    "TradingNotAllowed",
    "UnknownAccount",
    "UnknownSymbol",
    "VenueError",
    "VenueState",
    "WallClock",
    "WouldMatchImmediately",
    "WouldTriggerImmediately",
]
