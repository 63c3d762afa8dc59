import datetime

from copytrade.common.v1 import types_pb2 as _types_pb2
from copytrade.sync.v1 import sync_service_pb2 as _sync_service_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.type import decimal_pb2 as _decimal_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CopyStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COPY_STATUS_UNSPECIFIED: _ClassVar[CopyStatus]
    COPY_STATUS_ACTIVE: _ClassVar[CopyStatus]
    COPY_STATUS_PAUSED: _ClassVar[CopyStatus]
    COPY_STATUS_REDUCING: _ClassVar[CopyStatus]
    COPY_STATUS_HALTED: _ClassVar[CopyStatus]
    COPY_STATUS_STOPPED: _ClassVar[CopyStatus]

class IntentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTENT_STATE_UNSPECIFIED: _ClassVar[IntentState]
    INTENT_STATE_PENDING: _ClassVar[IntentState]
    INTENT_STATE_SENT: _ClassVar[IntentState]
    INTENT_STATE_ACCEPTED: _ClassVar[IntentState]
    INTENT_STATE_PARTIALLY_FILLED: _ClassVar[IntentState]
    INTENT_STATE_FILLED: _ClassVar[IntentState]
    INTENT_STATE_CANCELED: _ClassVar[IntentState]
    INTENT_STATE_EXPIRED: _ClassVar[IntentState]
    INTENT_STATE_REJECTED: _ClassVar[IntentState]
    INTENT_STATE_UNKNOWN: _ClassVar[IntentState]
    INTENT_STATE_SKIPPED: _ClassVar[IntentState]
COPY_STATUS_UNSPECIFIED: CopyStatus
COPY_STATUS_ACTIVE: CopyStatus
COPY_STATUS_PAUSED: CopyStatus
COPY_STATUS_REDUCING: CopyStatus
COPY_STATUS_HALTED: CopyStatus
COPY_STATUS_STOPPED: CopyStatus
INTENT_STATE_UNSPECIFIED: IntentState
INTENT_STATE_PENDING: IntentState
INTENT_STATE_SENT: IntentState
INTENT_STATE_ACCEPTED: IntentState
INTENT_STATE_PARTIALLY_FILLED: IntentState
INTENT_STATE_FILLED: IntentState
INTENT_STATE_CANCELED: IntentState
INTENT_STATE_EXPIRED: IntentState
INTENT_STATE_REJECTED: IntentState
INTENT_STATE_UNKNOWN: IntentState
INTENT_STATE_SKIPPED: IntentState

class RiskLimits(_message.Message):
    __slots__ = ("max_position_size", "max_daily_loss", "max_slippage", "correlation_limit", "max_orders_per_minute")
    MAX_POSITION_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_DAILY_LOSS_FIELD_NUMBER: _ClassVar[int]
    MAX_SLIPPAGE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_ORDERS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    max_position_size: _decimal_pb2.Decimal
    max_daily_loss: _decimal_pb2.Decimal
    max_slippage: _decimal_pb2.Decimal
    correlation_limit: _decimal_pb2.Decimal
    max_orders_per_minute: int
    def __init__(self, max_position_size: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., max_daily_loss: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., max_slippage: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., correlation_limit: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., max_orders_per_minute: _Optional[int] = ...) -> None: ...

