"""The USDⓈ-M user data stream: a WebSocket per listen key, pushing the account's events.

ccxt.pro 4.5.90 (``binanceusdm``) gets a key from ``POST /fapi/v1/listenKey`` and opens
``<urls.api.ws.linear minus /ws>/private/ws?listenKey=<key>``; the older ``/ws/<key>`` path is
served too. Events are plain JSON objects (no wrapper): ``ORDER_TRADE_UPDATE`` for every
regular order change, ``ALGO_UPDATE`` for conditional orders and ``ACCOUNT_UPDATE`` after every
wallet or position change (reason ``ORDER``, ``FUNDING_FEE``, ``DEPOSIT``...). An unknown or
expired key is answered with close code 1008. The venue's stream faults (drop a share of
events, close every socket) apply as for spot.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, web

from exchange_sim.binance.futures import codec
from exchange_sim.binance.futures.engine import (
    AccountEvent,
    AlgoEvent,
    FuturesEngine,
    FuturesEvent,
    OrderEvent,
)
from exchange_sim.binance.futures.rest import FuturesRest
from exchange_sim.core.streams import StreamFaults
from exchange_sim.sockets import close_sockets, serve_session


@dataclass(eq=False)
class _Connection:
    ws: web.WebSocketResponse
    api_key: str
    outbox: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)


class FuturesUserStream:
    """Serves the listen-key sockets of one venue."""

    def __init__(self, engine: FuturesEngine, rest: FuturesRest, faults: StreamFaults) -> None:
        self.rest = rest
        self.faults = faults
        self._connections: set[_Connection] = set()
        engine.subscribe(self._on_event)
        faults.register_closer(self._close_for_fault)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Run one socket (``?listenKey=`` or ``/ws/{listen_key}``) until either side closes."""
        key = request.query.get("listenKey") or request.match_info.get("listen_key", "")
        ws = web.WebSocketResponse(autoping=True)
        api_key = self.rest.owner_of(key)
        if api_key is None:
            await ws.prepare(request)
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"invalid listenKey")
            return ws
        # subscribed before the handshake completes: no event is lost to a client that acts
        # the moment its socket opens
        conn = _Connection(ws, api_key)
        self._connections.add(conn)
        try:
            await ws.prepare(request)
        except Exception:
            self._connections.discard(conn)
            raise
        await serve_session(
            ws,
            conn.outbox,
            lambda message: ws.send_str(json.dumps(message)),
            on_end=lambda: self._connections.discard(conn),
        )
        return ws

    async def close_all(self, _: web.Application | None = None) -> None:
        """Close every socket (server shutdown)."""
        await self._close_for_fault("server shutdown")

    async def _close_for_fault(self, reason: str) -> int:
        return await close_sockets((conn.ws for conn in self._connections), reason)

    def _on_event(self, event: FuturesEvent) -> None:
        if isinstance(event, OrderEvent):
            key, payload = event.order.account_key, codec.order_trade_update(event)
        elif isinstance(event, AlgoEvent):
            key, payload = event.algo.account_key, codec.algo_update(event.algo, event.time_ms)
        elif isinstance(event, AccountEvent):
            key, payload = event.account_key, codec.account_update(event)
        else:
            return
        if not any(c.api_key == key for c in self._connections) or self.faults.drop_event():
            return
        for conn in self._connections:
            if conn.api_key == key:
                conn.outbox.put_nowait(payload)
