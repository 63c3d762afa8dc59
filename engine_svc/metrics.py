"""The engine's Prometheus metrics (names from the seed, labels in full words)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

COPY_TRADES_EXECUTED = Counter(
    "copy_trades_executed_total",
    "Copied orders the follower's venue accepted.",
    ["exchange"],
)
COPY_TRADES_FAILED = Counter(
    "copy_trades_failed_total",
    "Copied orders the follower's venue or the broker refused.",
    ["exchange", "reason"],
)
TRADE_EXECUTION_TIME = Histogram(
    "trade_execution_time_seconds",
    "From the leader's trade at the venue to the broker's answer for the copy.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
INTENTS = Counter(
    "copytrade_engine_intents_total",
    "Intents entering each state.",
    ["state"],
)
BROKER_WAITS = Counter(
    "copytrade_engine_broker_waits_total",
    "Times a signal's follower reads found the broker unreachable and waited to try again.",
)
TAKEOVER_SECONDS = Histogram(
    "copytrade_engine_takeover_seconds",
    "From acquiring a source's lease to taking its signals: fence, prove, re-send, subscribe.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
SLOW_BROKER_READS = Counter(
    "copytrade_engine_slow_broker_reads_total",
    "Follower reads the broker did not answer in time (or refused for now), asked again.",
)
