"""The sync service's storage: sources, leader fills, the signal log and stream acks.

The same SQL runs on SQLite and PostgreSQL through :mod:`meshkit.db`.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from meshkit import db
from meshkit.codec import format_decimal, to_iso
from meshkit.leases import LeaseTable
from sync_svc.domain.model import (
    AppendEntry,
    AppendResult,
    LeaderFill,
    Signal,
    SignalDraft,
    SignalKind,
    Source,
    SourceKind,
    SyncMode,
    SyncSettings,
)
from sync_svc.domain.orders import MirroredOrder
from sync_svc.domain.signal_ids import named_by_symbol
from sync_svc.store.rows import (
    FILL_COLUMNS,
    LEADER_ORDER_COLUMNS,
    SIGNAL_COLUMNS,
    SOURCE_SELECT,
    decimal_text,
    fill_of,
    mirrored_order_of,
    signal_of,
    source_of,
)

SCHEMA_DIR = pathlib.Path(__file__).resolve().parent / "schema"
_IN_CHUNK = 200
LEASE_PREFIX = "sync"
SIGNALS_CHANNEL = "copytrade_signals"
"""The PostgreSQL notification channel an append that logged signals notifies (payload: the
source id), so that every replica can deliver them live to the streams it serves."""


class SyncStore:
    """Sources, leader fills, the per-source signal log and stream acks.

    Appends to one source's log are serialised inside the database (see :meth:`append`);
    :class:`sync_svc.signal_log.SignalLog` also serialises them per source in the process so
    that streams are notified in log order.
    """

    def __init__(self, database: db.Database) -> None:
        self.database = database
        self.leases = LeaseTable(database, LEASE_PREFIX)

    @classmethod
    async def open(cls, url: str) -> SyncStore:
        """Connect to ``url`` and bring the schema up to date."""
        database = await db.connect(url)
        store = cls(database)
        await store.migrate()
        return store

    async def migrate(self) -> list[int]:
        """Apply the schema migrations not applied yet; return the versions applied now."""
        return await db.migrate(self.database, "sync", SCHEMA_DIR)

    async def close(self) -> None:
        """Close the database."""
        await self.database.close()

    # Sources.

    async def create_source(self, source: Source) -> bool:
        """Insert ``source``; return False when its id or its request id exists already."""
        inserted = await self.database.execute(
            "INSERT INTO sources (source_id, kind, user_id, name, public, exchange_id,"
            " exchange_name, sync_settings, equity, mode, cursor_time, start_time, last_sync_at,"
            " last_error, request_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                source.source_id,
                source.kind.value,
                source.user_id,
                source.name,
                1 if source.public else 0,
                source.exchange_id,
                source.exchange_name,
                json.dumps(source.sync_settings.to_dict()),
                decimal_text(source.equity),
                source.mode.value,
                to_iso(source.cursor_time) if source.cursor_time else None,
                to_iso(source.start_time),
                to_iso(source.last_sync_at) if source.last_sync_at else None,
                source.last_error,
                source.request_id or None,
                to_iso(source.created_at),
            ),
        )
        return inserted == 1

    async def get_source(self, source_id: str) -> Source | None:
        """Return the source with its last sequence number, or None."""
        row = await self.database.fetchone(f"{SOURCE_SELECT} WHERE s.source_id = ?", (source_id,))
        return source_of(row) if row else None

    async def find_by_request(self, user_id: str, request_id: str) -> Source | None:
        """Return the user's source created with ``request_id``, or None."""
        row = await self.database.fetchone(
            f"{SOURCE_SELECT} WHERE s.user_id = ? AND s.request_id = ?",
            (user_id, request_id),
        )
        return source_of(row) if row else None

    async def list_exchange_sources(self) -> list[Source]:
        """Return every watched exchange-account source, oldest first."""
        rows = await self.database.fetchall(
            f"{SOURCE_SELECT} WHERE s.kind = ? AND s.watched = 1"
            " ORDER BY s.created_at, s.source_id",
            (SourceKind.EXCHANGE.value,),
        )
        return [source_of(row) for row in rows]

    async def unwatch(self, source_id: str) -> bool:
        """Mark a source as no longer read; return False when it was not watched."""
        changed = await self.database.execute(
            "UPDATE sources SET watched = 0 WHERE source_id = ? AND watched = 1",
            (source_id,),
        )
        return changed == 1

    async def rewatch(self, source_id: str, now: datetime) -> bool:
        """Watch an unwatched source again, starting ``now``; return False when it was watched.

        Its start time and cursor move to ``now``: what the leader traded while nobody copied
        it is never logged, as for a new source.
        """
        changed = await self.database.execute(
            "UPDATE sources SET watched = 1, start_time = ?, cursor_time = ?, down_since = NULL"
            " WHERE source_id = ? AND watched = 0",
            (to_iso(now), to_iso(now), source_id),
        )
        return changed == 1

    async def update_sync_settings(self, source_id: str, settings: SyncSettings) -> None:
        """Replace a source's sync settings."""
        await self.database.execute(
            "UPDATE sources SET sync_settings = ? WHERE source_id = ?",
            (json.dumps(settings.to_dict()), source_id),
        )

    async def record_poll_success(
        self,
        source_id: str,
        cursor_time: datetime,
        at: datetime,
        last_error: str = "",
    ) -> None:
        """Move the cursor forward (never back), stamp the sync time and set the last error.

        ``last_error`` is what still stands after the successful read (a stream that is down),
        empty when nothing does.
        """
        cursor = to_iso(cursor_time)
        await self.database.execute(
            "UPDATE sources SET cursor_time = CASE WHEN cursor_time IS NULL OR cursor_time < ?"
            " THEN ? ELSE cursor_time END, last_sync_at = ?, last_error = ? WHERE source_id = ?",
            (cursor, cursor, to_iso(at), last_error[:500], source_id),
        )

    async def record_poll_failure(self, source_id: str, error: str) -> None:
        """Record why the last read of the venue failed."""
        await self.database.execute(
            "UPDATE sources SET last_error = ? WHERE source_id = ?",
            (error[:500], source_id),
        )

    async def update_sync_state(self, source_id: str, mode: SyncMode, last_error: str) -> None:
        """Record how the source is read now and what, if anything, is wrong with it."""
        await self.database.execute(
            "UPDATE sources SET mode = ?, last_error = ? WHERE source_id = ?",
            (mode.value, last_error[:500], source_id),
        )

    async def record_down_since(self, source_id: str, down_since: datetime | None) -> None:
        """Record since when the venue cannot be read (None: it reads)."""
        await self.database.execute(
            "UPDATE sources SET down_since = ? WHERE source_id = ?",
            (to_iso(down_since) if down_since is not None else None, source_id),
        )

    async def update_equity(self, source_id: str, equity: Decimal | None) -> None:
        """Record the leader's equity as last read (None leaves it unchanged)."""
        if equity is None:
            return
        await self.database.execute(
            "UPDATE sources SET equity = ? WHERE source_id = ?",
            (decimal_text(equity), source_id),
        )

    # Leader fills.

    async def known_fills(
        self,
        source_id: str,
        keys: Iterable[tuple[str, str]],
    ) -> set[tuple[str, str]]:
        """Return which (symbol, trade id) pairs of ``keys`` are stored for the source."""
        wanted = sorted(set(keys))
        found: set[tuple[str, str]] = set()
        trade_ids = sorted({trade_id for _symbol, trade_id in wanted})
        for start in range(0, len(trade_ids), _IN_CHUNK):
            chunk = trade_ids[start : start + _IN_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            rows = await self.database.fetchall(
                f"SELECT symbol, trade_id FROM leader_fills WHERE source_id = ?"
                f" AND trade_id IN ({marks})",
                (source_id, *chunk),
            )
            found.update((row["symbol"], row["trade_id"]) for row in rows)
        return found & set(wanted)

    async def recent_fills(self, source_id: str, since: datetime) -> list[LeaderFill]:
        """Return the source's stored fills traded at or after ``since``, in log order."""
        rows = await self.database.fetchall(
            f"SELECT {FILL_COLUMNS}"
            " FROM leader_fills WHERE source_id = ? AND trade_time >= ?"
            " ORDER BY signal_sequence",
            (source_id, to_iso(since)),
        )
        return [fill_of(row) for row in rows]

    # The signal log.

    async def append(
        self,
        source_id: str,
        entries: Sequence[AppendEntry],
        log_time: datetime,
        *,
        token: int | None = None,
    ) -> list[AppendResult]:
        """Append ``entries`` to the source's log in one transaction; return where each landed.

        With ``token`` (an append by the replica holding the source's lease), the lease must
        still be current inside the transaction, or nothing is written and
        :class:`meshkit.leases.Fenced` is raised. On PostgreSQL an append that logged signals
        notifies :data:`SIGNALS_CHANNEL` with the source id at its commit.

        Each new signal takes the next sequence number (the highest plus one) inside the
        transaction that inserts it. A signal id already in the log is not appended again (its
        result holds the logged signal, ``created`` False); a fill already stored is skipped
        the same way. On PostgreSQL a transaction-scoped advisory lock serialises appends to
        one source across processes; SQLite serialises every write transaction.
        """
        results: list[AppendResult] = []
        logged_at = to_iso(log_time)
        async with self.database.transaction() as tx:
            if self.database.dialect == "postgresql":
                await tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(?))",
                    (f"sync-signals:{source_id}",),
                )
            if token is not None:
                await self.leases.check_current(tx, source_id, token)
            row = await tx.fetchone(
                "SELECT COALESCE(MAX(sequence), 0) AS last FROM signals WHERE source_id = ?",
                (source_id,),
            )
            last = int(row["last"]) if row else 0
            for entry in entries:
                draft = entry.draft
                if draft.source_id != source_id:
                    raise ValueError("every entry must belong to the source appended to")
                fill = entry.fill
                if fill is not None:
                    known = await tx.fetchone(
                        "SELECT signal_sequence FROM leader_fills"
                        " WHERE source_id = ? AND symbol = ? AND trade_id = ?",
                        (source_id, fill.symbol, fill.trade_id),
                    )
                    if known is not None:
                        results.append(
                            AppendResult(
                                await self._signal_at(tx, source_id, int(known["signal_sequence"])),
                                False,
                            )
                        )
                        continue
                if draft.kind is not SignalKind.FILL:
                    existing = await self._signal_by_id(tx, source_id, draft.signal_id)
                    if existing is not None:
                        results.append(AppendResult(existing, False))
                        continue
                    checked = await self._order_change(tx, draft)
                    if checked is None:
                        results.append(AppendResult(None, False))
                        continue
                    draft = checked
                elif fill is not None and fill.order_id:
                    opened = await self._opened_at(tx, source_id, fill.order_id)
                    draft = dataclasses.replace(
                        draft,
                        leader_order_id=fill.order_id,
                        order_mirrored=opened is not None,
                        opened_sequence=opened or 0,
                    )
                existing = await self._signal_by_id(tx, source_id, draft.signal_id)
                if existing is not None and fill is None:
                    results.append(AppendResult(existing, False))
                    continue
                if existing is not None and fill is not None:
                    # Another symbol's fill holds this trade id: name the signal by symbol too.
                    draft = named_by_symbol(draft, fill)
                    existing = await self._signal_by_id(tx, source_id, draft.signal_id)
                    if existing is not None:
                        results.append(AppendResult(existing, False))
                        continue
                last += 1
                signal = Signal.from_draft(draft, last, log_time)
                await tx.execute(
                    f"INSERT INTO signals ({SIGNAL_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                    " ?, ?, ?)",
                    (
                        signal.source_id,
                        signal.sequence,
                        signal.signal_id,
                        signal.symbol,
                        signal.side.value,
                        format_decimal(signal.quantity),
                        decimal_text(signal.price),
                        signal.order_type.value,
                        signal.time_in_force.value if signal.time_in_force else None,
                        decimal_text(signal.portfolio_fraction),
                        decimal_text(signal.leader_equity),
                        decimal_text(signal.leader_position),
                        to_iso(signal.event_time),
                        logged_at,
                        signal.exchange_name,
                        signal.kind.value,
                        signal.leader_order_id,
                        decimal_text(signal.stop_price),
                        int(signal.order_mirrored),
                        signal.opened_sequence,
                        signal.replaced_order_id,
                        signal.position_effect.value,
                        int(signal.liquidation),
                        decimal_text(signal.leader_leverage),
                    ),
                )
                await self._record_order(tx, signal)
                if fill is not None:
                    await tx.execute(
                        "INSERT INTO leader_fills (source_id, trade_id, symbol, side, qty, price,"
                        " fee, fee_currency, order_type, trade_time, received_at, signal_sequence,"
                        " order_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            source_id,
                            fill.trade_id,
                            fill.symbol,
                            fill.side.value,
                            format_decimal(fill.quantity),
                            format_decimal(fill.price),
                            decimal_text(fill.fee),
                            fill.fee_currency,
                            fill.order_type.value if fill.order_type else None,
                            to_iso(fill.trade_time),
                            logged_at,
                            signal.sequence,
                            fill.order_id,
                        ),
                    )
                results.append(AppendResult(signal, True))
            if self.database.dialect == "postgresql" and any(r.created for r in results):
                await tx.execute("SELECT pg_notify(?, ?)", (SIGNALS_CHANNEL, source_id))
        return results

    # Order mirroring: the announced leader orders, kept in the append's transaction.

    @staticmethod
    async def _announced(tx: db.Executor, source_id: str, order_id: str) -> bool:
        row = await tx.fetchone(
            "SELECT 1 AS found FROM leader_orders WHERE source_id = ? AND order_id = ?",
            (source_id, order_id),
        )
        return row is not None

    @staticmethod
    async def _opened_at(tx: db.Executor, source_id: str, order_id: str) -> int | None:
        # The sequence of the signal that opened (or last amended) an announced order.
        row = await tx.fetchone(
            "SELECT sequence FROM leader_orders WHERE source_id = ? AND order_id = ?",
            (source_id, order_id),
        )
        return int(row["sequence"]) if row is not None else None

    @staticmethod
    async def _open_order(tx: db.Executor, source_id: str, order_id: str) -> MirroredOrder | None:
        row = await tx.fetchone(
            f"SELECT {LEADER_ORDER_COLUMNS} FROM leader_orders"
            " WHERE source_id = ? AND order_id = ? AND open = 1",
            (source_id, order_id),
        )
        return mirrored_order_of(row) if row is not None else None

    @staticmethod
    async def _has_fills(tx: db.Executor, source_id: str, order_id: str) -> bool:
        row = await tx.fetchone(
            "SELECT 1 AS found FROM leader_fills WHERE source_id = ? AND order_id = ? LIMIT 1",
            (source_id, order_id),
        )
        return row is not None

    async def _order_change(self, tx: db.Executor, draft: SignalDraft) -> SignalDraft | None:
        """Return the order change as it may be logged, or None when it must not be.

        Exactly once: an order is announced only if it never was and none of its fills is
        logged (those were copied as fills); a cancel or an amend needs the order announced
        and open, and carries the sequence that opened it. A cancel-replace whose new order
        cannot be announced is logged as the cancel of the old one.
        """
        source_id, order_id = draft.source_id, draft.leader_order_id
        if not order_id:
            return None
        if draft.kind is SignalKind.ORDER_OPEN:
            if await self._announced(tx, source_id, order_id):
                return None
            if await self._has_fills(tx, source_id, order_id):
                return None
            return draft
        previous_id = draft.replaced_order_id or order_id
        previous = await self._open_order(tx, source_id, previous_id)
        if previous is None:
            return None
        draft = dataclasses.replace(draft, opened_sequence=previous.sequence)
        replaced = draft.kind is SignalKind.ORDER_AMEND and bool(draft.replaced_order_id)
        if replaced and (
            await self._announced(tx, source_id, order_id)
            or await self._has_fills(tx, source_id, order_id)
        ):
            return dataclasses.replace(
                draft,
                kind=SignalKind.ORDER_CANCEL,
                signal_id=f"order:{previous_id}:cancel",
                leader_order_id=previous_id,
                replaced_order_id="",
            )
        return draft

    @staticmethod
    async def _record_order(tx: db.Executor, signal: Signal) -> None:
        # Keep leader_orders in step with an order signal just logged.
        source_id = signal.source_id
        if signal.kind is SignalKind.FILL:
            return
        if signal.kind is SignalKind.ORDER_CANCEL:
            await tx.execute(
                "UPDATE leader_orders SET open = 0 WHERE source_id = ? AND order_id = ?",
                (source_id, signal.leader_order_id),
            )
            return
        if signal.kind is SignalKind.ORDER_AMEND and not signal.replaced_order_id:
            await tx.execute(
                "UPDATE leader_orders SET quantity = ?, price = ?, stop_price = ?, sequence = ?"
                " WHERE source_id = ? AND order_id = ?",
                (
                    format_decimal(signal.quantity),
                    decimal_text(signal.price),
                    decimal_text(signal.stop_price),
                    signal.sequence,
                    source_id,
                    signal.leader_order_id,
                ),
            )
            return
        if signal.replaced_order_id:
            await tx.execute(
                "UPDATE leader_orders SET open = 0 WHERE source_id = ? AND order_id = ?",
                (source_id, signal.replaced_order_id),
            )
        await tx.execute(
            f"INSERT INTO leader_orders (source_id, {LEADER_ORDER_COLUMNS}, open)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
            (
                source_id,
                signal.leader_order_id,
                signal.symbol,
                signal.side.value,
                signal.order_type.value,
                format_decimal(signal.quantity),
                decimal_text(signal.price),
                decimal_text(signal.stop_price),
                signal.time_in_force.value if signal.time_in_force else None,
                signal.sequence,
            ),
        )

    async def open_leader_orders(self, source_id: str) -> list[MirroredOrder]:
        """Return the source's announced leader orders not seen ending yet."""
        rows = await self.database.fetchall(
            f"SELECT {LEADER_ORDER_COLUMNS} FROM leader_orders WHERE source_id = ? AND open = 1"
            " ORDER BY sequence",
            (source_id,),
        )
        return [mirrored_order_of(row) for row in rows]

    async def close_leader_orders(self, source_id: str, order_ids: Sequence[str]) -> None:
        """Mark announced leader orders as ended without a signal (the venue shows them filled)."""
        async with self.database.transaction() as tx:
            for order_id in order_ids:
                await tx.execute(
                    "UPDATE leader_orders SET open = 0 WHERE source_id = ? AND order_id = ?",
                    (source_id, order_id),
                )

    @staticmethod
    async def _signal_by_id(tx: db.Executor, source_id: str, signal_id: str) -> Signal | None:
        row = await tx.fetchone(
            f"SELECT {SIGNAL_COLUMNS} FROM signals WHERE source_id = ? AND signal_id = ?",
            (source_id, signal_id),
        )
        return signal_of(row) if row else None

    @staticmethod
    async def _signal_at(tx: db.Executor, source_id: str, sequence: int) -> Signal | None:
        row = await tx.fetchone(
            f"SELECT {SIGNAL_COLUMNS} FROM signals WHERE source_id = ? AND sequence = ?",
            (source_id, sequence),
        )
        return signal_of(row) if row else None

    async def list_signals(
        self,
        source_id: str,
        *,
        after_sequence: int = 0,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        limit: int = 1000,
    ) -> list[Signal]:
        """Return the source's signals after ``after_sequence`` in sequence order.

        ``start_time`` (inclusive) and ``end_time`` (exclusive) bound the event time.
        """
        sql = f"SELECT {SIGNAL_COLUMNS} FROM signals WHERE source_id = ? AND sequence > ?"
        params: list[Any] = [source_id, after_sequence]
        if start_time is not None:
            sql += " AND event_time >= ?"
            params.append(to_iso(start_time))
        if end_time is not None:
            sql += " AND event_time < ?"
            params.append(to_iso(end_time))
        sql += " ORDER BY sequence LIMIT ?"
        params.append(limit)
        rows = await self.database.fetchall(sql, params)
        return [signal_of(row) for row in rows]

    async def last_sequence(self, source_id: str) -> int:
        """Return the highest sequence number in the source's log (0 when empty)."""
        row = await self.database.fetchone(
            "SELECT COALESCE(MAX(sequence), 0) AS last FROM signals WHERE source_id = ?",
            (source_id,),
        )
        return int(row["last"]) if row else 0

    # Stream acknowledgements.

    async def record_ack(self, consumer: str, source_id: str, sequence: int, at: datetime) -> None:
        """Store ``sequence`` as the consumer's ack for the source if it is higher than the last."""
        await self.database.execute(
            "INSERT INTO stream_acks (consumer, source_id, sequence, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (consumer, source_id) DO UPDATE"
            " SET sequence = excluded.sequence, updated_at = excluded.updated_at"
            " WHERE stream_acks.sequence < excluded.sequence",
            (consumer, source_id, sequence, to_iso(at)),
        )

    async def acked_sequence(self, consumer: str, source_id: str) -> int:
        """Return the highest sequence the consumer acknowledged for the source (0 if none)."""
        row = await self.database.fetchone(
            "SELECT sequence FROM stream_acks WHERE consumer = ? AND source_id = ?",
            (consumer, source_id),
        )
        return int(row["sequence"]) if row else 0
