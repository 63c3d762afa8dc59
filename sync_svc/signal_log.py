"""The signal log as the rest of the service sees it: append, then tell the open streams.

A signal is committed to the store before any stream hears of it. Appends to one source are
serialised by an asyncio lock held across the commit and the notification, so listeners see
each source's signals in log order.

Several replicas may append to one log (a strategy publishes through any of them; a leader is
read by the replica holding its lease), and an engine's stream may be served by any replica.
Signals another replica appended reach this replica's listeners through :meth:`SignalLog.catch_up`:
it reads the log after the highest sequence the hub has published for the source and publishes
what it finds (a stream drops what it already sent and re-reads the log on a gap).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from meshkit import tracing
from meshkit.faultpoints import afaultpoint
from sync_svc import metrics
from sync_svc.domain.model import AppendEntry, AppendResult, Signal, SourceKind
from sync_svc.ports import Clock, SyncStorePort


class Listener:
    """The live signals of one source for one stream subscription, in log order."""

    def __init__(self, source_id: str) -> None:
        self.source_id = source_id
        self.queue: asyncio.Queue[Signal] = asyncio.Queue()


class SignalHub:
    """Fan-out of newly committed signals to the listeners of their source."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = {}
        self._published: dict[str, int] = {}

    def listen(self, source_id: str, after_sequence: int = 0) -> Listener:
        """Start receiving the source's new signals.

        ``after_sequence`` is the log's last sequence as read before this call: every later
        signal reaches the listener, whichever replica appends it.
        """
        listener = Listener(source_id)
        self._listeners.setdefault(source_id, set()).add(listener)
        self._published.setdefault(source_id, after_sequence)
        return listener

    def unlisten(self, listener: Listener) -> None:
        """Stop a listener (idempotent)."""
        listeners = self._listeners.get(listener.source_id)
        if listeners is None:
            return
        listeners.discard(listener)
        if not listeners:
            del self._listeners[listener.source_id]
            self._published.pop(listener.source_id, None)

    def listener_count(self, source_id: str) -> int:
        """Return how many listeners the source has."""
        return len(self._listeners.get(source_id, ()))

    def sources(self) -> list[str]:
        """Return the sources that have listeners."""
        return sorted(self._listeners)

    def published_up_to(self, source_id: str) -> int | None:
        """Return the highest sequence handed to the source's listeners (None: no listener)."""
        return self._published.get(source_id)

    def publish(self, signal: Signal) -> None:
        """Hand a committed signal to every listener of its source."""
        listeners = tuple(self._listeners.get(signal.source_id, ()))
        if not listeners:
            return
        if signal.sequence > self._published.get(signal.source_id, 0):
            self._published[signal.source_id] = signal.sequence
        for listener in listeners:
            listener.queue.put_nowait(signal)


class SignalLog:
    """Appends to the per-source logs and notifies streams after each commit."""

    def __init__(self, store: SyncStorePort, clock: Clock, hub: SignalHub | None = None) -> None:
        self.store = store
        self.clock = clock
        self.hub = hub or SignalHub()
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, source_id: str) -> asyncio.Lock:
        lock = self._locks.get(source_id)
        if lock is None:
            lock = self._locks[source_id] = asyncio.Lock()
        return lock

    async def append(
        self,
        source_id: str,
        entries: Sequence[AppendEntry],
        kind: SourceKind,
        *,
        token: int | None = None,
    ) -> list[AppendResult]:
        """Append ``entries`` in one transaction, then notify listeners of the new signals.

        ``token``: the lease the append is made under (a leader's reader); the store refuses
        it with :class:`meshkit.leases.Fenced` once the lease has moved on.
        """
        if not entries:
            return []
        context = tracing.traceparent()
        if context:  # a published signal continues the trace of the call that published it
            entries = [
                e
                if e.draft.traceparent
                else replace(e, draft=replace(e.draft, traceparent=context))
                for e in entries
            ]
        async with self._lock(source_id):
            results = await self.store.append(source_id, entries, self.clock.now(), token=token)
            await afaultpoint("sync.after_outbox")
            for result in results:
                if result.created and result.signal is not None:
                    self.hub.publish(result.signal)
                    metrics.SIGNALS_TOTAL.labels(kind.value).inc()
        return results

    async def catch_up(self, source_id: str, page_size: int = 500) -> int:
        """Publish the source's logged signals its listeners have not been handed; return how many.

        Nothing is read when the source has no listener here.
        """
        published = 0
        async with self._lock(source_id):
            position = self.hub.published_up_to(source_id)
            while position is not None:
                page = await self.store.list_signals(
                    source_id,
                    after_sequence=position,
                    limit=page_size,
                )
                for signal in page:
                    self.hub.publish(signal)
                    position = signal.sequence
                    published += 1
                if len(page) < page_size:
                    break
        return published
