"""The WebSocket side of a venue class: the account's order and fill streams.

One venue subscription per ccxt watch method (a :class:`_Pump`) serves every watch of a
connection; it reconnects with backoff and reports the stream's state changes as events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from broker_svc.adapters.ccxt.parse import CcxtParsing
from broker_svc.adapters.ccxt.transport import CcxtTransport
from broker_svc.domain.model import Fill, Order, StreamEvent, StreamState, WatchChannel

log = logging.getLogger("broker_svc.ccxt")

_STREAM_WAIT_SECONDS = 60.0
"""How long a venue stream (re)connection may wait for its turn in the rate limits."""


@dataclass(eq=False)
class _Pump:
    """One venue subscription (one ccxt watch method) and the watches it feeds."""

    method: str
    listeners: set[asyncio.Queue[tuple[str, Any]]] = field(default_factory=set)
    task: asyncio.Task[None] = field(init=False)
    connected: bool = False
    reported_down: bool = False

    def publish(self, kind: str, payload: Any) -> None:
        for queue in self.listeners:
            queue.put_nowait((kind, payload))


class CcxtStreams(CcxtTransport, CcxtParsing):
    """The streams of one account at one venue.

    Venues override :meth:`_is_stream_ack`, :meth:`_stream_sequence`, :meth:`_stream_order` or
    :meth:`_stream_items` where their stream differs.
    """

    _closed: bool
    _pumps: dict[str, _Pump]
    _stream_ready: asyncio.Event
    _last_sequence: int | None

    async def watch(self, channel: WatchChannel) -> AsyncIterator[Order | Fill | StreamEvent]:
        """Stream the account's orders or fills, with the venue stream's state changes.

        One venue subscription per ccxt method serves every watch of this connection; it
        reconnects with backoff and says so (``CONNECTED`` after each subscribe the venue
        confirmed, ``DISCONNECTED`` when it drops, ``GAP_SUSPECTED`` when the venue's sequence
        jumps). The sockets close when the last watch ends.
        """
        method = self.capabilities.watch_methods[channel]
        pump = self._pumps.get(method)
        if pump is None:
            pump = _Pump(method)
            self._pumps[method] = pump
            pump.task = asyncio.create_task(self._run_pump(pump))
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        pump.listeners.add(queue)
        if pump.connected:
            queue.put_nowait(("event", self._event(StreamState.CONNECTED, "joined an open stream")))
        try:
            while True:
                kind, payload = await queue.get()
                if kind == "end":
                    return
                if kind == "event":
                    yield payload
                    continue
                for item in await self._stream_items(channel, payload):
                    yield item
        finally:
            pump.listeners.discard(queue)
            if not pump.listeners and self._pumps.get(method) is pump:
                del self._pumps[method]
                pump.task.cancel()
                if not self._pumps and not self._closed:
                    with contextlib.suppress(Exception):
                        await self._client.close_ws_clients()
                    self._stream_ready.clear()

    @staticmethod
    def _event(state: StreamState, detail: str) -> StreamEvent:
        return StreamEvent(state, detail, datetime.now(UTC))

    async def _run_pump(self, pump: _Pump) -> None:
        first, longest = self.capabilities.ws_backoff_seconds
        delay = float(first)
        method = getattr(self._client, pump.method)
        while True:
            call: asyncio.Future[Any] | None = None
            try:
                if pump.connected:
                    call = asyncio.ensure_future(method())
                else:
                    # A (re)connection: the socket's handshake counts at some venues.
                    async with self.limiter.turn(
                        self.capabilities.ws_connect_charges, _STREAM_WAIT_SECONDS
                    ):
                        call = asyncio.ensure_future(method())
                    await self._await_subscribed(call)
                    pump.publish("event", self._event(StreamState.CONNECTED, self._ready_detail()))
                    pump.connected, pump.reported_down = True, False
                    delay = float(first)
                batch = await call
                call = None
                if batch:
                    pump.publish("batch", list(batch))
            except asyncio.CancelledError:
                if call is not None:
                    call.cancel()
                raise
            except Exception as e:
                if call is not None and not call.done():
                    call.cancel()
                self._stream_ready.clear()
                log.warning(
                    "venue stream failed: %s %s %s; reconnecting in %.1f s",
                    self.venue,
                    pump.method,
                    type(e).__name__,
                    delay,
                )
                if pump.connected or not pump.reported_down:
                    pump.publish(
                        "event",
                        self._event(
                            StreamState.DISCONNECTED,
                            f"the venue stream dropped ({type(e).__name__});"
                            f" reconnecting in {delay:g} s",
                        ),
                    )
                    pump.reported_down = True
                pump.connected = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, float(longest))

    async def _await_subscribed(self, call: asyncio.Future[Any]) -> None:
        ready = asyncio.ensure_future(self._stream_ready.wait())
        try:
            await asyncio.wait(
                {call, ready},
                timeout=float(self.capabilities.stream_ack_timeout_seconds),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            ready.cancel()
        if call.done() and call.exception() is not None:
            call.result()  # raises the failure

    def _ready_detail(self) -> str:
        if self._stream_ready.is_set():
            return "subscribed; backfill anything before this through ListFills"
        return "subscribed (the venue sent no confirmation); backfill through ListFills"

    def _install_stream_hooks(self, client: Any) -> None:
        """Watch the streams' messages, closes and errors as ccxt handles them."""
        handle_message, on_close, on_error = (
            client.handle_message,
            client.on_close,
            client.on_error,
        )

        def seen_message(ws_client: Any, message: Any) -> Any:
            self._on_stream_message(message)
            return handle_message(ws_client, message)

        def seen_close(ws_client: Any, error: Any) -> Any:
            self._on_stream_down()
            return on_close(ws_client, error)

        def seen_error(ws_client: Any, error: Any) -> Any:
            self._on_stream_down()
            return on_error(ws_client, error)

        client.handle_message = seen_message
        client.on_close = seen_close
        client.on_error = seen_error

    def _on_stream_message(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        if self._is_stream_ack(message):
            self._last_sequence = None
            self._stream_ready.set()
        sequence = self._stream_sequence(message)
        if sequence is None:
            return
        last, self._last_sequence = self._last_sequence, sequence
        if last is not None and sequence > last + 1:
            event = self._event(
                StreamState.GAP_SUSPECTED,
                f"the venue's sequence jumped from {last} to {sequence};"
                " backfill through ListFills",
            )
            for pump in self._pumps.values():
                pump.publish("event", event)
        elif last is not None and sequence <= last:
            self._last_sequence = last

    def _on_stream_down(self) -> None:
        self._stream_ready.clear()
        self._last_sequence = None

    def _is_stream_ack(self, message: Mapping[str, Any]) -> bool:
        """Return whether ``message`` confirms the account subscription (venues override)."""
        return False

    def _stream_sequence(self, message: Mapping[str, Any]) -> int | None:
        """Return the venue's sequence number of a stream message, if it numbers them."""
        return None

    async def _stream_items(self, channel: WatchChannel, batch: list[Any]) -> list[Order | Fill]:
        items: list[Order | Fill] = []
        for raw in batch:
            try:
                if channel is WatchChannel.FILLS:
                    items.append(self._fill(raw))
                else:
                    items.append(self._stream_order(raw))
            except (KeyError, TypeError, ValueError) as e:
                log.warning("venue stream item skipped: %s %s %s", self.venue, channel, e)
        return items

    def _stream_order(self, raw: Mapping[str, Any]) -> Order:
        """Parse an order from the venue's stream (venues whose stream differs override)."""
        return self._order(raw)
