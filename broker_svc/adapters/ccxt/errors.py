"""Every ccxt exception is translated here, once, into a :mod:`meshkit.errors` type.

The message is the venue's own short text, never ccxt's full string (which can hold URLs and
params).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ccxt.base import errors as ccxt_errors

from broker_svc.adapters.ccxt.capabilities import VenueCapabilities
from meshkit import errors

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
    capabilities: VenueCapabilities,
    retry_after: float | None = None,
) -> errors.ServiceError:
    """Translate a ccxt (or parsing) exception into the service error callers rely on.

    ``creating`` marks an order placement: any ambiguous failure there (a timeout, a 5xx, a
    dropped connection, an unparseable or unexpected answer) becomes ``OutcomeUnknown``, so the
    caller looks the order up instead of resending it. On reads the same failures are
    ``Unavailable``.
    """
    text = venue_text(error, venue, capabilities.error_message_keys)

    def say(reason: str) -> str:
        return text or _GENERIC_TEXT[reason]

    if isinstance(error, ccxt_errors.OrderNotFound):
        return errors.NotFound(say("ORDER_NOT_FOUND"), reason="ORDER_NOT_FOUND")
    if isinstance(error, ccxt_errors.DuplicateOrderId) or (
        isinstance(error, ccxt_errors.ExchangeError)
        and _contains_any(text, capabilities.duplicate_client_order_id_markers)
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
    if exchange_error and _contains_any(text, capabilities.credentials_markers):
        return errors.FailedPrecondition(
            say("BROKER_CREDENTIALS_REJECTED"),
            reason="BROKER_CREDENTIALS_REJECTED",
        )
    if isinstance(error, ccxt_errors.BadSymbol) or (
        exchange_error and _contains_any(text, capabilities.symbol_markers)
    ):
        return errors.InvalidArgument(
            errors.FieldViolation("symbol", say("INVALID_SYMBOL")),
            reason="INVALID_SYMBOL",
        )
    if isinstance(
        error,
        ccxt_errors.InvalidOrder | ccxt_errors.BadRequest | ccxt_errors.ArgumentsRequired,
    ) or (exchange_error and _contains_any(text, capabilities.rejection_markers)):
        # A venue rejection names what it refused: nothing was placed.
        if _contains_any(text, capabilities.below_min_notional_markers):
            return errors.InvalidArgument(
                errors.FieldViolation("quantity", say("BELOW_MIN_NOTIONAL")),
                reason="BELOW_MIN_NOTIONAL",
            )
        field = ""
        for marker, name in capabilities.rejection_fields.items():
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
