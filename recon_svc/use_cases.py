"""Use-cases of the reconciliation service: run a reconciliation, list past reports.

They gather the three reports (sync's signals, the engine's intents, each follower venue's
orders) through the ports, let the pure kernel judge them, and store the result in one
transaction. A venue that cannot be read turns its items into ERROR items; the report is
still stored.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from meshkit import audit, errors
from meshkit.audit import AuditEntry, AuditEvent
from meshkit.clock import SystemClock
from meshkit.codec import to_iso
from recon_svc import metrics
from recon_svc.domain.model import (
    PLACED_STATES,
    CopyConfig,
    Counts,
    Intent,
    IntentState,
    LeaderSignal,
    Report,
    VenueReport,
)
from recon_svc.domain.reconcile import reconcile
from recon_svc.ports import BrokerPort, Clock, EnginePort, ReportStore, SyncPort

SIGNAL_PAGE_SIZE = 1000
INTENT_PAGE_SIZE = 500
DEFAULT_LIST_SIZE = 50
MAX_LIST_SIZE = 500
MAX_ITEMS = 50_000
LOOK_BACK = timedelta(minutes=15)
"""How far before the window intents and venue orders are read: a leader venue's clock may run
ahead of ours, so an intent (or a follower order) may carry a time before its signal's event
time. Intents and orders of other signals are ignored, so reading more is always safe."""
MAX_ERROR_TEXT = 200

_VENUE_STATES = PLACED_STATES | {IntentState.SKIPPED, IntentState.REJECTED}


def _error_text(error: errors.ServiceError) -> str:
    text = f"{error.reason}: {error.message}"
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 3] + "..."


class Reconciler:
    """Run reconciliations and list their reports.

    Parameters
    ----------
    store
        Where reports are kept.
    engine, sync, broker
        The other services, read only.
    clock
        The current time; the system clock by default.
    timeout
        Seconds each call to another service may take.
    """

    def __init__(
        self,
        store: ReportStore,
        engine: EnginePort,
        sync: SyncPort,
        broker: BrokerPort,
        clock: Clock | None = None,
        *,
        timeout: float = 15.0,
    ) -> None:
        self.store = store
        self.engine = engine
        self.sync = sync
        self.broker = broker
        self.clock: Clock = clock or SystemClock()
        self.timeout = timeout

    async def reconcile(
        self,
        user_id: str,
        config_id: str,
        start_time: datetime,
        end_time: datetime | None,
    ) -> Report:
        """Reconcile a configuration over ``[start_time, end_time)`` and store the report.

        Parameters
        ----------
        user_id
            The calling user; another user's configuration is NOT_FOUND.
        config_id
            The configuration.
        start_time, end_time
            The window of leader event times; ``end_time`` ``None`` means now.

        Returns
        -------
        Report
            The stored report with its items.
        """
        now = self.clock.now()
        if end_time is None:
            if start_time >= now:
                raise errors.invalid("start_time", "must be before end_time (now)")
            end_time = now
        elif end_time <= start_time:
            raise errors.invalid("end_time", "must be after start_time")
        config = await self.engine.get_config(config_id, user_id=user_id, timeout=self.timeout)
        signals = await self._signals(config, start_time, end_time)
        if len(signals) * max(len(config.target_exchange_ids), 1) > MAX_ITEMS:
            raise errors.FailedPrecondition(
                f"the window holds more than {MAX_ITEMS} items; reconcile a shorter window",
                reason="WINDOW_TOO_LARGE",
            )
        intents = await self._intents(config, start_time - LOOK_BACK, user_id)
        wanted = {(s.source_id, s.sequence): s for s in signals}
        relevant = [i for i in intents if (i.source_id, i.sequence) in wanted]
        venues = await self._venues(config, relevant, wanted, start_time - LOOK_BACK, user_id)
        items = reconcile(signals, config.target_exchange_ids, relevant, venues)
        report = Report(
            reconciliation_id=str(uuid.uuid4()),
            config_id=config_id,
            user_id=user_id,
            start_time=start_time,
            end_time=end_time,
            created_at=now,
            counts=Counts.of(items),
            items=tuple(items),
        )
        counts = Counts.of(items)
        stored = await self.store.save_report(
            report,
            audit=AuditEvent(
                user_id,
                "reconciliation",
                report.reconciliation_id,
                "reconcile",
                None,
                {
                    "config_id": config_id,
                    "start_time": to_iso(start_time),
                    "end_time": to_iso(end_time),
                    "total_count": counts.total,
                    "matched_count": counts.matched,
                    "mismatched_count": counts.mismatched,
                    "missing_count": counts.missing,
                    "duplicate_count": counts.duplicate,
                    "error_count": counts.error,
                },
            ),
        )
        metrics.REPORTS.inc()
        for item in stored.items:
            metrics.RECONCILIATION_CHECKS.labels(item.outcome.value).inc()
        return stored

    async def audit_entries(
        self,
        user_id: str,
        before_seq: int,
        page_size: int,
    ) -> list[AuditEntry]:
        """Return the caller's entries of the reconciliation audit trail, newest first.

        Only entries below ``before_seq`` when it is above 0; ``page_size`` 0 means 50.
        """
        size = audit.page_size_of(before_seq, page_size)
        return await self.store.list_audit_entries(user_id, before_seq, size)

    async def list_reports(self, user_id: str, config_id: str, page_size: int) -> list[Report]:
        """Return the configuration's reports, newest first, without items.

        Parameters
        ----------
        user_id
            The calling user; another user's configuration is NOT_FOUND.
        config_id
            The configuration.
        page_size
            At most this many; 0 means 50 and more than 500 means 500.

        Returns
        -------
        list[Report]
            The reports, newest first.
        """
        await self.engine.get_config(config_id, user_id=user_id, timeout=self.timeout)
        limit = min(page_size or DEFAULT_LIST_SIZE, MAX_LIST_SIZE)
        return await self.store.list_reports(config_id, user_id, limit)

    async def _signals(
        self,
        config: CopyConfig,
        start_time: datetime,
        end_time: datetime,
    ) -> list[LeaderSignal]:
        # Signals logged before the configuration existed were never meant to be copied.
        start = max(start_time, config.create_time) if config.create_time else start_time
        if start >= end_time:
            return []
        signals: list[LeaderSignal] = []
        after = 0
        while True:
            page = await self.sync.list_signals(
                config.source_id,
                after_sequence=after,
                start_time=start,
                end_time=end_time,
                page_size=SIGNAL_PAGE_SIZE,
                timeout=self.timeout,
            )
            if not page:
                return signals
            for signal in page:
                if signal.sequence <= after or signal.source_id != config.source_id:
                    raise errors.ServiceError(
                        "the sync service returned signals out of order or of another source",
                        reason="MALFORMED_UPSTREAM_REPLY",
                    )
                after = signal.sequence
                if signal.is_fill:  # an order change is no trade: its copies are orders
                    signals.append(signal)
            if len(signals) * max(len(config.target_exchange_ids), 1) > MAX_ITEMS:
                return signals

    async def _intents(self, config: CopyConfig, since: datetime, user_id: str) -> list[Intent]:
        # The engine pages by time only: ask again from the last time seen (inclusive) and drop
        # what was seen, until a page brings nothing new.
        seen: dict[str, Intent] = {}
        cursor = since
        while True:
            page = await self.engine.list_copied_orders(
                config.config_id,
                cursor,
                page_size=INTENT_PAGE_SIZE,
                user_id=user_id,
                timeout=self.timeout,
            )
            fresh = [i for i in page if i.intent_id not in seen]
            if not fresh:
                if len(page) >= INTENT_PAGE_SIZE:
                    raise errors.ServiceError(
                        f"more than {INTENT_PAGE_SIZE} copied orders share one time;"
                        " they cannot be paged",
                        reason="UPSTREAM_PAGING_STUCK",
                    )
                return list(seen.values())
            for intent in fresh:
                if intent.create_time is None:
                    raise errors.ServiceError(
                        "the engine returned a copied order without create_time",
                        reason="MALFORMED_UPSTREAM_REPLY",
                    )
                seen[intent.intent_id] = intent
                cursor = max(cursor, intent.create_time)

    async def _venues(
        self,
        config: CopyConfig,
        intents: Sequence[Intent],
        signals: dict[tuple[str, int], LeaderSignal],
        since: datetime,
        user_id: str,
    ) -> dict[str, VenueReport]:
        symbols: dict[str, set[str]] = {}
        for intent in intents:
            if intent.state not in _VENUE_STATES or not intent.client_order_id:
                continue
            symbol = intent.symbol or signals[(intent.source_id, intent.sequence)].symbol
            if symbol:
                symbols.setdefault(intent.target_exchange_id, set()).add(symbol)
        targets = [t for t in dict.fromkeys(config.target_exchange_ids) if t in symbols]
        reports = await asyncio.gather(
            *(self._venue(t, sorted(symbols[t]), since, user_id) for t in targets),
        )
        return {report.exchange_id: report for report in reports}

    async def _venue(
        self,
        exchange_id: str,
        symbols: list[str],
        since: datetime,
        user_id: str,
    ) -> VenueReport:
        try:
            orders = await self.broker.list_orders(
                exchange_id,
                symbols,
                since,
                user_id=user_id,
                timeout=self.timeout,
            )
        except errors.ServiceError as e:
            return VenueReport(exchange_id, error=_error_text(e))
        return VenueReport(exchange_id, orders=tuple(orders))
