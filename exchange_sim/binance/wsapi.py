"""Binance WebSocket API (``/ws-api/v3``): the user data stream ccxt.pro 4.5.90 uses for spot.

ccxt sends ``userDataStream.subscribe.signature`` (docs/exchange-protocols.md §2.5); the reply
carries a ``subscriptionId`` and the account's events follow on the same socket, wrapped as
``{"subscriptionId": N, "event": {...}}``: an ``executionReport`` for every order change (NEW on
acceptance, TRADE per fill, CANCELED, EXPIRED) and an ``outboundAccountPosition`` after each
balance change. ``ping``, ``time`` and ``userDataStream.unsubscribe`` are answered too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from exchange_sim.binance import codec
from exchange_sim.binance.auth import authenticate_ws
from exchange_sim.binance.errors import BinanceError, bad_request
from exchange_sim.core.engine import BalanceUpdate, Event, OrderUpdate
from exchange_sim.core.state import VenueState
from exchange_sim.sockets import close_sockets, serve_session

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Connection:
    """One client socket: its outgoing queue (replies and events, in order) and subscriptions."""

    ws: web.WebSocketResponse
    outbox: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    subscriptions: dict[int, str] = field(default_factory=dict)  # subscriptionId -> api key


class BinanceWsApi:
    """Serves ``/ws-api/v3`` for one venue and fans engine events out to subscribers."""

    def __init__(self, state: VenueState) -> None:
        self.state = state
        self._connections: set[_Connection] = set()
        self._subscription_ids = itertools.count(0)
        self._event_ids = itertools.count(1)
        state.engine.subscribe(self._on_event)
        state.streams.register_closer(self._close_for_fault)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Run one WebSocket session until the client or the server closes it."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Connection(ws)
        self._connections.add(conn)
        await serve_session(
            ws,
            conn.outbox,
            lambda message: ws.send_str(json.dumps(message)),
            on_text=lambda text: self._dispatch(conn, text),
            on_end=lambda: self._connections.discard(conn),
        )
        return ws

    async def close_all(self, _: web.Application | None = None) -> None:
        """Close every socket (on server shutdown)."""
        await self._close_for_fault("server shutdown")

    async def _close_for_fault(self, reason: str) -> int:
        return await close_sockets((conn.ws for conn in self._connections), reason)

    # ------------------------------------------------------------------ requests

    def _dispatch(self, conn: _Connection, text: str) -> None:
        try:
            request = json.loads(text)
            if not isinstance(request, dict):
                raise ValueError
        except ValueError:
            conn.outbox.put_nowait(_error(None, bad_request(-1135, "Invalid JSON Request")))
            return
        request_id = request.get("id")
        params = request.get("params") or {}
        try:
            if not isinstance(params, dict):
                raise bad_request(-1135, "Invalid JSON Request")
            result = self._call(conn, str(request.get("method")), params)
        except BinanceError as exc:
            conn.outbox.put_nowait(_error(request_id, exc))
            return
        conn.outbox.put_nowait(
            {"id": request_id, "status": 200, "result": result, "rateLimits": []}
        )

    def _call(self, conn: _Connection, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "userDataStream.subscribe.signature":
            account = authenticate_ws(self.state.engine.accounts, params, self.state.clock.now_ms())
            subscription_id = next(self._subscription_ids)
            conn.subscriptions[subscription_id] = account.api_key
            return {"subscriptionId": subscription_id}
        if method == "userDataStream.unsubscribe":
            which = params.get("subscriptionId")
            if which is None:
                conn.subscriptions.clear()
            elif conn.subscriptions.pop(which, None) is None:
                raise bad_request(-2035, "User Data Stream subscription not active.")
            return {}
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": self.state.clock.now_ms()}
        raise bad_request(-1020, "This operation is not supported.")

    # ------------------------------------------------------------------ events

    def _on_event(self, event: Event) -> None:
        """Engine listener (synchronous): queue the event for every subscriber of its account."""
        if isinstance(event, OrderUpdate):
            if self.state.streams.drop_event():
                return
            key = event.order.account_key
            payload = codec.execution_report(self.state.engine, event, next(self._event_ids))
        elif isinstance(event, BalanceUpdate):
            key = event.account_key
            payload = codec.account_position(event)
        else:
            return
        for conn in self._connections:
            for subscription_id, api_key in conn.subscriptions.items():
                if api_key == key:
                    conn.outbox.put_nowait({"subscriptionId": subscription_id, "event": payload})


def _error(request_id: object, exc: BinanceError) -> dict[str, Any]:
    return {"id": request_id, "status": exc.http_status, "error": exc.body()}
