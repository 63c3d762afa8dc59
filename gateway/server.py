"""The gateway's aiohttp application: annotation-driven REST to gRPC, auth, health, docs.

``build_app(settings, deps)`` builds the route table from the descriptors (failing
fast on an annotation it cannot serve) and returns the app; its startup opens the
store (and migrates it) and one ``grpc.aio`` channel per service unless tests inject
them. ``start_gateway(settings)`` serves it; ``python -m gateway`` runs that.

Every request first passes a rate limit per client address (429), before any token is
looked at. Request path for an API route: ``Authorization: Bearer`` (401) → per-user rate
limit (429) → route match (404/405) → plan gate (403) → request message from body (read within
``GATEWAY_BODY_READ_TIMEOUT_MS``, else 408), query and path (400) → the RPC with a deadline,
the user id in ``x-copytrade-user-id`` and the allowlisted headers (``X-Request-Id``;
``Grpc-Metadata-*`` without the prefix) → the response as JSON, or the gRPC status as JSON
with its HTTP code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.resources
import json
import logging
import re
import ssl
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import http_exceptions, web, web_protocol, web_server
from google.protobuf import descriptor
from google.rpc import code_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from gateway import access_log, audit, auth, docs_page, events, metric_series, preconditions
from gateway.config import Settings
from gateway.errors import (
    HttpError,
    build_status,
    http_status,
    retry_after_seconds,
    status_from_rpc_error,
    status_to_json,
)
from gateway.model import TokenStatus
from gateway.openapi import build_openapi
from gateway.routes import (
    Match,
    MethodNotAllowed,
    Route,
    Router,
    build_routes,
    default_services,
)
from gateway.store import GatewayStore
from gateway.store.webhooks import WebhookStore
from gateway.transcode import build_request, response_json
from gateway.webhooks import api as webhooks_api
from gateway.workers import SharedBuckets, SharedSpent, WorkerRole, shared_table
from meshkit import clients, db, tracing
from meshkit.identity import ASSERTION_HEADER, USER_HEADER, AssertionSigner
from meshkit.interceptors import REQUEST_ID_HEADER
from meshkit.settings import ConfigError

log = logging.getLogger("gateway")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")
_METADATA_KEY = re.compile(r"[0-9a-z_.-]+\Z")
_FORWARD_PREFIX = "grpc-metadata-"
# Metadata a client may never set: identity, transport, and what the gateway sets itself.
_RESERVED_KEYS = frozenset(
    {
        USER_HEADER,
        ASSERTION_HEADER,
        REQUEST_ID_HEADER,
        "authorization",
        "content-type",
        "te",
        "user-agent",
        "host",
        "connection",
        "content-length",
    }
)
_REASONS = {499: "Client Closed Request"}
HEALTH_TIMEOUT_SECONDS = 1.0
# How long one aggregated backend check answers /healthz and /readyz: a flood of probes
# makes at most one round of backend checks a second.
HEALTH_CACHE_SECONDS = 1.0
# The HTTP parser's limits. The request line and a header field have different limits so
# that a LineTooLong says which one was too long (414 or 431).
MAX_REQUEST_LINE_BYTES = 8192
MAX_HEADER_FIELD_BYTES = 8190
MAX_HEADERS = 128
REQUEST_ID_KEY = web.RequestKey("request_id", str)
ROUTE_LABEL_KEY = web.RequestKey("route_label", str)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass
class GatewayDeps:
    """What tests inject: a database, channels by service full name, other services, a clock.

    Whatever is not given is built from the settings at startup (and closed at cleanup).
    """

    database: db.Database | None = None
    channels: Mapping[str, grpc.aio.Channel] | None = None
    services: Sequence[descriptor.ServiceDescriptor] | None = None
    clock: Callable[[], float] = time.monotonic
    # Signs the user assertions sent to the services; from ASSERTION_SIGNING_KEY when not given.
    signer: AssertionSigner | None = None
    # Run the webhook dispatcher (docs/webhooks.md); tests that drive it by hand turn it off.
    webhook_dispatcher: bool = True
    # One of several worker processes (gateway/workers.py): the supervisor migrated the store,
    # and the rate limits and spent tickets are shared with the other workers.
    worker: WorkerRole | None = None


@dataclass
class _Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "copytrade_gateway_http_requests_total",
            "HTTP requests answered by the gateway.",
            ["method", "route", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "copytrade_gateway_http_request_duration_seconds",
            "Time to answer an HTTP request, backend call included.",
            ["method", "route", "code"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )


def _dashboard() -> tuple[str, str]:
    html = importlib.resources.files("gateway").joinpath("dashboard.html").read_text("utf-8")

    def digest(tag: str) -> str:
        found = re.search(rf"<{tag}>(.*?)</{tag}>", html, re.S)
        assert found is not None, f"dashboard.html has no <{tag}>"
        hashed = base64.b64encode(hashlib.sha256(found.group(1).encode("utf-8")).digest()).decode()
        return f"'sha256-{hashed}'"

    policy = (
        f"default-src 'none'; script-src {digest('script')}; style-src {digest('style')}; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    return html, policy


class Gateway:
    """The handlers and the state they share; one per application."""

    def __init__(self, settings: Settings, deps: GatewayDeps) -> None:
        self.settings = settings
        self.deps = deps
        self.services = list(deps.services) if deps.services is not None else default_services()
        self.routes: list[Route] = build_routes(self.services)
        self.router = Router(self.routes)
        self.openapi = build_openapi(self.routes, auth.required_plan)
        self.openapi_text = json.dumps(self.openapi, indent=2, sort_keys=True)
        self.limiter = auth.RateLimiter(
            settings.rate_limit_per_second,
            settings.rate_limit_burst,
            deps.clock,
        )
        self.address_limiter = auth.RateLimiter(
            settings.ip_rate_limit_per_second,
            settings.ip_rate_limit_burst,
            deps.clock,
            reason="ADDRESS_RATE_LIMITED",
            scope="from this address",
        )
        self.spent_tickets: SharedSpent | None = None
        role = deps.worker
        if role is not None and role.count > 1:
            self._share_limits(role)
        self._health: tuple[float, int, dict[str, Any]] | None = None
        self._health_check: asyncio.Task[tuple[float, int, dict[str, Any]]] | None = None
        self.metrics = _Metrics()
        metric_series.prepare(self.metrics.registry, self.metrics.requests, self.routes)
        self.dashboard_html, self.dashboard_policy = _dashboard()
        self.store: GatewayStore | None = None
        self.channels: dict[str, grpc.aio.Channel] = {}
        self._calls: dict[str, grpc.aio.UnaryUnaryMultiCallable] = {}
        injected = deps.channels or {}
        for service in self.services:
            name = service.full_name
            if name not in injected and settings.address_for(name) is None:
                raise ConfigError(f"no *_SVC_ADDR variable gives the address of {name}")
        if deps.signer is not None:
            self.signer = deps.signer
        elif settings.assertion_signing_key:
            self.signer = AssertionSigner.from_file(settings.assertion_signing_key)
        else:
            raise ConfigError(
                "ASSERTION_SIGNING_KEY is required: the gateway signs every user it forwards"
            )

    def _share_limits(self, role: WorkerRole) -> None:
        # Every worker takes from the same buckets; a key the shared table has no room for
        # falls back to this worker's share of the limit.
        count = role.count
        for name, limiter in (
            ("user-limits", self.limiter),
            ("address-limits", self.address_limiter),
        ):
            if limiter.rate <= 0:
                continue
            own = auth.RateLimiter(limiter.rate / count, -(-limiter.burst // count), limiter.clock)
            limiter.share(
                SharedBuckets(shared_table(role, name), limiter.rate, limiter.burst, own.acquire)
            )
        self.spent_tickets = SharedSpent(shared_table(role, "spent-tickets"))

    # ------------------------------------------------------------------ lifecycle

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """Open the store and the channels at startup; close what was opened here at cleanup."""
        database = self.deps.database
        own_database = database is None
        if database is None:
            database = await db.connect(self.settings.database_url)
        owned: list[grpc.aio.Channel] = []
        try:
            self.store = GatewayStore(database)
            if self.deps.worker is None:  # a worker's supervisor migrated it before
                await self.store.migrate()
            injected = self.deps.channels or {}
            for service in self.services:
                channel = injected.get(service.full_name)
                if channel is None:
                    read_methods = [
                        r.method.name
                        for r in self.routes
                        if r.service.full_name == service.full_name and r.verb == "GET"
                    ]
                    address = self.settings.address_for(service.full_name)
                    assert address is not None
                    channel = clients.channel(
                        address,
                        tls=self.settings.tls,
                        service=service.full_name,
                        read_methods=read_methods,
                    )
                    owned.append(channel)
                self.channels[service.full_name] = channel
            for route in self.routes:
                self._calls[route.rpc] = self.channels[route.service.full_name].unary_unary(
                    route.grpc_path,
                    request_serializer=lambda message: message.SerializeToString(),
                    response_deserializer=route.output_class.FromString,
                )
            yield
        finally:
            for channel in owned:
                await channel.close()
            if own_database:
                await database.close()

    # ------------------------------------------------------------------ responses

    def status_response(
        self,
        status: status_pb2.Status,
        http_code: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        """Answer with a ``google.rpc.Status`` as JSON and the matching HTTP code and headers."""
        code = http_code if http_code is not None else http_status(status.code)
        out = dict(headers or {})
        if status.code == code_pb2.UNAUTHENTICATED:
            out.setdefault("WWW-Authenticate", 'Bearer realm="copytrade"')
        if code in (429, 503):
            retry = retry_after_seconds(status)
            if retry is not None:
                out["Retry-After"] = str(retry)
        return web.Response(
            text=_dumps(status_to_json(status)),
            status=code,
            reason=_REASONS.get(code),
            content_type="application/json",
            headers=out,
        )

    def _http_exception(self, error: web.HTTPException) -> web.Response:
        if isinstance(error, web.HTTPRequestEntityTooLarge):
            status = build_status(
                code_pb2.INVALID_ARGUMENT,
                f"the request body is larger than {self.settings.max_body_bytes} bytes",
                reason="BODY_TOO_LARGE",
            )
        else:
            code = {404: code_pb2.NOT_FOUND, 405: code_pb2.UNIMPLEMENTED}.get(
                error.status,
                code_pb2.INVALID_ARGUMENT if error.status < 500 else code_pb2.INTERNAL,
            )
            status = build_status(code, error.reason, reason="HTTP_ERROR")
        return self.status_response(status, http_code=error.status)

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Any],
    ) -> web.StreamResponse:
        """Give every request an id, turn every failure into a Status, count and time it."""
        started = time.perf_counter()
        given = request.headers.get("X-Request-Id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        request[REQUEST_ID_KEY] = request_id
        request[ROUTE_LABEL_KEY] = "unmatched"
        try:
            # Before anything else (and before a token is looked up): unknown tokens and
            # health probes are limited like everything else.
            self.address_limiter.check(request.remote or "")
            response = await handler(request)
        except HttpError as e:
            response = self.status_response(e.status, e.http_code, e.headers)
            if e.close:
                response.force_close()
        except web.HTTPException as e:
            response = self._http_exception(e)
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.rel_url.raw_path)
            response = self.status_response(
                build_status(code_pb2.INTERNAL, "internal error", reason="INTERNAL"),
            )
        response.headers["X-Request-Id"] = request_id
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        labels = (request.method, request[ROUTE_LABEL_KEY], str(response.status))
        self.metrics.requests.labels(*labels).inc()
        self.metrics.duration.labels(*labels).observe(time.perf_counter() - started)
        return response

    # ------------------------------------------------------------------ API

    async def authenticate(self, request: web.Request) -> auth.Principal:
        """Return the caller of a request, or raise 401."""
        token = auth.bearer_token(request.headers.get("Authorization"))
        assert self.store is not None
        try:
            status, user = await self.store.token_status(token)
        except Exception as e:
            log.error("user store failed: %s", type(e).__name__)
            raise HttpError(
                code_pb2.UNAVAILABLE,
                "the user store is unavailable",
                reason="STORE_UNAVAILABLE",
                retry_after=1.0,
            ) from None
        if status is TokenStatus.EXPIRED:
            raise auth.unauthenticated("the token has expired; ask for a new one", "TOKEN_EXPIRED")
        if user is None:
            raise auth.unauthenticated("the token is unknown or revoked", "TOKEN_INVALID")
        request[access_log.USER_KEY] = user.user_id  # hashed in the access line
        return auth.Principal(user.user_id, user.plan)

    def _metadata(
        self,
        request: web.Request,
        principal: auth.Principal,
    ) -> tuple[tuple[str, str], ...]:
        request_id = request[REQUEST_ID_KEY]
        metadata: list[tuple[str, str]] = [
            (REQUEST_ID_HEADER, request_id),
            (ASSERTION_HEADER, self.signer.assertion(principal.user_id, principal.plan)),
        ]
        for name, value in request.headers.items():
            lower = name.lower()
            if not lower.startswith(_FORWARD_PREFIX):
                continue
            key = lower[len(_FORWARD_PREFIX) :]
            if (
                not _METADATA_KEY.match(key)
                or key in _RESERVED_KEYS
                or key.startswith(("grpc-", "x-copytrade-", ":"))
                or key.endswith("-bin")
                or len(value) > 4096
                or not all(" " <= char <= "~" for char in value)
            ):
                continue
            metadata.append((key, value))
        return tuple(metadata)

    async def handle_api(self, request: web.Request) -> web.StreamResponse:
        """Serve one request to an annotated route (and the 401/404/405 around them)."""
        raw_path = request.rel_url.raw_path
        try:
            found = self.router.match(request.method, raw_path)
            malformed = False
        except UnicodeDecodeError:
            found, malformed = None, True
        if found is None and not malformed and not raw_path.startswith("/api/"):
            raise HttpError(code_pb2.NOT_FOUND, "Not Found", reason="ROUTE_NOT_FOUND")
        if isinstance(found, Match):
            request[ROUTE_LABEL_KEY] = found.route.template
        # Every route needs a token: answer 401 before saying whether the path exists.
        principal = await self.authenticate(request)
        self.limiter.check(principal.user_id)
        if malformed:
            raise HttpError(
                code_pb2.INVALID_ARGUMENT,
                "the path is not valid percent-encoded UTF-8",
                reason="MALFORMED_PATH",
            )
        if found is None:
            raise HttpError(code_pb2.NOT_FOUND, "Not Found", reason="ROUTE_NOT_FOUND")
        if isinstance(found, MethodNotAllowed):
            raise HttpError(
                code_pb2.UNIMPLEMENTED,
                "Method Not Allowed",
                reason="METHOD_NOT_ALLOWED",
                http_code=405,
                headers={"Allow": ", ".join(found.allowed)},
            )
        route = found.route
        auth.check_plan(principal, route)
        raw_body = await self._read_body(request) if route.body else b""
        message = build_request(route, raw_body, request.query, found.path_values)
        metadata = self._metadata(request, principal)
        refused = await self._precondition(route, message, metadata)
        if refused is not None:
            return self.status_response(refused)
        response = await self._backend_call(
            self._calls[route.rpc],
            message,
            metadata,
            route.service.full_name,
        )
        if isinstance(response, status_pb2.Status):
            return self.status_response(response)
        return web.Response(
            text=_dumps(response_json(response, route.response_body)),
            content_type="application/json",
        )

    async def audit_entries(self, request: web.Request) -> web.Response:
        """Serve ``GET /audit``: the caller's audit entries of every service, newest first."""
        request[ROUTE_LABEL_KEY] = audit.PATH
        principal = await self.authenticate(request)
        self.limiter.check(principal.user_id)
        page = audit.parse_page(request.query)
        limit = page.size + 1
        metadata = self._metadata(request, principal)

        async def backend(source: audit.Backend) -> list[dict[str, Any]] | status_pb2.Status:
            call: grpc.aio.UnaryUnaryMultiCallable[Any, Any] = self.channels[
                source.service
            ].unary_unary(
                source.grpc_path,
                request_serializer=lambda message: message.SerializeToString(),
                response_deserializer=source.response_class.FromString,
            )
            reply = await self._backend_call(
                call,
                source.request_class(page_size=limit, before_seq=page.cursors[source.chain]),
                metadata,
                source.service,
            )
            if isinstance(reply, status_pb2.Status):
                return reply
            return [audit.from_proto(source.chain, e) for e in reply.entries]

        sources = [b for b in audit.BACKENDS if b.chain in page.cursors]
        replies = await asyncio.gather(*(backend(b) for b in sources))
        for reply in replies:
            if isinstance(reply, status_pb2.Status):  # a partial trail would mislead: fail
                return self.status_response(reply)
        fetched: dict[str, list[dict[str, Any]]] = {
            b.chain: r for b, r in zip(sources, replies, strict=True)
        }
        if audit.GATEWAY_CHAIN in page.cursors:
            assert self.store is not None
            entries = await self.store.list_audit_entries(
                principal.user_id,
                page.cursors[audit.GATEWAY_CHAIN],
                limit,
            )
            fetched[audit.GATEWAY_CHAIN] = [
                audit.from_entry(audit.GATEWAY_CHAIN, e) for e in entries
            ]
        return web.Response(
            text=_dumps(audit.merge(page, fetched)),
            content_type="application/json",
        )

    async def _precondition(
        self,
        route: Route,
        message: Any,
        metadata: Sequence[tuple[str, str]],
    ) -> status_pb2.Status | None:
        """Call the route's precondition (``gateway.preconditions``); its refusal, or None."""
        before = preconditions.PRECONDITIONS.get(route.rpc)
        if before is None or not any(s.full_name == before.service for s in self.services):
            return None
        call: grpc.aio.UnaryUnaryMultiCallable[Any, Any] = self.channels[
            before.service
        ].unary_unary(
            before.grpc_path,
            request_serializer=lambda request: request.SerializeToString(),
            response_deserializer=before.response_class.FromString,
        )
        reply = await self._backend_call(call, before.build(message), metadata, before.service)
        return reply if isinstance(reply, status_pb2.Status) else None

    async def _backend_call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable,
        message: Any,
        metadata: Sequence[tuple[str, str]],
        service: str,
    ) -> Any:
        """Call a backend within ``timeout_ms``; on failure return the Status to answer with.

        Not :func:`meshkit.clients.call`: the gateway passes a backend's own rich status
        through to the HTTP caller unchanged instead of turning it into a service error.
        """
        try:
            return await method(message, timeout=self.settings.timeout_ms / 1000, metadata=metadata)
        except grpc.aio.AioRpcError as e:
            return status_from_rpc_error(e, service, self.settings.timeout_ms)

    async def _read_body(self, request: web.Request) -> bytes:
        """Read the whole body within ``body_read_timeout_ms`` or answer 408 and close."""
        limit_ms = self.settings.body_read_timeout_ms
        try:
            return await asyncio.wait_for(request.read(), limit_ms / 1000)
        except TimeoutError:
            raise HttpError(
                code_pb2.DEADLINE_EXCEEDED,
                f"the request body did not arrive within {limit_ms} ms",
                reason="BODY_READ_TIMEOUT",
                http_code=408,
                close=True,
            ) from None

    # ------------------------------------------------------------------ the rest

    async def _backend_health(self, name: str, channel: grpc.aio.Channel) -> str:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=name),
                timeout=HEALTH_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as e:
            if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return "UNREACHABLE"
            return e.code().name
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    async def _check_backends(self) -> tuple[float, int, dict[str, Any]]:
        """Check every backend's gRPC health and the store once; keep the answer."""
        try:
            names = list(self.channels)
            states = await asyncio.gather(
                *(self._backend_health(n, self.channels[n]) for n in names),
            )
            database = "ok"
            try:
                assert self.store is not None
                await asyncio.wait_for(self.store.ping(), HEALTH_TIMEOUT_SECONDS)
            except Exception:
                database = "unavailable"
            serving = database == "ok" and all(state == "SERVING" for state in states)
            body = {
                "status": "SERVING" if serving else "NOT_SERVING",
                "database": database,
                "backends": dict(zip(names, states, strict=True)),
            }
            self._health = (self.deps.clock(), 200 if serving else 503, body)
            return self._health
        finally:
            self._health_check = None

    async def _backends_report(self) -> tuple[int, dict[str, Any]]:
        """Return the backends' report, checked at most once per ``HEALTH_CACHE_SECONDS``.

        Probes that arrive while a check is under way wait for that check instead of
        starting their own; a probe that goes away does not cancel it for the others.
        """
        cached = self._health
        if cached is not None and self.deps.clock() - cached[0] < HEALTH_CACHE_SECONDS:
            return cached[1], cached[2]
        if self._health_check is None:
            self._health_check = asyncio.ensure_future(self._check_backends())
        _at, code, body = await asyncio.shield(self._health_check)
        return code, body

    async def livez(self, request: web.Request) -> web.Response:
        """Say the process is up; no backend or store is called (cheap, for liveness probes)."""
        request[ROUTE_LABEL_KEY] = "/livez"
        body: dict[str, Any] = {"status": "SERVING"}
        if self.deps.worker is not None:  # which of the GATEWAY_WORKERS answered
            body["worker"] = self.deps.worker.index
        return web.Response(text=_dumps(body), content_type="application/json")

    async def readyz(self, request: web.Request) -> web.Response:
        """Report each backend's gRPC health and the store; 200 only when all serve.

        The answer is shared for up to ``HEALTH_CACHE_SECONDS``.
        """
        request[ROUTE_LABEL_KEY] = "/readyz"
        code, body = await self._backends_report()
        return web.Response(text=_dumps(body), status=code, content_type="application/json")

    async def healthz(self, request: web.Request) -> web.Response:
        """The same answer as ``/readyz``, under the name ``copytrade up`` waits on."""
        request[ROUTE_LABEL_KEY] = "/healthz"
        code, body = await self._backends_report()
        return web.Response(text=_dumps(body), status=code, content_type="application/json")

    async def openapi_json(self, request: web.Request) -> web.Response:
        """Serve the OpenAPI document."""
        request[ROUTE_LABEL_KEY] = "/openapi.json"
        return web.Response(text=self.openapi_text, content_type="application/json")

    async def metrics_text(self, request: web.Request) -> web.Response:
        """Serve the gateway's Prometheus metrics."""
        request[ROUTE_LABEL_KEY] = "/metrics"
        return web.Response(
            body=generate_latest(self.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    async def dashboard(self, request: web.Request) -> web.Response:
        """Serve the dashboard page (it reads the API with the token the user types)."""
        request[ROUTE_LABEL_KEY] = "/dashboard"
        return web.Response(
            text=self.dashboard_html,
            content_type="text/html",
            headers={
                "Content-Security-Policy": self.dashboard_policy,
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )


def _protocol_error_status(
    status: int,
    exc: BaseException | None,
) -> tuple[int, status_pb2.Status]:
    """Return the HTTP code and Status for an error aiohttp answers below the application."""
    if isinstance(exc, http_exceptions.LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else None
        if limit == MAX_REQUEST_LINE_BYTES:
            return 414, build_status(
                code_pb2.INVALID_ARGUMENT,
                f"the request line (method, path and query) is longer than {limit} bytes",
                reason="URI_TOO_LONG",
            )
        return 431, build_status(
            code_pb2.INVALID_ARGUMENT,
            f"a header line is longer than {MAX_HEADER_FIELD_BYTES} bytes",
            reason="HEADER_TOO_LARGE",
        )
    if (
        isinstance(exc, http_exceptions.BadHttpMessage)
        and exc.message == "Too many headers received"
    ):
        return 431, build_status(
            code_pb2.INVALID_ARGUMENT,
            f"the request has more than {MAX_HEADERS} headers",
            reason="TOO_MANY_HEADERS",
        )
    if isinstance(exc, http_exceptions.HttpProcessingError) or 400 <= status < 500:
        # The parser's own words may quote the request's bytes: they are not echoed.
        return (status if 400 <= status < 500 else 400), build_status(
            code_pb2.INVALID_ARGUMENT,
            "the request is not valid HTTP/1.1",
            reason="MALFORMED_REQUEST",
        )
    if status == 504:
        return 504, build_status(
            code_pb2.DEADLINE_EXCEEDED,
            "the request took too long",
            reason="TIMEOUT",
        )
    return 500, build_status(code_pb2.INTERNAL, "internal error", reason="INTERNAL")


class _StatusRequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler, answering in the gateway's JSON Status shape what never
    reaches the application: a request its HTTP parser refused (a URL or header too long,
    too many headers, bytes that are not HTTP), or a failure outside the middleware."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's own: logs, and refuses when part of a response was already sent.
        super().handle_error(request, status, exc, message)
        http_code, error = _protocol_error_status(status, exc)
        response = web.Response(
            text=_dumps(status_to_json(error)),
            status=http_code,
            content_type="application/json",
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )
        response.force_close()
        return response


class _StatusServer(web_server.Server):
    """An aiohttp server whose connections use :class:`_StatusRequestHandler`."""

    def __call__(self) -> web_protocol.RequestHandler:
        return _StatusRequestHandler(self, loop=self._loop, **self._kwargs)


with warnings.catch_warnings():
    # aiohttp discourages subclassing Application: this one changes nothing but the class of
    # its connection handler, which has no other hook, so that every runner (AppRunner in
    # start_gateway, the tests' TestServer) answers parser errors as JSON.
    warnings.simplefilter("ignore", DeprecationWarning)

    class _GatewayApplication(web.Application):
        def _make_handler(self, **kwargs: Any) -> web_server.Server:
            server = super()._make_handler(**kwargs)
            return _StatusServer(
                server.request_handler,
                request_factory=server.request_factory,
                handler_cancellation=server.handler_cancellation,
                loop=server._loop,
                **server._kwargs,
            )


GATEWAY_KEY = web.AppKey("gateway", Gateway)


def build_app(settings: Settings, deps: GatewayDeps | None = None) -> web.Application:
    """Build the gateway application.

    Parameters
    ----------
    settings
        The gateway's settings.
    deps
        Injected database, channels (by service full name), services or clock; what is
        missing is opened from ``settings`` at startup.

    Raises
    ------
    gateway.routes.RouteError
        When an annotation cannot be served (the message names the method).
    meshkit.settings.ConfigError
        When a service has no address.
    """
    gateway = Gateway(settings, deps or GatewayDeps())
    app = _GatewayApplication(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            *tracing.http_middlewares(untraced_paths=(events.EVENTS_PATH,)),  # its ticket
            access_log.middleware(ROUTE_LABEL_KEY, REQUEST_ID_KEY),  # docs/logging.md
            gateway.middleware,
        ],
        handler_args={
            "max_line_size": MAX_REQUEST_LINE_BYTES,
            "max_field_size": MAX_HEADER_FIELD_BYTES,
            "max_headers": MAX_HEADERS,
        },
    )
    app[GATEWAY_KEY] = gateway
    app.cleanup_ctx.append(gateway.lifecycle)
    app.router.add_get("/livez", gateway.livez)
    app.router.add_get("/readyz", gateway.readyz)
    app.router.add_get("/healthz", gateway.healthz)
    app.router.add_get("/openapi.json", gateway.openapi_json)
    app.router.add_get("/metrics", gateway.metrics_text)
    app.router.add_get("/dashboard", gateway.dashboard)
    events.install(gateway, app)  # POST /dashboard/ticket, GET /dashboard/events (SSE)
    docs_page.install(app)  # GET /docs (Swagger UI, files served here), GET /version
    app.router.add_get(audit.PATH, gateway.audit_entries)
    webhooks_api.install(  # /webhooks (docs/webhooks.md)
        gateway, app, lambda database: WebhookStore(database, settings.webhook_secret_key)
    )
    app.router.add_route("*", "/{tail:.*}", gateway.handle_api)
    return app


@dataclass
class RunningGateway:
    """A gateway serving on ``host:port``."""

    runner: web.AppRunner
    host: str
    port: int
    https: bool = False

    @property
    def url(self) -> str:
        """Return the base URL, ``http://127.0.0.1:8080`` (``https://`` with a certificate)."""
        return f"{'https' if self.https else 'http'}://{self.host}:{self.port}"

    async def close(self) -> None:
        """Stop accepting, let requests in flight finish, then close the store and channels."""
        await self.runner.cleanup()


async def start_gateway(settings: Settings, deps: GatewayDeps | None = None) -> RunningGateway:
    """Build the app and serve it on ``settings.bind_host:settings.port`` (0 picks a free port)."""
    app = build_app(settings, deps)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    ssl_context = None
    if settings.https:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        ssl_context.load_cert_chain(settings.https_cert, settings.https_key)
    elif not settings.serves_loopback_only:
        raise ConfigError(
            f"refusing plain HTTP on {settings.bind_host}: give the gateway a certificate"
        )
    else:
        log.warning(
            "serving plain HTTP on %s:%s (loopback only; GATEWAY_HTTPS_CERT and "
            "GATEWAY_HTTPS_KEY turn on HTTPS)",
            settings.bind_host,
            settings.port,
        )
    try:
        site = web.TCPSite(
            runner,
            settings.bind_host,
            settings.port,
            ssl_context=ssl_context,
            # Several workers bind the one port (gateway/workers.py); the kernel spreads them.
            reuse_port=True if deps is not None and deps.worker is not None else None,
        )
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = runner.addresses[0][1]
    return RunningGateway(runner, settings.bind_host, port, settings.https)
