"""Kraken WebSocket v2 (``/ws-auth/v2``): the private ``executions`` channel ccxt.pro 4.5.90 uses.

Flow (docs/exchange-protocols.md §4.5): the client gets a token from ``GetWebSocketsToken``,
connects, and sends ``{"method": "subscribe", "params": {"channel": "executions", "token": ...,
"snap_orders": true, "snap_trades": true}, "req_id": 1}``. The server greets every connection
with a ``status`` message, acknowledges the subscription, then sends the snapshot and updates:

* Snapshot: open orders (``snap_orders``, default true) and the last 50 fills (``snap_trades``,
  default false), as two separate ``type: snapshot`` messages, orders first. [U] Kraken may send
  one mixed message; ccxt routes a whole message by its first entry's ``exec_type`` (``trade`` to
  ``watch_my_trades``, anything else to ``watch_orders``), so a mixed one would be misrouted.
* Updates, one entry per message: ``pending_new`` (left out when subscribed with
  ``order_status: false``) and ``new`` on acceptance; ``trade`` per fill, whose ``order_status``
  stays ``partially_filled`` even on the completing fill (Kraken documents that it may); then a
  separate ``filled``; ``canceled`` (user cancels, and IOC / market remainders the book could not
  fill, with a ``reason``).
* ``{"method": "ping"}`` is answered with ``pong``; ``unsubscribe`` ends the subscription. Numbers
  are JSON numbers written exactly; timestamps RFC 3339. Each message carries a ``sequence``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from exchange_sim.core.engine import Event, OrderUpdate
from exchange_sim.core.orders import ExecutionType, Order, OrderStatus
from exchange_sim.kraken import codec
from exchange_sim.kraken.markets import KrakenPair
from exchange_sim.kraken.state import KrakenState
from exchange_sim.sockets import close_sockets, serve_session

log = logging.getLogger(__name__)

SNAPSHOT_TRADES = 50
API_VERSION = "v2"
SERVER_VERSION = "2.0.10"


@dataclass
class _Subscription:
    api_key: str
    order_status: bool
    sequence: itertools.count = field(default_factory=lambda: itertools.count(1))


@dataclass(eq=False)
class _Connection:
    """One client socket: its outgoing queue and its ``executions`` subscription."""

    ws: web.WebSocketResponse
    outbox: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    subscription: _Subscription | None = None


class KrakenWs:
    """Serves ``/ws-auth/v2`` for one venue and fans engine events out to subscribers."""

    def __init__(self, state: KrakenState) -> None:
        self.state = state
        self._connections: set[_Connection] = set()
        self._connection_ids = itertools.count(1)
        state.engine.subscribe(self._on_event)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Run one WebSocket session until the client or the server closes it."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Connection(ws)
        self._connections.add(conn)
        self._send(
            conn,
            {
                "channel": "status",
                "type": "update",
                "data": [
                    {
                        "version": SERVER_VERSION,
                        "system": "online",
                        "api_version": API_VERSION,
                        "connection_id": next(self._connection_ids),
                    }
                ],
            },
        )
        await serve_session(
            ws,
            conn.outbox,
            ws.send_str,
            on_text=lambda text: self._dispatch(conn, text),
            on_end=lambda: self._connections.discard(conn),
        )
        return ws

    async def close_all(self, _: web.Application | None = None) -> None:
        """Close every socket (on server shutdown)."""
        await close_sockets((conn.ws for conn in self._connections), "server shutdown")

    # ------------------------------------------------------------------ requests

    def _dispatch(self, conn: _Connection, text: str) -> None:
        time_in = codec.rfc3339(self.state.clock.now_ms())
        try:
            request = json.loads(text)
            if not isinstance(request, dict):
                raise ValueError
        except ValueError:
            self._send(
                conn,
                {
                    "error": "Malformed request",
                    "success": False,
                    "time_in": time_in,
                    "time_out": time_in,
                },
            )
            return
        method, req_id = request.get("method"), request.get("req_id")
        raw_params = request.get("params")
        params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
        reply: dict[str, Any] = {"method": method}
        if req_id is not None:
            reply["req_id"] = req_id
        if method == "ping":
            self._send(conn, {**reply, "method": "pong", "time_in": time_in, "time_out": time_in})
            return
        if method not in ("subscribe", "unsubscribe"):
            self._send(
                conn,
                {
                    **reply,
                    "error": "Method not found",
                    "success": False,
                    "time_in": time_in,
                    "time_out": time_in,
                },
            )
            return
        error = self._check(conn, method, params)
        if error is not None:
            self._send(
                conn,
                {
                    **reply,
                    "error": error,
                    "success": False,
                    "time_in": time_in,
                    "time_out": time_in,
                },
            )
            return
        snap_orders = _flag(params, "snap_orders", True)
        snap_trades = _flag(params, "snap_trades", False)
        if method == "unsubscribe":
            conn.subscription = None
            self._send(
                conn,
                {
                    **reply,
                    "result": {"channel": "executions"},
                    "success": True,
                    "time_in": time_in,
                    "time_out": time_in,
                },
            )
            return
        api_key = self.state.tokens.account_of(str(params.get("token")), self.state.clock.now_ms())
        assert api_key is not None  # checked in _check
        conn.subscription = _Subscription(api_key, _flag(params, "order_status", True))
        self._send(
            conn,
            {
                **reply,
                "result": {
                    "channel": "executions",
                    "maxratecount": 125,
                    "snap_orders": snap_orders,
                    "snap_trades": snap_trades,
                },
                "success": True,
                "time_in": time_in,
                "time_out": time_in,
            },
        )
        if snap_orders:
            self._snapshot(conn, self._open_orders(api_key))
        if snap_trades:
            self._snapshot(conn, self._recent_trades(api_key))

    def _check(self, conn: _Connection, method: str, params: dict[str, Any]) -> str | None:
        if params.get("channel") != "executions":
            return f"Channel {params.get('channel')!r} not supported by this emulator"
        token = params.get("token")
        if (
            not isinstance(token, str)
            or self.state.tokens.account_of(token, self.state.clock.now_ms()) is None
        ):
            return "ESession:Invalid session"  # [U] the exact v2 wording for a bad token
        if method == "subscribe" and conn.subscription is not None:
            return "Already subscribed"
        if method == "unsubscribe" and conn.subscription is None:
            return "Subscription Not Found"
        return None

    def _open_orders(self, api_key: str) -> list[dict[str, object]]:
        entries = []
        for order in self.state.engine.open_orders(api_key):
            status = "partially_filled" if order.status is OrderStatus.PARTIALLY_FILLED else "new"
            entries.append(
                codec.ws_order(self._pair(order), order, "new", status, order.updated_ms)
            )
        return entries

    def _recent_trades(self, api_key: str) -> list[dict[str, object]]:
        engine = self.state.engine
        orders = {o.order_id: o for o in engine.orders(api_key)}
        trades = engine.trades(api_key)[-SNAPSHOT_TRADES:]
        return [
            codec.ws_trade(self._pair(orders[t.order_id]), orders[t.order_id], t) for t in trades
        ]

    def _snapshot(self, conn: _Connection, data: list[dict[str, object]]) -> None:
        assert conn.subscription is not None
        self._send(
            conn,
            {
                "channel": "executions",
                "type": "snapshot",
                "data": data,
                "sequence": next(conn.subscription.sequence),
            },
        )

    # ------------------------------------------------------------------ events

    def _pair(self, order: Order) -> KrakenPair:
        return self.state.by_symbol[order.symbol]

    def _on_event(self, event: Event) -> None:
        """Engine listener (synchronous): queue the event's messages for its account's sockets."""
        if not isinstance(event, OrderUpdate):
            return
        order = event.order
        targets = [
            c
            for c in self._connections
            if c.subscription is not None and c.subscription.api_key == order.account_key
        ]
        if not targets:
            return
        pair = self._pair(order)
        for conn in targets:
            assert conn.subscription is not None
            for entry in _entries(pair, event, conn.subscription.order_status):
                self._send(
                    conn,
                    {
                        "channel": "executions",
                        "type": "update",
                        "data": [entry],
                        "sequence": next(conn.subscription.sequence),
                    },
                )

    @staticmethod
    def _send(conn: _Connection, message: dict[str, Any]) -> None:
        conn.outbox.put_nowait(codec.dumps(message))


def _entries(pair: KrakenPair, event: OrderUpdate, order_status: bool) -> list[dict[str, object]]:
    """The ``executions`` entries for one engine event, each sent as its own message."""
    order, when = event.order, event.time_ms
    if event.execution is ExecutionType.NEW:
        entries = (
            [codec.ws_order(pair, order, "pending_new", "pending_new", when)]
            if order_status
            else []
        )
        return [*entries, codec.ws_order(pair, order, "new", "new", when)]
    if event.execution is ExecutionType.TRADE:
        assert event.trade is not None
        entries = [codec.ws_trade(pair, order, event.trade)]
        if order.status is OrderStatus.FILLED:
            entries.append(codec.ws_order(pair, order, "filled", "filled", when))
        return entries
    if event.execution is ExecutionType.AMENDED:
        return [codec.ws_order(pair, order, "amended", order.status.value.lower(), when)]
    return [codec.ws_order(pair, order, "canceled", "canceled", when)]  # CANCELED and EXPIRED


def _flag(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name, default)
    return value if isinstance(value, bool) else default
