"""The live exchange port: one ``ccxt.pro`` client per account, for REST and WebSocket.

Per-venue differences are data (the ``_has`` capability dict, in the spirit of freqtrade's
``_ft_has``) or a tiny subclass per venue; the shared code never branches on a venue's name.
Every ccxt exception is translated here, once, into a :mod:`meshkit.errors` type whose message
is the venue's own short text, never ccxt's full string (which can hold URLs and params).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar

import ccxt.pro as ccxt_pro
from ccxt.base import errors as ccxt_errors
from ccxt.base.decimal_to_precision import TICK_SIZE

from broker_svc import metrics
from broker_svc.adapters.ratelimit import AccountLimiter, RateLimits
from broker_svc.domain.model import (
    Balance,
    Candle,
    Credentials,
    Fill,
    KeyPermissions,
    Market,
    Order,
    OrderHint,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    RateLimit,
    StreamEvent,
    StreamState,
    TimeInForce,
    VenueProfile,
    WatchChannel,
)
from broker_svc.domain.ratelimit import ACCOUNT_SCOPE, VENUE_SCOPE, Budget, request_charges
from meshkit import errors

log = logging.getLogger("broker_svc.ccxt")

T = TypeVar("T")

_CCXT_STATUS = {
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}
_TIME_IN_FORCE = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
_GENERIC_TEXT = {
    "INSUFFICIENT_FUNDS": "the account has insufficient funds for this order",
    "BROKER_CREDENTIALS_REJECTED": "the venue rejected the account's API credentials",
    "INVALID_SYMBOL": "the venue does not know this symbol",
    "INVALID_ORDER": "the venue rejected the order",
    "BELOW_MIN_NOTIONAL": "the order is below the venue's minimum notional",
    "DUPLICATE_CLIENT_ORDER_ID": "the venue already holds an order with this client order id",
    "ORDER_NOT_FOUND": "the venue has no order with this client order id",
    "RATE_LIMITED": "the venue's rate limit was reached; retry later",
    "ORDER_OUTCOME_UNKNOWN": (
        "the venue did not confirm the order; look it up by client_order_id, never resend blindly"
    ),
    "VENUE_UNAVAILABLE": "the venue could not be reached",
    "VENUE_REJECTED": "the venue refused the request",
    "VENUE_ERROR": "the venue answered with an error",
    "NOT_SUPPORTED": "the venue does not support this",
}
DEFAULT_RETRY_AFTER = 1.0


def to_decimal(value: Any) -> Decimal | None:
    """Convert a ccxt number (a string when ``number = str``, else float or int) to ``Decimal``."""
    if value is None or value == "":
        return None
    try:
        result = Decimal(value if isinstance(value, str) else repr(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return result if result.is_finite() else None


def from_millis(value: Any) -> datetime | None:
    """Convert epoch milliseconds to an aware UTC datetime; none or a non-positive one is ``None``.

    Binance reports ``workingTime: -1`` for a stop order that has not triggered yet.
    """
    try:
        millis = int(value)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(millis / 1000, UTC) if millis > 0 else None


def to_millis(value: datetime) -> int:
    """Convert an aware datetime to epoch milliseconds."""
    return int(value.timestamp() * 1000)


def venue_text(error: BaseException, venue: str, message_keys: Sequence[str] = ("msg",)) -> str:
    """Return the venue's own short text from a ccxt error, or ``""`` when there is none.

    ccxt builds messages as ``"<venue> <body>"`` or ``"<venue> <text> <body>"``; the body is the
    venue's JSON. Only the JSON's message field is kept. A message without JSON is kept only when
    it cannot carry a URL or request parameters.
    """
    text = str(error)
    start = text.find("{")
    while start >= 0:
        try:
            body, _ = json.JSONDecoder().raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(body, dict):
            for key in message_keys:
                value = body.get(key)
                if isinstance(value, str) and value.strip():
                    return _short(value)
                if isinstance(value, list) and value and isinstance(value[0], str):
                    return _short("; ".join(value))
        return ""
    rest = text.removeprefix(venue).strip()
    if not rest or len(rest) > 200 or any(mark in rest for mark in ("://", "?", "=", "&", "{")):
        return ""
    return rest


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."


def _contains_any(text: str, markers: Sequence[str]) -> bool:
    return any(marker.lower() in text.lower() for marker in markers)


def translate_error(
    error: BaseException,
    *,
    creating: bool,
    venue: str,
    capabilities: Mapping[str, Any],
    retry_after: float | None = None,
) -> errors.ServiceError:
    """Translate a ccxt (or parsing) exception into the service error callers rely on.

    ``creating`` marks an order placement: any ambiguous failure there (a timeout, a 5xx, a
    dropped connection, an unparseable or unexpected answer) becomes ``OutcomeUnknown``, so the
    caller looks the order up instead of resending it. On reads the same failures are
    ``Unavailable``.
    """
    text = venue_text(error, venue, capabilities.get("error_message_keys", ("msg",)))

    def say(reason: str) -> str:
        return text or _GENERIC_TEXT[reason]

    if isinstance(error, ccxt_errors.OrderNotFound):
        return errors.NotFound(say("ORDER_NOT_FOUND"), reason="ORDER_NOT_FOUND")
    if isinstance(error, ccxt_errors.DuplicateOrderId) or (
        isinstance(error, ccxt_errors.ExchangeError)
        and _contains_any(text, capabilities.get("duplicate_client_order_id_markers", ()))
    ):
        return errors.FailedPrecondition(
            say("DUPLICATE_CLIENT_ORDER_ID"),
            reason="DUPLICATE_CLIENT_ORDER_ID",
        )
    if isinstance(error, ccxt_errors.InsufficientFunds):
        return errors.FailedPrecondition(say("INSUFFICIENT_FUNDS"), reason="INSUFFICIENT_FUNDS")
    if isinstance(error, ccxt_errors.AuthenticationError):
        return errors.FailedPrecondition(
            say("BROKER_CREDENTIALS_REJECTED"),
            reason="BROKER_CREDENTIALS_REJECTED",
        )
    exchange_error = isinstance(error, ccxt_errors.ExchangeError)
    if exchange_error and _contains_any(text, capabilities.get("credentials_markers", ())):
        return errors.FailedPrecondition(
            say("BROKER_CREDENTIALS_REJECTED"),
            reason="BROKER_CREDENTIALS_REJECTED",
        )
    if isinstance(error, ccxt_errors.BadSymbol) or (
        exchange_error and _contains_any(text, capabilities.get("symbol_markers", ()))
    ):
        return errors.InvalidArgument(
            errors.FieldViolation("symbol", say("INVALID_SYMBOL")),
            reason="INVALID_SYMBOL",
        )
    if isinstance(
        error,
        ccxt_errors.InvalidOrder | ccxt_errors.BadRequest | ccxt_errors.ArgumentsRequired,
    ) or (exchange_error and _contains_any(text, capabilities.get("rejection_markers", ()))):
        # A venue rejection names what it refused: nothing was placed.
        if _contains_any(text, capabilities.get("below_min_notional_markers", ())):
            return errors.InvalidArgument(
                errors.FieldViolation("quantity", say("BELOW_MIN_NOTIONAL")),
                reason="BELOW_MIN_NOTIONAL",
            )
        field = ""
        for marker, name in capabilities.get("rejection_fields", {}).items():
            if marker.lower() in text.lower():
                field = name
                break
        return errors.InvalidArgument(
            errors.FieldViolation(field, say("INVALID_ORDER")),
            reason="INVALID_ORDER",
        )
    if isinstance(error, ccxt_errors.DDoSProtection | ccxt_errors.RateLimitExceeded):
        return errors.ResourceExhausted(
            say("RATE_LIMITED"),
            retry_after=retry_after or DEFAULT_RETRY_AFTER,
            reason="RATE_LIMITED",
        )
    if isinstance(error, ccxt_errors.NotSupported):
        return errors.Unimplemented(say("NOT_SUPPORTED"), reason="NOT_SUPPORTED")
    if creating:
        # A timeout, a 5xx, a dropped connection, an unmapped venue error or an answer that did
        # not parse: the order may exist. Never retried here.
        return errors.OutcomeUnknown(_GENERIC_TEXT["ORDER_OUTCOME_UNKNOWN"])
    if isinstance(error, ccxt_errors.OperationRejected):
        return errors.FailedPrecondition(say("VENUE_REJECTED"), reason="VENUE_REJECTED")
    if isinstance(error, ccxt_errors.OperationFailed):
        return errors.Unavailable(
            _GENERIC_TEXT["VENUE_UNAVAILABLE"],
            retry_after=retry_after or DEFAULT_RETRY_AFTER,
            reason="VENUE_UNAVAILABLE",
        )
    if isinstance(error, ccxt_errors.BaseError):
        return errors.ServiceError(say("VENUE_ERROR"), reason="VENUE_ERROR")
    return errors.ServiceError(_GENERIC_TEXT["VENUE_ERROR"], reason="VENUE_ERROR")


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
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


@dataclass
class _Seen:
    """What the venue answered to one HTTP request (filled in by ccxt's response hook)."""

    method: str = ""
    path: str = ""
    status: int | None = None
    retry_after: float | None = None
    body: str = ""


_SEEN: ContextVar[_Seen | None] = ContextVar("broker_ccxt_seen", default=None)
_MAX_WAIT: ContextVar[float | None] = ContextVar("broker_ccxt_max_wait", default=None)
_RATE_LIMITED_STATUSES = (418, 429)
_STREAM_WAIT_SECONDS = 60.0
"""How long a venue stream (re)connection may wait for its turn in the rate limits."""


class CcxtExchange:
    """One account at one venue through one ``ccxt.pro`` client (REST and WebSocket).

    Subclasses name the ccxt class and fill ``_has``; the base class reads only that data, plus
    a few small hooks a subclass may override where a venue differs in behaviour, not in data.
    Every HTTP request the client makes goes through the account's rate limiter first
    (ccxt's own throttle is off; ccxt's per-endpoint costs are kept as the charges).

    Parameters
    ----------
    credentials
        The account's keys, or ``None`` for a public client (markets and tickers only).
    base_url
        Where the venue's API lives (an emulator); ``None`` means the real venue.
    timeout_ms
        The ccxt timeout of each call.
    client
        A ready client, for tests; by default one is built from ``_has``.
    limits
        The process's rate limiter; by default one private to this connection.
    """

    _has: ClassVar[dict[str, Any]] = {
        "ccxt_id": "",
        "required_ccxt_has": (
            "fetchMarkets",
            "fetchBalance",
            "createOrder",
            "fetchOrder",
            "cancelOrder",
            "fetchMyTrades",
            "fetchOrders",
            "fetchTicker",
            "fetchOHLCV",
            "watchOrders",
        ),
        "options": {},
        "url_overrides": {},
        "client_order_id_param": "clientOrderId",
        "lookup_client_order_id_param": "clientOrderId",
        "stop_price_param": "stopPrice",
        "symbol_required_for_lookup": True,
        "symbol_required_for_history": True,
        "history_window_seconds": 86_400,
        "history_page_limit": 1000,
        "history_paging": "cursor",
        "history_max_pages": 20,
        "order_types": (OrderType.MARKET, OrderType.LIMIT),
        "time_in_forces": (TimeInForce.GTC,),
        "order_types_in": {"market": OrderType.MARKET, "limit": OrderType.LIMIT},
        "main_quote": "USD",
        "features": (),
        "error_message_keys": ("msg", "message"),
        "below_min_notional_markers": (),
        "duplicate_client_order_id_markers": (),
        "rejection_fields": {},
        "resend_safe_after_seconds": 60.0,
        # Rate limits (docs/exchange-protocols.md; the venue's own documented budgets).
        "rate_budgets": (),
        "request_charges": (),
        "ccxt_cost_scale": 1.0,
        "rate_limited_pauses": (),
        "rate_limited_pause_seconds": 1.0,
        "serialise_requests": False,
        "monotonic_nonce": False,
        # Streams.
        "watch_methods": {
            WatchChannel.ORDERS: "watch_orders",
            WatchChannel.FILLS: "watch_my_trades",
        },
        "ws_connect_charges": {},
        "ws_backoff_seconds": (0.5, 30.0),
        "stream_ack_timeout_seconds": 10.0,
        "trade_client_order_id_keys": ("clientOrderId",),
    }

    def __init__(
        self,
        credentials: Credentials | None,
        *,
        base_url: str | None = None,
        timeout_ms: int = 10_000,
        client: Any | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        self.venue: str = self._has["ccxt_id"]
        limits = limits or RateLimits()
        self.limiter: AccountLimiter = limits.account(
            self.venue,
            self.budgets(),
            credentials.api_key if credentials else None,
        )
        built = client is None
        if client is None:
            client = self._build_client(credentials, base_url, timeout_ms)
        self._client = client
        if built:
            self._install_hooks(client)
        self._markets: dict[str, Market] | None = None
        self._markets_lock = asyncio.Lock()
        self._closed = False
        self._pumps: dict[str, _Pump] = {}
        self._stream_ready = asyncio.Event()
        self._last_sequence: int | None = None
        self.check_capabilities(self._client.has)
        metrics.BROKER_CONNECTIONS.labels(self.venue).inc()

    # Construction -----------------------------------------------------------------------------

    @classmethod
    def budgets(cls) -> tuple[Budget, ...]:
        """Return the venue's request budgets."""
        return tuple(cls._has["rate_budgets"])

    @classmethod
    def profile(cls) -> VenueProfile:
        """Return what the broker can do at this venue, from the capability data."""
        has = cls._has
        return VenueProfile(
            name=has["ccxt_id"],
            order_types=tuple(has["order_types"]),
            time_in_forces=tuple(has["time_in_forces"]),
            features=tuple(has["features"]),
            rate_limits=tuple(
                RateLimit(b.name, b.limit, int(b.interval_seconds)) for b in cls.budgets()
            ),
            main_quote=has["main_quote"],
            symbol_required_for_lookup=has["symbol_required_for_lookup"],
            resend_safe_after_seconds=float(has["resend_safe_after_seconds"]),
        )

    @classmethod
    def check_capabilities(cls, has: Mapping[str, Any]) -> None:
        """Fail when the ccxt ``has`` table lacks a method the broker needs at this venue."""
        missing = [name for name in cls._has["required_ccxt_has"] if not has.get(name)]
        if missing:
            raise RuntimeError(f"ccxt {cls._has['ccxt_id']} lacks {', '.join(missing)}")

    @classmethod
    def ccxt_class(cls) -> Any:
        """Return the ccxt.pro class of the venue (REST and WebSocket in one client)."""
        return getattr(ccxt_pro, cls._has["ccxt_id"])

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
            "options": json.loads(json.dumps(self._has["options"])),
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
        for path, suffix in cls._has["url_overrides"].items():
            root = ws_base if path[0] == "ws" else base
            if path == ("ws",):
                urls.setdefault("api", {})["ws"] = root + suffix
            else:
                _set_nested(urls.setdefault("api", {}), path, root + suffix)

    def _install_hooks(self, client: Any) -> None:
        """Route every HTTP request through the rate limiter and watch the streams' messages."""
        fetch2 = client.fetch2
        on_rest_response = client.on_rest_response
        rules = tuple(self._has["request_charges"])
        scale = float(self._has["ccxt_cost_scale"])
        scopes = {b.name: b.scope for b in self.budgets()}
        serial = self.limiter.serial if self._has["serialise_requests"] else None

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
            async with serial if serial is not None else contextlib.nullcontext():
                async with self.limiter.turn(charges, _MAX_WAIT.get()):
                    seen = _Seen(method.upper(), str(path))
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
                seen.retry_after = _retry_after(headers)
                seen.body = body if isinstance(body, str) and len(body) < 65_536 else ""
            return on_rest_response(
                code, reason, url, method, headers, body, request_headers, request_body
            )

        client.fetch2 = limited_fetch2
        client.on_rest_response = seen_response
        if self._has["monotonic_nonce"]:
            client.nonce = self.limiter.next_nonce
        handle_message, on_close, on_error = (
            client.handle_message,
            client.on_close,
            client.on_error,
        )

        def seen_message(ws_client: Any, message: Any) -> Any:
            self._on_stream_message(message)
            return handle_message(ws_client, message)

        def seen_close(ws_client: Any, error: Any) -> Any:
            self._on_stream_down()
            return on_close(ws_client, error)

        def seen_error(ws_client: Any, error: Any) -> Any:
            self._on_stream_down()
            return on_error(ws_client, error)

        client.handle_message = seen_message
        client.on_close = seen_close
        client.on_error = seen_error

    def _after_failure(
        self, error: ccxt_errors.BaseError, seen: _Seen, scope: str
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
            pause = float(self._has["rate_limited_pause_seconds"])
            for marker, seconds in self._has["rate_limited_pauses"]:
                if marker in text:
                    pause = float(seconds)
                    break
        self.limiter.pause(pause, scope)
        metrics.VENUE_RATE_LIMITED.labels(self.venue, str(seen.status or "body")).inc()
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

    def _reinterpret(self, error: ccxt_errors.BaseError, seen: _Seen) -> ccxt_errors.BaseError:
        """Return the exception ccxt should have raised for this answer (venues override)."""
        return error

    async def close(self) -> None:
        """Stop the streams and close the ccxt client's HTTP session and sockets."""
        if not self._closed:
            self._closed = True
            for pump in list(self._pumps.values()):
                pump.task.cancel()
                pump.publish("end", None)
            self._pumps.clear()
            metrics.BROKER_CONNECTIONS.labels(self.venue).dec()
            await self._client.close()

    # Calls ------------------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        action: Callable[[], Awaitable[T]],
        *,
        creating: bool = False,
        max_wait: float | None = None,
    ) -> T:
        token = _MAX_WAIT.set(max_wait)
        try:
            result = await action()
        except asyncio.CancelledError:
            raise
        except errors.ServiceError as e:
            metrics.VENUE_REQUESTS.labels(self.venue, method, e.reason.lower()).inc()
            raise
        except Exception as e:
            retry_after = self.limiter.paused_for() or _retry_after(
                getattr(self._client, "last_response_headers", None)
            )
            translated = translate_error(
                e,
                creating=creating,
                venue=self.venue,
                capabilities=self._has,
                retry_after=retry_after,
            )
            metrics.VENUE_REQUESTS.labels(self.venue, method, translated.reason.lower()).inc()
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

    async def load_markets(self) -> Mapping[str, Market]:
        """Return the venue's markets, loaded once per client."""
        if self._markets is not None:
            return self._markets
        async with self._markets_lock:
            if self._markets is None:
                raw = await self._call("load_markets", self._client.load_markets)
                self._markets = {
                    symbol: self._market(entry)
                    for symbol, entry in raw.items()
                    if entry.get("spot", True)
                }
        return self._markets

    async def place_order(self, request: OrderRequest) -> Order:
        """Place ``request`` with its client order id passed natively."""
        kind, params = self._order_arguments(request)
        params[self._has["client_order_id_param"]] = request.client_order_id

        async def action() -> Order:
            raw = await self._client.create_order(
                request.symbol,
                kind,
                request.side.value,
                str(request.quantity),
                None if request.price is None else str(request.price),
                params,
            )
            return await self._placed(request, raw)

        return await self._call("create_order", action, creating=True)

    async def _placed(self, request: OrderRequest, raw: Mapping[str, Any]) -> Order:
        """Turn the venue's answer to a create into the order (venues answering less override)."""
        order = self._order(raw)
        if order.client_order_id and order.client_order_id != request.client_order_id:
            raise ValueError("the venue answered with another order")
        return replace(order, client_order_id=request.client_order_id)

    async def _read_back(self, request: OrderRequest, venue_order_id: str) -> Order:
        """Read an order the venue has just taken (its create answered with the id only).

        The create succeeded: the venue has the order. A venue may not show a new order to
        queries for a while (its not-found lag), so a failed read-back is no verdict on the
        order: it is reported open with nothing filled, and lookups by client order id follow
        it from there. Raising here would turn an order the venue holds into a reject.
        """
        try:
            raw = await self._client.fetch_order(venue_order_id, request.symbol)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning(
                "%s took order %s but could not show it yet (%s); reported open until a lookup"
                " finds it",
                self.venue,
                request.client_order_id,
                type(e).__name__,
            )
            metrics.VENUE_REQUESTS.labels(self.venue, "fetch_order", "read_back_failed").inc()
            return Order.taken(request, venue_order_id)
        return self._order(raw)

    def _order_arguments(self, request: OrderRequest) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {}
        kind = "limit" if request.type.has_limit_price else "market"
        if request.type.has_stop_price and request.stop_price is not None:
            params[self._has["stop_price_param"]] = str(request.stop_price)
        if request.type.has_limit_price:
            tif = request.time_in_force or TimeInForce.GTC
            params["timeInForce"] = tif.value.upper()
        return kind, params

    async def fetch_order(
        self,
        client_order_id: str,
        symbol: str,
        hint: OrderHint | None = None,
    ) -> Order:
        """Look an order up by its client order id (``hint`` may make it cheaper)."""

        async def action() -> Order:
            raw = await self._raw_order_by_client_id(client_order_id, symbol, hint)
            return replace(self._order(raw), client_order_id=client_order_id)

        return await self._call("fetch_order", action)

    async def _raw_order_by_client_id(
        self, client_order_id: str, symbol: str, hint: OrderHint | None
    ) -> Any:
        """Return ccxt's order for ``client_order_id`` (venues without such a lookup override)."""
        params = {self._has["lookup_client_order_id_param"]: client_order_id}
        return await self._client.fetch_order(None, symbol or None, params)

    async def cancel_order(
        self,
        client_order_id: str,
        symbol: str,
        hint: OrderHint | None = None,
    ) -> Order:
        """Cancel an order by its client order id."""

        async def action() -> Order:
            # A cancel answer may carry the cancel request's own id (Binance's clientOrderId);
            # the order is the one looked up by ``client_order_id``.
            raw = await self._cancel_by_client_id(client_order_id, symbol, hint)
            return replace(self._order(raw), client_order_id=client_order_id)

        return await self._call("cancel_order", action)

    async def _cancel_by_client_id(
        self, client_order_id: str, symbol: str, hint: OrderHint | None
    ) -> Any:
        """Cancel at the venue and return ccxt's order (venues answering less override)."""
        params = {self._has["lookup_client_order_id_param"]: client_order_id}
        return await self._client.cancel_order(None, symbol or None, params)

    async def _history_symbols(self, symbols: Sequence[str]) -> list[str | None]:
        if symbols:
            return list(dict.fromkeys(symbols))
        if not self._has["symbol_required_for_history"]:
            return [None]
        markets = await self.load_markets()
        return [symbol for symbol, market in sorted(markets.items()) if market.active]

    async def _paged(
        self,
        method: str,
        fetch: Callable[
            [str | None, int | None, int, dict[str, Any]], Awaitable[list[dict[str, Any]]]
        ],
        symbol: str | None,
        start_ms: int | None,
        end_ms: int | None,
    ) -> list[dict[str, Any]]:
        limit = int(self._has["history_page_limit"])
        if self._has["history_paging"] == "offset":
            # Newest first, ``limit`` a page, paged by offset (Kraken's ``ofs``).
            found: dict[str, dict[str, Any]] = {}
            extra = {} if end_ms is None else {"until": end_ms}
            for page in range(int(self._has["history_max_pages"])):
                batch = await self._call(
                    method,
                    lambda o=page * limit: fetch(symbol, start_ms, None, {"ofs": o, **extra}),
                )
                for entry in batch:
                    found[str(entry.get("id"))] = entry
                if len(batch) < limit:
                    break
            return list(found.values())
        if start_ms is None:
            return await self._call(method, lambda: fetch(symbol, None, limit, {}))
        window = int(self._has["history_window_seconds"]) * 1000
        end = end_ms if end_ms is not None else int(time.time() * 1000) + 1
        seen: dict[str, dict[str, Any]] = {}
        window_start = start_ms
        while window_start < end:
            window_end = min(window_start + window, end)
            cursor = window_start
            while True:
                params = {"until": window_end - 1}
                page = await self._call(
                    method,
                    lambda c=cursor, p=params: fetch(symbol, c, limit, p),
                )
                for entry in page:
                    seen[str(entry.get("id"))] = entry
                if len(page) < limit:
                    break
                last = max(int(entry.get("timestamp") or cursor) for entry in page)
                if last <= cursor:
                    break
                cursor = last
            window_start = window_end
        return list(seen.values())

    async def fetch_orders(
        self,
        symbols: Sequence[str],
        start: datetime,
        end: datetime,
    ) -> list[Order]:
        """Return the orders created in ``[start, end)``, oldest first."""
        start_ms, end_ms = to_millis(start), to_millis(end)
        orders: list[Order] = []
        for symbol in await self._history_symbols(symbols):
            raw = await self._paged(
                "fetch_orders",
                lambda s, since, limit, params: self._client.fetch_orders(s, since, limit, params),
                symbol,
                start_ms,
                end_ms,
            )
            orders += [self._order(entry) for entry in raw]
        kept = [
            order
            for order in orders
            if (order.created_at is None or start <= order.created_at < end)
            and (not symbols or order.symbol in symbols)
        ]
        return sorted(kept, key=lambda o: (o.created_at or start, o.venue_order_id))

    async def fetch_fills(self, symbols: Sequence[str], since: datetime | None) -> list[Fill]:
        """Return the fills at or after ``since``, oldest first, merged across ``symbols``."""
        since_ms = to_millis(since) if since is not None else None
        fills: dict[tuple[str, str], Fill] = {}
        for symbol in await self._history_symbols(symbols):
            raw = await self._paged(
                "fetch_my_trades",
                lambda s, start, limit, params: self._client.fetch_my_trades(
                    s, start, limit, params
                ),
                symbol,
                since_ms,
                None,
            )
            for entry in raw:
                fill = self._fill(entry)
                if (since is None or fill.trade_time >= since) and (
                    not symbols or fill.symbol in symbols
                ):
                    fills[(fill.symbol, fill.trade_id)] = fill
        return sorted(fills.values(), key=lambda f: (f.trade_time, f.symbol, f.trade_id))

    async def fetch_balances(self) -> list[Balance]:
        """Return every balance of the account."""
        raw = await self._call("fetch_balance", self._fetch_balance)
        balances = []
        for asset, entry in raw.items():
            if asset in ("info", "free", "used", "total", "debt") or not isinstance(entry, dict):
                continue
            free = to_decimal(entry.get("free")) or Decimal(0)
            locked = to_decimal(entry.get("used")) or Decimal(0)
            balances.append(Balance(asset, free, locked))
        return balances

    async def _fetch_balance(self) -> Any:
        return await self._client.fetch_balance()

    async def fetch_last_price(self, symbol: str) -> Decimal | None:
        """Return the last traded price of ``symbol``."""
        ticker = await self._call("fetch_ticker", lambda: self._client.fetch_ticker(symbol))
        return to_decimal(ticker.get("last")) or to_decimal(ticker.get("close"))

    async def fetch_key_permissions(self) -> KeyPermissions | None:
        """Return what the key may do; the base class knows no endpoint for it."""
        return None

    async def fetch_candles(
        self,
        symbol: str,
        timeframe: str,
        since: datetime | None,
        limit: int,
    ) -> list[Candle]:
        """Return up to ``limit`` candles of ``symbol`` opening at or after ``since``."""
        offered = getattr(self._client, "timeframes", None) or {}
        if timeframe not in offered:
            raise errors.invalid(
                "timeframe",
                f"{timeframe} is not offered at {self.venue} (offered: {', '.join(offered)})",
            )
        since_ms = to_millis(since) if since is not None else None
        raw = await self._call(
            "fetch_ohlcv",
            lambda: self._client.fetch_ohlcv(symbol, timeframe, since_ms, limit),
        )
        candles = []
        for row in raw:
            opened = from_millis(row[0])
            values = [to_decimal(value) for value in row[1:6]]
            if opened is None or any(value is None for value in values):
                continue
            if since is not None and opened < since:
                continue
            candles.append(Candle(opened, *values))  # type: ignore[arg-type]
        candles.sort(key=lambda c: c.open_time)
        return candles[-limit:] if since is None else candles[:limit]

    # Streams ----------------------------------------------------------------------------------

    async def watch(self, channel: WatchChannel) -> AsyncIterator[Order | Fill | StreamEvent]:
        """Stream the account's orders or fills, with the venue stream's state changes.

        One venue subscription per ccxt method serves every watch of this connection; it
        reconnects with backoff and says so (``CONNECTED`` after each subscribe the venue
        confirmed, ``DISCONNECTED`` when it drops, ``GAP_SUSPECTED`` when the venue's sequence
        jumps). The sockets close when the last watch ends.
        """
        method = self._has["watch_methods"][channel]
        pump = self._pumps.get(method)
        if pump is None:
            pump = _Pump(method)
            self._pumps[method] = pump
            pump.task = asyncio.create_task(self._run_pump(pump))
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        pump.listeners.add(queue)
        if pump.connected:
            queue.put_nowait(("event", self._event(StreamState.CONNECTED, "joined an open stream")))
        try:
            while True:
                kind, payload = await queue.get()
                if kind == "end":
                    return
                if kind == "event":
                    yield payload
                    continue
                for item in await self._stream_items(channel, payload):
                    yield item
        finally:
            pump.listeners.discard(queue)
            if not pump.listeners and self._pumps.get(method) is pump:
                del self._pumps[method]
                pump.task.cancel()
                if not self._pumps and not self._closed:
                    with contextlib.suppress(Exception):
                        await self._client.close_ws_clients()
                    self._stream_ready.clear()

    @staticmethod
    def _event(state: StreamState, detail: str) -> StreamEvent:
        return StreamEvent(state, detail, datetime.now(UTC))

    async def _run_pump(self, pump: _Pump) -> None:
        first, longest = self._has["ws_backoff_seconds"]
        delay = float(first)
        method = getattr(self._client, pump.method)
        while True:
            call: asyncio.Future[Any] | None = None
            try:
                if pump.connected:
                    call = asyncio.ensure_future(method())
                else:
                    # A (re)connection: the socket's handshake counts at some venues.
                    async with self.limiter.turn(
                        self._has["ws_connect_charges"], _STREAM_WAIT_SECONDS
                    ):
                        call = asyncio.ensure_future(method())
                    await self._await_subscribed(call)
                    pump.publish("event", self._event(StreamState.CONNECTED, self._ready_detail()))
                    pump.connected, pump.reported_down = True, False
                    delay = float(first)
                batch = await call
                call = None
                if batch:
                    pump.publish("batch", list(batch))
            except asyncio.CancelledError:
                if call is not None:
                    call.cancel()
                raise
            except Exception as e:
                if call is not None and not call.done():
                    call.cancel()
                self._stream_ready.clear()
                log.warning(
                    "venue stream failed: %s %s %s; reconnecting in %.1f s",
                    self.venue,
                    pump.method,
                    type(e).__name__,
                    delay,
                )
                if pump.connected or not pump.reported_down:
                    pump.publish(
                        "event",
                        self._event(
                            StreamState.DISCONNECTED,
                            f"the venue stream dropped ({type(e).__name__});"
                            f" reconnecting in {delay:g} s",
                        ),
                    )
                    pump.reported_down = True
                pump.connected = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, float(longest))

    async def _await_subscribed(self, call: asyncio.Future[Any]) -> None:
        ready = asyncio.ensure_future(self._stream_ready.wait())
        try:
            await asyncio.wait(
                {call, ready},
                timeout=float(self._has["stream_ack_timeout_seconds"]),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            ready.cancel()
        if call.done() and call.exception() is not None:
            call.result()  # raises the failure

    def _ready_detail(self) -> str:
        if self._stream_ready.is_set():
            return "subscribed; backfill anything before this through ListFills"
        return "subscribed (the venue sent no confirmation); backfill through ListFills"

    def _on_stream_message(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        if self._is_stream_ack(message):
            self._last_sequence = None
            self._stream_ready.set()
        sequence = self._stream_sequence(message)
        if sequence is None:
            return
        last, self._last_sequence = self._last_sequence, sequence
        if last is not None and sequence > last + 1:
            event = self._event(
                StreamState.GAP_SUSPECTED,
                f"the venue's sequence jumped from {last} to {sequence};"
                " backfill through ListFills",
            )
            for pump in self._pumps.values():
                pump.publish("event", event)
        elif last is not None and sequence <= last:
            self._last_sequence = last

    def _on_stream_down(self) -> None:
        self._stream_ready.clear()
        self._last_sequence = None

    def _is_stream_ack(self, message: Mapping[str, Any]) -> bool:
        """Return whether ``message`` confirms the account subscription (venues override)."""
        return False

    def _stream_sequence(self, message: Mapping[str, Any]) -> int | None:
        """Return the venue's sequence number of a stream message, if it numbers them."""
        return None

    async def _stream_items(self, channel: WatchChannel, batch: list[Any]) -> list[Order | Fill]:
        items: list[Order | Fill] = []
        for raw in batch:
            try:
                if channel is WatchChannel.FILLS:
                    items.append(self._fill(raw))
                else:
                    items.append(self._stream_order(raw))
            except (KeyError, TypeError, ValueError) as e:
                log.warning("venue stream item skipped: %s %s %s", self.venue, channel, e)
        return items

    def _stream_order(self, raw: Mapping[str, Any]) -> Order:
        """Parse an order from the venue's stream (venues whose stream differs override)."""
        return self._order(raw)

    # Parsing ----------------------------------------------------------------------------------

    def _market(self, raw: Mapping[str, Any]) -> Market:
        precision = raw.get("precision") or {}
        limits = raw.get("limits") or {}
        amount_limits = limits.get("amount") or {}
        cost_limits = limits.get("cost") or {}
        return Market(
            symbol=raw["symbol"],
            base=raw["base"],
            quote=raw["quote"],
            quantity_step=self._step(precision.get("amount")),
            price_tick=self._step(precision.get("price")),
            min_quantity=to_decimal(amount_limits.get("min")),
            min_notional=to_decimal(cost_limits.get("min")),
            max_quantity=to_decimal(amount_limits.get("max")),
            active=raw.get("active") is not False,
        )

    def _step(self, value: Any) -> Decimal | None:
        number = to_decimal(value)
        if number is None:
            return None
        if getattr(self._client, "precisionMode", TICK_SIZE) == TICK_SIZE:
            return number
        return Decimal(1).scaleb(-int(number))

    def _order(self, raw: Mapping[str, Any]) -> Order:
        if not isinstance(raw, Mapping) or not raw.get("id"):
            raise ValueError("the venue's answer holds no order")
        filled = to_decimal(raw.get("filled")) or Decimal(0)
        status_text = raw.get("status")
        if status_text == "open" or status_text is None:
            status = OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.OPEN
        else:
            status = _CCXT_STATUS.get(status_text, OrderStatus.UNKNOWN)
        stop_price = to_decimal(raw.get("triggerPrice") or raw.get("stopPrice"))
        kind = self._has["order_types_in"].get(str(raw.get("type") or "").lower())
        if kind is None:
            kind = OrderType.LIMIT if raw.get("price") else OrderType.MARKET
        if stop_price and not kind.has_stop_price:
            # ccxt unifies a stop-limit as "limit" and a stop-market as "market" plus a trigger.
            kind = OrderType.STOP_LIMIT if kind.has_limit_price else OrderType.STOP_MARKET
        fee = raw.get("fee") or {}
        created = from_millis(raw.get("timestamp"))
        updated = from_millis(raw.get("lastUpdateTimestamp")) or created
        tif = _TIME_IN_FORCE.get(str(raw.get("timeInForce") or "").upper())
        quantity = to_decimal(raw.get("amount"))
        if quantity is None:
            raise ValueError("the venue's answer holds no quantity")
        return Order(
            client_order_id=str(raw.get("clientOrderId") or ""),
            venue_order_id=str(raw["id"]),
            symbol=str(raw["symbol"]),
            side=OrderSide(str(raw["side"]).lower()),
            type=kind,
            quantity=quantity,
            status=status,
            filled_quantity=filled,
            price=to_decimal(raw.get("price")) if kind.has_limit_price else None,
            stop_price=stop_price if kind.has_stop_price else None,
            average_price=to_decimal(raw.get("average")) if filled > 0 else None,
            time_in_force=tif if kind.has_limit_price else None,
            created_at=created or updated,
            updated_at=updated,
            fee=to_decimal(fee.get("cost")),
            fee_currency=str(fee.get("currency") or ""),
        )

    def _fill(self, raw: Mapping[str, Any]) -> Fill:
        fee = raw.get("fee") or {}
        kind = self._has["order_types_in"].get(str(raw.get("type") or "").lower())
        quantity, price = to_decimal(raw.get("amount")), to_decimal(raw.get("price"))
        trade_time = from_millis(raw.get("timestamp"))
        if quantity is None or price is None or trade_time is None:
            raise ValueError("the venue's trade is incomplete")
        info = raw.get("info") or {}
        client_order_id = str(raw.get("clientOrderId") or "")
        for key in self._has["trade_client_order_id_keys"]:
            if client_order_id:
                break
            value = info.get(key) if isinstance(info, Mapping) else None
            client_order_id = str(value) if isinstance(value, str) else ""
        return Fill(
            trade_id=str(raw["id"]),
            venue_order_id=str(raw.get("order") or ""),
            symbol=str(raw["symbol"]),
            side=OrderSide(str(raw["side"]).lower()),
            quantity=quantity,
            price=price,
            trade_time=trade_time,
            client_order_id=client_order_id,
            fee=to_decimal(fee.get("cost")),
            fee_currency=str(fee.get("currency") or ""),
            order_type=kind,
        )


@dataclass(eq=False)
class _Pump:
    """One venue subscription (one ccxt watch method) and the watches it feeds."""

    method: str
    listeners: set[asyncio.Queue[tuple[str, Any]]] = field(default_factory=set)
    task: asyncio.Task[None] = field(init=False)
    connected: bool = False
    reported_down: bool = False

    def publish(self, kind: str, payload: Any) -> None:
        for queue in self.listeners:
            queue.put_nowait((kind, payload))
