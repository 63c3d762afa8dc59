"""Each ccxt exception in, the service error callers rely on out; creates differ from reads."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from ccxt.base import errors as ccxt_errors

from broker_svc.adapters.binance import BinanceExchange
from broker_svc.adapters.ccxt import translate_error, venue_text
from meshkit import errors

HAS = BinanceExchange.capabilities
URL = "binance GET http://127.0.0.1:9101/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=abc"

CASES = [
    # (exception, creating, code, reason, message)
    (
        ccxt_errors.InsufficientFunds(
            "binance Account has insufficient balance for requested action."
        ),
        True,
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_FUNDS",
        "Account has insufficient balance for requested action.",
    ),
    (
        ccxt_errors.InvalidOrder(
            "binance order amount should be evenly divisible by lot size "
            '{"code":-1013,"msg":"Filter failure: LOT_SIZE"}'
        ),
        True,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ORDER",
        "Filter failure: LOT_SIZE",
    ),
    (
        ccxt_errors.BadRequest('binance {"code":-1013,"msg":"Filter failure: NOTIONAL"}'),
        True,
        grpc.StatusCode.INVALID_ARGUMENT,
        "BELOW_MIN_NOTIONAL",
        "Filter failure: NOTIONAL",
    ),
    (
        ccxt_errors.BadRequest('binance {"code":-1013,"msg":"Filter failure: MIN_NOTIONAL"}'),
        True,
        grpc.StatusCode.INVALID_ARGUMENT,
        "BELOW_MIN_NOTIONAL",
        "Filter failure: MIN_NOTIONAL",
    ),
    (
        ccxt_errors.BadSymbol('binance {"code":-1121,"msg":"Invalid symbol."}'),
        True,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_SYMBOL",
        "Invalid symbol.",
    ),
    (
        ccxt_errors.BadSymbol('binance {"code":-1121,"msg":"Invalid symbol."}'),
        False,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_SYMBOL",
        "Invalid symbol.",
    ),
    (
        ccxt_errors.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}'),
        True,
        grpc.StatusCode.FAILED_PRECONDITION,
        "DUPLICATE_CLIENT_ORDER_ID",
        "Duplicate order sent.",
    ),
    (
        ccxt_errors.OrderNotFound('binance {"code":-2013,"msg":"Order does not exist."}'),
        False,
        grpc.StatusCode.NOT_FOUND,
        "ORDER_NOT_FOUND",
        "Order does not exist.",
    ),
    (
        ccxt_errors.OrderNotFound('binance {"code":-2011,"msg":"Unknown order sent."}'),
        False,
        grpc.StatusCode.NOT_FOUND,
        "ORDER_NOT_FOUND",
        "Unknown order sent.",
    ),
    (
        ccxt_errors.AuthenticationError(
            'binance {"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}'
        ),
        True,
        grpc.StatusCode.FAILED_PRECONDITION,
        "BROKER_CREDENTIALS_REJECTED",
        "Invalid API-key, IP, or permissions for action.",
    ),
    (
        ccxt_errors.PermissionDenied("binance This action is disabled on this account."),
        False,
        grpc.StatusCode.FAILED_PRECONDITION,
        "BROKER_CREDENTIALS_REJECTED",
        "This action is disabled on this account.",
    ),
    (
        ccxt_errors.DDoSProtection(
            'binance 429 Too Many Requests {"code":-1003,"msg":"Too many."}'
        ),
        True,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "RATE_LIMITED",
        "Too many.",
    ),
    (
        ccxt_errors.RateLimitExceeded("binance rate limit"),
        False,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "RATE_LIMITED",
        "rate limit",
    ),
    (
        ccxt_errors.RequestTimeout(URL),
        True,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "ORDER_OUTCOME_UNKNOWN",
        None,
    ),
    (
        ccxt_errors.ExchangeNotAvailable(URL + " 503 Service Unavailable"),
        True,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "ORDER_OUTCOME_UNKNOWN",
        None,
    ),
    (
        ccxt_errors.NetworkError(URL),
        True,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "ORDER_OUTCOME_UNKNOWN",
        None,
    ),
    (
        ccxt_errors.InvalidNonce(URL),
        True,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "ORDER_OUTCOME_UNKNOWN",
        None,
    ),
    (
        ccxt_errors.BadResponse("binance unparseable"),
        True,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "ORDER_OUTCOME_UNKNOWN",
        None,
    ),
    (
        ccxt_errors.ExchangeError('binance {"code":-1008,"msg":"Server is busy."}'),
        True,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "ORDER_OUTCOME_UNKNOWN",
        None,
    ),
    (
        ValueError("could not parse"),
        True,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "ORDER_OUTCOME_UNKNOWN",
        None,
    ),
    (KeyError("id"), True, grpc.StatusCode.DEADLINE_EXCEEDED, "ORDER_OUTCOME_UNKNOWN", None),
    (
        ccxt_errors.RequestTimeout(URL),
        False,
        grpc.StatusCode.UNAVAILABLE,
        "VENUE_UNAVAILABLE",
        None,
    ),
    (
        ccxt_errors.ExchangeNotAvailable(URL),
        False,
        grpc.StatusCode.UNAVAILABLE,
        "VENUE_UNAVAILABLE",
        None,
    ),
    (ccxt_errors.OnMaintenance(URL), False, grpc.StatusCode.UNAVAILABLE, "VENUE_UNAVAILABLE", None),
    (
        ccxt_errors.NotSupported("binance fetchFoo() is not supported yet"),
        False,
        grpc.StatusCode.UNIMPLEMENTED,
        "NOT_SUPPORTED",
        "fetchFoo() is not supported yet",
    ),
    (
        ccxt_errors.ExchangeError('binance {"code":-1008,"msg":"Server is busy."}'),
        False,
        grpc.StatusCode.INTERNAL,
        "VENUE_ERROR",
        "Server is busy.",
    ),
]


@pytest.mark.parametrize(
    ("error", "creating", "code", "reason", "message"),
    CASES,
    ids=[f"{type(c[0]).__name__}-{'create' if c[1] else 'read'}" for c in CASES],
)
def test_ccxt_error_maps_to_code_and_reason(
    error: Exception,
    creating: bool,
    code: grpc.StatusCode,
    reason: str,
    message: str | None,
) -> None:
    translated = translate_error(error, creating=creating, venue="binance", capabilities=HAS)
    assert translated.code == code
    assert translated.reason == reason
    if message is not None:
        assert translated.message.endswith(message)
    assert "http" not in translated.message
    assert "signature" not in translated.message
    assert "binance {" not in translated.message


def test_rate_limit_carries_the_venue_retry_after() -> None:
    translated = translate_error(
        ccxt_errors.DDoSProtection("binance 429"),
        creating=False,
        venue="binance",
        capabilities=HAS,
        retry_after=7.0,
    )
    assert isinstance(translated, errors.ResourceExhausted)
    assert translated.retry_after == 7.0


def test_rate_limit_without_retry_after_still_says_when_to_retry() -> None:
    translated = translate_error(
        ccxt_errors.RateLimitExceeded("binance"),
        creating=True,
        venue="binance",
        capabilities=HAS,
    )
    assert isinstance(translated, errors.ResourceExhausted)
    assert translated.retry_after and translated.retry_after > 0


def test_venue_rejection_names_the_field_its_filter_is_about() -> None:
    translated = translate_error(
        ccxt_errors.InvalidOrder('binance x {"code":-1013,"msg":"Filter failure: PRICE_FILTER"}'),
        creating=True,
        venue="binance",
        capabilities=HAS,
    )
    assert isinstance(translated, errors.InvalidArgument)
    assert [v.field for v in translated.violations] == ["price"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'binance {"code":-2010,"msg":"Account has insufficient balance."}',
            "Account has insufficient balance.",
        ),
        ("binance Account has insufficient balance.", "Account has insufficient balance."),
        (URL, ""),
        ("binance " + "x" * 300, ""),
        ("binance POST http://host/api/v3/order 500 Internal Server Error", ""),
    ],
)
def test_venue_text_keeps_only_the_venue_short_message(text: str, expected: str) -> None:
    assert venue_text(Exception(text), "binance") == expected


class _FailingClient:
    """A duck-typed ccxt client whose calls all fail with one error and known headers."""

    def __init__(self, error: Exception, headers: dict[str, str]) -> None:
        self.error = error
        self.last_response_headers = headers
        self.has = {name: True for name in BinanceExchange.capabilities.required_ccxt_has}
        self.markets: dict[str, Any] = {}

    async def create_order(self, *args: Any) -> Any:
        raise self.error

    async def fetch_order(self, *args: Any) -> Any:
        raise self.error

    async def close(self) -> None:
        return None


async def test_adapter_reads_retry_after_from_the_venue_answer() -> None:
    client = _FailingClient(ccxt_errors.DDoSProtection("binance 429"), {"Retry-After": "12"})
    exchange = BinanceExchange(None, client=client)
    with pytest.raises(errors.ResourceExhausted) as caught:
        await exchange.fetch_order("cid-1", "BTC/USDT")
    assert caught.value.retry_after == 12.0
    await exchange.close()


async def test_adapter_never_chains_the_ccxt_exception() -> None:
    client = _FailingClient(ccxt_errors.RequestTimeout(URL), {})
    exchange = BinanceExchange(None, client=client)
    with pytest.raises(errors.Unavailable) as caught:
        await exchange.fetch_order("cid-1", "BTC/USDT")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    await exchange.close()


async def test_every_venue_call_is_counted_by_method_and_outcome() -> None:
    from prometheus_client import REGISTRY

    def count(outcome: str) -> float:
        return (
            REGISTRY.get_sample_value(
                "copytrade_broker_venue_requests_total",
                {"exchange": "binance", "method": "fetch_order", "outcome": outcome},
            )
            or 0.0
        )

    before = count("rate_limited")
    client = _FailingClient(ccxt_errors.RateLimitExceeded("binance"), {})
    exchange = BinanceExchange(None, client=client)
    with pytest.raises(errors.ResourceExhausted):
        await exchange.fetch_order("cid-1", "BTC/USDT")
    assert count("rate_limited") == before + 1
    await exchange.close()
