"""The engine's tables: copy configurations, the signal inbox and the order intents.

The same SQL runs on SQLite and PostgreSQL through :mod:`meshkit.db`. Money is stored as
Decimal strings, times as fixed-width ISO text, settings as JSON text with decimals as strings.
Every state change of an intent is a compare-and-set on its current state, so two tasks can
never both send the same intent.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine_svc.domain import intents as intent_rules
from engine_svc.domain.model import (
    ConfigSettings,
    CopyConfig,
    CopySettings,
    CopyStatus,
    DailyRisk,
    Intent,
    IntentState,
    OrderSide,
    OrderType,
    RiskLimits,
    Signal,
    SourceKind,
    SyncSettings,
    TimeInForce,
)
from meshkit import db
from meshkit.audit import AuditEntry, AuditEvent, AuditLog
from meshkit.codec import format_decimal, from_iso, to_iso

SCHEMA_DIR = pathlib.Path(__file__).parent / "schema"
SERVICE = "engine"
AUDIT_TABLE = "engine_audit_log"

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
    " cancel_wanted"
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


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def _undec(text: str | None) -> Decimal | None:
    return None if text is None or text == "" else Decimal(text)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else to_iso(value)


def _uniso(text: str | None) -> datetime | None:
    return from_iso(text) if text else None


def _column_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, IntentState | CopyStatus | OrderSide | OrderType | TimeInForce):
        return value.value
    return value


# ---------------------------------------------------------------------------- settings JSON


def risk_limits_json(limits: RiskLimits) -> str:
    """Return the JSON text of ``limits`` (decimals as strings, unset limits as null)."""
    data: dict[str, Any] = {}
    for f in fields(limits):
        value = getattr(limits, f.name)
        data[f.name] = value if isinstance(value, int) else _dec(value)
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
        side=OrderSide(data["side"]),
        quantity=Decimal(data["quantity"]),
        price=_undec(data["price"]),
        order_type=OrderType(data["order_type"]),
        event_time=from_iso(data["event_time"]),
        log_time=_uniso(data["log_time"]),
        portfolio_fraction=_undec(data["portfolio_fraction"]),
        leader_equity=_undec(data["leader_equity"]),
        leader_position=_undec(data["leader_position"]),
        exchange_name=data["exchange_name"],
    )


# ---------------------------------------------------------------------------- rows


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
        side=OrderSide(row["side"]),
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
    )


def _intent_params(intent: Intent) -> tuple[Any, ...]:
    values = {name: _column_value(getattr(intent, name)) for name in _INTENT_FIELDS}
    values["time_in_force"] = values["time_in_force"] or ""
    values["cancel_wanted"] = int(intent.cancel_wanted)
    return tuple(values[name] for name in _INTENT_FIELDS)


def _placeholders(count: int) -> str:
    return ", ".join("?" for _ in range(count))


# ---------------------------------------------------------------------------- transaction


class SignalTransaction:
    """The writes of one signal, all in one database transaction."""

    def __init__(self, executor: db.Executor, audit: AuditLog) -> None:
        self._tx = executor
        self._audit = audit

    async def insert_inbox(self, signal: Signal, received_at: datetime) -> bool:
        """Insert the signal into the inbox; return ``False`` when it was there already."""
        changed = await self._tx.execute(
            "INSERT INTO signal_inbox (source_id, sequence, signal_id, signal, received_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                signal.source_id,
                signal.sequence,
                signal.signal_id,
                signal_json(signal),
                to_iso(received_at),
            ),
        )
        return changed == 1

    async def configs_copying(self, source_id: str, sequence: int) -> list[CopyConfig]:
        """Return the configurations that record an intent for this signal (not stopped)."""
        rows = await self._tx.fetchall(
            f"SELECT {_CONFIG_COLUMNS} FROM copy_trading_configs"
            " WHERE source_id = ? AND status <> ? AND start_sequence < ? ORDER BY created_at, id",
            (source_id, CopyStatus.STOPPED.value, sequence),
        )
        return [_config(row) for row in rows]

    async def insert_intent(self, intent: Intent) -> bool:
        """Insert ``intent``; return ``False`` when an intent with its key exists already."""
        changed = await self._tx.execute(
            _INSERT_INTENT,
            _intent_params(intent),
        )
        return changed == 1

    async def orders_since(self, target_exchange_id: str, since: datetime) -> int:
        """Return how many orders (intents not skipped) were written for an account since then."""
        row = await self._tx.fetchone(
            "SELECT COUNT(*) AS n FROM order_intents"
            " WHERE target_exchange_id = ? AND created_at >= ? AND state <> ?",
            (target_exchange_id, to_iso(since), IntentState.SKIPPED.value),
        )
        return int(row["n"]) if row else 0

    async def record_progress(
        self,
        config: CopyConfig,
        status: CopyStatus,
        status_reason: str,
        daily_risk: DailyRisk,
        now: datetime,
    ) -> bool:
        """Store a configuration's status and daily risk state as decided for this signal.

        Returns whether the configuration still had the status it was read with (and moved).
        """
        changed = await self._tx.execute(
            "UPDATE copy_trading_configs SET status = ?, status_reason = ?, is_active = ?,"
            " daily_risk = ?, updated_at = ? WHERE id = ? AND status = ?",
            (
                status.value,
                status_reason,
                int(status.copies),
                _daily_risk_json(daily_risk),
                to_iso(now),
                config.config_id,
                config.status.value,
            ),
        )
        return changed == 1

    async def append_audit(self, event: AuditEvent, now: datetime) -> None:
        """Append an audit entry in this transaction; call it last, after every other write."""
        await self._audit.append(self._tx, event, now)

    async def advance_source(self, signal: Signal, synced_at: datetime) -> None:
        """Move the last stored sequence of every configuration of the source forward."""
        await self._tx.execute(
            "UPDATE copy_trading_configs SET last_sequence = ?, last_sync_at = ?"
            " WHERE source_id = ? AND last_sequence < ?",
            (signal.sequence, to_iso(synced_at), signal.source_id, signal.sequence),
        )


# ---------------------------------------------------------------------------- store


class EngineStore:
    """Configurations, inbox and intents over one :class:`meshkit.db.Database`."""

    def __init__(self, database: db.Database) -> None:
        self.database = database
        self.audit = AuditLog(database, AUDIT_TABLE, default_actor="service:engine")

    @classmethod
    async def open(cls, url: str) -> EngineStore:
        """Connect to ``url`` and bring the schema up to date."""
        database = await db.connect(url)
        store = cls(database)
        await store.migrate()
        return store

    async def migrate(self) -> list[int]:
        """Apply the schema files not applied yet; return the versions applied now."""
        return await db.migrate(self.database, SERVICE, SCHEMA_DIR)

    async def close(self) -> None:
        """Close the database."""
        await self.database.close()

    @contextlib.asynccontextmanager
    async def signal_transaction(self) -> AsyncIterator[SignalTransaction]:
        """Open the one transaction in which a signal and all its intents are written."""
        async with self.database.transaction() as tx:
            yield SignalTransaction(tx, self.audit)

    # -- configurations

    async def insert_config(
        self,
        config: CopyConfig,
        *,
        audit: AuditEvent | None = None,
    ) -> CopyConfig:
        """Insert ``config``; with a request id already used by the user, return that config.

        ``audit`` is appended in the same transaction when the configuration is new.
        """
        settings = config.settings
        params = (
            config.config_id,
            config.user_id,
            json.dumps({"kind": config.source_kind.value, "id": config.source_id}),
            json.dumps(list(config.target_exchange_ids)),
            risk_limits_json(settings.risk_limits),
            copy_settings_json(settings.copy_settings),
            config.sync_status,
            _iso(config.last_sync_at),
            int(config.is_active),
            to_iso(config.created_at),
            to_iso(config.updated_at),
            config.source_id,
            config.status.value,
            config.status_reason,
            sync_settings_json(settings.sync_settings),
            config.start_sequence,
            config.last_sequence,
            config.request_id,
            json.dumps(dict(config.target_venues)),
            _daily_risk_json(config.daily_risk),
        )
        try:
            async with self.database.transaction() as tx:
                changed = await tx.execute(
                    f"INSERT INTO copy_trading_configs ({_CONFIG_COLUMNS})"
                    f" VALUES ({_placeholders(len(params))}) ON CONFLICT DO NOTHING",
                    params,
                )
                if changed == 1 and audit is not None:
                    await self.audit.append(tx, audit, config.created_at)
        except db.UniqueViolation:
            changed = 0
        if changed == 1 or config.request_id is None:
            return config
        existing = await self.config_by_request(config.user_id, config.request_id)
        if existing is None:
            raise RuntimeError("a configuration insert conflicted but no conflicting row exists")
        return existing

    async def get_config(self, config_id: str) -> CopyConfig | None:
        """Return the configuration ``config_id``, ``None`` when there is none."""
        row = await self.database.fetchone(
            f"SELECT {_CONFIG_COLUMNS} FROM copy_trading_configs WHERE id = ?",
            (config_id,),
        )
        return _config(row) if row else None

    async def config_by_request(self, user_id: str, request_id: str) -> CopyConfig | None:
        """Return the user's configuration created with ``request_id``, if any."""
        row = await self.database.fetchone(
            f"SELECT {_CONFIG_COLUMNS} FROM copy_trading_configs"
            " WHERE user_id = ? AND request_id = ?",
            (user_id, request_id),
        )
        return _config(row) if row else None

    async def list_configs(self, user_id: str) -> list[CopyConfig]:
        """Return the user's configurations, newest first."""
        rows = await self.database.fetchall(
            f"SELECT {_CONFIG_COLUMNS} FROM copy_trading_configs WHERE user_id = ?"
            " ORDER BY created_at DESC, id DESC",
            (user_id,),
        )
        return [_config(row) for row in rows]

    async def configs_of_source(self, source_id: str) -> list[CopyConfig]:
        """Return the configurations copying ``source_id`` that are not stopped."""
        rows = await self.database.fetchall(
            f"SELECT {_CONFIG_COLUMNS} FROM copy_trading_configs"
            " WHERE source_id = ? AND status <> ?"
            " ORDER BY created_at, id",
            (source_id, CopyStatus.STOPPED.value),
        )
        return [_config(row) for row in rows]

    async def update_settings(
        self,
        config: CopyConfig,
        settings: ConfigSettings,
        now: datetime,
        *,
        audit: AuditEvent | None = None,
    ) -> bool:
        """Replace the settings of ``config``; return ``False`` if it changed meanwhile.

        ``audit`` is appended in the same transaction when the settings changed.
        """
        async with self.database.transaction() as tx:
            changed = await tx.execute(
                "UPDATE copy_trading_configs SET risk_limits = ?, copy_settings = ?,"
                " sync_settings = ?, updated_at = ? WHERE id = ? AND updated_at = ?",
                (
                    risk_limits_json(settings.risk_limits),
                    copy_settings_json(settings.copy_settings),
                    sync_settings_json(settings.sync_settings),
                    to_iso(now),
                    config.config_id,
                    to_iso(config.updated_at),
                ),
            )
            if changed == 1 and audit is not None:
                await self.audit.append(tx, audit, now)
        return changed == 1

    async def change_status(
        self,
        config_id: str,
        expected: CopyStatus,
        status: CopyStatus,
        reason: str,
        now: datetime,
        *,
        skip_pending: str = "",
        daily_risk: DailyRisk | None = None,
        audit: AuditEvent | None = None,
    ) -> bool:
        """Move a configuration from ``expected`` to ``status`` (compare-and-set).

        With ``skip_pending`` every PENDING intent of the configuration becomes SKIPPED with
        that reason in the same transaction, so none of them can leave after the change;
        ``audit`` is appended in that transaction too when the status moved.
        """
        async with self.database.transaction() as tx:
            sql = (
                "UPDATE copy_trading_configs SET status = ?, status_reason = ?, is_active = ?,"
                " updated_at = ?"
            )
            params: list[Any] = [status.value, reason, int(status.copies), to_iso(now)]
            if daily_risk is not None:
                sql += ", daily_risk = ?"
                params.append(_daily_risk_json(daily_risk))
            if status is CopyStatus.STOPPED:
                sql += ", sync_status = ?"
                params.append("stopped")
            changed = await tx.execute(
                sql + " WHERE id = ? AND status = ?",
                (*params, config_id, expected.value),
            )
            if changed != 1:
                return False
            if skip_pending:
                await tx.execute(
                    "UPDATE order_intents SET state = ?, reason = ?, updated_at = ?"
                    " WHERE config_id = ? AND state = ?",
                    (
                        IntentState.SKIPPED.value,
                        skip_pending,
                        to_iso(now),
                        config_id,
                        IntentState.PENDING.value,
                    ),
                )
            if audit is not None:
                await self.audit.append(tx, audit, now)
            return True

    async def list_audit_entries(
        self,
        owner_user_id: str,
        before_seq: int,
        limit: int,
    ) -> list[AuditEntry]:
        """Return ``owner_user_id``'s audit entries below ``before_seq`` (0: all), newest first."""
        return await self.audit.entries_of(owner_user_id, before_seq=before_seq, limit=limit)

    async def subscriptions(self) -> dict[str, int]:
        """Return where to resume each source an active, paused or reducing configuration copies.

        That is the highest sequence in the inbox, or the lowest start sequence of the
        source's configurations when that is higher (history is never copied).
        """
        rows = await self.database.fetchall(
            "SELECT source_id, MIN(start_sequence) AS start FROM copy_trading_configs"
            " WHERE status IN (?, ?, ?) GROUP BY source_id",
            (CopyStatus.ACTIVE.value, CopyStatus.PAUSED.value, CopyStatus.REDUCING.value),
        )
        result: dict[str, int] = {}
        for row in rows:
            stored = await self.inbox_max(row["source_id"])
            result[row["source_id"]] = max(stored, int(row["start"]))
        return result

    async def subscription_of(self, source_id: str) -> int | None:
        """Return where to resume ``source_id``, ``None`` when no live configuration copies it."""
        row = await self.database.fetchone(
            "SELECT MIN(start_sequence) AS start, COUNT(*) AS n FROM copy_trading_configs"
            " WHERE source_id = ? AND status IN (?, ?, ?)",
            (
                source_id,
                CopyStatus.ACTIVE.value,
                CopyStatus.PAUSED.value,
                CopyStatus.REDUCING.value,
            ),
        )
        if row is None or not row["n"]:
            return None
        return max(await self.inbox_max(source_id), int(row["start"]))

    # -- inbox

    async def inbox_max(self, source_id: str) -> int:
        """Return the highest sequence of ``source_id`` in the inbox, 0 when none."""
        row = await self.database.fetchone(
            "SELECT MAX(sequence) AS top FROM signal_inbox WHERE source_id = ?",
            (source_id,),
        )
        return int(row["top"]) if row and row["top"] is not None else 0

    async def has_signal(self, source_id: str, sequence: int) -> bool:
        """Return whether the inbox holds the signal."""
        row = await self.database.fetchone(
            "SELECT 1 AS found FROM signal_inbox WHERE source_id = ? AND sequence = ?",
            (source_id, sequence),
        )
        return row is not None

    async def get_signal(self, source_id: str, sequence: int) -> Signal | None:
        """Return the stored signal, ``None`` when the inbox does not hold it."""
        row = await self.database.fetchone(
            "SELECT signal FROM signal_inbox WHERE source_id = ? AND sequence = ?",
            (source_id, sequence),
        )
        return signal_from_json(row["signal"]) if row else None

    # -- intents

    async def insert_intent(self, intent: Intent) -> bool:
        """Insert one intent outside a signal transaction (repairs and tests)."""
        changed = await self.database.execute(
            _INSERT_INTENT,
            _intent_params(intent),
        )
        return changed == 1

    async def get_intent(self, intent_id: str) -> Intent | None:
        """Return the intent ``intent_id``."""
        row = await self.database.fetchone(
            f"SELECT {_INTENT_COLUMNS} FROM order_intents WHERE intent_id = ?",
            (intent_id,),
        )
        return _intent(row) if row else None

    async def intent_by_client_order_id(self, client_order_id: str) -> Intent | None:
        """Return the intent with ``client_order_id``."""
        row = await self.database.fetchone(
            f"SELECT {_INTENT_COLUMNS} FROM order_intents WHERE client_order_id = ?",
            (client_order_id,),
        )
        return _intent(row) if row else None

    async def intents_in_states(
        self,
        states: Iterable[IntentState],
        *,
        config_id: str | None = None,
        limit: int = 1000,
    ) -> list[Intent]:
        """Return intents in ``states`` (of one configuration, if given), oldest first."""
        wanted = [state.value for state in states]
        sql = (
            f"SELECT {_INTENT_COLUMNS} FROM order_intents"
            f" WHERE state IN ({_placeholders(len(wanted))})"
        )
        params: list[Any] = list(wanted)
        if config_id is not None:
            sql += " AND config_id = ?"
            params.append(config_id)
        sql += " ORDER BY created_at, sequence, intent_id LIMIT ?"
        params.append(limit)
        return [_intent(row) for row in await self.database.fetchall(sql, params)]

    async def update_intent(
        self,
        intent_id: str,
        expected: IntentState,
        **changes: Any,
    ) -> bool:
        """Change an intent in state ``expected`` (compare-and-set); return whether it did."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        names = sorted(changes)
        assignments = ", ".join(f"{name} = ?" for name in names)
        changed = await self.database.execute(
            f"UPDATE order_intents SET {assignments} WHERE intent_id = ? AND state = ?",
            (*(_column_value(changes[name]) for name in names), intent_id, expected.value),
        )
        return changed == 1

    async def want_cancel(self, config_id: str, states: Iterable[IntentState]) -> int:
        """Mark the configuration's intents in ``states`` as to be cancelled; return how many."""
        wanted = [state.value for state in states]
        return await self.database.execute(
            "UPDATE order_intents SET cancel_wanted = 1 WHERE config_id = ?"
            f" AND cancel_wanted = 0 AND state IN ({_placeholders(len(wanted))})",
            (config_id, *wanted),
        )

    async def mark_sent(self, intent: Intent, now: datetime) -> bool:
        """Move ``intent`` to SENT before a send, unless it changed or may not leave now.

        The configuration check is part of the same statement, so an intent whose
        configuration was paused, halted or stopped a moment earlier is never sent, and a
        buy never leaves a configuration that is only reducing.
        """
        allowed = [status.value for status in intent_rules.SENDABLE[intent.side]]
        changed = await self.database.execute(
            "UPDATE order_intents SET state = ?, attempts = attempts + 1, not_found_count = 0,"
            " last_sent_at = ?, updated_at = ? WHERE intent_id = ? AND state = ? AND EXISTS ("
            " SELECT 1 FROM copy_trading_configs c WHERE c.id = order_intents.config_id"
            f" AND c.status IN ({_placeholders(len(allowed))}))",
            (
                IntentState.SENT.value,
                to_iso(now),
                to_iso(now),
                intent.intent_id,
                intent.state.value,
                *allowed,
            ),
        )
        return changed == 1

    async def recent_intents(self, config_id: str, limit: int) -> list[Intent]:
        """Return the configuration's most recent intents, newest first."""
        rows = await self.database.fetchall(
            f"SELECT {_INTENT_COLUMNS} FROM order_intents WHERE config_id = ?"
            " ORDER BY created_at DESC, sequence DESC, intent_id DESC LIMIT ?",
            (config_id, limit),
        )
        return [_intent(row) for row in rows]

    async def list_intents(
        self,
        config_id: str,
        start: datetime | None,
        end: datetime | None,
        limit: int,
    ) -> list[Intent]:
        """Return the configuration's intents written in ``[start, end)``, oldest first."""
        sql = f"SELECT {_INTENT_COLUMNS} FROM order_intents WHERE config_id = ?"
        params: list[Any] = [config_id]
        if start is not None:
            sql += " AND created_at >= ?"
            params.append(to_iso(start))
        if end is not None:
            sql += " AND created_at < ?"
            params.append(to_iso(end))
        sql += " ORDER BY created_at, sequence, intent_id LIMIT ?"
        params.append(limit)
        return [_intent(row) for row in await self.database.fetchall(sql, params)]

    async def state_counts(self, config_id: str) -> tuple[dict[IntentState, int], int]:
        """Return the configuration's number of intents per state and of distinct signals."""
        rows = await self.database.fetchall(
            "SELECT state, COUNT(*) AS n FROM order_intents WHERE config_id = ? GROUP BY state",
            (config_id,),
        )
        signals = await self.database.fetchone(
            "SELECT COUNT(*) AS n FROM (SELECT DISTINCT source_id, sequence FROM order_intents"
            " WHERE config_id = ?) AS distinct_signals",
            (config_id,),
        )
        counts = {IntentState(row["state"]): int(row["n"]) for row in rows}
        return counts, int(signals["n"]) if signals else 0
