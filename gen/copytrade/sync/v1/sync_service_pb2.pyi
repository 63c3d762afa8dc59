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

class SourceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_KIND_UNSPECIFIED: _ClassVar[SourceKind]
    SOURCE_KIND_EXCHANGE: _ClassVar[SourceKind]
    SOURCE_KIND_BACKTEST: _ClassVar[SourceKind]

class SyncMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNC_MODE_UNSPECIFIED: _ClassVar[SyncMode]
    SYNC_MODE_WEBSOCKET: _ClassVar[SyncMode]
    SYNC_MODE_POLLING: _ClassVar[SyncMode]
    SYNC_MODE_PUBLISHED: _ClassVar[SyncMode]
SOURCE_KIND_UNSPECIFIED: SourceKind
SOURCE_KIND_EXCHANGE: SourceKind
SOURCE_KIND_BACKTEST: SourceKind
SYNC_MODE_UNSPECIFIED: SyncMode
SYNC_MODE_WEBSOCKET: SyncMode
SYNC_MODE_POLLING: SyncMode
SYNC_MODE_PUBLISHED: SyncMode

class Source(_message.Message):
    __slots__ = ("source_id", "kind", "user_id", "name", "public", "exchange_name", "mode", "last_sequence", "last_sync_time", "last_error", "sync_interval_seconds", "equity", "create_time", "watched")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_NAME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SYNC_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    SYNC_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    WATCHED_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    kind: SourceKind
    user_id: str
    name: str
    public: bool
    exchange_name: str
    mode: SyncMode
    last_sequence: int
    last_sync_time: _timestamp_pb2.Timestamp
    last_error: str
    sync_interval_seconds: int
    equity: _decimal_pb2.Decimal
    create_time: _timestamp_pb2.Timestamp
    watched: bool
    def __init__(self, source_id: _Optional[str] = ..., kind: _Optional[_Union[SourceKind, str]] = ..., user_id: _Optional[str] = ..., name: _Optional[str] = ..., public: _Optional[bool] = ..., exchange_name: _Optional[str] = ..., mode: _Optional[_Union[SyncMode, str]] = ..., last_sequence: _Optional[int] = ..., last_sync_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ..., sync_interval_seconds: _Optional[int] = ..., equity: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., watched: _Optional[bool] = ...) -> None: ...

