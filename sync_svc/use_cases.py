"""What the sync service does for its callers; the servicer only translates to and from these."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from meshkit import errors
from meshkit.leases import Lease, Replica
from sync_svc.domain.model import (
    AppendEntry,
    Signal,
    SignalDraft,
    Source,
    SourceKind,
    SyncMode,
    SyncSettings,
)
from sync_svc.domain.validation import (
    PublishedSignal,
    RawPublishedSignal,
    Violation,
    check_backtest,
    check_id,
    check_published_signals,
    check_request_id,
)
from sync_svc.exchange_sync import ExchangeSync
from sync_svc.ports import BrokerPort, Clock, LeaseStatusPort, SyncStorePort
from sync_svc.signal_log import SignalLog
from sync_svc.stream import StreamSession

log = logging.getLogger("sync_svc.use_cases")

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 5000
BROKER_LOOKUP_TIMEOUT = 5.0


def raise_if(violations: list[Violation]) -> None:
    """Raise INVALID_ARGUMENT naming every violated field, if there is any."""
    if violations:
        raise errors.InvalidArgument(
            [errors.FieldViolation(v.field, v.description) for v in violations],
        )


def _not_found(source_id: str, what: str = "source") -> errors.NotFound:
    return errors.NotFound(
        f"{what} {source_id} not found",
        reason="SOURCE_NOT_FOUND",
        metadata={"source_id": source_id},
    )


class SyncApp:
    """The sync service's use-cases over its store, signal log, broker and source readers."""

    def __init__(
        self,
        store: SyncStorePort,
        signal_log: SignalLog,
        broker: BrokerPort,
        exchange_sync: ExchangeSync,
        clock: Clock,
        *,
        heartbeat_seconds: float = 2.0,
        lease_status: LeaseStatusPort | None = None,
    ) -> None:
        self.lease_status = lease_status
        self.store = store
        self.log = signal_log
        self.broker = broker
        self.exchange_sync = exchange_sync
        self.clock = clock
        self.heartbeat_seconds = heartbeat_seconds

    # Strategy sources.

    async def create_backtest(
        self,
        user_id: str,
        name: str,
        public: bool,
        equity: str,
        request_id: str,
    ) -> Source:
        """Register a strategy source owned by ``user_id``; a repeated ``request_id`` returns it."""
        clean_name, value, violations = check_backtest(name, equity)
        violations += check_request_id(request_id)
        raise_if(violations)
        if request_id:
            existing = await self.store.find_by_request(user_id, request_id)
            if existing is not None:
                return existing
        now = self.clock.now()
        backtest_id = str(uuid.uuid4())
        source = Source(
            source_id=backtest_id,
            kind=SourceKind.BACKTEST,
            user_id=user_id,
            name=clean_name,
            public=public,
            exchange_id="",
            exchange_name="",
            sync_settings=SyncSettings(),
            equity=value,
            mode=SyncMode.PUBLISHED,
            start_time=now,
            created_at=now,
            request_id=request_id,
        )
        created = await self.store.create_source(source)
        stored = (
            await self.store.get_source(backtest_id)
            if created
            else await self.store.find_by_request(user_id, request_id)
        )
        if stored is None:  # pragma: no cover - the insert or the clash proves it exists
            raise errors.ServiceError("backtest vanished after creation")
        return stored

    async def publish_signals(
        self,
        user_id: str,
        backtest_id: str,
        raws: list[RawPublishedSignal],
    ) -> tuple[list[int], int, int]:
        """Append a strategy's trades; return each one's sequence, and the new and repeat counts.

        The whole request is checked before anything is written; a signal id already logged
        is not appended again and reports its first sequence number.
        """
        raise_if(check_id(backtest_id, "backtest_id"))
        source = await self.store.get_source(backtest_id)
        if source is None or source.kind is not SourceKind.BACKTEST or source.user_id != user_id:
            raise _not_found(backtest_id, "backtest")
        signals, violations = check_published_signals(raws)
        raise_if(violations)
        now = self.clock.now()
        entries = [AppendEntry(self._strategy_draft(source, signal, now)) for signal in signals]
        results = await self.log.append(backtest_id, entries, SourceKind.BACKTEST)
        sequences = [result.signal.sequence for result in results if result.signal is not None]
        accepted = sum(1 for result in results if result.created)
        return sequences, accepted, len(results) - accepted

    @staticmethod
    def _strategy_draft(source: Source, signal: PublishedSignal, now: datetime) -> SignalDraft:
        return SignalDraft(
            source_id=source.source_id,
            signal_id=signal.signal_id,
            symbol=signal.symbol,
            side=signal.side,
            quantity=signal.quantity,
            price=signal.price,
            order_type=signal.order_type,
            event_time=now,
            time_in_force=signal.time_in_force,
            portfolio_fraction=signal.portfolio_fraction,
            leader_equity=source.equity,
            stop_price=signal.stop_price,
        )

    # Exchange-account sources.

    async def watch_exchange_source(
        self,
        user_id: str,
        exchange_id: str,
        settings: SyncSettings,
    ) -> Source:
        """Start watching an exchange account, or change its sync settings; idempotent.

        The source starts now: fills made before it was created are never copied. Either call
        backfills the source at once.
        """
        raise_if(check_id(exchange_id, "exchange_id"))
        existing = await self.store.get_source(exchange_id)
        if existing is None:
            account = await self.broker.get_exchange(
                exchange_id,
                user_id=user_id,
                timeout=BROKER_LOOKUP_TIMEOUT,
            )
            now = self.clock.now()
            source = Source(
                source_id=exchange_id,
                kind=SourceKind.EXCHANGE,
                user_id=user_id,
                name="",
                public=False,
                exchange_id=exchange_id,
                exchange_name=account.exchange_name,
                sync_settings=settings,
                equity=None,
                mode=SyncMode.POLLING,
                start_time=now,
                created_at=now,
                cursor_time=now,
            )
            if await self.store.create_source(source):
                log.info("watching exchange source %s on %s", exchange_id, account.exchange_name)
            existing = await self.store.get_source(exchange_id)
            if existing is None:  # pragma: no cover - inserted or inserted concurrently
                raise errors.ServiceError("source vanished after creation")
        if existing.kind is not SourceKind.EXCHANGE or (
            user_id and existing.user_id and existing.user_id != user_id
        ):
            raise _not_found(exchange_id, "exchange source")
        if not existing.watched:
            # Watched again after a pause in copying: it starts now, like a new source.
            if await self.store.rewatch(exchange_id, self.clock.now()):
                log.info("watching exchange source %s again", exchange_id)
            existing = await self.store.get_source(exchange_id) or existing
        if existing.sync_settings != settings:
            await self.store.update_sync_settings(exchange_id, settings)
            existing = await self.store.get_source(exchange_id) or existing
        await self.exchange_sync.ensure(existing)
        return existing

    async def unwatch_exchange_source(self, user_id: str, exchange_id: str) -> Source:
        """Stop reading an exchange account (no copy of it is left); idempotent.

        Its signal log stays readable. A later watch starts it afresh.
        """
        raise_if(check_id(exchange_id, "exchange_id"))
        existing = await self.store.get_source(exchange_id)
        if (
            existing is None
            or existing.kind is not SourceKind.EXCHANGE
            or (user_id and existing.user_id and existing.user_id != user_id)
        ):
            raise _not_found(exchange_id, "exchange source")
        if await self.store.unwatch(exchange_id):
            log.info("no longer watching exchange source %s", exchange_id)
        await self.exchange_sync.drop(exchange_id)
        return await self.store.get_source(exchange_id) or existing

    # Reading.

    async def get_source(self, user_id: str, source_id: str) -> Source:
        """Return a source the caller may see (an internal caller sees every source)."""
        raise_if(check_id(source_id, "source_id"))
        source = await self.store.get_source(source_id)
        if source is None or not source.visible_to(user_id):
            raise _not_found(source_id)
        return source

    async def list_signals(
        self,
        user_id: str,
        source_id: str,
        after_sequence: int,
        start_time: datetime | None,
        end_time: datetime | None,
        page_size: int,
    ) -> list[Signal]:
        """Read a source's log in sequence order (at most 5000 signals per call)."""
        violations = check_id(source_id, "source_id")
        if after_sequence < 0:
            violations.append(Violation("after_sequence", "must be 0 or more"))
        if page_size < 0:
            violations.append(Violation("page_size", "must be 0 or more"))
        if start_time is not None and end_time is not None and end_time <= start_time:
            violations.append(Violation("end_time", "must be after start_time"))
        raise_if(violations)
        limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        await self.get_source(user_id, source_id)
        return await self.store.list_signals(
            source_id,
            after_sequence=after_sequence,
            start_time=start_time,
            end_time=end_time,
            limit=limit,
        )

    def stream(self, user_id: str) -> StreamSession:
        """Open the server side of a signal stream."""
        return StreamSession(self.log, user_id=user_id, heartbeat_seconds=self.heartbeat_seconds)

    # Replicas.

    async def list_leases(self) -> tuple[list[Lease], list[Replica]]:
        """Return every lease on a watched source and every replica (none without leases)."""
        if self.lease_status is None:
            return [], []
        return await self.lease_status.leases(), await self.lease_status.replicas()
