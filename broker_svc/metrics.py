"""The broker's own Prometheus metrics (docs/design.md §4.5 names)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
