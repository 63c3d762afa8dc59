"""Coinbase error replies and how ccxt 4.5.90 reads them (docs/exchange-protocols.md §3.7).

Three shapes exist:

* Order rejections are HTTP 200 ``{"success": false, "failure_reason", "order_id": "",
  "error_response": {"error", "message", "error_details", "preview_failure_reason",
  "new_order_failure_reason"}, "order_configuration"}``. ccxt's ``handle_errors`` matches only
  ``preview_failure_reason``: ``PREVIEW_INSUFFICIENT_FUND`` → ``InsufficientFunds``,
  ``PREVIEW_STOP_PRICE_ABOVE_LAST_TRADE_PRICE`` → ``InvalidOrder``, anything else →
  ``ExchangeError``.
* Other v3 errors: ``{"error": "<CODE>", "error_details", "message"}`` with an HTTP status.
  ccxt maps ``INVALID_ARGUMENT`` → ``BadRequest``, ``PERMISSION_DENIED`` → ``PermissionDenied``,
  ``rate_limit_exceeded`` → ``RateLimitExceeded``; other codes → ``ExchangeError``.
* v2 errors: ``{"errors": [{"id", "message"}]}``; ``authentication_error`` →
  ``AuthenticationError`` (also for "request timestamp expired": ccxt's exact match on the id
  wins over its broad ``InvalidNonce`` rule on the message).

A failed v3 authentication is a plain-text ``Unauthorized`` 401, which ccxt maps through its
HTTP table to ``AuthenticationError``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from exchange_sim.core import errors as core


class CoinbaseError(Exception):
    """An error reply: a JSON body (dict) or a text body (str) with an HTTP status."""

    def __init__(self, http_status: int, body: dict[str, Any] | str) -> None:
        super().__init__(f"{http_status} {body}")
        self.http_status = http_status
        self.body = body

    def response(self) -> web.Response:
        """The aiohttp reply."""
        if isinstance(self.body, str):
            return web.Response(text=self.body, status=self.http_status)
        return web.json_response(self.body, status=self.http_status)


def v3_error(http_status: int, code: str, message: str, details: str = "") -> CoinbaseError:
    """A v3 error body (``error``, ``error_details``, ``message``)."""
    return CoinbaseError(
        http_status, {"error": code, "error_details": details or message, "message": message}
    )


def invalid_argument(message: str) -> CoinbaseError:
    """HTTP 400 ``INVALID_ARGUMENT`` (ccxt: ``BadRequest``); ``message`` names the field."""
    return v3_error(400, "INVALID_ARGUMENT", message)


def not_found(message: str) -> CoinbaseError:
    """HTTP 404 as recorded in ccxt's source (``{"error": "unknown", ...}``).

    ccxt 4.5.90 raises ``ExchangeError`` for it, not ``OrderNotFound``: its broad rule reads
    "order with self orderID was not found" in Python (transpiler quirk, doc §1.3a).
    """
    return CoinbaseError(404, {"error": "unknown", "error_details": message, "message": message})


def permission_denied() -> CoinbaseError:
    """HTTP 403 ``PERMISSION_DENIED`` for a key without trade scope (ccxt: ``PermissionDenied``).

    The exact reply of Coinbase to a view-only key placing an order is unverified; this is the
    code ccxt's exception table lists for it.
    """
    return v3_error(403, "PERMISSION_DENIED", "Missing required scopes", "Missing required scopes")


def unauthorized(v2: bool, message: str = "invalid signature") -> CoinbaseError:
    """A failed authentication: v3 answers plain ``Unauthorized``, v2 an ``errors`` list."""
    if v2:
        return CoinbaseError(401, {"errors": [{"id": "authentication_error", "message": message}]})
    return CoinbaseError(401, "Unauthorized\n")


def timestamp_expired() -> CoinbaseError:
    """Legacy HMAC timestamp too far from the server clock (ccxt: ``AuthenticationError``)."""
    return CoinbaseError(
        401, {"errors": [{"id": "authentication_error", "message": "request timestamp expired"}]}
    )


def rate_limited() -> CoinbaseError:
    """HTTP 429 with the lower-case code ccxt maps to ``RateLimitExceeded``.

    Whether Coinbase sends ``rate_limit_exceeded`` or ``RATE_LIMIT_EXCEEDED`` (which ccxt turns
    into a plain ``ExchangeError``) is unverified; the emulator sends the form ccxt recognises,
    and the other one (or an HTML page) can be injected with a fault rule.
    """
    return v3_error(429, "rate_limit_exceeded", "Too many requests", "Too many requests")


def internal_error() -> CoinbaseError:
    """HTTP 500 (ccxt: ``ExchangeError``)."""
    return v3_error(500, "internal_server_error", "Internal server error")


class OrderRejected(Exception):
    """A create-order rejection, answered with HTTP 200 ``success: false``."""

    def __init__(self, error: str, preview: str, message: str, failure: str | None = None) -> None:
        super().__init__(f"{error} {preview} {message}")
        self.error = error
        self.preview = preview
        self.message = message
        self.failure = failure or (
            error if error != "UNKNOWN_FAILURE_REASON" else "UNKNOWN_FAILURE_REASON"
        )

    def body(self, configuration: object) -> dict[str, Any]:
        """The HTTP 200 reply (``configuration``: the submitted ``order_configuration``)."""
        return {
            "success": False,
            "failure_reason": "UNKNOWN_FAILURE_REASON",
            "order_id": "",
            "error_response": {
                "error": self.error,
                "message": self.message,
                "error_details": "",
                "preview_failure_reason": self.preview,
                "new_order_failure_reason": self.failure,
            },
            "order_configuration": configuration,
        }


def insufficient_fund() -> OrderRejected:
    """ccxt: ``InsufficientFunds``."""
    return OrderRejected(
        "INSUFFICIENT_FUND", "PREVIEW_INSUFFICIENT_FUND", "Insufficient balance in source account"
    )


def size_precision() -> OrderRejected:
    """Size not a multiple of ``base_increment`` (ccxt: ``ExchangeError``)."""
    return OrderRejected(
        "INVALID_SIZE_PRECISION", "PREVIEW_INVALID_SIZE_PRECISION", "Invalid order configuration"
    )


def price_precision() -> OrderRejected:
    """Limit or stop price not a multiple of ``price_increment`` (ccxt: ``ExchangeError``)."""
    return OrderRejected(
        "INVALID_PRICE_PRECISION", "PREVIEW_INVALID_PRICE_PRECISION", "Invalid order configuration"
    )


def quote_precision() -> OrderRejected:
    """``quote_size`` not a multiple of ``quote_increment`` (ccxt: ``ExchangeError``)."""
    return OrderRejected(
        "INVALID_SIZE_PRECISION",
        "PREVIEW_INVALID_QUOTE_SIZE_PRECISION",
        "Invalid order configuration",
    )


def too_small(kind: str) -> OrderRejected:
    """Below ``base_min_size`` (``kind='BASE'``) or ``quote_min_size`` (``'QUOTE'``).

    ccxt: ``ExchangeError``.
    """
    return OrderRejected(
        "UNKNOWN_FAILURE_REASON",
        f"PREVIEW_INVALID_{kind}_SIZE_TOO_SMALL",
        "Order size is below the minimum",
    )


def too_large(kind: str) -> OrderRejected:
    """Above ``base_max_size`` / ``quote_max_size`` (ccxt: ``ExchangeError``)."""
    return OrderRejected(
        "UNKNOWN_FAILURE_REASON",
        f"PREVIEW_INVALID_{kind}_SIZE_TOO_LARGE",
        "Order size is above the maximum",
    )


def price_too_large() -> OrderRejected:
    """A price above the market's maximum (ccxt: ``ExchangeError``)."""
    return OrderRejected(
        "INVALID_LIMIT_PRICE", "PREVIEW_INVALID_PRICE_TOO_LARGE", "Invalid limit price"
    )


