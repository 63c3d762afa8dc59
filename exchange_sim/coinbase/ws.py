"""Coinbase Advanced Trade WebSocket (docs/exchange-protocols.md §3.5): ``user`` and ``heartbeats``.

One endpoint, ``/ws`` (ccxt: ``urls['api']['ws']``). Clients send
``{"type": "subscribe" | "unsubscribe", "channel", "product_ids", "jwt"}``; an empty
``product_ids`` list means every product.

* ``user`` needs authentication: a CDP key's ES256 ``jwt`` (no ``uri`` claim), or a legacy key's
  ``api_key`` / ``timestamp`` / ``signature`` = hex(HMAC-SHA256(secret, timestamp + channel +
  ",".join(product_ids))). On subscribe the server sends a ``snapshot`` event with the key's open
  orders on those products (one message; Coinbase pages it by 50, the emulator does not), then a
  ``subscriptions`` message. Every later order change (accepted, each fill, canceled, ended) is
  an ``update`` event with that one order (``codec.ws_order_json``).
* ``heartbeats`` needs no authentication and sends ``{"current_time", "heartbeat_counter"}`` every
  ``state.ws_heartbeat_s`` seconds.
* Every server message carries ``channel``, ``client_id`` (""), ``timestamp`` and a per-connection
  ``sequence_num`` counting from 0. Errors are ``{"type": "error", "message"}`` (ccxt raises
  ``ExchangeError``); the socket stays open.
* A socket that was sent nothing for ``state.ws_idle_close_s`` seconds is closed, as Coinbase
  closes idle channels after 60-90 s: subscribe to ``heartbeats`` to keep it open.

Not emulated: public market-data channels (ticker, level2, market_trades, candles...), futures
balance channels, WebSocket rate limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from exchange_sim.coinbase import codec
from exchange_sim.coinbase.auth import AuthFailure, Verifier
from exchange_sim.coinbase.state import CoinbaseState
from exchange_sim.core.accounts import Account
from exchange_sim.core.engine import Event, OrderUpdate
from exchange_sim.core.orders import Order

log = logging.getLogger(__name__)

CHANNELS = ("user", "heartbeats")


@dataclass(eq=False)
class _Connection:
    """One client socket: its ordered outbox, its sequence numbers and its subscriptions."""

    ws: web.WebSocketResponse
    outbox: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    sequence: itertools.count[int] = field(default_factory=itertools.count)
    user_key: str | None = None
    user_all: bool = False
    user_products: set[str] = field(default_factory=set)
    heartbeat_task: asyncio.Task[None] | None = None

    def wants(self, order: Order) -> bool:
        """Whether this socket's ``user`` subscription covers the order."""
        return self.user_key == order.account_key and (
            self.user_all or codec.product_id(order) in self.user_products
        )

    def subscriptions(self) -> dict[str, list[str]]:
        """The current subscriptions, as the ``subscriptions`` message lists them."""
        subs: dict[str, list[str]] = {}
        if self.user_key is not None and (self.user_all or self.user_products):
            subs["user"] = [] if self.user_all else sorted(self.user_products)
        if self.heartbeat_task is not None:
            subs["heartbeats"] = ["heartbeats"]
        return subs


