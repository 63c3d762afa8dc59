"""One JSON access line per REST request of the gateway (logger ``gateway.access``).

Each line carries, besides :mod:`meshkit.logs`' fields: ``method``; ``route``, the route
template (``/api/v1/orders/{config_id}``; never the raw path, which holds ids, nor the query,
which may hold a ticket); ``status``; ``latency_ms``; ``user_hash``, the first 16 hex digits of
the SHA-256 of the caller's user id once the token was accepted (never the token, never the
user id); and ``request_id`` (the ``X-Request-Id`` the response carries). A request whose
client went away before the answer has status 499. Health probes and metric scrapes are logged
at DEBUG, everything else at INFO. Operators' guide: docs/logging.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

log = logging.getLogger("gateway.access")

USER_KEY = web.RequestKey("access_log_user_id", str)
"""Where the gateway puts the id of the caller it authenticated (hashed before logging)."""
QUIET_ROUTES = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
"""Probes and scrapes: logged at DEBUG, so that INFO is the users' requests."""
CLIENT_CLOSED = 499
"""The status logged for a request whose client went away before the answer (nginx's)."""


def user_hash(user_id: str) -> str:
    """Return the first 16 hex digits of the SHA-256 of ``user_id`` (what the log shows)."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


def middleware(
    route_key: web.RequestKey[str],
    request_id_key: web.RequestKey[str],
) -> Middleware:
    """Return the middleware that logs one access line per request.

    Parameters
    ----------
    route_key
        Where the gateway puts the route template it matched (``unmatched`` when none).
    request_id_key
        Where the gateway puts the request id.

    Place it before (outside) the gateway's own middleware, which turns every failure into
    a response, so that the status logged is the one sent.
    """

    @web.middleware
    async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = CLIENT_CLOSED
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        except asyncio.CancelledError:
            raise
        except Exception:
            status = 500
            raise
        finally:
            _log(request, status, started, route_key, request_id_key)

    return access_log


def _route(request: web.Request, route_key: web.RequestKey[str]) -> str:
    label = request.get(route_key)
    if label and label != "unmatched":
        return label
    # A route of the app's own router (aiohttp's template), never the catch-all's raw path.
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    return canonical if canonical and "{tail}" not in canonical else "unmatched"


def _log(
    request: web.Request,
    status: int,
    started: float,
    route_key: web.RequestKey[str],
    request_id_key: web.RequestKey[str],
) -> None:
    route = _route(request, route_key)
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    fields: dict[str, object] = {
        "method": request.method,
        "route": route,
        "status": status,
        "latency_ms": latency_ms,
    }
    user_id = request.get(USER_KEY)
    if user_id:
        fields["user_hash"] = user_hash(user_id)
    request_id = request.get(request_id_key)
    if request_id:
        fields["request_id"] = request_id
    level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
    log.log(
        level,
        "%s %s %s %.1f ms",
        request.method,
        route,
        status,
        latency_ms,
        extra={"fields": fields},
    )
