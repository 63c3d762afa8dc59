"""The engine's Prometheus metrics (names from the seed, labels in full words)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from engine_svc.domain.model import DAILY_LOSS_ACTIONS, CopyStatus, IntentState
from meshkit.metrics import VENUES, zero_series

COPY_FAILURE_REASONS = frozenset(
    {
        "venue_rejected",  # the venue took the order and then rejected it
        # The broker's definitive refusals of PlaceOrder, lowercased (meshkit.errors types):
        "below_min_notional",
        "broker_credentials_rejected",
        "credentials_unreadable",
        "exchange_not_found",
        "insufficient_funds",
        "invalid_credentials",
        "invalid_order",
        "invalid_symbol",
        "not_supported",
        "order_not_found",
        "order_type_unsupported",
        "reduce_only_unsupported",
        "leverage_unsupported",
        "invalid_argument",
        "not_found",
        "failed_precondition",
        "unauthenticated",
        "permission_denied",
        "unimplemented",
        # the mesh's own refusals of a call (meshkit.access, meshkit.identity)
        "assertion_expired",
        "assertion_invalid",
        "caller_not_allowed",
        "method_not_allowed",
        "user_required",
        "other",  # any reason not listed here (a test keeps it unused)
    }
)
"""The ``reason`` values of ``copy_trades_failed_total``, each at 0 from the start."""


def failure_reason(reason: str) -> str:
    """Return the ``reason`` label of a failed copy: ``reason`` when known, else ``other``."""
    return reason if reason in COPY_FAILURE_REASONS else "other"


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
UNKNOWN_RESOLVE_SECONDS = Histogram(
    "copytrade_engine_unknown_resolve_seconds",
    "From a send whose outcome was not known to what settled it: the venue showed the order,"
    " it was re-sent once proved never placed, or skipped as too old to re-send.",
    ["outcome"],
    buckets=(0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 90, 120, 300),
)
UNKNOWN_RESOLVE_OUTCOMES = ("venue", "resent", "stale")
"""The ``outcome`` values of ``copytrade_engine_unknown_resolve_seconds``."""
SLOW_BROKER_READS = Counter(
    "copytrade_engine_slow_broker_reads_total",
    "Follower reads the broker did not answer in time (or refused for now), asked again.",
)

SIGNAL_STREAM_CONNECTED = Gauge(
    "copytrade_engine_signal_stream_connected",
    "1 while this engine's signal stream from sync is open and delivering, 0 otherwise.",
)
CONFIGS = Gauge(
    "copytrade_engine_configs",
    "Copy configurations per status, as stored (every engine replica reports the same counts).",
    ["status"],
)

zero_series(COPY_TRADES_EXECUTED, exchange=VENUES)
zero_series(COPY_TRADES_FAILED, exchange=VENUES, reason=sorted(COPY_FAILURE_REASONS))
zero_series(INTENTS, state=[state.value for state in IntentState])
zero_series(CONFIGS, status=[status.value for status in CopyStatus])
zero_series(UNKNOWN_RESOLVE_SECONDS, outcome=UNKNOWN_RESOLVE_OUTCOMES)

RISK_ACTIONS = Counter(
    "copytrade_engine_risk_actions_total",
    "Daily loss actions taken on a configuration (risk_limits.daily_loss_action), per action.",
    ["action"],
)
zero_series(RISK_ACTIONS, action=list(DAILY_LOSS_ACTIONS))
