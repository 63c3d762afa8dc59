"""Prometheus metrics of the sync service (names from docs/design.md §4.5)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from meshkit.metrics import VENUES, zero_series
from sync_svc.domain.model import SourceKind, SyncMode

BACKFILL_TRIGGERS = (
    "start",
    "settings",
    "timer",
    "balance",
    "silence",
    "gap",
    "ingest_failure",
    "unplaced",
    "connected",
    "disconnected",
    "manual",
)
"""What asks for a source's backfill (``trigger`` of ``copytrade_sync_backfills_total``)."""

FILL_PATHS = ("stream", "backfill")
"""The path that found a leader fill first (``path`` of ``copytrade_sync_leader_fills_total``)."""

STRATEGY = "strategy"
"""The ``exchange`` of ``sync_latency_seconds`` for a published (backtest) source's signals."""

REALTIME_SYNC_CONNECTIONS = Gauge(
    "realtime_sync_connections",
    "Exchange sources being read now, by venue and mode.",
    ["exchange", "mode"],
)
SYNC_LATENCY = Histogram(
    "sync_latency_seconds",
    "Time from a leader's trade at the venue to its signal being sent on a stream.",
    ["exchange"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60),
)
SIGNALS_TOTAL = Counter(
    "copytrade_sync_signals_total",
    "Signals appended to the logs, by source kind.",
    ["kind"],
)
LEADER_FILLS_TOTAL = Counter(
    "copytrade_sync_leader_fills_total",
    "Leader fills logged, by venue and by the path that found them first (stream or backfill).",
    ["exchange", "path"],
)
BACKFILLS_TOTAL = Counter(
    "copytrade_sync_backfills_total",
    "REST backfills of exchange sources, by venue and by what asked for them.",
    ["exchange", "trigger"],
)
STREAM_CONNECTS_TOTAL = Counter(
    "copytrade_sync_stream_connects_total",
    "Fill-stream (re)connections of exchange sources, by venue.",
    ["exchange"],
)
BALANCE_CHANGES_TOTAL = Counter(
    "copytrade_sync_unexplained_balance_changes_total",
    "Leader balance changes no logged fill explains (deposits, withdrawals), by venue.",
    ["exchange"],
)

zero_series(REALTIME_SYNC_CONNECTIONS, exchange=VENUES, mode=[mode.value for mode in SyncMode])
zero_series(SYNC_LATENCY, exchange=(*VENUES, STRATEGY))
zero_series(SIGNALS_TOTAL, kind=[kind.value for kind in SourceKind])
zero_series(LEADER_FILLS_TOTAL, exchange=VENUES, path=FILL_PATHS)
zero_series(BACKFILLS_TOTAL, exchange=VENUES, trigger=BACKFILL_TRIGGERS)
zero_series(STREAM_CONNECTS_TOTAL, exchange=VENUES)
zero_series(BALANCE_CHANGES_TOTAL, exchange=VENUES)
