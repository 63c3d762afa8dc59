"""The one transaction in which a signal, its intents and its configurations' progress land."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from engine_svc.domain import intents as intent_rules
from engine_svc.domain.model import (
    CopyConfig,
    CopyStatus,
    DailyRisk,
    Intent,
    IntentState,
    Signal,
    SkipReason,
)
from engine_svc.settings_json import _daily_risk_json, signal_json
from engine_svc.store.rows import (
    _CONFIG_COLUMNS,
    _INSERT_INTENT,
    _INTENT_COLUMNS,
    _config,
    _intent,
    _intent_params,
)
from meshkit import db
from meshkit.audit import AuditEvent, AuditLog
from meshkit.codec import to_iso


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

    async def has_copies(
        self, config_id: str, source_id: str, sequence: int, target_exchange_id: str
    ) -> bool:
        """Return whether the signal at ``sequence`` wrote an intent for this config and account.

        A copy the venue could not take (SKIPPED ``order_type_unsupported``: the broker refused
        the type before any venue call) does not count: the leader's fill of that order is then
        copied as a fill, so the follower does not miss the trade.
        """
        row = await self._tx.fetchone(
            "SELECT 1 AS found FROM order_intents WHERE config_id = ? AND source_id = ?"
            " AND sequence = ? AND target_exchange_id = ?"
            " AND NOT (state = ? AND reason LIKE ?) LIMIT 1",
            (
                config_id,
                source_id,
                sequence,
                target_exchange_id,
                IntentState.SKIPPED.value,
                f"{SkipReason.ORDER_TYPE_UNSUPPORTED.value}%",
            ),
        )
        return row is not None

    async def cancel_copies(
        self,
        config_id: str,
        source_id: str,
        sequence: int,
        target_exchange_id: str,
        reason: str,
        now: datetime,
    ) -> list[Intent]:
        """Mark the copies of one leader order (the signal at ``sequence``) to be cancelled.

        Every copy is marked ``cancel_wanted`` first, whatever its state: a send that moves a
        PENDING copy to SENT at the same moment leaves it marked, and the resolver cancels it
        once the venue shows it resting. Then a copy still PENDING never leaves (SKIPPED with
        ``reason``). Returns the copies that may rest at the venue now.
        """
        key = "config_id = ? AND source_id = ? AND sequence = ? AND target_exchange_id = ?"
        params = (config_id, source_id, sequence, target_exchange_id)
        resting = [state.value for state in intent_rules.RESTING]
        marked = [*resting, IntentState.PENDING.value]
        await self._tx.execute(
            f"UPDATE order_intents SET cancel_wanted = 1, reason = ? WHERE {key}"
            f" AND state IN ({', '.join('?' for _ in marked)})",
            (reason, *params, *marked),
        )
        await self._tx.execute(
            f"UPDATE order_intents SET state = ?, reason = ?, updated_at = ? WHERE {key}"
            " AND state = ?",
            (
                IntentState.SKIPPED.value,
                reason,
                to_iso(now),
                *params,
                IntentState.PENDING.value,
            ),
        )
        rows = await self._tx.fetchall(
            f"SELECT {_INTENT_COLUMNS} FROM order_intents WHERE {key}"
            f" AND state IN ({', '.join('?' for _ in resting)})",
            (*params, *resting),
        )
        return [_intent(row) for row in rows]

    async def cancel_on_status(
        self, config_id: str, status: CopyStatus, reason: str
    ) -> list[Intent]:
        """Mark the config's resting copies that ``status`` no longer allows to be cancelled.

        Those :func:`engine_svc.domain.intents.cancelled_on_status` names (a daily loss
        action's REDUCING: the entries; PAUSED: all) are marked ``cancel_wanted`` with
        ``reason``; returns them, to be cancelled at the venue (the resolver cancels any that
        cannot be now once the venue shows it resting). A copy not sent yet needs nothing:
        the send's own status check keeps it home. Marking twice changes nothing.
        """
        resting = [state.value for state in intent_rules.RESTING]
        rows = await self._tx.fetchall(
            f"SELECT {_INTENT_COLUMNS} FROM order_intents WHERE config_id = ?"
            f" AND cancel_wanted = 0 AND state IN ({', '.join('?' for _ in resting)})",
            (config_id, *resting),
        )
        marked: list[Intent] = []
        for intent in map(_intent, rows):
            if not intent_rules.cancelled_on_status(intent, status):
                continue
            await self._tx.execute(
                "UPDATE order_intents SET cancel_wanted = 1, reason = ?"
                " WHERE intent_id = ? AND cancel_wanted = 0",
                (reason, intent.intent_id),
            )
            marked.append(replace(intent, cancel_wanted=True, reason=reason))
        return marked

    async def advance_source(self, signal: Signal, synced_at: datetime) -> None:
        """Move the last stored sequence of every configuration of the source forward."""
        await self._tx.execute(
            "UPDATE copy_trading_configs SET last_sequence = ?, last_sync_at = ?"
            " WHERE source_id = ? AND last_sequence < ?",
            (signal.sequence, to_iso(synced_at), signal.source_id, signal.sequence),
        )
