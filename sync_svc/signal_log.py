"""The signal log as the rest of the service sees it: append, then tell the open streams.

A signal is committed to the store before any stream hears of it. Appends to one source are
serialised by an asyncio lock held across the commit and the notification, so listeners see
each source's signals in log order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

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

    def listen(self, source_id: str) -> Listener:
        """Start receiving the source's new signals."""
        listener = Listener(source_id)
        self._listeners.setdefault(source_id, set()).add(listener)
        return listener

    def unlisten(self, listener: Listener) -> None:
        """Stop a listener (idempotent)."""
        listeners = self._listeners.get(listener.source_id)
        if listeners is None:
            return
        listeners.discard(listener)
        if not listeners:
            del self._listeners[listener.source_id]

    def listener_count(self, source_id: str) -> int:
        """Return how many listeners the source has."""
        return len(self._listeners.get(source_id, ()))

    def publish(self, signal: Signal) -> None:
        """Hand a committed signal to every listener of its source."""
        for listener in tuple(self._listeners.get(signal.source_id, ())):
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
    ) -> list[AppendResult]:
        """Append ``entries`` in one transaction, then notify listeners of the new signals."""
        if not entries:
            return []
        async with self._lock(source_id):
            results = await self.store.append(source_id, entries, self.clock.now())
            await afaultpoint("sync.after_outbox")
            for result in results:
                if result.created and result.signal is not None:
                    self.hub.publish(result.signal)
                    metrics.SIGNALS_TOTAL.labels(kind.value).inc()
        return results
