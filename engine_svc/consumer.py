"""The signal consumer: one ``StreamSignals`` call to sync, kept open, resumed from the inbox.

It subscribes every source copied by a configuration not stopped (halted ones included) after the
highest sequence it has stored. Each signal is recorded (inbox row and intents, one
transaction), then acked, then its intents are queued for sending. A duplicate is dropped; a
gap makes it re-subscribe from the last stored sequence; a broken or silent stream is
reopened with backoff and every source re-subscribed from the store. A source sync refuses
(unknown, or the inbox is ahead of its log) is left out for a while, loudly, so that one bad
subscription does not stop every other source. With leases (``owns``) it takes only the
sources this replica holds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from engine_svc import metrics
from engine_svc.domain.model import Intent, Signal
from engine_svc.ports import InboxStore, SignalStream, SyncPort
from meshkit import errors, tracing
from meshkit.faultpoints import afaultpoint
from meshkit.leases import Fenced

log = logging.getLogger("engine_svc.consumer")

_REFUSALS = (errors.NotFound, errors.FailedPrecondition, errors.InvalidArgument)


def _span_attributes(signal: Signal) -> dict[str, str | int]:
    return {
        "copytrade.source_id": signal.source_id,
        "copytrade.signal.sequence": signal.sequence,
        "copytrade.signal.id": signal.signal_id,
        "copytrade.symbol": signal.symbol,
    }


class SignalConsumer:
    """Reads the signal stream and feeds the copier, exactly once per stored signal."""

    def __init__(
        self,
        store: InboxStore,
        sync: SyncPort,
        record: Callable[[Signal], Awaitable[list[Intent]]],
        after_ack: Callable[[list[Intent]], None],
        *,
        idle_timeout: float = 10.0,
        min_backoff: float = 0.1,
        max_backoff: float = 5.0,
        refresh_seconds: float = 10.0,
        gap_retry_seconds: float = 2.0,
        quarantine_seconds: float = 60.0,
        owns: Callable[[str], bool] | None = None,
    ) -> None:
        self._store = store
        self._sync = sync
        self._record = record
        self._after_ack = after_ack
        self._idle_timeout = idle_timeout
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._refresh_seconds = refresh_seconds
        self._gap_retry_seconds = gap_retry_seconds
        self._lock = asyncio.Lock()
        self._stream: SignalStream | None = None
        self._last: dict[str, int] = {}
        self._gap_asked: dict[str, tuple[int, float]] = {}
        self._quarantine_seconds = quarantine_seconds
        self._quarantined: dict[str, float] = {}
        self._progressed = False
        self._owns = owns
        self.sessions = 0
        """How many streams were opened (tests watch reconnects through it)."""

    @property
    def subscribed(self) -> dict[str, int]:
        """Return the last stored sequence of each subscribed source on the current stream."""
        return dict(self._last) if self._stream is not None else {}

    async def run(self) -> None:
        """Consume until cancelled, reopening the stream whenever it breaks."""
        delay = self._min_backoff
        while True:
            self._progressed = False
            stream: SignalStream | None = None
            try:
                stream = await self._sync.open_signal_stream()
                await self._session(stream)
                log.info("signal stream ended; reopening")
            except asyncio.CancelledError:
                raise
            except errors.ServiceError as e:
                log.warning("signal stream broke: %s (%s)", e.message, e.reason)
                self._quarantine_refused(e)
            except Exception as e:
                log.warning("signal stream broke: %s: %s", type(e).__name__, e, exc_info=e)
            finally:
                metrics.SIGNAL_STREAM_CONNECTED.set(0)
                async with self._lock:
                    self._stream = None
                    self._last = {}
                if stream is not None:
                    await stream.close()
            if self._progressed:
                delay = self._min_backoff
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self._max_backoff)

    def _quarantine_refused(self, error: errors.ServiceError) -> None:
        source_id = error.metadata.get("source_id", "")
        if source_id and isinstance(error, _REFUSALS):
            log.error(
                "sync refused source %s (%s); leaving it out for %.0fs so the others keep flowing",
                source_id,
                error.reason,
                self._quarantine_seconds,
            )
            self._quarantined[source_id] = time.monotonic() + self._quarantine_seconds

    def _usable(self, source_id: str) -> bool:
        if self._owns is not None and not self._owns(source_id):
            return False  # another replica holds its lease
        until = self._quarantined.get(source_id)
        if until is None:
            return True
        if time.monotonic() >= until:
            del self._quarantined[source_id]
            return True
        return False

    async def ensure_subscribed(self, source_id: str) -> None:
        """Subscribe ``source_id`` on the open stream if a live configuration copies it."""
        async with self._lock:
            if self._stream is None or source_id in self._last or not self._usable(source_id):
                return
            after = await self._store.subscription_of(source_id)
            if after is not None:
                await self._subscribe(self._stream, source_id, after)

    async def forget(self, source_id: str) -> None:
        """Stop taking ``source_id``'s signals (its lease went to another replica).

        Signals of it still on the stream are dropped as not subscribed; a later
        :meth:`ensure_subscribed` resumes it from the inbox.
        """
        async with self._lock:
            self._last.pop(source_id, None)
            self._gap_asked.pop(source_id, None)

    async def _subscribe(self, stream: SignalStream, source_id: str, after: int) -> None:
        self._last[source_id] = after
        await stream.subscribe(source_id, after)

    async def _refresh(self, stream: SignalStream) -> None:
        async with self._lock:
            for source_id, after in (await self._store.subscriptions()).items():
                if source_id not in self._last and self._usable(source_id):
                    await self._subscribe(stream, source_id, after)

    async def _session(self, stream: SignalStream) -> None:
        async with self._lock:
            self._stream = stream
            self._last = {}
            self._gap_asked = {}
            self.sessions += 1
        await self._refresh(stream)
        refreshed = time.monotonic()
        while True:
            message = await asyncio.wait_for(stream.receive(), timeout=self._idle_timeout)
            if message is None:
                return
            if not self._progressed:
                metrics.SIGNAL_STREAM_CONNECTED.set(1)  # sync answered: the stream is up
            self._progressed = True
            if isinstance(message, Signal):
                # A span per signal, in the trace of the leader fill it comes from.
                with tracing.continued("signal", message.traceparent, _span_attributes(message)):
                    await self._on_signal(stream, message)
            if time.monotonic() - refreshed > self._refresh_seconds:
                await self._refresh(stream)
                refreshed = time.monotonic()

    async def _on_signal(self, stream: SignalStream, signal: Signal) -> None:
        last = self._last.get(signal.source_id)
        if last is None or signal.sequence <= last:
            return  # not subscribed, or a duplicate already stored
        if signal.sequence > last + 1:
            await self._on_gap(stream, signal.source_id, last, signal.sequence)
            return
        await afaultpoint("engine.on_signal_recv")
        try:
            intents = await self._record(signal)
        except Fenced:
            log.warning("not taking %s: this replica no longer holds it", signal.source_id)
            self._last.pop(signal.source_id, None)
            return
        self._last[signal.source_id] = signal.sequence
        self._gap_asked.pop(signal.source_id, None)
        try:
            await stream.ack(signal.source_id, signal.sequence)
        finally:
            await afaultpoint("engine.after_intent_commit")
            self._after_ack(intents)  # committed: send even if the ack is lost

    async def _on_gap(self, stream: SignalStream, source_id: str, last: int, received: int) -> None:
        asked = self._gap_asked.get(source_id)
        now = time.monotonic()
        if asked is not None and asked[0] == last and now - asked[1] < self._gap_retry_seconds:
            return  # already asked to resume from there; later signals are in flight
        log.warning("gap on %s: stored %d, received %d; re-subscribing", source_id, last, received)
        self._gap_asked[source_id] = (last, now)
        await stream.subscribe(source_id, last)