class CreateBacktestRequest(_message.Message):
    __slots__ = ("name", "public", "equity", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    public: bool
    equity: _decimal_pb2.Decimal
    request_id: str
    def __init__(self, name: _Optional[str] = ..., public: _Optional[bool] = ..., equity: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateBacktestResponse(_message.Message):
    __slots__ = ("backtest_id", "source")
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    source: Source
    def __init__(self, backtest_id: _Optional[str] = ..., source: _Optional[_Union[Source, _Mapping]] = ...) -> None: ...

class PublishedSignal(_message.Message):
    __slots__ = ("signal_id", "symbol", "side", "quantity", "price", "order_type", "time_in_force", "portfolio_fraction")
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    PORTFOLIO_FRACTION_FIELD_NUMBER: _ClassVar[int]
    signal_id: str
    symbol: str
    side: str
    quantity: _decimal_pb2.Decimal
    price: _decimal_pb2.Decimal
    order_type: str
    time_in_force: str
    portfolio_fraction: _decimal_pb2.Decimal
    def __init__(self, signal_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[str] = ..., quantity: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., price: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., order_type: _Optional[str] = ..., time_in_force: _Optional[str] = ..., portfolio_fraction: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ...) -> None: ...

class PublishSignalsRequest(_message.Message):
    __slots__ = ("backtest_id", "signals")
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    signals: _containers.RepeatedCompositeFieldContainer[PublishedSignal]
    def __init__(self, backtest_id: _Optional[str] = ..., signals: _Optional[_Iterable[_Union[PublishedSignal, _Mapping]]] = ...) -> None: ...

class PublishSignalsResponse(_message.Message):
    __slots__ = ("sequences", "accepted", "duplicates")
    SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    sequences: _containers.RepeatedScalarFieldContainer[int]
    accepted: int
    duplicates: int
    def __init__(self, sequences: _Optional[_Iterable[int]] = ..., accepted: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class SyncSettings(_message.Message):
    __slots__ = ("sync_interval", "max_retries", "timeout", "enable_websocket", "enable_polling")
    SYNC_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    ENABLE_WEBSOCKET_FIELD_NUMBER: _ClassVar[int]
    ENABLE_POLLING_FIELD_NUMBER: _ClassVar[int]
    sync_interval: int
    max_retries: int
    timeout: int
    enable_websocket: bool
    enable_polling: bool
    def __init__(self, sync_interval: _Optional[int] = ..., max_retries: _Optional[int] = ..., timeout: _Optional[int] = ..., enable_websocket: _Optional[bool] = ..., enable_polling: _Optional[bool] = ...) -> None: ...

class WatchExchangeSourceRequest(_message.Message):
    __slots__ = ("exchange_id", "sync_settings")
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    SYNC_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    sync_settings: SyncSettings
    def __init__(self, exchange_id: _Optional[str] = ..., sync_settings: _Optional[_Union[SyncSettings, _Mapping]] = ...) -> None: ...

class WatchExchangeSourceResponse(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: Source
    def __init__(self, source: _Optional[_Union[Source, _Mapping]] = ...) -> None: ...

class UnwatchExchangeSourceRequest(_message.Message):
    __slots__ = ("exchange_id",)
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    def __init__(self, exchange_id: _Optional[str] = ...) -> None: ...

class UnwatchExchangeSourceResponse(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: Source
    def __init__(self, source: _Optional[_Union[Source, _Mapping]] = ...) -> None: ...

class GetSourceRequest(_message.Message):
    __slots__ = ("source_id",)
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    def __init__(self, source_id: _Optional[str] = ...) -> None: ...

class GetSourceResponse(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: Source
    def __init__(self, source: _Optional[_Union[Source, _Mapping]] = ...) -> None: ...

class Signal(_message.Message):
    __slots__ = ("source_id", "sequence", "signal_id", "symbol", "side", "quantity", "price", "order_type", "time_in_force", "portfolio_fraction", "leader_equity", "leader_position", "event_time", "log_time", "exchange_name")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    PORTFOLIO_FRACTION_FIELD_NUMBER: _ClassVar[int]
    LEADER_EQUITY_FIELD_NUMBER: _ClassVar[int]
    LEADER_POSITION_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    LOG_TIME_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_NAME_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    sequence: int
    signal_id: str
    symbol: str
    side: _types_pb2.OrderSide
    quantity: _decimal_pb2.Decimal
    price: _decimal_pb2.Decimal
    order_type: _types_pb2.OrderType
    time_in_force: _types_pb2.TimeInForce
    portfolio_fraction: _decimal_pb2.Decimal
    leader_equity: _decimal_pb2.Decimal
    leader_position: _decimal_pb2.Decimal
    event_time: _timestamp_pb2.Timestamp
    log_time: _timestamp_pb2.Timestamp
    exchange_name: str
    def __init__(self, source_id: _Optional[str] = ..., sequence: _Optional[int] = ..., signal_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_types_pb2.OrderSide, str]] = ..., quantity: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., price: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., order_type: _Optional[_Union[_types_pb2.OrderType, str]] = ..., time_in_force: _Optional[_Union[_types_pb2.TimeInForce, str]] = ..., portfolio_fraction: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., leader_equity: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., leader_position: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., log_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., exchange_name: _Optional[str] = ...) -> None: ...

class ListSignalsRequest(_message.Message):
    __slots__ = ("source_id", "after_sequence", "start_time", "end_time", "page_size")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    after_sequence: int
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    def __init__(self, source_id: _Optional[str] = ..., after_sequence: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListSignalsResponse(_message.Message):
    __slots__ = ("signals",)
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    signals: _containers.RepeatedCompositeFieldContainer[Signal]
    def __init__(self, signals: _Optional[_Iterable[_Union[Signal, _Mapping]]] = ...) -> None: ...

class SubscribeSignals(_message.Message):
    __slots__ = ("source_id", "after_sequence")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    after_sequence: int
    def __init__(self, source_id: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class AckSignal(_message.Message):
    __slots__ = ("source_id", "sequence")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    sequence: int
    def __init__(self, source_id: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class StreamSignalsRequest(_message.Message):
    __slots__ = ("subscribe", "ack")
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    subscribe: SubscribeSignals
    ack: AckSignal
    def __init__(self, subscribe: _Optional[_Union[SubscribeSignals, _Mapping]] = ..., ack: _Optional[_Union[AckSignal, _Mapping]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("send_time",)
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    send_time: _timestamp_pb2.Timestamp
    def __init__(self, send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StreamSignalsResponse(_message.Message):
    __slots__ = ("signal", "heartbeat")
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    signal: Signal
    heartbeat: Heartbeat
    def __init__(self, signal: _Optional[_Union[Signal, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...