def post_only_would_take() -> OrderRejected:
    """A post-only limit that would take liquidity (ccxt: ``ExchangeError``)."""
    return OrderRejected(
        "INVALID_LIMIT_PRICE_POST_ONLY",
        "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY",
        "Invalid limit price for post only order",
    )


def stop_already_met(direction_up: bool) -> OrderRejected:
    """A stop whose trigger the last price already meets.

    STOP_DOWN with ``stop_price >= last`` → ``PREVIEW_STOP_PRICE_ABOVE_LAST_TRADE_PRICE``
    (ccxt: ``InvalidOrder``); STOP_UP with ``stop_price <= last`` →
    ``PREVIEW_STOP_PRICE_BELOW_LAST_TRADE_PRICE`` (ccxt: ``ExchangeError``).
    """
    preview = (
        "PREVIEW_STOP_PRICE_BELOW_LAST_TRADE_PRICE"
        if direction_up
        else "PREVIEW_STOP_PRICE_ABOVE_LAST_TRADE_PRICE"
    )
    return OrderRejected("INVALID_STOP_PRICE", preview, "Invalid stop price")


def invalid_product() -> OrderRejected:
    """Unknown ``product_id`` (ccxt: ``ExchangeError``)."""
    return OrderRejected("INVALID_PRODUCT_ID", "PREVIEW_INVALID_PRODUCT_ID", "Invalid product_id")


def invalid_side() -> OrderRejected:
    """``side`` other than BUY / SELL (ccxt: ``ExchangeError``)."""
    return OrderRejected("INVALID_SIDE", "PREVIEW_INVALID_SIDE", "Invalid side")


def unsupported_configuration(detail: str) -> OrderRejected:
    """A real Coinbase configuration the emulator does not implement (ccxt: ``ExchangeError``)."""
    return OrderRejected(
        "UNSUPPORTED_ORDER_CONFIGURATION",
        "PREVIEW_INVALID_ORDER_CONFIG",
        f"{detail} is not supported by the emulator",
    )


def from_venue_error(exc: core.VenueError, direction_up: bool | None) -> OrderRejected:
    """The rejection for a core error the adapter's own checks did not catch first."""
    if isinstance(exc, core.InsufficientBalance):
        return insufficient_fund()
    if isinstance(exc, core.WouldMatchImmediately):
        return post_only_would_take()
    if isinstance(exc, core.WouldTriggerImmediately):
        return stop_already_met(bool(direction_up))
    if isinstance(exc, core.FilterFailure):
        if exc.kind is core.FilterKind.PRICE:
            return price_precision()
        if exc.kind is core.FilterKind.NOTIONAL:
            return too_small("QUOTE")
        return size_precision()
    if isinstance(exc, core.UnknownSymbol):
        return invalid_product()
    return OrderRejected(
        "UNKNOWN_FAILURE_REASON", "UNKNOWN_PREVIEW_FAILURE_REASON", str(exc) or "order rejected"
    )