class CopySettings(_message.Message):
    __slots__ = ("copy_all_trades", "min_trade_size", "max_trade_size", "exclude_symbols", "include_symbols", "sizing_mode", "multiplier", "fixed_notional", "fixed_quantity", "symbol_map", "allow_quote_equivalence", "max_signal_age_seconds")
    class SymbolMapEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COPY_ALL_TRADES_FIELD_NUMBER: _ClassVar[int]
    MIN_TRADE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_TRADE_SIZE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    SIZING_MODE_FIELD_NUMBER: _ClassVar[int]
    MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    FIXED_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    FIXED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_MAP_FIELD_NUMBER: _ClassVar[int]
    ALLOW_QUOTE_EQUIVALENCE_FIELD_NUMBER: _ClassVar[int]
    MAX_SIGNAL_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    copy_all_trades: bool
    min_trade_size: _decimal_pb2.Decimal
    max_trade_size: _decimal_pb2.Decimal
    exclude_symbols: _containers.RepeatedScalarFieldContainer[str]
    include_symbols: _containers.RepeatedScalarFieldContainer[str]
    sizing_mode: str
    multiplier: _decimal_pb2.Decimal
    fixed_notional: _decimal_pb2.Decimal
    fixed_quantity: _decimal_pb2.Decimal
    symbol_map: _containers.ScalarMap[str, str]
    allow_quote_equivalence: bool
    max_signal_age_seconds: int
    def __init__(self, copy_all_trades: _Optional[bool] = ..., min_trade_size: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., max_trade_size: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., exclude_symbols: _Optional[_Iterable[str]] = ..., include_symbols: _Optional[_Iterable[str]] = ..., sizing_mode: _Optional[str] = ..., multiplier: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., fixed_notional: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., fixed_quantity: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., symbol_map: _Optional[_Mapping[str, str]] = ..., allow_quote_equivalence: _Optional[bool] = ..., max_signal_age_seconds: _Optional[int] = ...) -> None: ...

class CopyConfig(_message.Message):
    __slots__ = ("config_id", "source_backtest_id", "source_exchange_id", "target_exchange_ids", "risk_limits", "copy_settings", "sync_settings", "status", "status_reason", "is_active", "last_sequence", "create_time", "update_time")
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_EXCHANGE_IDS_FIELD_NUMBER: _ClassVar[int]
    RISK_LIMITS_FIELD_NUMBER: _ClassVar[int]
    COPY_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    SYNC_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    IS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    source_backtest_id: str
    source_exchange_id: str
    target_exchange_ids: _containers.RepeatedScalarFieldContainer[str]
    risk_limits: RiskLimits
    copy_settings: CopySettings
    sync_settings: _sync_service_pb2.SyncSettings
    status: CopyStatus
    status_reason: str
    is_active: bool
    last_sequence: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, config_id: _Optional[str] = ..., source_backtest_id: _Optional[str] = ..., source_exchange_id: _Optional[str] = ..., target_exchange_ids: _Optional[_Iterable[str]] = ..., risk_limits: _Optional[_Union[RiskLimits, _Mapping]] = ..., copy_settings: _Optional[_Union[CopySettings, _Mapping]] = ..., sync_settings: _Optional[_Union[_sync_service_pb2.SyncSettings, _Mapping]] = ..., status: _Optional[_Union[CopyStatus, str]] = ..., status_reason: _Optional[str] = ..., is_active: _Optional[bool] = ..., last_sequence: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CopiedOrder(_message.Message):
    __slots__ = ("intent_id", "config_id", "source_id", "sequence", "signal_id", "target_exchange_id", "client_order_id", "symbol", "side", "type", "quantity", "price", "state", "reason", "venue_order_id", "filled_quantity", "average_price", "leader_quantity", "leader_price", "latency_ms", "create_time", "update_time", "attempts")
    INTENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VENUE_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRICE_FIELD_NUMBER: _ClassVar[int]
    LEADER_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    LEADER_PRICE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    intent_id: str
    config_id: str
    source_id: str
    sequence: int
    signal_id: str
    target_exchange_id: str
    client_order_id: str
    symbol: str
    side: _types_pb2.OrderSide
    type: _types_pb2.OrderType
    quantity: _decimal_pb2.Decimal
    price: _decimal_pb2.Decimal
    state: IntentState
    reason: str
    venue_order_id: str
    filled_quantity: _decimal_pb2.Decimal
    average_price: _decimal_pb2.Decimal
    leader_quantity: _decimal_pb2.Decimal
    leader_price: _decimal_pb2.Decimal
    latency_ms: float
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    attempts: int
    def __init__(self, intent_id: _Optional[str] = ..., config_id: _Optional[str] = ..., source_id: _Optional[str] = ..., sequence: _Optional[int] = ..., signal_id: _Optional[str] = ..., target_exchange_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_types_pb2.OrderSide, str]] = ..., type: _Optional[_Union[_types_pb2.OrderType, str]] = ..., quantity: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., price: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., state: _Optional[_Union[IntentState, str]] = ..., reason: _Optional[str] = ..., venue_order_id: _Optional[str] = ..., filled_quantity: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., average_price: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., leader_quantity: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., leader_price: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., latency_ms: _Optional[float] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempts: _Optional[int] = ...) -> None: ...

