"""The copy configurations table (``copy_trading_configs``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from engine_svc.domain.loops import ConfigEdges
from engine_svc.domain.model import ConfigSettings, CopyConfig, CopyStatus, DailyRisk, IntentState
from engine_svc.ports import CopyGraphCheck
from engine_svc.settings_json import (
    _daily_risk_json,
    _iso,
    copy_settings_json,
    risk_limits_json,
    sync_settings_json,
)
from engine_svc.store.rows import (
    _CONFIG_COLUMNS,
    _EDGE_COLUMNS,
    _config,
    _edges,
    _placeholders,
)
from meshkit import db
from meshkit.audit import AuditEvent, AuditLog
from meshkit.codec import to_iso

COPY_GRAPH_LOCK = "engine:copy-graph"
"""The PostgreSQL advisory lock (its ``hashtext``) every copy-graph-checked write takes."""


class ConfigTable:
    """Reads and compare-and-set writes of the copy configurations."""

    database: db.Database
    audit: AuditLog

    async def insert_config(
        self,
        config: CopyConfig,
        *,
        audit: AuditEvent | None = None,
        check: CopyGraphCheck | None = None,
    ) -> CopyConfig:
        """Insert ``config``; with a request id already used by the user, return that config.

        ``audit`` is appended in the same transaction when the configuration is new; ``check``
        runs in it first (:meth:`_check_copy_graph`), its exception aborting the insert.
        """
        settings = config.settings
        params = (
            config.config_id,
            config.user_id,
            json.dumps(
                {"kind": config.source_kind.value, "id": config.source_id}
                | ({"leader": config.leader_id} if config.leader_id else {})
            ),
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
                if check is not None:
                    await self._check_copy_graph(tx, check)
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

    async def _check_copy_graph(self, tx: db.Executor, check: CopyGraphCheck) -> None:
        # The copy loop check sees every configuration committed before it, and no other
        # checked write commits until this one has: on PostgreSQL every checked write takes one
        # transaction-scoped advisory lock first (every replica, across processes; READ
        # COMMITTED reads after it see what the previous holder committed); on SQLite the write
        # transaction (BEGIN IMMEDIATE) already admits one writer at a time.
        if self.database.dialect == "postgresql":
            await tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (COPY_GRAPH_LOCK,))
        # Only the edges (source, targets, status): the settings are not the check's business.
        rows = await tx.fetchall(
            f"SELECT {_EDGE_COLUMNS} FROM copy_trading_configs WHERE status <> ?"
            " ORDER BY created_at, id",
            (CopyStatus.STOPPED.value,),
        )
        check([_edges(row) for row in rows])

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

    async def count_configs_by_status(self) -> dict[CopyStatus, int]:
        """Return how many configurations each status has (a status with none is left out)."""
        rows = await self.database.fetchall(
            "SELECT status, COUNT(*) AS how_many FROM copy_trading_configs GROUP BY status"
        )
        return {CopyStatus(row["status"]): int(row["how_many"]) for row in rows}

    async def configs_in_states(self, statuses: Iterable[CopyStatus]) -> list[CopyConfig]:
        """Return every user's configurations in ``statuses``."""
        wanted = [status.value for status in statuses]
        rows = await self.database.fetchall(
            f"SELECT {_CONFIG_COLUMNS} FROM copy_trading_configs"
            f" WHERE status IN ({_placeholders(len(wanted))}) ORDER BY created_at, id",
            wanted,
        )
        return [_config(row) for row in rows]

    async def copy_graph(self, statuses: Iterable[CopyStatus]) -> list[ConfigEdges]:
        """Return the edges of every user's configurations in ``statuses`` (no settings)."""
        wanted = [status.value for status in statuses]
        rows = await self.database.fetchall(
            f"SELECT {_EDGE_COLUMNS} FROM copy_trading_configs"
            f" WHERE status IN ({_placeholders(len(wanted))}) ORDER BY created_at, id",
            wanted,
        )
        return [_edges(row) for row in rows]

    async def configs_of_source(self, source_id: str) -> list[CopyConfig]:
        """Return the configurations copying ``source_id`` that are not stopped."""
        rows = await self.database.fetchall(
            f"SELECT {_CONFIG_COLUMNS} FROM copy_trading_configs"
            " WHERE source_id = ? AND status <> ?"
            " ORDER BY created_at, id",
            (source_id, CopyStatus.STOPPED.value),
        )
        return [_config(row) for row in rows]

    async def configs_using_exchange(self, exchange_id: str) -> list[CopyConfig]:
        """Return the configurations not stopped that copy from or to ``exchange_id``.

        ``exchange_id`` is a UUID (checked by the caller): it is matched as a JSON string in
        the target list.
        """
        rows = await self.database.fetchall(
            f"SELECT {_CONFIG_COLUMNS} FROM copy_trading_configs"
            " WHERE status <> ? AND (source_id = ? OR target_exchange_ids LIKE ?)"
            " ORDER BY created_at, id",
            (CopyStatus.STOPPED.value, exchange_id, f'%"{exchange_id}"%'),
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
        check: CopyGraphCheck | None = None,
    ) -> bool:
        """Move a configuration from ``expected`` to ``status`` (compare-and-set).

        With ``skip_pending`` every PENDING intent of the configuration becomes SKIPPED with
        that reason in the same transaction, so none of them can leave after the change;
        ``audit`` is appended in that transaction too when the status moved. ``check`` runs
        in it first (:meth:`_check_copy_graph`), its exception aborting the change.
        """
        async with self.database.transaction() as tx:
            if check is not None:
                await self._check_copy_graph(tx, check)
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
