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

class ItemOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ITEM_OUTCOME_UNSPECIFIED: _ClassVar[ItemOutcome]
    ITEM_OUTCOME_MATCHED: _ClassVar[ItemOutcome]
    ITEM_OUTCOME_MISMATCHED: _ClassVar[ItemOutcome]
    ITEM_OUTCOME_MISSING: _ClassVar[ItemOutcome]
    ITEM_OUTCOME_DUPLICATE: _ClassVar[ItemOutcome]
    ITEM_OUTCOME_ERROR: _ClassVar[ItemOutcome]
ITEM_OUTCOME_UNSPECIFIED: ItemOutcome
ITEM_OUTCOME_MATCHED: ItemOutcome
ITEM_OUTCOME_MISMATCHED: ItemOutcome
ITEM_OUTCOME_MISSING: ItemOutcome
ITEM_OUTCOME_DUPLICATE: ItemOutcome
ITEM_OUTCOME_ERROR: ItemOutcome

class ReconciliationItem(_message.Message):
    __slots__ = ("sequence", "signal_id", "target_exchange_id", "client_order_id", "outcome", "detail", "intent_state", "venue_filled_quantity")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    INTENT_STATE_FIELD_NUMBER: _ClassVar[int]
    VENUE_FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    signal_id: str
    target_exchange_id: str
    client_order_id: str
    outcome: ItemOutcome
    detail: str
    intent_state: str
    venue_filled_quantity: _decimal_pb2.Decimal
    def __init__(self, sequence: _Optional[int] = ..., signal_id: _Optional[str] = ..., target_exchange_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., outcome: _Optional[_Union[ItemOutcome, str]] = ..., detail: _Optional[str] = ..., intent_state: _Optional[str] = ..., venue_filled_quantity: _Optional[_Union[_decimal_pb2.Decimal, _Mapping]] = ...) -> None: ...

class Reconciliation(_message.Message):
    __slots__ = ("reconciliation_id", "config_id", "start_time", "end_time", "total_count", "matched_count", "mismatched_count", "missing_count", "duplicate_count", "error_count", "items", "create_time")
    RECONCILIATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    MATCHED_COUNT_FIELD_NUMBER: _ClassVar[int]
    MISMATCHED_COUNT_FIELD_NUMBER: _ClassVar[int]
    MISSING_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_COUNT_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    reconciliation_id: str
    config_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    total_count: int
    matched_count: int
    mismatched_count: int
    missing_count: int
    duplicate_count: int
    error_count: int
    items: _containers.RepeatedCompositeFieldContainer[ReconciliationItem]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, reconciliation_id: _Optional[str] = ..., config_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., total_count: _Optional[int] = ..., matched_count: _Optional[int] = ..., mismatched_count: _Optional[int] = ..., missing_count: _Optional[int] = ..., duplicate_count: _Optional[int] = ..., error_count: _Optional[int] = ..., items: _Optional[_Iterable[_Union[ReconciliationItem, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReconcileRequest(_message.Message):
    __slots__ = ("config_id", "start_time", "end_time")
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, config_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReconcileResponse(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: Reconciliation
    def __init__(self, report: _Optional[_Union[Reconciliation, _Mapping]] = ...) -> None: ...

class ListReconciliationsRequest(_message.Message):
    __slots__ = ("config_id", "page_size")
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    page_size: int
    def __init__(self, config_id: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListReconciliationsResponse(_message.Message):
    __slots__ = ("reports",)
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[Reconciliation]
    def __init__(self, reports: _Optional[_Iterable[_Union[Reconciliation, _Mapping]]] = ...) -> None: ...

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