def _go_time(now_s: float, started: float) -> str:
    """Go's ``time.Time`` string, as Coinbase prints ``current_time`` in heartbeats."""
    stamp = datetime.fromtimestamp(now_s, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"{stamp}000 +0000 UTC m=+{time.monotonic() - started:.9f}"


class CoinbaseWs:
    """Serves ``/ws`` for one venue and fans engine order events out to ``user`` subscribers."""

    def __init__(self, state: CoinbaseState) -> None:
        self.state = state
        self.verifier = Verifier(state.engine.accounts)
        self._connections: set[_Connection] = set()
        self._started = time.monotonic()
        state.engine.subscribe(self._on_event)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Run one WebSocket session until the client or the server closes it."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Connection(ws)
        self._connections.add(conn)
        writer = asyncio.create_task(self._write(conn))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._dispatch(conn, msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self._connections.discard(conn)
            if conn.heartbeat_task is not None:
                conn.heartbeat_task.cancel()
            conn.outbox.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    async def close_all(self, _: web.Application | None = None) -> None:
        """Close every socket (on server shutdown)."""
        for conn in list(self._connections):
            await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    # ------------------------------------------------------------------ requests

    def _message(self, channel: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "channel": channel,
            "client_id": "",
            "timestamp": codec.iso(self.state.clock.now_ms()),
            "events": events,
        }

    @staticmethod
    def _error(conn: _Connection, message: str) -> None:
        conn.outbox.put_nowait({"type": "error", "message": message})

    def _dispatch(self, conn: _Connection, text: str) -> None:
        try:
            request = json.loads(text)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            self._error(conn, "failed to parse message: expected a JSON object")
            return
        kind, channel, products = (
            request.get("type"),
            request.get("channel"),
            request.get("product_ids", []),
        )
        if kind not in ("subscribe", "unsubscribe"):
            self._error(conn, "type: must be subscribe or unsubscribe")
            return
        if channel not in CHANNELS:
            self._error(
                conn, f"channel: {channel!r} is not supported by the emulator (user, heartbeats)"
            )
            return
        if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
            self._error(conn, "product_ids: must be a list of product ids")
            return
        unknown = [p for p in products if p not in self.state.products]
        if unknown:
            self._error(conn, f"product_ids: unknown product {unknown[0]!r}")
            return
        if channel == "heartbeats":
            self._heartbeats(conn, kind == "subscribe")
        elif not self._user(conn, kind == "subscribe", request, products):
            return
        conn.outbox.put_nowait(
            self._message("subscriptions", [{"subscriptions": conn.subscriptions()}])
        )

    def _heartbeats(self, conn: _Connection, on: bool) -> None:
        if on and conn.heartbeat_task is None:
            conn.heartbeat_task = asyncio.get_running_loop().create_task(self._beat(conn))
        elif not on and conn.heartbeat_task is not None:
            conn.heartbeat_task.cancel()
            conn.heartbeat_task = None

    def _user(
        self, conn: _Connection, subscribe: bool, request: dict[str, Any], products: list[str]
    ) -> bool:
        try:
            account = self._authenticate(request, products)
        except AuthFailure:
            self._error(conn, "authentication failure")
            return False
        if conn.user_key not in (None, account.api_key):
            self._error(conn, "user: this connection is subscribed for another key")
            return False
        if subscribe:
            conn.user_key = account.api_key
            if products:
                conn.user_products |= set(products)
            else:
                conn.user_all = True
            self._snapshot(conn, account.api_key, products)
        elif products:
            conn.user_products -= set(products)
        else:
            conn.user_all = False
            conn.user_products.clear()
        return True

    def _authenticate(self, request: dict[str, Any], products: list[str]) -> Account:
        now_s = self.state.clock.now_ms() // 1000
        token = request.get("jwt")
        if isinstance(token, str) and token:
            return self.verifier.verify_jwt(token, now_s)
        timestamp, signature, api_key = (
            request.get("timestamp"),
            request.get("signature"),
            request.get("api_key"),
        )
        if not all(isinstance(v, str) for v in (timestamp, signature, api_key)):
            raise AuthFailure("jwt or api_key/timestamp/signature required")
        return self.verifier.verify_hmac(
            api_key, timestamp, signature, "user" + ",".join(products), now_s
        )

    def _snapshot(self, conn: _Connection, api_key: str, products: list[str]) -> None:
        wanted = set(products)
        orders = [
            codec.ws_order_json(self.state, o)
            for o in self.state.engine.open_orders(api_key)
            if not wanted or codec.product_id(o) in wanted
        ]
        conn.outbox.put_nowait(
            self._message(
                "user",
                [
                    {
                        "type": "snapshot",
                        "orders": orders,
                        "positions": {
                            "perpetual_futures_positions": [],
                            "expiring_futures_positions": [],
                        },
                    }
                ],
            )
        )

    async def _beat(self, conn: _Connection) -> None:
        for counter in itertools.count(1):
            await asyncio.sleep(self.state.ws_heartbeat_s)
            conn.outbox.put_nowait(
                self._message(
                    "heartbeats",
                    [
                        {
                            "current_time": _go_time(
                                self.state.clock.now_ms() / 1000, self._started
                            ),
                            "heartbeat_counter": counter,
                        }
                    ],
                )
            )

    # ------------------------------------------------------------------ events

    def _on_event(self, event: Event) -> None:
        """Engine listener (synchronous): queue an ``update`` for every subscriber of the order."""
        if not isinstance(event, OrderUpdate):
            return
        targets = [c for c in self._connections if c.wants(event.order)]
        if not targets:
            return
        payload = [{"type": "update", "orders": [codec.ws_order_json(self.state, event.order)]}]
        for conn in targets:
            conn.outbox.put_nowait(self._message("user", payload))

    async def _write(self, conn: _Connection) -> None:
        while True:
            idle = self.state.ws_idle_close_s
            try:
                message = (
                    await asyncio.wait_for(conn.outbox.get(), idle)
                    if idle
                    else await conn.outbox.get()
                )
            except TimeoutError:
                await conn.ws.close(
                    code=WSCloseCode.OK, message=b"idle: subscribe to heartbeats to stay open"
                )
                return
            if message is None or conn.ws.closed:
                return
            if "channel" in message:
                message = {**message, "sequence_num": next(conn.sequence)}
            try:
                await conn.ws.send_str(json.dumps(message))
            except ConnectionError:
                return
