"""One venue stream per account and channel, fanned out to every watcher of it.

The first watcher of an account's fills (or orders) opens the venue stream; later watchers join
it and get a ``CONNECTED`` event at once when it is already live, so each of them backfills; the
stream closes when the last watcher leaves. A watcher that falls behind loses what it did not
read and gets a ``GAP_SUSPECTED`` event instead, so it backfills rather than stalls the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from broker_svc.domain.model import Fill, Order, StreamEvent, StreamState

log = logging.getLogger("broker_svc.streams")

Item = Order | Fill | StreamEvent
DEFAULT_QUEUE_SIZE = 1000
_END = object()


@dataclass(eq=False)
class Subscription:
    """One watcher's view of a shared venue stream; iterate it, then close it."""

    symbols: frozenset[str]
    queue_size: int = DEFAULT_QUEUE_SIZE
    _queue: asyncio.Queue[Any] = field(init=False)
    _detach: Callable[[Subscription], None] | None = None
    closed: bool = False

    def __post_init__(self) -> None:
        self._queue = asyncio.Queue()

    def offer(self, item: Any) -> None:
        """Queue ``item`` for this watcher, or replace its backlog by a gap when it lags."""
        if (
            item is not _END
            and not isinstance(item, BaseException | StreamEvent)
            and self.symbols
            and item.symbol not in self.symbols
        ):
            return
        if self._queue.qsize() >= self.queue_size and item is not _END:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(
                StreamEvent(
                    StreamState.GAP_SUSPECTED,
                    f"this watch fell {self.queue_size} messages behind and lost them;"
                    " backfill through ListFills",
                    datetime.now(UTC),
                )
            )
        self._queue.put_nowait(item)

    def __aiter__(self) -> AsyncIterator[Item]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Item]:
        while not self.closed:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Leave the stream (the venue stream closes when nobody is left)."""
        if not self.closed:
            self.closed = True
            if self._detach is not None:
                self._detach(self)


@dataclass(eq=False)
class _Feed:
    subscribers: set[Subscription] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    connected: bool = False


class WatchHub:
    """The venue streams of the broker, one per (account, channel), shared by their watchers."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._feeds: dict[Hashable, _Feed] = {}

    @property
    def open_streams(self) -> int:
        """Return how many venue streams are open."""
        return len(self._feeds)

    def subscribe(
        self,
        key: Hashable,
        open_stream: Callable[[], AsyncIterator[Item]],
        symbols: Sequence[str] = (),
    ) -> Subscription:
        """Join the stream named ``key``, opening it with ``open_stream`` if nobody watches it."""
        subscription = Subscription(frozenset(symbols), self.queue_size)
        feed = self._feeds.get(key)
        if feed is None:
            feed = _Feed()
            self._feeds[key] = feed
            feed.task = asyncio.create_task(self._pump(key, feed, open_stream))
        elif feed.connected:
            subscription.offer(
                StreamEvent(
                    StreamState.CONNECTED,
                    "joined an open stream; backfill through ListFills",
                    datetime.now(UTC),
                )
            )
        feed.subscribers.add(subscription)
        subscription._detach = lambda s: self._leave(key, feed, s)
        return subscription

    @contextlib.asynccontextmanager
    async def watch(
        self,
        key: Hashable,
        open_stream: Callable[[], AsyncIterator[Item]],
        symbols: Sequence[str] = (),
    ) -> AsyncIterator[Subscription]:
        """Join the stream named ``key`` for the duration of the block."""
        subscription = self.subscribe(key, open_stream, symbols)
        try:
            yield subscription
        finally:
            subscription.close()

    def _leave(self, key: Hashable, feed: _Feed, subscription: Subscription) -> None:
        feed.subscribers.discard(subscription)
        if not feed.subscribers and self._feeds.get(key) is feed:
            del self._feeds[key]
            if feed.task is not None:
                feed.task.cancel()

    async def _pump(
        self,
        key: Hashable,
        feed: _Feed,
        open_stream: Callable[[], AsyncIterator[Item]],
    ) -> None:
        stream = open_stream()
        try:
            async for item in stream:
                if isinstance(item, StreamEvent):
                    if item.state is StreamState.CONNECTED:
                        feed.connected = True
                    elif item.state is StreamState.DISCONNECTED:
                        feed.connected = False
                for subscription in list(feed.subscribers):
                    subscription.offer(item)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("venue stream %s ended: %s", key, type(e).__name__)
            for subscription in list(feed.subscribers):
                subscription.offer(e)
        finally:
            with contextlib.suppress(Exception):
                # The port types a watch as an AsyncIterator; the venues' are async generators.
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()
            if self._feeds.get(key) is feed:
                del self._feeds[key]
            for subscription in list(feed.subscribers):
                subscription.offer(_END)

    async def close(self) -> None:
        """End every stream."""
        feeds, self._feeds = self._feeds, {}
        for feed in feeds.values():
            if feed.task is not None:
                feed.task.cancel()
        for feed in feeds.values():
            if feed.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feed.task
