"""What the emulators' WebSocket servers share: one session's read loop and ordered writer.

A session reads the client's messages while a writer task sends what the venue queued for the
socket, in order; it ends when the client closes or the socket fails, and then the writer is
stopped (a ``None`` in the queue) and awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

T = TypeVar("T")


async def serve_session(
    ws: web.WebSocketResponse,
    outbox: asyncio.Queue[T | None],
    send: Callable[[T], Awaitable[None]],
    *,
    on_text: Callable[[str], None] | None = None,
    on_end: Callable[[], None] = lambda: None,
) -> None:
    """Send ``outbox`` on the prepared ``ws`` in order while reading it, until either side ends.

    ``on_text`` gets each text message (none: they are ignored); ``on_end`` runs once reading
    stops, before the writer is stopped.
    """
    writer = asyncio.create_task(_write(ws, outbox, send))
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                if on_text is not None:
                    on_text(msg.data)
            elif msg.type is WSMsgType.ERROR:
                break
    finally:
        on_end()
        outbox.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await writer


async def _write(
    ws: web.WebSocketResponse,
    outbox: asyncio.Queue[T | None],
    send: Callable[[T], Awaitable[None]],
) -> None:
    while (message := await outbox.get()) is not None:
        if ws.closed:
            return
        try:
            await send(message)
        except ConnectionError:
            return


async def close_sockets(sockets: Iterable[web.WebSocketResponse], reason: str) -> int:
    """Close every socket of ``sockets`` as going away with ``reason``; return how many."""
    closing = list(sockets)
    for ws in closing:
        await ws.close(code=WSCloseCode.GOING_AWAY, message=reason.encode()[:120])
    return len(closing)
