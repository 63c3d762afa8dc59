"""Rows of the configuration and intent tables, and the models they hold."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any, TypeVar

from engine_svc.domain.loops import ConfigEdges
from engine_svc.domain.model import (
    ConfigSettings,
    CopyConfig,
    CopyStatus,
    DailyRisk,
    Intent,
    IntentState,
    OrderType,
    Side,
    SourceKind,
    TimeInForce,
)
from engine_svc.settings_json import (
    _copy_settings,
    _daily_risk,
    _risk_limits,
    _sync_settings,
    _undec,
    _uniso,
)
from meshkit.codec import format_decimal, from_iso, to_iso

_CONFIG_FIELDS = (
    "id",
    "user_id",
    "source",
    "target_exchange_ids",
    "risk_limits",
    "copy_settings",
    "sync_status",
    "last_sync_at",
    "is_active",
    "created_at",
    "updated_at",
    "source_id",
    "status",
    "status_reason",
    "sync_settings",
    "start_sequence",
    "last_sequence",
    "request_id",
    "target_venues",
    "daily_risk",
)
"""The configuration table's columns, in the order :func:`_parse_config` unpacks them."""
_CONFIG_COLUMNS = ", ".join(_CONFIG_FIELDS)
_EDGE_COLUMNS = "id, source, target_exchange_ids, status"
"""The columns the copy loop check reads (:func:`_edges`): no settings."""
_INTENT_COLUMNS = (
    "intent_id, config_id, source_id, sequence, signal_id, target_exchange_id, leg,"
    " client_order_id, symbol, side, type, quantity, price, state, reason, venue_order_id,"
    " filled_quantity, average_price, leader_quantity, leader_price, leader_event_time,"
    " latency_ms, not_found_count, attempts, created_at, updated_at, last_sent_at, time_in_force,"
    " cancel_wanted, sent_token, stop_price, reduce_only, leverage"
)
_INTENT_FIELDS = [name.strip() for name in _INTENT_COLUMNS.split(",")]
_INSERT_INTENT = (
    f"INSERT INTO order_intents ({_INTENT_COLUMNS})"
    f" VALUES ({', '.join('?' for _ in _INTENT_FIELDS)}) ON CONFLICT DO NOTHING"
)
_UPDATABLE = frozenset(
    {
        "state",
        "reason",
        "venue_order_id",
        "filled_quantity",
        "average_price",
        "latency_ms",
        "not_found_count",
        "attempts",
        "updated_at",
        "last_sent_at",
    }
)


def _column_value(value: Any) -> Any:
    convert = _CONVERTERS.get(type(value))
    if convert is not None:
        return convert(value)
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, IntentState | CopyStatus | Side | OrderType | TimeInForce):
        return value.value
    return value


def _enum_value(value: Any) -> Any:
    return value.value


def _same(value: Any) -> Any:
    return value


_CONVERTERS: dict[type, Any] = {
    str: _same,
    int: _same,
    bool: _same,
    float: _same,
    type(None): _same,
    Decimal: format_decimal,
    datetime: to_iso,
    **{kind: _enum_value for kind in (IntentState, CopyStatus, Side, OrderType, TimeInForce)},
}
"""How a column value of each exact type is stored (others by the checks after it)."""


_config_values = itemgetter(*_CONFIG_FIELDS)
_PARSED_ROWS = 4096
"""How many row versions :func:`_config` keeps parsed (each entry a few KB)."""
_PARSED_TEXTS = 4096
"""How many distinct texts each column parse keeps (settings, sources, times...)."""


def _config(row: Mapping[str, Any]) -> CopyConfig:
    """Return the configuration a ``copy_trading_configs`` row holds.

    Parsed once per row version: the cache key is every column's value, so any write that
    changes the row (status, settings, sequence, daily risk...), from this replica or another,
    changes the key, and a hit returns exactly what parsing the row returns. A row that changed
    reuses the parsed parts it shares with others (settings, source, targets and times are
    cached by their text). The models are frozen: a cached one is shared, never changed.
    """
    return _once_per_version(_config_values(row), _parsed_config, _parse_config)


@lru_cache(maxsize=_PARSED_ROWS)
def _parsed_config(values: tuple[Any, ...]) -> CopyConfig:
    return _parse_config(values)


_P = TypeVar("_P")


def _once_per_version(
    values: tuple[Any, ...],
    cached: Callable[[tuple[Any, ...]], _P],
    parse: Callable[[tuple[Any, ...]], _P],
) -> _P:
    # A row's parse from the cache keyed by every column's value (see _config and _intent).
    try:
        return cached(values)
    except TypeError:  # an unhashable column value (a driver's own type): parse it uncached
        return parse(values)


_STATUSES = {status.value: status for status in CopyStatus}


def _parse_config(values: tuple[Any, ...]) -> CopyConfig:
    (
        config_id,
        user_id,
        source,
        target_exchange_ids,
        risk_limits,
        copy_settings,
        sync_status,
        last_sync_at,
        _is_active,
        created_at,
        updated_at,
        _source_id,  # the source's id is the one in ``source`` (the same)
        status,
        status_reason,
        sync_settings,
        start_sequence,
        last_sequence,
        request_id,
        target_venues,
        daily_risk,
    ) = values  # read by name, in _CONFIG_FIELDS order
    kind, source_id, leader_id = _source(source)
    return CopyConfig(
        config_id=config_id,
        user_id=user_id,
        source_kind=kind,
        source_id=source_id,
        target_exchange_ids=_targets(target_exchange_ids),
        settings=_settings(risk_limits, copy_settings, sync_settings),
        status=_STATUSES.get(status) or CopyStatus(status),
        status_reason=status_reason,
        start_sequence=int(start_sequence),
        last_sequence=int(last_sequence),
        sync_status=sync_status,
        last_sync_at=_time(last_sync_at) if last_sync_at else None,
        created_at=_time(created_at),
        updated_at=_time(updated_at),
        request_id=request_id,
        target_venues=_venues(target_venues),
        daily_risk=_daily_risk_of(daily_risk),
        leader_id=leader_id,
    )


