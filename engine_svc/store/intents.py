"""The order intents table (``order_intents``): every state change a compare-and-set."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from engine_svc.domain import intents as intent_rules
from engine_svc.domain.model import Intent, IntentState
from engine_svc.store.rows import (
    _INSERT_INTENT,
    _INTENT_COLUMNS,
    _UPDATABLE,
    _column_value,
    _intent,
    _intent_params,
    _placeholders,
)
from meshkit import db
from meshkit.codec import to_iso
from meshkit.leases import Fenced, LeaseTable


class IntentTable:
    """Reads and compare-and-set writes of the order intents."""

    database: db.Database
    leases: LeaseTable

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
        source_ids: Collection[str] | None = None,
        limit: int = 1000,
    ) -> list[Intent]:
        """Return intents in ``states`` (of one configuration, of some sources), oldest first."""
        wanted = [state.value for state in states]
        sql = (
            f"SELECT {_INTENT_COLUMNS} FROM order_intents"
            f" WHERE state IN ({_placeholders(len(wanted))})"
        )
        params: list[Any] = list(wanted)
        if config_id is not None:
            sql += " AND config_id = ?"
            params.append(config_id)
        if source_ids is not None:
            if not source_ids:
                return []
            sql += f" AND source_id IN ({_placeholders(len(source_ids))})"
            params.extend(sorted(source_ids))
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

    async def mark_sent(self, intent: Intent, now: datetime, token: int | None = None) -> bool:
        """Move ``intent`` to SENT before a send, unless it changed or may not leave now.

        The configuration check is part of the same statement, so an intent whose
        configuration was paused, halted or stopped a moment earlier is never sent, and a
        buy never leaves a configuration that is only reducing. With ``token`` (the lease on
        the intent's source this replica sends under) the lease check is part of it too, and
        the token is stored with the intent (``sent_token``).

        It decides nothing about *whether* to send: the first send of a PENDING intent and
        the re-send of an unknown order (allowed only by the resolver's one rule,
        :func:`engine_svc.domain.intents.may_resend`) both reach it through
        :meth:`engine_svc.copy.sender.Sender.start_send`, which mirrors this statement's
        changes (state, attempts, ``not_found_count``, ``last_sent_at``) on the intent it sends.

        Raises
        ------
        meshkit.leases.Fenced
            When nothing changed because ``token`` is no longer the source's current one
            (another replica took the source over).
        """
        allowed = [
            status.value for status in intent_rules.SENDABLE[intent_rules.exposure_side(intent)]
        ]
        fence_sql = ""
        fence_params: tuple[Any, ...] = ()
        if token is not None:
            fence_sql = f" AND {self.leases.current_sql()}"
            fence_params = (intent.source_id, token)
        changed = await self.database.execute(
            "UPDATE order_intents SET state = ?, attempts = attempts + 1, not_found_count = 0,"
            " last_sent_at = ?, updated_at = ?, sent_token = ? WHERE intent_id = ? AND state = ?"
            " AND EXISTS (SELECT 1 FROM copy_trading_configs c"
            " WHERE c.id = order_intents.config_id"
            f" AND c.status IN ({_placeholders(len(allowed))})){fence_sql}",
            (
                IntentState.SENT.value,
                to_iso(now),
                to_iso(now),
                token if token is not None else intent.sent_token,
                intent.intent_id,
                intent.state.value,
                *allowed,
                *fence_params,
            ),
        )
        if changed == 1:
            return True
        if token is not None and not await self.lease_current(intent.source_id, token):
            raise Fenced(intent.source_id, token)
        return False

    async def lease_current(self, source_id: str, token: int) -> bool:
        """Return whether ``token`` is the current lease token of ``source_id``."""
        row = await self.database.fetchone(
            f"SELECT 1 AS ok WHERE {self.leases.current_sql()}",
            (source_id, token),
        )
        return row is not None

    async def sources_with_work(self) -> set[str]:
        """Return the sources with intents not yet final (PENDING, or an outcome to prove)."""
        states = [IntentState.PENDING.value] + [s.value for s in intent_rules.UNRESOLVED]
        rows = await self.database.fetchall(
            "SELECT DISTINCT source_id FROM order_intents"
            f" WHERE state IN ({_placeholders(len(states))})",
            states,
        )
        return {row["source_id"] for row in rows}

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
        *,
        target_exchange_id: str = "",
        after: tuple[str, int, str] | None = None,
    ) -> list[Intent]:
        """Return the configuration's intents written in ``[start, end)``, oldest first.

        ``target_exchange_id`` keeps one follower account's; ``after`` (the ``created_at``
        text, sequence and intent id of the last one of a page) starts after it: a page
        boundary that many intents written at one time cannot make repeat or skip one.
        """
        sql = f"SELECT {_INTENT_COLUMNS} FROM order_intents WHERE config_id = ?"
        params: list[Any] = [config_id]
        if target_exchange_id:
            sql += " AND target_exchange_id = ?"
            params.append(target_exchange_id)
        if after is not None:
            # The bound on created_at alone (implied by the rest) lets the index on
            # (config_id, created_at) start at the page boundary and stop after ``limit``
            # rows; the OR alone read and sorted every intent after the boundary, each page.
            sql += (
                " AND created_at >= ? AND (created_at > ? OR (created_at = ? AND (sequence > ?"
                " OR (sequence = ? AND intent_id > ?))))"
            )
            params += [after[0], after[0], after[0], after[1], after[1], after[2]]
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
