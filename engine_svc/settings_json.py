"""Settings, daily risk state and signals as JSON text: the store's JSON columns, and the form in
which the audit trail records a configuration's settings (one encoding, not two).

Decimals are written as strings (never floats), times as fixed-width ISO text. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine_svc.domain.model import (
    CopySettings,
    DailyRisk,
    OrderType,
    PositionEffect,
    RiskLimits,
    Side,
    Signal,
    SignalKind,
    SyncSettings,
)
from meshkit.codec import format_decimal, from_iso, to_iso


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def _undec(text: str | None) -> Decimal | None:
    return None if text is None or text == "" else Decimal(text)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else to_iso(value)


def _uniso(text: str | None) -> datetime | None:
    return from_iso(text) if text else None


def risk_limits_json(limits: RiskLimits) -> str:
    """Return the JSON text of ``limits`` (decimals as strings, unset limits as null)."""
    data: dict[str, Any] = {}
    for f in fields(limits):
        value = getattr(limits, f.name)
        data[f.name] = value if isinstance(value, int | str) else _dec(value)
    return json.dumps(data)


def copy_settings_json(copy: CopySettings) -> str:
    """Return the JSON text of ``copy``."""
    data: dict[str, Any] = {}
    for f in fields(copy):
        value = getattr(copy, f.name)
        if isinstance(value, Decimal) or (value is None and f.type.startswith("Decimal")):
            data[f.name] = _dec(value)
        elif isinstance(value, tuple):
            data[f.name] = list(value)
        elif isinstance(value, Mapping):
            data[f.name] = dict(value)
        else:
            data[f.name] = value
    return json.dumps(data, sort_keys=True)


def sync_settings_json(sync: SyncSettings) -> str:
    """Return the JSON text of ``sync``."""
    return json.dumps({f.name: getattr(sync, f.name) for f in fields(sync)})


def _risk_limits(text: str) -> RiskLimits:
    data = json.loads(text)
    values: dict[str, Any] = {}
    for f in fields(RiskLimits):
        raw = data.get(f.name)
        if f.type == "int":
            values[f.name] = int(raw or 0)
        elif f.type == "str":
            if raw:  # older rows have none: the default
                values[f.name] = str(raw)
        else:
            values[f.name] = _undec(raw)
    return RiskLimits(**values)


def _copy_settings(text: str) -> CopySettings:
    data = json.loads(text)
    defaults = CopySettings()
    values: dict[str, Any] = {}
    for f in fields(CopySettings):
        if f.name not in data:
            continue
        raw = data[f.name]
        current = getattr(defaults, f.name)
        if f.type.startswith("Decimal"):
            values[f.name] = _undec(raw)
        elif isinstance(current, tuple):
            values[f.name] = tuple(raw)
        elif isinstance(current, Mapping):
            values[f.name] = dict(raw)
        else:
            values[f.name] = raw
    return CopySettings(**values)


def _sync_settings(text: str) -> SyncSettings:
    data = json.loads(text)
    return SyncSettings(**{f.name: data[f.name] for f in fields(SyncSettings) if f.name in data})


def _daily_risk_json(state: DailyRisk) -> str:
    return json.dumps(
        {
            "day": state.day,
            "start_equity": {k: format_decimal(v) for k, v in state.start_equity.items()},
        },
        sort_keys=True,
    )


def _daily_risk(text: str) -> DailyRisk:
    data = json.loads(text)
    return DailyRisk(
        day=data.get("day", ""),
        start_equity={k: Decimal(v) for k, v in data.get("start_equity", {}).items()},
    )


def signal_json(signal: Signal) -> str:
    """Return the JSON text of ``signal`` as stored in the inbox."""
    return json.dumps(
        {
            "source_id": signal.source_id,
            "sequence": signal.sequence,
            "signal_id": signal.signal_id,
            "symbol": signal.symbol,
            "side": signal.side.value,
            "quantity": format_decimal(signal.quantity),
            "price": _dec(signal.price),
            "order_type": signal.order_type.value,
            "event_time": to_iso(signal.event_time),
            "log_time": _iso(signal.log_time),
            "portfolio_fraction": _dec(signal.portfolio_fraction),
            "leader_equity": _dec(signal.leader_equity),
            "leader_position": _dec(signal.leader_position),
            "exchange_name": signal.exchange_name,
            "kind": signal.kind.value,
            "leader_order_id": signal.leader_order_id,
            "order_mirrored": signal.order_mirrored,
            "opened_sequence": signal.opened_sequence,
            "replaced_order_id": signal.replaced_order_id,
            "stop_price": _dec(signal.stop_price),
            "position_effect": signal.position_effect.value,
            "liquidation": signal.liquidation,
            "leader_leverage": _dec(signal.leader_leverage),
        },
        sort_keys=True,
    )


def signal_from_json(text: str) -> Signal:
    """Return the signal stored as ``text`` in the inbox."""
    data = json.loads(text)
    return Signal(
        source_id=data["source_id"],
        sequence=int(data["sequence"]),
        signal_id=data["signal_id"],
        symbol=data["symbol"],
        side=Side(data["side"]),
        quantity=Decimal(data["quantity"]),
        price=_undec(data["price"]),
        order_type=OrderType(data["order_type"]),
        event_time=from_iso(data["event_time"]),
        log_time=_uniso(data["log_time"]),
        portfolio_fraction=_undec(data["portfolio_fraction"]),
        leader_equity=_undec(data["leader_equity"]),
        leader_position=_undec(data["leader_position"]),
        exchange_name=data["exchange_name"],
        kind=SignalKind(data.get("kind", SignalKind.FILL.value)),
        leader_order_id=data.get("leader_order_id", ""),
        order_mirrored=bool(data.get("order_mirrored", False)),
        opened_sequence=int(data.get("opened_sequence", 0)),
        replaced_order_id=data.get("replaced_order_id", ""),
        stop_price=_undec(data.get("stop_price")),
        position_effect=PositionEffect(data.get("position_effect", "")),
        liquidation=bool(data.get("liquidation", False)),
        leader_leverage=_undec(data.get("leader_leverage")),
    )
