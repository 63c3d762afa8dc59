"""The sync tables' columns and how their rows turn into domain values and back.

Quantities are Decimal strings, times fixed-width ISO text (:mod:`meshkit.codec`).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from meshkit import db
from meshkit.codec import format_decimal, from_iso
from sync_svc.domain.model import (
    LeaderFill,
    OrderType,
    PositionEffect,
    Side,
    Signal,
    SignalKind,
    Source,
    SourceKind,
    SyncMode,
    SyncSettings,
    TimeInForce,
)
from sync_svc.domain.orders import MirroredOrder

SIGNAL_COLUMNS = (
    "source_id, sequence, signal_id, symbol, side, quantity, price, order_type, time_in_force,"
    " portfolio_fraction, leader_equity, leader_position, event_time, log_time, exchange_name,"
    " kind, leader_order_id, stop_price, order_mirrored, opened_sequence, replaced_order_id,"
    " position_effect, liquidation, leader_leverage"
)
SOURCE_SELECT = (
    "SELECT s.source_id, s.kind, s.user_id, s.name, s.public, s.exchange_id, s.exchange_name,"
    " s.sync_settings, s.equity, s.mode, s.cursor_time, s.start_time, s.last_sync_at,"
    " s.last_error, s.request_id, s.created_at, s.watched, s.down_since,"
    " (SELECT COALESCE(MAX(g.sequence), 0) FROM signals g WHERE g.source_id = s.source_id)"
    " AS last_sequence FROM sources s"
)
FILL_COLUMNS = (
    "trade_id, symbol, side, qty, price, fee, fee_currency, order_type, trade_time, order_id"
)
LEADER_ORDER_COLUMNS = (
    "order_id, symbol, side, type, quantity, price, stop_price, time_in_force, sequence"
)


def decimal_text(value: Decimal | None) -> str | None:
    """Return ``value`` as stored: a Decimal string, or NULL."""
    return None if value is None else format_decimal(value)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None or value == "" else Decimal(value)


def _time(value: Any) -> datetime | None:
    return None if not value else from_iso(value)


def source_of(row: db.Row) -> Source:
    """Return the source a :data:`SOURCE_SELECT` row holds."""
    return Source(
        source_id=row["source_id"],
        kind=SourceKind(row["kind"]),
        user_id=row["user_id"],
        name=row["name"],
        public=bool(row["public"]),
        exchange_id=row["exchange_id"],
        exchange_name=row["exchange_name"],
        sync_settings=SyncSettings.from_dict(json.loads(row["sync_settings"])),
        equity=_decimal(row["equity"]),
        mode=SyncMode(row["mode"]),
        cursor_time=_time(row["cursor_time"]),
        start_time=from_iso(row["start_time"]),
        last_sync_at=_time(row["last_sync_at"]),
        last_error=row["last_error"],
        request_id=row["request_id"] or "",
        created_at=from_iso(row["created_at"]),
        last_sequence=int(row["last_sequence"]),
        watched=bool(row["watched"]),
        down_since=_time(row["down_since"]),
    )


def signal_of(row: db.Row) -> Signal:
    """Return the signal a row of :data:`SIGNAL_COLUMNS` holds."""
    return Signal(
        source_id=row["source_id"],
        sequence=int(row["sequence"]),
        signal_id=row["signal_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        quantity=Decimal(row["quantity"]),
        price=_decimal(row["price"]),
        order_type=OrderType(row["order_type"]),
        time_in_force=TimeInForce(row["time_in_force"]) if row["time_in_force"] else None,
        portfolio_fraction=_decimal(row["portfolio_fraction"]),
        leader_equity=_decimal(row["leader_equity"]),
        leader_position=_decimal(row["leader_position"]),
        event_time=from_iso(row["event_time"]),
        log_time=from_iso(row["log_time"]),
        exchange_name=row["exchange_name"],
        kind=SignalKind(row["kind"]),
        leader_order_id=row["leader_order_id"],
        stop_price=_decimal(row["stop_price"]),
        order_mirrored=bool(row["order_mirrored"]),
        opened_sequence=int(row["opened_sequence"]),
        replaced_order_id=row["replaced_order_id"],
        position_effect=PositionEffect(row["position_effect"]),
        liquidation=bool(row["liquidation"]),
        leader_leverage=_decimal(row["leader_leverage"]),
    )


def fill_of(row: db.Row) -> LeaderFill:
    """Return the leader fill a row of :data:`FILL_COLUMNS` holds."""
    return LeaderFill(
        trade_id=row["trade_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        quantity=Decimal(row["qty"]),
        price=Decimal(row["price"]),
        fee=_decimal(row["fee"]),
        fee_currency=row["fee_currency"],
        order_type=OrderType(row["order_type"]) if row["order_type"] else None,
        trade_time=from_iso(row["trade_time"]),
        order_id=row["order_id"],
    )


def mirrored_order_of(row: db.Row) -> MirroredOrder:
    """Return the announced leader order a row of :data:`LEADER_ORDER_COLUMNS` holds."""
    return MirroredOrder(
        order_id=row["order_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        type=OrderType(row["type"]),
        quantity=Decimal(row["quantity"]),
        price=_decimal(row["price"]),
        stop_price=_decimal(row["stop_price"]),
        time_in_force=TimeInForce(row["time_in_force"]) if row["time_in_force"] else None,
        sequence=int(row["sequence"]),
    )
