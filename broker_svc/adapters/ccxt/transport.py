"""How a venue class reaches its venue: the ccxt client, its request hooks and the call wrapper.

Every HTTP request the client makes goes through the account's rate limiter first (ccxt's own
throttle is off; ccxt's per-endpoint costs are kept as the charges), and what the venue answered
is noted (:class:`Seen`) so a rate limit pauses the limiter and ccxt's few misreadings of a
status are corrected. :meth:`CcxtTransport._call` translates every failure of a venue call once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import ccxt.pro as ccxt_pro
from ccxt.base import errors as ccxt_errors

from broker_svc import metrics
from broker_svc.adapters.ccxt.capabilities import VenueCapabilities
from broker_svc.adapters.ccxt.errors import translate_error
from broker_svc.adapters.ratelimit import AccountLimiter
from broker_svc.domain.model import Credentials
from broker_svc.domain.ratelimit import ACCOUNT_SCOPE, VENUE_SCOPE, Budget, request_charges
from meshkit import errors

log = logging.getLogger("broker_svc.ccxt")

T = TypeVar("T")


@dataclass
class Seen:
    """What the venue answered to one HTTP request (filled in by ccxt's response hook)."""

    method: str = ""
    path: str = ""
    status: int | None = None
    retry_after: float | None = None
    body: str = ""


_SEEN: ContextVar[Seen | None] = ContextVar("broker_ccxt_seen", default=None)
_MAX_WAIT: ContextVar[float | None] = ContextVar("broker_ccxt_max_wait", default=None)
_RATE_LIMITED_STATUSES = (418, 429)


def retry_after_header(headers: Mapping[str, str] | None) -> float | None:
    """Return the seconds of a ``Retry-After`` header, ``None`` when absent or unreadable."""
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            try:
                return max(float(value), 0.0)
            except ValueError:
                return None
    return None


def _set_nested(target: dict[str, Any], path: Sequence[str], value: str) -> None:
    for key in path[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            child = {}
            target[key] = child
        target = child
    target[path[-1]] = value


class CcxtTransport:
    """The client of one account at one venue, and the plumbing every venue call goes through.

    Venue classes fill ``capabilities``; a venue that differs in behaviour overrides
    :meth:`_reinterpret`.
    """

    capabilities: ClassVar[VenueCapabilities]
    venue: str
    limiter: AccountLimiter
    _client: Any

    @classmethod
    def budgets(cls) -> tuple[Budget, ...]:
        """Return the venue's request budgets."""
        return tuple(cls.capabilities.rate_budgets)

    @classmethod
    def ccxt_class(cls) -> Any:
        """Return the ccxt.pro class of the venue (REST and WebSocket in one client)."""
        return getattr(ccxt_pro, cls.capabilities.ccxt_id)

    def _build_client(
        self,
        credentials: Credentials | None,
        base_url: str | None,
        timeout_ms: int,
    ) -> Any:
        config: dict[str, Any] = {
            # One limiter, ours: ccxt's throttle would queue without telling anyone.
            "enableRateLimit": False,
            "timeout": timeout_ms,
            "options": json.loads(json.dumps(self.capabilities.options)),
        }
        if credentials is not None:
            config["apiKey"] = credentials.api_key
            config["secret"] = credentials.api_secret
            if credentials.passphrase:
                config["password"] = credentials.passphrase
        client = self.ccxt_class()(config)
        # Numbers as strings: every price and quantity becomes a Decimal without a float.
        client.number = str
        if base_url:
            self.apply_url_override(client.urls, base_url)
            if base_url.startswith("http://"):
                # ccxt waits on close for TLS transports to shut down; plain HTTP has none.
                client.timeout_on_exit = 0
        return client

    @classmethod
    def apply_url_override(cls, urls: dict[str, Any], base_url: str) -> None:
        """Point the client's API URLs at ``base_url`` (an emulator), as the venue's data says."""
        base = base_url.rstrip("/")
        ws_base = "ws" + base.removeprefix("http")
        for path, suffix in cls.capabilities.url_overrides.items():
            root = ws_base if path[0] == "ws" else base
            if path == ("ws",):
                urls.setdefault("api", {})["ws"] = root + suffix
            else:
                _set_nested(urls.setdefault("api", {}), path, root + suffix)

    def _install_rest_hooks(self, client: Any) -> None:
        """Route every HTTP request through the rate limiter and note what the venue answered."""
        fetch2 = client.fetch2
        on_rest_response = client.on_rest_response
        has = self.capabilities
        rules = tuple(has.request_charges)
        scale = float(has.ccxt_cost_scale)
        scopes = {b.name: b.scope for b in self.budgets()}
        serial = self.limiter.serial if has.serialise_requests else None

        async def limited_fetch2(
            path: Any,
            api: Any = "public",
            method: str = "GET",
            params: Any = None,
            config: Any = None,
        ) -> Any:
            params = {} if params is None else params
            config = {} if config is None else config
            cost = client.calculate_rate_limiter_cost(api, method, path, params, config)
            charges = request_charges(rules, api, method, str(path), cost, scale)
            async with (
                serial if serial is not None else contextlib.nullcontext(),
                self.limiter.turn(charges, _MAX_WAIT.get()),
            ):
                seen = Seen(method.upper(), str(path))
                token = _SEEN.set(seen)
                try:
                    return await fetch2(path, api, method, params, config)
                except ccxt_errors.BaseError as e:
                    scope = (
                        VENUE_SCOPE
                        if any(scopes.get(name) == VENUE_SCOPE for name in charges)
                        else ACCOUNT_SCOPE
                    )
                    raise self._after_failure(e, seen, scope) from e
                finally:
                    _SEEN.reset(token)

        def seen_response(
            code: Any,
            reason: Any,
            url: Any,
            method: Any,
            headers: Any,
            body: Any,
            request_headers: Any,
            request_body: Any,
        ) -> Any:
            seen = _SEEN.get()
            if seen is not None:
                seen.status = int(code) if code is not None else None
                seen.retry_after = retry_after_header(headers)
                seen.body = body if isinstance(body, str) and len(body) < 65_536 else ""
            return on_rest_response(
                code, reason, url, method, headers, body, request_headers, request_body
            )

        client.fetch2 = limited_fetch2
        client.on_rest_response = seen_response
        if has.monotonic_nonce:
            client.nonce = self.limiter.next_nonce

    def _after_failure(
        self, error: ccxt_errors.BaseError, seen: Seen, scope: str
    ) -> ccxt_errors.BaseError:
        """Pause after a rate limit and correct ccxt's few misreadings of a status."""
        error = self._reinterpret(error, seen)
        rate_limited = seen.status in _RATE_LIMITED_STATUSES or isinstance(
            error, ccxt_errors.RateLimitExceeded
        )
        if isinstance(error, ccxt_errors.DDoSProtection):
            if seen.status in (401, 403):
                # ccxt binance raises DDoSProtection for -2015 once a key has worked before.
                return ccxt_errors.AuthenticationError(str(error))
            rate_limited = True
        if not rate_limited:
            return error
        pause = seen.retry_after
        if pause is None:
            text = str(error)
            pause = float(self.capabilities.rate_limited_pause_seconds)
            for marker, seconds in self.capabilities.rate_limited_pauses:
                if marker in text:
                    pause = float(seconds)
                    break
        self.limiter.pause(pause, scope)
        metrics.VENUE_RATE_LIMITED.labels(self.venue, str(seen.status or "body")).inc()
        if self._banned(error, seen):
            metrics.VENUE_BANS.labels(self.venue).inc()
            log.error("venue ban: %s status %s; pausing for %.1f s", self.venue, seen.status, pause)
        log.warning(
            "venue rate limit hit: %s status %s; pausing the %s for %.1f s",
            self.venue,
            seen.status,
            scope,
            pause,
        )
        if isinstance(error, ccxt_errors.DDoSProtection | ccxt_errors.RateLimitExceeded):
            return error
        return ccxt_errors.RateLimitExceeded(str(error))

    def _banned(self, error: ccxt_errors.BaseError, seen: Seen) -> bool:
        """Return whether the venue's answer says the broker is banned or locked out."""
        if seen.status is not None and seen.status in self.capabilities.ban_statuses:
            return True
        text = f"{error} {seen.body}"
        return any(marker in text for marker in self.capabilities.ban_markers)

    def _reinterpret(self, error: ccxt_errors.BaseError, seen: Seen) -> ccxt_errors.BaseError:
        """Return the exception ccxt should have raised for this answer (venues override)."""
        return error

    async def _call(
        self,
        method: str,
        action: Callable[[], Awaitable[T]],
        *,
        creating: bool = False,
        max_wait: float | None = None,
    ) -> T:
        """Run one venue call, counting it and translating its failure once."""
        token = _MAX_WAIT.set(max_wait)
        try:
            result = await action()
        except asyncio.CancelledError:
            raise
        except errors.ServiceError as e:
            metrics.VENUE_REQUESTS.labels(self.venue, method, metrics.venue_outcome(e.reason)).inc()
            raise
        except Exception as e:
            retry_after = self.limiter.paused_for() or retry_after_header(
                getattr(self._client, "last_response_headers", None)
            )
            translated = translate_error(
                e,
                creating=creating,
                venue=self.venue,
                capabilities=self.capabilities,
                retry_after=retry_after,
            )
            metrics.VENUE_REQUESTS.labels(
                self.venue, method, metrics.venue_outcome(translated.reason)
            ).inc()
            log.warning(
                "venue call failed: %s %s %s -> %s",
                self.venue,
                method,
                type(e).__name__,
                translated.reason,
            )
            raise translated from None
        finally:
            _MAX_WAIT.reset(token)
        metrics.VENUE_REQUESTS.labels(self.venue, method, "ok").inc()
        return result
