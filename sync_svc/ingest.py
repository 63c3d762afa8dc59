"""The one path by which a leader fill enters the log, whether the stream or a backfill found it.

Per source, an asyncio lock is held from the check of which fills are new to the end of their
append, so a fill the stream delivers while a backfill of the same window runs is logged once
(the store's append dedupes by venue trade id inside its transaction as well). Each fill's signal
carries the leader's equity and position from the cached portfolio snapshot adjusted by the
fills logged since it was read: no broker round trip stands between a fill and its signal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from meshkit import tracing
from meshkit.faultpoints import afaultpoint
from sync_svc import metrics
from sync_svc.domain.ledger import BalanceChange, LeaderBook, LeaderState, Snapshot
from sync_svc.domain.model import (
    AppendEntry,
    LeaderFill,
    Signal,
    SignalDraft,
    Source,
    SourceKind,
)
from sync_svc.domain.orders import OrderChange
from sync_svc.domain.positions import copy_order_type, is_derivative, position_effect
from sync_svc.ports import SyncStorePort
from sync_svc.signal_log import SignalLog

log = logging.getLogger("sync_svc.ingest")


class FillIngestor:
    """Logs leader fills as signals, once each, with the leader's equity and position."""

    def __init__(self, store: SyncStorePort, signal_log: SignalLog) -> None:
        self._store = store
        self._log = signal_log
        self._locks: dict[str, asyncio.Lock] = {}
        self._books: dict[str, LeaderBook] = {}

    def _lock(self, source_id: str) -> asyncio.Lock:
        lock = self._locks.get(source_id)
        if lock is None:
            lock = self._locks[source_id] = asyncio.Lock()
        return lock

    async def prime(self, source: Source, since: datetime) -> None:
        """Load the source's recent fills and last equity, once, before it is read again."""
        async with self._lock(source.source_id):
            if source.source_id in self._books:
                return
            fills = await self._store.recent_fills(source.source_id, since)
            self._books[source.source_id] = LeaderBook(fallback_equity=source.equity, fills=fills)

    def _mark_complete(self, source_id: str, until: datetime | None) -> None:
        book = self._books.get(source_id)
        if book is not None:
            book.mark_complete(until)

    async def placeable(self, source_id: str, fill: LeaderFill) -> bool:
        """Return whether a streamed fill's position can be told now (see
        :meth:`LeaderBook.placeable`); if not, a backfill must log it with the fills around it."""
        async with self._lock(source_id):
            book = self._books.get(source_id)
            return book is None or book.placeable(fill)

    def forget(self, source_id: str) -> None:
        """Drop what is cached of the source (another replica may log its fills meanwhile)."""
        self._books.pop(source_id, None)

    def has_snapshot(self, source_id: str) -> bool:
        """Return whether the source's portfolio has been read since the service started."""
        book = self._books.get(source_id)
        return book is not None and book.snapshot is not None

    def latest_snapshot(self, source_id: str) -> Snapshot | None:
        """Return the source's newest portfolio read, if any."""
        book = self._books.get(source_id)
        return book.snapshot if book is not None else None

    async def rebase(self, source_id: str, snapshot: Snapshot) -> list[BalanceChange]:
        """Adopt a new portfolio read; return the balance changes no logged fill explains."""
        async with self._lock(source_id):
            book = self._books.setdefault(source_id, LeaderBook())
            return book.rebase(snapshot)

    async def judge(
        self,
        source_id: str,
        base: Snapshot,
        target: Snapshot,
    ) -> tuple[list[BalanceChange], int]:
        """Return the balance changes between two reads that the fills logged by now leave
        open, and how many logged fills traded between them."""
        async with self._lock(source_id):
            book = self._books.get(source_id)
            return book.judge(base, target) if book is not None else ([], 0)

    async def ingest(
        self,
        source: Source,
        fills: Sequence[LeaderFill],
        path: str,
        *,
        token: int | None = None,
        complete_until: datetime | None = None,
    ) -> list[LeaderFill]:
        """Log the fills not logged yet (oldest first); return those that were new.

        Fills traded before the source started are never logged. ``path`` says who found them
        ("stream" or "backfill"), for the metrics. ``token`` is the lease the reader holds the
        source under: the append raises :class:`meshkit.leases.Fenced` once it has moved on.
        ``complete_until`` (a backfill): every fill traded at or before it is in ``fills`` or
        logged already, which lets a fill older than every portfolio read be placed by walking
        back from the read (see :meth:`LeaderBook.placeable`); it is remembered once logged.
        """
        seen: set[tuple[str, str]] = set()
        relevant: list[LeaderFill] = []
        for fill in fills:
            if fill.trade_time >= source.start_time and fill.key not in seen:
                seen.add(fill.key)
                relevant.append(fill)
        source_id = source.source_id
        if not relevant:
            if complete_until is not None:
                async with self._lock(source_id):
                    self._mark_complete(source_id, complete_until)
            return []
        relevant.sort(key=lambda fill: fill.trade_time)
        async with self._lock(source_id):
            known = await self._store.known_fills(source_id, (fill.key for fill in relevant))
            new = [fill for fill in relevant if fill.key not in known]
            if not new:
                self._mark_complete(source_id, complete_until)
                return []
            await afaultpoint("sync.after_fill_seen")
            book = self._books.setdefault(source_id, LeaderBook(fallback_equity=source.equity))
            states = book.states(new, complete_until)
            # One trace per leader fill: its signal carries the span's context to the engine.
            with tracing.root_spans(
                "leader fill", [_span_attributes(source, f) for f in new]
            ) as spans:
                entries = [
                    AppendEntry(_draft(source, fill, state, tracing.traceparent_of(span)), fill)
                    for fill, state, span in zip(new, states, spans, strict=True)
                ]
                results = await self._log.append(
                    source_id,
                    entries,
                    SourceKind.EXCHANGE,
                    token=token,
                )
                for span, result in zip(spans, results, strict=True):
                    span.set_attribute("copytrade.signal.logged", result.created)
                    if result.signal is not None:
                        span.set_attribute("copytrade.signal.sequence", result.signal.sequence)
            logged = [fill for fill, result in zip(new, results, strict=True) if result.created]
            book.remember(logged)
            book.mark_complete(complete_until)
        if logged:
            metrics.LEADER_FILLS_TOTAL.labels(source.exchange_name or "unknown", path).inc(
                len(logged),
            )
        return logged

    async def log_order_changes(
        self,
        source: Source,
        changes: Sequence[OrderChange],
        now: datetime,
        *,
        token: int | None = None,
    ) -> list[Signal]:
        """Log the leader's order changes (order mirroring); return the signals logged.

        Under the source's lock, as fills are: the store refuses an order whose fills are
        logged and a second announcement of one order, in the append's transaction. Each
        signal carries the leader's equity and position now, as a fill's would.
        """
        if not changes:
            return []
        source_id = source.source_id
        async with self._lock(source_id):
            book = self._books.setdefault(source_id, LeaderBook(fallback_equity=source.equity))
            probes = [
                LeaderFill(
                    "", c.order.symbol, c.order.side, Decimal(0), Decimal(0), None, "", None, now
                )
                for c in changes
            ]
            # The leader's position now: no fill traded after a probe is missing from a read.
            latest = book.snapshot
            states = book.states(probes, latest.read_time if latest is not None else None)
            entries = [
                AppendEntry(_order_draft(source, change, state, now))
                for change, state in zip(changes, states, strict=True)
            ]
            results = await self._log.append(source_id, entries, SourceKind.EXCHANGE, token=token)
        logged = [r.signal for r in results if r.created and r.signal is not None]
        for signal in logged:
            log.info(
                "leader order %s of %s: %s logged at %d",
                signal.leader_order_id,
                source_id,
                signal.kind.value,
                signal.sequence,
            )
        return logged