class StartCopyRequest(_message.Message):
    __slots__ = ("source_backtest_id", "source_exchange_id", "target_exchange_ids", "risk_limits", "copy_settings", "sync_settings", "request_id")
    SOURCE_BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_EXCHANGE_IDS_FIELD_NUMBER: _ClassVar[int]
    RISK_LIMITS_FIELD_NUMBER: _ClassVar[int]
    COPY_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    SYNC_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    source_backtest_id: str
    source_exchange_id: str
    target_exchange_ids: _containers.RepeatedScalarFieldContainer[str]
    risk_limits: RiskLimits
    copy_settings: CopySettings
    sync_settings: _sync_service_pb2.SyncSettings
    request_id: str
    def __init__(self, source_backtest_id: _Optional[str] = ..., source_exchange_id: _Optional[str] = ..., target_exchange_ids: _Optional[_Iterable[str]] = ..., risk_limits: _Optional[_Union[RiskLimits, _Mapping]] = ..., copy_settings: _Optional[_Union[CopySettings, _Mapping]] = ..., sync_settings: _Optional[_Union[_sync_service_pb2.SyncSettings, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class StartCopyResponse(_message.Message):
    __slots__ = ("config_id", "status", "config")
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    status: CopyStatus
    config: CopyConfig
    def __init__(self, config_id: _Optional[str] = ..., status: _Optional[_Union[CopyStatus, str]] = ..., config: _Optional[_Union[CopyConfig, _Mapping]] = ...) -> None: ...

class StopCopyRequest(_message.Message):
    __slots__ = ("config_id", "keep_open_orders")
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    KEEP_OPEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    keep_open_orders: bool
    def __init__(self, config_id: _Optional[str] = ..., keep_open_orders: _Optional[bool] = ...) -> None: ...

class StopCopyResponse(_message.Message):
    __slots__ = ("config_id", "status", "cancelled_orders")
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_ORDERS_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    status: CopyStatus
    cancelled_orders: int
    def __init__(self, config_id: _Optional[str] = ..., status: _Optional[_Union[CopyStatus, str]] = ..., cancelled_orders: _Optional[int] = ...) -> None: ...

class PauseCopyRequest(_message.Message):
    __slots__ = ("config_id",)
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    def __init__(self, config_id: _Optional[str] = ...) -> None: ...

class PauseCopyResponse(_message.Message):
    __slots__ = ("config_id", "status")
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    status: CopyStatus
    def __init__(self, config_id: _Optional[str] = ..., status: _Optional[_Union[CopyStatus, str]] = ...) -> None: ...

class ResumeCopyRequest(_message.Message):
    __slots__ = ("config_id",)
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    def __init__(self, config_id: _Optional[str] = ...) -> None: ...

class ResumeCopyResponse(_message.Message):
    __slots__ = ("config_id", "status")
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    status: CopyStatus
    def __init__(self, config_id: _Optional[str] = ..., status: _Optional[_Union[CopyStatus, str]] = ...) -> None: ...

class GetCopyStatusRequest(_message.Message):
    __slots__ = ("config_id",)
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    def __init__(self, config_id: _Optional[str] = ...) -> None: ...

class CopyCounters(_message.Message):
    __slots__ = ("signals", "intents", "filled", "skipped", "rejected", "unknown", "in_flight", "cancelled")
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    INTENTS_FIELD_NUMBER: _ClassVar[int]
    FILLED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    signals: int
    intents: int
    filled: int
    skipped: int
    rejected: int
    unknown: int
    in_flight: int
    cancelled: int
    def __init__(self, signals: _Optional[int] = ..., intents: _Optional[int] = ..., filled: _Optional[int] = ..., skipped: _Optional[int] = ..., rejected: _Optional[int] = ..., unknown: _Optional[int] = ..., in_flight: _Optional[int] = ..., cancelled: _Optional[int] = ...) -> None: ...

class Position(_message.Message):
    __slots__ = ("exchange_id", "asset", "quantity", "value")
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    asset: str
    quantity: _decimal_pb2.Decimal
    value: _decimal_pb2.Decimal
    def __init__(self, exchange_id: _Optional[str] = ..., asset: _Optional[str] = ..., quantity: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ..., value: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ...) -> None: ...

class GetCopyStatusResponse(_message.Message):
    __slots__ = ("config", "counters", "recent_orders", "positions", "last_sync_time", "sync_mode", "positions_error")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    RECENT_ORDERS_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    LAST_SYNC_TIME_FIELD_NUMBER: _ClassVar[int]
    SYNC_MODE_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_ERROR_FIELD_NUMBER: _ClassVar[int]
    config: CopyConfig
    counters: CopyCounters
    recent_orders: _containers.RepeatedCompositeFieldContainer[CopiedOrder]
    positions: _containers.RepeatedCompositeFieldContainer[Position]
    last_sync_time: _timestamp_pb2.Timestamp
    sync_mode: _sync_service_pb2.SyncMode
    positions_error: str
    def __init__(self, config: _Optional[_Union[CopyConfig, _Mapping]] = ..., counters: _Optional[_Union[CopyCounters, _Mapping]] = ..., recent_orders: _Optional[_Iterable[_Union[CopiedOrder, _Mapping]]] = ..., positions: _Optional[_Iterable[_Union[Position, _Mapping]]] = ..., last_sync_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sync_mode: _Optional[_Union[_sync_service_pb2.SyncMode, str]] = ..., positions_error: _Optional[str] = ...) -> None: ...

class ListConfigsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListConfigsResponse(_message.Message):
    __slots__ = ("configs",)
    CONFIGS_FIELD_NUMBER: _ClassVar[int]
    configs: _containers.RepeatedCompositeFieldContainer[CopyConfig]
    def __init__(self, configs: _Optional[_Iterable[_Union[CopyConfig, _Mapping]]] = ...) -> None: ...

class UpdateConfigRequest(_message.Message):
    __slots__ = ("config_id", "risk_limits", "copy_settings", "sync_settings", "update_mask")
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    RISK_LIMITS_FIELD_NUMBER: _ClassVar[int]
    COPY_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    SYNC_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    risk_limits: RiskLimits
    copy_settings: CopySettings
    sync_settings: _sync_service_pb2.SyncSettings
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, config_id: _Optional[str] = ..., risk_limits: _Optional[_Union[RiskLimits, _Mapping]] = ..., copy_settings: _Optional[_Union[CopySettings, _Mapping]] = ..., sync_settings: _Optional[_Union[_sync_service_pb2.SyncSettings, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateConfigResponse(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: CopyConfig
    def __init__(self, config: _Optional[_Union[CopyConfig, _Mapping]] = ...) -> None: ...

class ListCopiedOrdersRequest(_message.Message):
    __slots__ = ("config_id", "start_time", "end_time", "page_size")
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    def __init__(self, config_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListCopiedOrdersResponse(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[CopiedOrder]
    def __init__(self, orders: _Optional[_Iterable[_Union[CopiedOrder, _Mapping]]] = ...) -> None: ...

class KillSwitchRequest(_message.Message):
    __slots__ = ("config_id", "all")
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    all: bool
    def __init__(self, config_id: _Optional[str] = ..., all: _Optional[bool] = ...) -> None: ...

class KillSwitchResponse(_message.Message):
    __slots__ = ("config_ids", "cancelled_orders")
    CONFIG_IDS_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_ORDERS_FIELD_NUMBER: _ClassVar[int]
    config_ids: _containers.RepeatedScalarFieldContainer[str]
    cancelled_orders: int
    def __init__(self, config_ids: _Optional[_Iterable[str]] = ..., cancelled_orders: _Optional[int] = ...) -> None: ...

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
