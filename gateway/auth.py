"""Who may call what: bearer tokens, the plan gate and per-user rate limits.

Plan gate (docs/design.md §4.1): every route whose template lies under
``/api/institutional/copy-trading`` is a copy-trading endpoint and needs the ``pro``
plan, except the RPCs in :data:`OPEN_TO_EVERY_PLAN` (today only
``GET /supported-exchanges``: the venue catalogue, which any authenticated user may
read to decide whether to upgrade). Routes outside that prefix need a valid token
but no plan. ``routes.json`` and ``openapi.json`` (``x-copytrade-plan``) list the
plan of every route.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from google.rpc import code_pb2

from gateway.errors import HttpError
from gateway.routes import Route

COPY_TRADING_PREFIX = "/api/institutional/copy-trading/"
OPEN_TO_EVERY_PLAN = frozenset(
    {
        "copytrade.broker.v1.BrokerService.ListSupportedExchanges",
    }
)
PLANS = ("pro", "free")
PRO = "pro"
ANY_PLAN = "any"
_REALM = 'Bearer realm="copytrade"'
MAX_TOKEN_LENGTH = 256
# RFC 6750 b64token: the only characters a bearer token may have (ASCII, no spaces).
_B64TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*\Z")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    plan: str


def required_plan(route: Route) -> str:
    """Return ``"pro"`` for a copy-trading route, ``"any"`` for the others."""
    if route.rpc in OPEN_TO_EVERY_PLAN:
        return ANY_PLAN
    if route.template.startswith(COPY_TRADING_PREFIX):
        return PRO
    return ANY_PLAN


def check_plan(principal: Principal, route: Route) -> None:
    """Refuse a route the caller's plan does not include with 403 PERMISSION_DENIED."""
    needed = required_plan(route)
    if needed != ANY_PLAN and principal.plan != needed:
        raise HttpError(
            code_pb2.PERMISSION_DENIED,
            f"this endpoint needs the {needed} plan; your plan is {principal.plan}",
            reason="PLAN_REQUIRED",
            metadata={"required_plan": needed, "plan": principal.plan},
        )


def bearer_token(header: str | None) -> str:
    """Return the token of an ``Authorization: Bearer <token>`` header.

    Raises
    ------
    HttpError
        401 with ``WWW-Authenticate: Bearer`` when the header is missing or malformed.
    """
    if not header:
        raise unauthenticated(
            "an Authorization: Bearer <token> header is required",
            "TOKEN_MISSING",
        )
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if (
        scheme.lower() != "bearer"
        or not token
        or len(token) > MAX_TOKEN_LENGTH
        or not _B64TOKEN.match(token)
    ):
        raise unauthenticated("the Authorization header must be 'Bearer <token>'", "TOKEN_INVALID")
    return token


def unauthenticated(message: str, reason: str) -> HttpError:
    """Return a 401 with the ``WWW-Authenticate`` challenge of RFC 6750."""
    challenge = _REALM if reason == "TOKEN_MISSING" else f'{_REALM}, error="invalid_token"'
    return HttpError(
        code_pb2.UNAUTHENTICATED,
        message,
        reason=reason,
        headers={"WWW-Authenticate": challenge},
    )


class SharedLimit(Protocol):
    """Buckets several worker processes share (:class:`gateway.workers.SharedBuckets`)."""

    def acquire(self, key: str, now: float) -> float:
        """Take one token for ``key``; return 0 when allowed, else the seconds to wait."""
        ...


class RateLimiter:
    """A token bucket per key (a user, a client address): ``rate`` requests a second on
    average, ``burst`` at once.

    A ``rate`` of 0 turns limiting off. ``clock`` returns monotonic seconds. ``reason`` and
    ``scope`` name the limit in the 429 it answers. :meth:`share` makes the buckets those
    of every worker of the gateway (``GATEWAY_WORKERS``), so the limit stays per user.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        reason: str = "RATE_LIMITED",
        scope: str = "",
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self.clock = clock
        self.reason = reason
        self.scope = scope
        self._buckets: dict[str, tuple[float, float]] = {}
        self._shared: SharedLimit | None = None

    def share(self, shared: SharedLimit) -> None:
        """Take tokens from ``shared`` (the workers' common buckets) from now on."""
        self._shared = shared

    def acquire(self, key: str) -> float:
        """Take one token for ``key``; return 0 when allowed, else the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        if self._shared is not None:
            return self._shared.acquire(key, self.clock())
        return self.acquire_here(key)

    def acquire_here(self, key: str) -> float:
        """Take one token for ``key`` from this process's own bucket."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            self._prune(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def check(self, key: str) -> None:
        """Take one token for ``key`` or refuse with 429 and ``Retry-After``."""
        wait = self.acquire(key)
        if wait > 0:
            scope = f" {self.scope}" if self.scope else ""
            raise HttpError(
                code_pb2.RESOURCE_EXHAUSTED,
                f"too many requests{scope}: at most {self.rate:g} a second"
                f" (bursts of {self.burst})",
                reason=self.reason,
                retry_after=float(max(1, math.ceil(wait))),
            )

    def _prune(self, now: float) -> None:
        if len(self._buckets) < 10_000:
            return
        refill = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill}
