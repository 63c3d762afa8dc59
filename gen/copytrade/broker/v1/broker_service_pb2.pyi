import datetime

from copytrade.common.v1 import types_pb2 as _types_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.type import decimal_pb2 as _decimal_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WatchState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WATCH_STATE_UNSPECIFIED: _ClassVar[WatchState]
    WATCH_STATE_CONNECTED: _ClassVar[WatchState]
    WATCH_STATE_DISCONNECTED: _ClassVar[WatchState]
    WATCH_STATE_GAP_SUSPECTED: _ClassVar[WatchState]
WATCH_STATE_UNSPECIFIED: WatchState
WATCH_STATE_CONNECTED: WatchState
WATCH_STATE_DISCONNECTED: WatchState
WATCH_STATE_GAP_SUSPECTED: WatchState

class ExchangeAccount(_message.Message):
    __slots__ = ("exchange_id", "exchange_name", "label", "api_key_hint", "create_time")
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    API_KEY_HINT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    exchange_name: str
    label: str
    api_key_hint: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, exchange_id: _Optional[str] = ..., exchange_name: _Optional[str] = ..., label: _Optional[str] = ..., api_key_hint: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RegisterExchangeRequest(_message.Message):
    __slots__ = ("exchange_name", "api_key", "api_secret", "passphrase", "label", "request_id")
    EXCHANGE_NAME_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    API_SECRET_FIELD_NUMBER: _ClassVar[int]
    PASSPHRASE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    exchange_name: str
    api_key: str
    api_secret: str
    passphrase: str
    label: str
    request_id: str
    def __init__(self, exchange_name: _Optional[str] = ..., api_key: _Optional[str] = ..., api_secret: _Optional[str] = ..., passphrase: _Optional[str] = ..., label: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RegisterExchangeResponse(_message.Message):
    __slots__ = ("exchange",)
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    exchange: ExchangeAccount
    def __init__(self, exchange: _Optional[_Union[ExchangeAccount, _Mapping]] = ...) -> None: ...

class ListExchangesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListExchangesResponse(_message.Message):
    __slots__ = ("exchanges",)
    EXCHANGES_FIELD_NUMBER: _ClassVar[int]
    exchanges: _containers.RepeatedCompositeFieldContainer[ExchangeAccount]
    def __init__(self, exchanges: _Optional[_Iterable[_Union[ExchangeAccount, _Mapping]]] = ...) -> None: ...

class GetExchangeRequest(_message.Message):
    __slots__ = ("exchange_id",)
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    def __init__(self, exchange_id: _Optional[str] = ...) -> None: ...

class GetExchangeResponse(_message.Message):
    __slots__ = ("exchange",)
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    exchange: ExchangeAccount
    def __init__(self, exchange: _Optional[_Union[ExchangeAccount, _Mapping]] = ...) -> None: ...

class DeleteExchangeRequest(_message.Message):
    __slots__ = ("exchange_id",)
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    def __init__(self, exchange_id: _Optional[str] = ...) -> None: ...

class DeleteExchangeResponse(_message.Message):
    __slots__ = ("exchange_id",)
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    def __init__(self, exchange_id: _Optional[str] = ...) -> None: ...

class TestBrokerRequest(_message.Message):
    __slots__ = ("exchange_name", "api_key", "api_secret", "passphrase")
    EXCHANGE_NAME_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    API_SECRET_FIELD_NUMBER: _ClassVar[int]
    PASSPHRASE_FIELD_NUMBER: _ClassVar[int]
    exchange_name: str
    api_key: str
    api_secret: str
    passphrase: str
    def __init__(self, exchange_name: _Optional[str] = ..., api_key: _Optional[str] = ..., api_secret: _Optional[str] = ..., passphrase: _Optional[str] = ...) -> None: ...

class TestBrokerResponse(_message.Message):
    __slots__ = ("ok", "reachable", "authenticated", "can_trade", "can_withdraw", "reason", "latency_ms")
    OK_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    CAN_TRADE_FIELD_NUMBER: _ClassVar[int]
    CAN_WITHDRAW_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    reachable: bool
    authenticated: bool
    can_trade: bool
    can_withdraw: bool
    reason: str
    latency_ms: int
    def __init__(self, ok: _Optional[bool] = ..., reachable: _Optional[bool] = ..., authenticated: _Optional[bool] = ..., can_trade: _Optional[bool] = ..., can_withdraw: _Optional[bool] = ..., reason: _Optional[str] = ..., latency_ms: _Optional[int] = ...) -> None: ...

class ListSupportedExchangesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RateLimit(_message.Message):
    __slots__ = ("name", "limit", "interval_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    limit: int
    interval_seconds: int
    def __init__(self, name: _Optional[str] = ..., limit: _Optional[int] = ..., interval_seconds: _Optional[int] = ...) -> None: ...

class SupportedExchange(_message.Message):
    __slots__ = ("exchange_name", "order_types", "time_in_forces", "features", "rate_limits", "markets")
    EXCHANGE_NAME_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPES_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCES_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITS_FIELD_NUMBER: _ClassVar[int]
    MARKETS_FIELD_NUMBER: _ClassVar[int]
    exchange_name: str
    order_types: _containers.RepeatedScalarFieldContainer[_types_pb2.OrderType]
    time_in_forces: _containers.RepeatedScalarFieldContainer[_types_pb2.TimeInForce]
    features: _containers.RepeatedScalarFieldContainer[str]
    rate_limits: _containers.RepeatedCompositeFieldContainer[RateLimit]
    markets: _containers.RepeatedCompositeFieldContainer[Market]
    def __init__(self, exchange_name: _Optional[str] = ..., order_types: _Optional[_Iterable[_Union[_types_pb2.OrderType, str]]] = ..., time_in_forces: _Optional[_Iterable[_Union[_types_pb2.TimeInForce, str]]] = ..., features: _Optional[_Iterable[str]] = ..., rate_limits: _Optional[_Iterable[_Union[RateLimit, _Mapping]]] = ..., markets: _Optional[_Iterable[_Union[Market, _Mapping]]] = ...) -> None: ...

class ListSupportedExchangesResponse(_message.Message):
    __slots__ = ("exchanges",)
    EXCHANGES_FIELD_NUMBER: _ClassVar[int]
    exchanges: _containers.RepeatedCompositeFieldContainer[SupportedExchange]
    def __init__(self, exchanges: _Optional[_Iterable[_Union[SupportedExchange, _Mapping]]] = ...) -> None: ...

class Market(_message.Message):
    __slots__ = ("symbol", "base", "quote", "quantity_step", "price_tick", "min_quantity", "min_notional", "max_quantity")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_STEP_FIELD_NUMBER: _ClassVar[int]
    PRICE_TICK_FIELD_NUMBER: _ClassVar[int]
    MIN_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    MIN_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    MAX_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    base: str
    quote: str
    quantity_step: _decimal_pb2.Decimal
    price_tick: _decimal_pb2.Decimal
    min_quantity: _decimal_pb2.Decimal
    min_notional: _decimal_pb2.Decimal
    max_quantity: _decimal_pb2.Decimal
    def __init__(self, symbol: _Optional[str] = ..., base: _Optional[str] = ..., quote: _Optional[str] = ..., quantity_step: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., price_tick: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., min_quantity: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., min_notional: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., max_quantity: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ...) -> None: ...

class PlaceOrderRequest(_message.Message):
    __slots__ = ("exchange_id", "client_order_id", "symbol", "side", "type", "quantity", "price", "stop_price", "time_in_force")
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_PRICE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    client_order_id: str
    symbol: str
    side: _types_pb2.OrderSide
    type: _types_pb2.OrderType
    quantity: _decimal_pb2.Decimal
    price: _decimal_pb2.Decimal
    stop_price: _decimal_pb2.Decimal
    time_in_force: _types_pb2.TimeInForce
    def __init__(self, exchange_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_types_pb2.OrderSide, str]] = ..., type: _Optional[_Union[_types_pb2.OrderType, str]] = ..., quantity: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., price: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., stop_price: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., time_in_force: _Optional[_Union[_types_pb2.TimeInForce, str]] = ...) -> None: ...

class PlaceOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _types_pb2.Order
    def __init__(self, order: _Optional[_Union[_types_pb2.Order, _Mapping]] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("exchange_id", "client_order_id", "symbol")
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    client_order_id: str
    symbol: str
    def __init__(self, exchange_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ...) -> None: ...

class GetOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _types_pb2.Order
    def __init__(self, order: _Optional[_Union[_types_pb2.Order, _Mapping]] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("exchange_id", "client_order_id", "symbol")
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    client_order_id: str
    symbol: str
    def __init__(self, exchange_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ...) -> None: ...

class CancelOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _types_pb2.Order
    def __init__(self, order: _Optional[_Union[_types_pb2.Order, _Mapping]] = ...) -> None: ...

class ListOrdersRequest(_message.Message):
    __slots__ = ("exchange_id", "symbols", "start_time", "end_time")
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    symbols: _containers.RepeatedScalarFieldContainer[str]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, exchange_id: _Optional[str] = ..., symbols: _Optional[_Iterable[str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListOrdersResponse(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[_types_pb2.Order]
    def __init__(self, orders: _Optional[_Iterable[_Union[_types_pb2.Order, _Mapping]]] = ...) -> None: ...

class ListFillsRequest(_message.Message):
    __slots__ = ("exchange_id", "symbols", "since")
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    symbols: _containers.RepeatedScalarFieldContainer[str]
    since: _timestamp_pb2.Timestamp
    def __init__(self, exchange_id: _Optional[str] = ..., symbols: _Optional[_Iterable[str]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListFillsResponse(_message.Message):
    __slots__ = ("fills",)
    FILLS_FIELD_NUMBER: _ClassVar[int]
    fills: _containers.RepeatedCompositeFieldContainer[_types_pb2.Fill]
    def __init__(self, fills: _Optional[_Iterable[_Union[_types_pb2.Fill, _Mapping]]] = ...) -> None: ...

class Balance(_message.Message):
    __slots__ = ("asset", "free", "locked", "total", "value")
    ASSET_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    asset: str
    free: _decimal_pb2.Decimal
    locked: _decimal_pb2.Decimal
    total: _decimal_pb2.Decimal
    value: _decimal_pb2.Decimal
    def __init__(self, asset: _Optional[str] = ..., free: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., locked: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., total: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., value: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ...) -> None: ...

class GetPortfolioRequest(_message.Message):
    __slots__ = ("exchange_id", "quote_currency")
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    QUOTE_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    quote_currency: str
    def __init__(self, exchange_id: _Optional[str] = ..., quote_currency: _Optional[str] = ...) -> None: ...

class GetPortfolioResponse(_message.Message):
    __slots__ = ("balances", "equity", "quote_currency", "read_time")
    BALANCES_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    QUOTE_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    READ_TIME_FIELD_NUMBER: _ClassVar[int]
    balances: _containers.RepeatedCompositeFieldContainer[Balance]
    equity: _decimal_pb2.Decimal
    quote_currency: str
    read_time: _timestamp_pb2.Timestamp
    def __init__(self, balances: _Optional[_Iterable[_Union[Balance, _Mapping]]] = ..., equity: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., quote_currency: _Optional[str] = ..., read_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetMarketRequest(_message.Message):
    __slots__ = ("exchange_id", "symbol")
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    symbol: str
    def __init__(self, exchange_id: _Optional[str] = ..., symbol: _Optional[str] = ...) -> None: ...

class GetMarketResponse(_message.Message):
    __slots__ = ("market", "last_price")
    MARKET_FIELD_NUMBER: _ClassVar[int]
    LAST_PRICE_FIELD_NUMBER: _ClassVar[int]
    market: Market
    last_price: _decimal_pb2.Decimal
    def __init__(self, market: _Optional[_Union[Market, _Mapping]] = ..., last_price: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ...) -> None: ...

class Candle(_message.Message):
    __slots__ = ("open_time", "open", "high", "low", "close", "volume")
    OPEN_TIME_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    open_time: _timestamp_pb2.Timestamp
    open: _decimal_pb2.Decimal
    high: _decimal_pb2.Decimal
    low: _decimal_pb2.Decimal
    close: _decimal_pb2.Decimal
    volume: _decimal_pb2.Decimal
    def __init__(self, open_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., open: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., high: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., low: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., close: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., volume: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ...) -> None: ...

class ListCandlesRequest(_message.Message):
    __slots__ = ("exchange_id", "symbol", "timeframe", "since", "limit")
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    symbol: str
    timeframe: str
    since: _timestamp_pb2.Timestamp
    limit: int
    def __init__(self, exchange_id: _Optional[str] = ..., symbol: _Optional[str] = ..., timeframe: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ...) -> None: ...

class ListCandlesResponse(_message.Message):
    __slots__ = ("candles",)
    CANDLES_FIELD_NUMBER: _ClassVar[int]
    candles: _containers.RepeatedCompositeFieldContainer[Candle]
    def __init__(self, candles: _Optional[_Iterable[_Union[Candle, _Mapping]]] = ...) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ("state", "detail", "event_time")
    STATE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    state: WatchState
    detail: str
    event_time: _timestamp_pb2.Timestamp
    def __init__(self, state: _Optional[_Union[WatchState, str]] = ..., detail: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchFillsRequest(_message.Message):
    __slots__ = ("exchange_id", "symbols")
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, exchange_id: _Optional[str] = ..., symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchFillsResponse(_message.Message):
    __slots__ = ("fill", "event")
    FILL_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    fill: _types_pb2.Fill
    event: WatchEvent
    def __init__(self, fill: _Optional[_Union[_types_pb2.Fill, _Mapping]] = ..., event: _Optional[_Union[WatchEvent, _Mapping]] = ...) -> None: ...

class WatchOrdersRequest(_message.Message):
    __slots__ = ("exchange_id", "symbols")
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, exchange_id: _Optional[str] = ..., symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchOrdersResponse(_message.Message):
    __slots__ = ("order", "event")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    order: _types_pb2.Order
    event: WatchEvent
    def __init__(self, order: _Optional[_Union[_types_pb2.Order, _Mapping]] = ..., event: _Optional[_Union[WatchEvent, _Mapping]] = ...) -> None: ...

class ListAuditEntriesRequest(_message.Message):
    __slots__ = ("page_size", "before_seq")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_SEQ_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    before_seq: int
    def __init__(self, page_size: _Optional[int] = ..., before_seq: _Optional[int] = ...) -> None: ...

class ListAuditEntriesResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_types_pb2.AuditEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[_types_pb2.AuditEntry, _Mapping]]] = ...) -> None: ...