def _order_draft(
    source: Source, change: OrderChange, state: LeaderState, now: datetime
) -> SignalDraft:
    order = change.order
    return SignalDraft(
        source_id=source.source_id,
        signal_id=change.signal_id,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        price=order.price,
        order_type=order.type,
        event_time=now,
        time_in_force=order.time_in_force,
        leader_equity=state.equity,
        leader_position=state.position,
        exchange_name=source.exchange_name,
        kind=change.kind,
        leader_order_id=order.order_id,
        stop_price=order.stop_price,
        opened_sequence=change.opened_sequence,
        replaced_order_id=change.replaced_order_id,
    )


def _span_attributes(source: Source, fill: LeaderFill) -> dict[str, str]:
    return {
        "copytrade.source_id": source.source_id,
        "copytrade.exchange": source.exchange_name or "unknown",
        "copytrade.symbol": fill.symbol,
        "copytrade.trade_id": fill.trade_id,
    }


def _draft(
    source: Source, fill: LeaderFill, state: LeaderState, traceparent: str = ""
) -> SignalDraft:
    return SignalDraft(
        source_id=source.source_id,
        signal_id=fill.trade_id,
        symbol=fill.symbol,
        side=fill.side,
        quantity=fill.quantity,
        price=fill.price,
        order_type=copy_order_type(fill.order_type),
        event_time=fill.trade_time,
        leader_equity=state.equity,
        leader_position=state.position,
        exchange_name=source.exchange_name,
        traceparent=traceparent,
        **_derivative_fields(fill, state),
    )


def _derivative_fields(fill: LeaderFill, state: LeaderState) -> dict[str, Any]:
    if not is_derivative(fill.symbol):
        return {}
    return {
        "position_effect": position_effect(state.position, fill.side, fill.quantity),
        "liquidation": fill.liquidation,
        "leader_leverage": state.leverage,
    }
