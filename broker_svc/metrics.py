"""The broker's own Prometheus metrics (docs/design.md §4.5 names)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from meshkit.metrics import VENUES, zero_series

VENUE_METHODS = (
    "load_markets",
    "create_order",
    "fetch_order",
    "cancel_order",
    "fetch_orders",
    "fetch_my_trades",
    "fetch_balance",
    "fetch_ticker",
    "fetch_ohlcv",
    "fetch_key_permissions",
    "watch_orders",
    # derivatives venues (binanceusdm)
    "fetch_positions",
    "fetch_leverages",
    "set_margin_mode",
    "set_leverage",
)
"""The ccxt methods the broker calls (``method`` of ``copytrade_broker_venue_requests_total``)."""

VENUE_OUTCOMES = (
    "ok",
    "read_back_failed",  # fetch_order: the order placed, then not found when read back
    # A failed call's reason (broker_svc/adapters/ccxt/errors.py), lowercased:
    "below_min_notional",
    "broker_credentials_rejected",
    "duplicate_client_order_id",
    "insufficient_funds",
    "invalid_order",
    "invalid_symbol",
    "not_supported",
    "order_not_found",
    "order_outcome_unknown",
    "rate_limited",
    "venue_error",
    "venue_rejected",
    "venue_unavailable",
    "other",  # any reason not listed here (a test keeps it unused)
)
"""The ``outcome`` values of ``copytrade_broker_venue_requests_total``."""

RATE_LIMITED_STATUSES = ("418", "429", "body")
"""The usual ``status`` values of ``copytrade_broker_venue_rate_limited_total`` (``body``: the
venue said so in the answer's body); another HTTP status ccxt reads as a rate limit is kept."""

BROKER_CONNECTIONS = Gauge(
    "broker_connections",
    "Open venue clients (one per exchange account in use).",
    ["exchange"],
)
VENUE_REQUESTS = Counter(
    "copytrade_broker_venue_requests_total",
    "Calls the broker made to venues, by venue, method and outcome.",
    ["exchange", "method", "outcome"],
)
VENUE_RATE_LIMITED = Counter(
    "copytrade_broker_venue_rate_limited_total",
    "Venue answers that said the broker went over a rate limit (status 429/418, or 'body').",
    ["exchange", "status"],
)
VENUE_BANS = Counter(
    "copytrade_broker_venue_bans_total",
    "Venue answers that said the broker is banned or locked out (Binance 418, Kraken lockout).",
    ["exchange"],
)
RATE_LIMIT_WAIT = Counter(
    "copytrade_broker_rate_limit_wait_seconds_total",
    "Seconds requests waited for their turn in the broker's own rate limiter.",
    ["exchange"],
)
RATE_LIMIT_REFUSED = Counter(
    "copytrade_broker_rate_limit_refused_total",
    "Requests the broker's own rate limiter refused (the turn was further away than allowed).",
    ["exchange"],
)


def venue_outcome(reason: str) -> str:
    """Return the ``outcome`` label of a failed venue call: its reason lowercased when known."""
    outcome = reason.lower()
    return outcome if outcome in VENUE_OUTCOMES else "other"


zero_series(BROKER_CONNECTIONS, exchange=VENUES)
zero_series(VENUE_REQUESTS, exchange=VENUES, method=VENUE_METHODS, outcome=VENUE_OUTCOMES)
zero_series(VENUE_RATE_LIMITED, exchange=VENUES, status=RATE_LIMITED_STATUSES)
zero_series(VENUE_BANS, exchange=VENUES)
zero_series(RATE_LIMIT_WAIT, exchange=VENUES)
zero_series(RATE_LIMIT_REFUSED, exchange=VENUES)
