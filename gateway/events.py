"""The web dashboard's live feed: Server-Sent Events, and the tickets that open them.

A browser's ``EventSource`` cannot send an ``Authorization`` header, and an API token in a URL
would land in access logs. So the page first asks ``POST /dashboard/ticket`` with its bearer
token (a pro user: the feed shows copy-trading data) and gets a ticket: an EdDSA JWT signed with
the gateway's assertion key for the audience ``copytrade-dashboard-events`` (no service accepts
it as a user assertion), bound to the user, valid for 30 seconds and spent by its first use. It
then opens ``GET /dashboard/events?ticket=...``.

The stream polls the engine (and the broker's account list) for that user on the gateway's own
channels and pushes only what changed, as named events whose data is the REST API's JSON
(decimals as strings):

- ``configs``: the user's configurations (``GET /configs``), when they change;
- ``orders``: the copied orders written or changed since the last push (``GET /orders``), of
  the last hour at first;
- ``status``: one configuration's ``GET /status`` without its recent orders (counters,
  positions, follower accounts with their profit and loss), every 10 s, sooner after a copy;
- ``exchanges``: the user's exchange accounts (id to venue and label);
- ``problem``: a backend could not be read (``{"message": ...}``; ``""`` once it reads again).

A comment line every 15 s keeps proxies from closing an idle stream. The stream ends when the
client goes, when the gateway shuts down, and after 10 minutes (the page then asks for a new
ticket, so a revoked token stops the feed within that time). One user has at most
``MAX_STREAMS_PER_USER`` streams open at a gateway process (429 beyond). With several workers
(``GATEWAY_WORKERS``) a ticket is spent once for all of them (:mod:`gateway.workers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import grpc
import jwt
from aiohttp import web
from google.protobuf import message as proto_message
from google.protobuf import timestamp_pb2
from google.rpc import code_pb2, status_pb2
from prometheus_client import Gauge

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from gateway import auth
from gateway import server as gateway_server
from gateway.errors import HttpError, status_to_json
from gateway.transcode import response_json
from meshkit.identity import ASSERTION_HEADER, ISSUER
from meshkit.interceptors import REQUEST_ID_HEADER

if TYPE_CHECKING:
    from gateway.server import Gateway

log = logging.getLogger("gateway.events")

TICKET_PATH = "/dashboard/ticket"
EVENTS_PATH = "/dashboard/events"
TICKET_AUDIENCE = "copytrade-dashboard-events"
TICKET_TTL_SECONDS = 30
MAX_STREAMS_PER_USER = 3
ENGINE = "copytrade.engine.v1.EngineService"
BROKER = "copytrade.broker.v1.BrokerService"
TERMINAL = frozenset(
    {
        "INTENT_STATE_FILLED",
        "INTENT_STATE_CANCELED",
        "INTENT_STATE_EXPIRED",
        "INTENT_STATE_REJECTED",
        "INTENT_STATE_SKIPPED",
    }
)


@dataclass(frozen=True)
class FeedSettings:
    """How often the feed reads, and how long a stream lives."""

    poll_seconds: float = 0.5
    """Configurations and copied orders (the engine's database only) are read this often."""
    status_seconds: float = 10.0
    """A configuration's status (which reads the follower accounts at their venues) at least
    this often..."""
    status_min_seconds: float = 2.0
    """...and, after one of its copies changed, at most this often."""
    exchanges_seconds: float = 10.0
    """The exchange accounts again, when a copy names one not seen yet, at most this often."""
    heartbeat_seconds: float = 15.0
    lifetime_seconds: float = 600.0
    orders_window: timedelta = timedelta(hours=1)
    """The first push holds the copies written in this window."""
    page_size: int = 500


def _sse(event: str, data: Any) -> bytes:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {body}\n\n".encode()


@dataclass
class _Stream:
    """What one open stream has pushed, so that it pushes only changes."""

    user_id: str
    plan: str
    configs: str = ""
    exchanges: dict[str, Any] = field(default_factory=dict)
    exchanges_read_at: float = float("-inf")
    problem: str = ""
    orders: dict[str, str] = field(default_factory=dict)  # intent id -> its JSON
    since: dict[str, timestamp_pb2.Timestamp] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    status_read_at: dict[str, float] = field(default_factory=dict)
    status_dirty: set[str] = field(default_factory=set)


class DashboardEvents:
    """The ticket and events endpoints of one gateway."""

    def __init__(self, gateway: Gateway, settings: FeedSettings | None = None) -> None:
        self.gateway = gateway
        self.settings = settings or FeedSettings()
        self._spent: dict[str, float] = {}  # ticket id -> its expiry
        self._open: dict[str, int] = {}  # user id -> streams open
        self._closing = asyncio.Event()
        self.streams = Gauge(
            "copytrade_gateway_dashboard_streams",
            "Dashboard event streams open at this gateway.",
            registry=gateway.metrics.registry,
        )

    def install(self, app: web.Application) -> None:
        """Add the two routes (before the API's catch-all) and stop streams at shutdown."""
        app.router.add_post(TICKET_PATH, self.ticket)
        app.router.add_get(EVENTS_PATH, self.events)
        app.on_shutdown.append(self._shutdown)

    async def _shutdown(self, _app: web.Application) -> None:
        self._closing.set()

    # ------------------------------------------------------------------ tickets

    async def ticket(self, request: web.Request) -> web.Response:
        """Serve ``POST /dashboard/ticket``: a bearer token in, a 30-second ticket out."""
        request[gateway_server.ROUTE_LABEL_KEY] = TICKET_PATH
        principal = await self.gateway.authenticate(request)
        self.gateway.limiter.check(principal.user_id)
        if principal.plan != auth.PRO:
            raise HttpError(
                code_pb2.PERMISSION_DENIED,
                f"the dashboard's feed needs the pro plan; your plan is {principal.plan}",
                reason="PLAN_REQUIRED",
                metadata={"required_plan": auth.PRO, "plan": principal.plan},
            )
        ticket = self.gateway.signer.sign_ticket(
            TICKET_AUDIENCE, principal.user_id, principal.plan, TICKET_TTL_SECONDS
        )
        body = {"ticket": ticket, "expires_in": TICKET_TTL_SECONDS, "events": EVENTS_PATH}
        return web.Response(text=json.dumps(body), content_type="application/json")

    def _redeem(self, ticket: str) -> tuple[str, str]:
        """Return ``(user id, plan)`` of a valid ticket, spending it; 401 otherwise."""
        if not ticket or len(ticket) > 2048:
            raise auth.unauthenticated(
                "a ticket from POST /dashboard/ticket is required", "TICKET_MISSING"
            )
        try:
            claims = jwt.decode(
                ticket,
                self.gateway.signer.public_key(),
                algorithms=["EdDSA"],
                audience=TICKET_AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise auth.unauthenticated(
                "the ticket has expired; ask for a new one", "TICKET_EXPIRED"
            ) from None
        except jwt.PyJWTError:
            raise auth.unauthenticated("the ticket is not valid", "TICKET_INVALID") from None
        now = time.time()
        for spent, expiry in list(self._spent.items()):
            if expiry < now:
                del self._spent[spent]
        ticket_id = str(claims["jti"])
        shared = self.gateway.spent_tickets  # several workers (gateway/workers.py): theirs
        if shared is not None:
            first = shared.spend(ticket_id, float(claims["exp"]), now)
            if first is None:  # never admit a ticket that could not be marked spent
                raise HttpError(
                    code_pb2.UNAVAILABLE,
                    "too many tickets are live; ask again in a few seconds",
                    reason="TICKETS_BUSY",
                    retry_after=float(TICKET_TTL_SECONDS),
                )
            if not first:
                raise auth.unauthenticated("the ticket was used already", "TICKET_SPENT")
            return str(claims["sub"]), str(claims.get("plan", ""))
        if ticket_id in self._spent:
            raise auth.unauthenticated("the ticket was used already", "TICKET_SPENT")
        self._spent[ticket_id] = float(claims["exp"])
        return str(claims["sub"]), str(claims.get("plan", ""))

    # ------------------------------------------------------------------ the stream

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Serve ``GET /dashboard/events?ticket=...``: the user's changes, as they happen."""
        request[gateway_server.ROUTE_LABEL_KEY] = EVENTS_PATH
        user_id, plan = self._redeem(request.query.get("ticket", ""))
        self.gateway.limiter.check(user_id)
        if self._open.get(user_id, 0) >= MAX_STREAMS_PER_USER:
            raise HttpError(
                code_pb2.RESOURCE_EXHAUSTED,
                f"at most {MAX_STREAMS_PER_USER} dashboard streams may be open at once",
                reason="TOO_MANY_STREAMS",
                retry_after=5.0,
            )
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
                "X-Content-Type-Options": "nosniff",
                "X-Request-Id": request[gateway_server.REQUEST_ID_KEY],
            }
        )
        self._open[user_id] = self._open.get(user_id, 0) + 1
        self.streams.inc()
        try:
            await response.prepare(request)
            await response.write(b"retry: 3000\n\n")
            await self._run(request, response, _Stream(user_id, plan))
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the client went away
        finally:
            self.streams.dec()
            self._open[user_id] -= 1
            if not self._open[user_id]:
                del self._open[user_id]
        return response

    async def _run(
        self, request: web.Request, response: web.StreamResponse, stream: _Stream
    ) -> None:
        settings = self.settings
        started = last_write = time.monotonic()
        while not self._closing.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            now = time.monotonic()
            if now - started > settings.lifetime_seconds:
                return
            chunks = await self._changes(stream)
            if not chunks and now - last_write >= settings.heartbeat_seconds:
                chunks = [b": heartbeat\n\n"]
            if chunks:
                await response.write(b"".join(chunks))
                last_write = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), settings.poll_seconds)

    # ------------------------------------------------------------------ reading

    async def _call(
        self,
        stream: _Stream,
        service: str,
        method: str,
        request: proto_message.Message,
        reply_class: Callable[[bytes], Any],
    ) -> Any:
        """Call a backend for the stream's user; return the reply or the Status it failed with."""
        request_id = uuid.uuid4().hex
        metadata = (
            (REQUEST_ID_HEADER, request_id),
            (ASSERTION_HEADER, self.gateway.signer.sign(stream.user_id, stream.plan, request_id)),
        )
        call: grpc.aio.UnaryUnaryMultiCallable[Any, Any] = self.gateway.channels[
            service
        ].unary_unary(
            f"/{service}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=reply_class,
        )
        return await self.gateway._backend_call(call, request, metadata, service)

    async def _changes(self, stream: _Stream) -> list[bytes]:
        """Read what the user sees now; return the events of what changed."""
        chunks: list[bytes] = []
        problems: list[str] = []

        def failed(reply: Any) -> bool:
            if isinstance(reply, status_pb2.Status):
                problems.append(str(status_to_json(reply).get("message", "unavailable")))
                return True
            return False

        configs = await self._call(
            stream,
            ENGINE,
            "ListConfigs",
            engine_pb.ListConfigsRequest(),
            _parser(engine_pb.ListConfigsResponse),
        )
        if not failed(configs):
            listed = response_json(configs)["configs"]
            text = json.dumps(listed, sort_keys=True)
            if text != stream.configs:
                stream.configs = text
                chunks.append(_sse("configs", listed))
            changed: list[dict[str, Any]] = []
            targets: set[str] = set()
            for config in configs.configs:
                targets.update(config.target_exchange_ids)
                targets.update(filter(None, [config.source_exchange_id]))
                found = await self._orders(stream, config.config_id, failed)
                if found:
                    changed.extend(found)
                    stream.status_dirty.add(config.config_id)
            if changed:
                changed.sort(key=lambda o: (o.get("create_time", ""), o.get("intent_id", "")))
                chunks.append(_sse("orders", changed))
            chunks.extend(await self._exchanges(stream, targets, failed))
            for config in configs.configs:
                chunks.extend(await self._status(stream, config.config_id, failed))
        problem = "; ".join(dict.fromkeys(problems))
        if problem != stream.problem:
            stream.problem = problem
            chunks.append(_sse("problem", {"message": problem}))
        return chunks

    async def _orders(
        self, stream: _Stream, config_id: str, failed: Callable[[Any], bool]
    ) -> list[dict[str, Any]]:
        """Return the configuration's copied orders written or changed since the last read.

        Orders are read from the oldest one still open (or the newest one seen), so that an
        order is read again until it ends; never from before the window.
        """
        floor = timestamp_pb2.Timestamp()
        floor.FromDatetime(datetime.now(UTC) - self.settings.orders_window)
        start = stream.since.get(config_id, floor)
        if start.ToDatetime() < floor.ToDatetime():
            start = floor
        changed: list[dict[str, Any]] = []
        open_since: timestamp_pb2.Timestamp | None = None
        newest = start
        while True:
            reply = await self._call(
                stream,
                ENGINE,
                "ListCopiedOrders",
                engine_pb.ListCopiedOrdersRequest(
                    config_id=config_id, start_time=start, page_size=self.settings.page_size
                ),
                _parser(engine_pb.ListCopiedOrdersResponse),
            )
            if failed(reply):
                return changed
            for order, data in zip(reply.orders, response_json(reply)["orders"], strict=True):
                text = json.dumps(data, sort_keys=True)
                if stream.orders.get(order.intent_id) != text:
                    stream.orders[order.intent_id] = text
                    changed.append(data)
                if data.get("state") not in TERMINAL and open_since is None:
                    open_since = order.create_time
                newest = order.create_time
            if len(reply.orders) < self.settings.page_size or newest == start:
                break
            start = newest
        stream.since[config_id] = open_since if open_since is not None else newest
        return changed

    async def _exchanges(
        self, stream: _Stream, targets: set[str], failed: Callable[[Any], bool]
    ) -> list[bytes]:
        unknown = targets - stream.exchanges.keys()
        waited = time.monotonic() - stream.exchanges_read_at
        if not unknown or waited < self.settings.exchanges_seconds:
            return []
        stream.exchanges_read_at = time.monotonic()
        reply = await self._call(
            stream,
            BROKER,
            "ListExchanges",
            broker_pb.ListExchangesRequest(),
            _parser(broker_pb.ListExchangesResponse),
        )
        if failed(reply):
            return []
        accounts = {
            e.exchange_id: {"exchange_name": e.exchange_name, "label": e.label}
            for e in reply.exchanges
        }
        if accounts == stream.exchanges:
            return []
        stream.exchanges = accounts
        return [_sse("exchanges", accounts)]

    async def _status(
        self, stream: _Stream, config_id: str, failed: Callable[[Any], bool]
    ) -> list[bytes]:
        waited = time.monotonic() - stream.status_read_at.get(config_id, float("-inf"))
        due = waited >= self.settings.status_seconds or (
            config_id in stream.status_dirty and waited >= self.settings.status_min_seconds
        )
        if not due:
            return []
        stream.status_read_at[config_id] = time.monotonic()
        stream.status_dirty.discard(config_id)
        reply = await self._call(
            stream,
            ENGINE,
            "GetCopyStatus",
            engine_pb.GetCopyStatusRequest(config_id=config_id),
            _parser(engine_pb.GetCopyStatusResponse),
        )
        if failed(reply):
            return []
        data = response_json(reply)
        data.pop("recent_orders", None)
        text = json.dumps(data, sort_keys=True)
        if text == stream.status.get(config_id):
            return []
        stream.status[config_id] = text
        return [_sse("status", data)]


def _parser(message_class: type[proto_message.Message]) -> Callable[[bytes], Any]:
    return message_class.FromString


def install(
    gateway: Gateway, app: web.Application, settings: FeedSettings | None = None
) -> DashboardEvents:
    """Serve the dashboard's ticket and event stream on ``app`` (one line in ``build_app``)."""
    feed = DashboardEvents(gateway, settings)
    feed.install(app)
    return feed


__all__ = [
    "EVENTS_PATH",
    "TICKET_PATH",
    "DashboardEvents",
    "FeedSettings",
    "install",
]