def _edges(row: Mapping[str, Any]) -> ConfigEdges:
    """Return the copy edges of a row read with :data:`_EDGE_COLUMNS`."""
    kind, source_id, _leader = _source(row["source"])
    return ConfigEdges(
        config_id=row["id"],
        source_kind=kind,
        source_id=source_id,
        target_exchange_ids=_targets(row["target_exchange_ids"]),
        status=CopyStatus(row["status"]),
    )


@lru_cache(maxsize=_PARSED_TEXTS)
def _source(text: str) -> tuple[SourceKind, str, str]:
    source = json.loads(text)
    return SourceKind(source["kind"]), source["id"], source.get("leader", "")


@lru_cache(maxsize=_PARSED_TEXTS)
def _targets(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


@lru_cache(maxsize=_PARSED_TEXTS)
def _settings(risk_limits: str, copy_settings: str, sync_settings: str) -> ConfigSettings:
    return ConfigSettings(
        risk_limits=_risk_limits(risk_limits),
        copy_settings=_copy_settings(copy_settings),
        sync_settings=_sync_settings(sync_settings),
    )


@lru_cache(maxsize=_PARSED_TEXTS)
def _venues(text: str) -> dict[str, str]:
    venues: dict[str, str] = json.loads(text)
    return venues


@lru_cache(maxsize=_PARSED_TEXTS)
def _daily_risk_of(text: str) -> DailyRisk:
    return _daily_risk(text)


@lru_cache(maxsize=_PARSED_TEXTS)
def _time(text: str) -> datetime:
    return from_iso(text)


_intent_values = itemgetter(*_INTENT_FIELDS)
_PARSED_INTENTS = 4096
"""How many intent row versions :func:`_intent` keeps parsed (~5 KB each with its key)."""


def _intent(row: Mapping[str, Any]) -> Intent:
    """Return the intent an ``order_intents`` row (read with :data:`_INTENT_COLUMNS`) holds.

    Parsed once per row version, as :func:`_config`: the key is every column's value, so any
    change to the row is a new key and a hit returns exactly what parsing it returns. The
    read endpoints (``/orders``, ``/status``) read the same settled intents again and again.
    The intent is frozen: a cached one is shared, never changed.
    """
    return _once_per_version(_intent_values(row), _parsed_intent, _parse_intent)


@lru_cache(maxsize=_PARSED_INTENTS)
def _parsed_intent(values: tuple[Any, ...]) -> Intent:
    return _parse_intent(values)


def _parse_intent(values: tuple[Any, ...]) -> Intent:
    row = dict(zip(_INTENT_FIELDS, values, strict=True))
    return Intent(
        intent_id=row["intent_id"],
        config_id=row["config_id"],
        source_id=row["source_id"],
        sequence=int(row["sequence"]),
        signal_id=row["signal_id"],
        target_exchange_id=row["target_exchange_id"],
        leg=int(row["leg"]),
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        type=OrderType(row["type"]),
        quantity=Decimal(row["quantity"]),
        price=_undec(row["price"]),
        state=IntentState(row["state"]),
        reason=row["reason"],
        venue_order_id=row["venue_order_id"],
        filled_quantity=Decimal(row["filled_quantity"]),
        average_price=_undec(row["average_price"]),
        leader_quantity=Decimal(row["leader_quantity"]),
        leader_price=_undec(row["leader_price"]),
        leader_event_time=from_iso(row["leader_event_time"]),
        latency_ms=float(row["latency_ms"]),
        not_found_count=int(row["not_found_count"]),
        attempts=int(row["attempts"]),
        created_at=from_iso(row["created_at"]),
        updated_at=from_iso(row["updated_at"]),
        last_sent_at=_uniso(row["last_sent_at"]),
        time_in_force=TimeInForce(row["time_in_force"]) if row["time_in_force"] else None,
        cancel_wanted=bool(row["cancel_wanted"]),
        sent_token=int(row["sent_token"]),
        stop_price=_undec(row["stop_price"]),
        reduce_only=bool(row["reduce_only"]),
        leverage=int(row["leverage"]) if row["leverage"] is not None else None,
    )


_intent_attributes = attrgetter(*_INTENT_FIELDS)
_TIME_IN_FORCE = _INTENT_FIELDS.index("time_in_force")
_CANCEL_WANTED = _INTENT_FIELDS.index("cancel_wanted")
_REDUCE_ONLY = _INTENT_FIELDS.index("reduce_only")


def _intent_params(intent: Intent) -> tuple[Any, ...]:
    values = [_column_value(value) for value in _intent_attributes(intent)]
    values[_TIME_IN_FORCE] = values[_TIME_IN_FORCE] or ""
    values[_CANCEL_WANTED] = int(intent.cancel_wanted)
    values[_REDUCE_ONLY] = int(intent.reduce_only)
    return tuple(values)


def _placeholders(count: int) -> str:
    return ", ".join("?" for _ in range(count))
