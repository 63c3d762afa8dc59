"""One signal stream to an engine: subscriptions, replay then live delivery, acks, heartbeats.

Requests are read by a task while the stream's own generator writes responses; both meet in an
``asyncio.Queue``. Each subscription has a feeder task that first registers for live signals,
then replays the log after the subscriber's sequence, then forwards live signals, dropping any
it has already sent (so a signal appended during the replay is sent exactly once) and reading
the log again if it ever sees a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from meshkit import errors
from meshkit.faultpoints import afaultpoint
from sync_svc import metrics
from sync_svc.domain.model import Signal
from sync_svc.domain.validation import is_uuid
from sync_svc.signal_log import Listener, SignalLog

log = logging.getLogger("sync_svc.stream")

ENGINE_CONSUMER = "engine"


@dataclass(frozen=True)
class Subscribe:
    """Start (or restart) a source's feed after ``after_sequence``."""

    source_id: str
    after_sequence: int


@dataclass(frozen=True)
class Ack:
    """The consumer stored the source's signals up to ``sequence``."""

    source_id: str
    sequence: int


@dataclass(frozen=True)
class Heartbeat:
    """Nothing to send for a while: the stream is alive."""


StreamRequest = Subscribe | Ack
StreamResponse = Signal | Heartbeat


@dataclass(frozen=True)
class _Delivery:
    generation: int
    signal: Signal
    live: bool


@dataclass(frozen=True)
class _Failure:
    error: BaseException


@dataclass
class _Feed:
    source_id: str
    generation: int
    listener: Listener
    task: asyncio.Task[None] | None = None


class StreamSession:
    """The server side of one ``StreamSignals`` call."""

    def __init__(
        self,
        log: SignalLog,
        *,
        user_id: str = "",
        consumer: str = ENGINE_CONSUMER,
        heartbeat_seconds: float = 2.0,
        page_size: int = 500,
        queue_size: int = 256,
    ) -> None:
        self._log = log
        self._user_id = user_id
        self._consumer = consumer
        self._heartbeat = heartbeat_seconds
        self._page_size = page_size
        self._out: asyncio.Queue[_Delivery | _Failure] = asyncio.Queue(maxsize=queue_size)
        self._feeds: dict[str, _Feed] = {}
        self._generation = 0

    async def run(self, requests: AsyncIterator[StreamRequest]) -> AsyncIterator[StreamResponse]:
        """Yield signals and heartbeats until the caller goes away or a request is refused.

        A client that stops writing (half-closes) keeps receiving; the stream ends when the
        client cancels it or the server stops. A refused request ends the stream with the
        error.
        """
        reader = asyncio.create_task(self._read(requests))
        getter: asyncio.Future[_Delivery | _Failure] | None = None
        try:
            while True:
                if getter is None:
                    getter = asyncio.ensure_future(self._out.get())
                done, _pending = await asyncio.wait({getter}, timeout=self._heartbeat)
                if not done:
                    yield Heartbeat()
                    continue
                item = getter.result()
                getter = None
                if isinstance(item, _Failure):
                    raise item.error
                feed = self._feeds.get(item.signal.source_id)
                if feed is None or feed.generation != item.generation:
                    continue  # sent for a subscription that was replaced since
                if item.live:
                    lag = (self._log.clock.now() - item.signal.event_time).total_seconds()
                    metrics.SYNC_LATENCY.labels(item.signal.exchange_name or "strategy").observe(
                        max(lag, 0.0),
                    )
                yield item.signal
        finally:
            if getter is not None:
                getter.cancel()
            reader.cancel()
            tasks = [reader]
            for feed in self._feeds.values():
                self._log.hub.unlisten(feed.listener)
                if feed.task is not None:
                    feed.task.cancel()
                    tasks.append(feed.task)
            self._feeds.clear()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self, requests: AsyncIterator[StreamRequest]) -> None:
        try:
            async for request in requests:
                if isinstance(request, Subscribe):
                    await self._subscribe(request)
                else:
                    await self._ack(request)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            await self._out.put(_Failure(e))

    async def _subscribe(self, request: Subscribe) -> None:
        if not request.source_id:
            raise errors.invalid("subscribe.source_id", "is required")
        if not is_uuid(request.source_id):
            raise errors.invalid("subscribe.source_id", "must be a UUID")
        if request.after_sequence < 0:
            raise errors.invalid("subscribe.after_sequence", "must be 0 or more")
        source = await self._log.store.get_source(request.source_id)
        if source is None or not source.visible_to(self._user_id):
            raise errors.NotFound(
                f"source {request.source_id} not found",
                reason="SOURCE_NOT_FOUND",
                metadata={"source_id": request.source_id},
            )
        if request.after_sequence > source.last_sequence:
            # The subscriber holds signals this log never had: resuming would silently skip
            # the log's next signals, so refuse loudly instead.
            raise errors.FailedPrecondition(
                f"after_sequence {request.after_sequence} is beyond the log's last sequence"
                f" {source.last_sequence}",
                reason="SEQUENCE_AHEAD_OF_LOG",
                metadata={
                    "source_id": source.source_id,
                    "last_sequence": str(source.last_sequence),
                },
            )
        old = self._feeds.pop(request.source_id, None)
        if old is not None:
            self._log.hub.unlisten(old.listener)
            if old.task is not None:
                old.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await old.task
        self._generation += 1
        # Listen before reading the backlog, so that nothing appended meanwhile is missed.
        listener = self._log.hub.listen(request.source_id, source.last_sequence)
        feed = _Feed(request.source_id, self._generation, listener)
        feed.task = asyncio.create_task(self._feed(feed, request.after_sequence))
        self._feeds[request.source_id] = feed

    async def _ack(self, request: Ack) -> None:
        if not request.source_id:
            raise errors.invalid("ack.source_id", "is required")
        if request.sequence < 1:
            raise errors.invalid("ack.sequence", "must be 1 or more")
        await afaultpoint("sync.before_ack_recv")
        await self._log.store.record_ack(
            self._consumer,
            request.source_id,
            request.sequence,
            self._log.clock.now(),
        )

    async def _feed(self, feed: _Feed, after_sequence: int) -> None:
        try:
            position = await self._replay(feed, after_sequence)
            while True:
                signal = await feed.listener.queue.get()
                if signal.sequence <= position:
                    continue  # already sent from the backlog
                if signal.sequence > position + 1:
                    position = await self._replay(feed, position)
                    continue
                await self._out.put(_Delivery(feed.generation, signal, live=True))
                position = signal.sequence
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.error("signal feed of %s failed", feed.source_id, exc_info=e)
            await self._out.put(_Failure(e))

    async def _replay(self, feed: _Feed, position: int) -> int:
        while True:
            page = await self._log.store.list_signals(
                feed.source_id,
                after_sequence=position,
                limit=self._page_size,
            )
            for signal in page:
                await self._out.put(_Delivery(feed.generation, signal, live=False))
                position = signal.sequence
            if len(page) < self._page_size:
                return position
