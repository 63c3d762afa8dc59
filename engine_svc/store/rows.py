"""Rows of the configuration and intent tables, and the models they hold."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine_svc.domain.model import (
    ConfigSettings,
    CopyConfig,
    CopyStatus,
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

_CONFIG_COLUMNS = (
    "id, user_id, source, target_exchange_ids, risk_limits, copy_settings, sync_status,"
    " last_sync_at, is_active, created_at, updated_at, source_id, status, status_reason,"
    " sync_settings, start_sequence, last_sequence, request_id, target_venues, daily_risk"
)
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
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, IntentState | CopyStatus | Side | OrderType | TimeInForce):
        return value.value
    return value


def _config(row: Mapping[str, Any]) -> CopyConfig:
    source = json.loads(row["source"])
    return CopyConfig(
        config_id=row["id"],
        user_id=row["user_id"],
        source_kind=SourceKind(source["kind"]),
        source_id=source["id"],
        target_exchange_ids=tuple(json.loads(row["target_exchange_ids"])),
        settings=ConfigSettings(
            risk_limits=_risk_limits(row["risk_limits"]),
            copy_settings=_copy_settings(row["copy_settings"]),
            sync_settings=_sync_settings(row["sync_settings"]),
        ),
        status=CopyStatus(row["status"]),
        status_reason=row["status_reason"],
        start_sequence=int(row["start_sequence"]),
        last_sequence=int(row["last_sequence"]),
        sync_status=row["sync_status"],
        last_sync_at=_uniso(row["last_sync_at"]),
        created_at=from_iso(row["created_at"]),
        updated_at=from_iso(row["updated_at"]),
        request_id=row["request_id"],
        target_venues=json.loads(row["target_venues"]),
        daily_risk=_daily_risk(row["daily_risk"]),
        leader_id=source.get("leader", ""),
    )


def _intent(row: Mapping[str, Any]) -> Intent:
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


def _intent_params(intent: Intent) -> tuple[Any, ...]:
    values = {name: _column_value(getattr(intent, name)) for name in _INTENT_FIELDS}
    values["time_in_force"] = values["time_in_force"] or ""
    values["cancel_wanted"] = int(intent.cancel_wanted)
    values["reduce_only"] = int(intent.reduce_only)
    return tuple(values[name] for name in _INTENT_FIELDS)


def _placeholders(count: int) -> str:
    return ", ".join("?" for _ in range(count))
