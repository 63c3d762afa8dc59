"""The reconciliation service's Prometheus metrics (docs/design.md §4.5 names)."""

from __future__ import annotations

from prometheus_client import Counter

from meshkit.metrics import zero_series
from recon_svc.domain.model import Outcome

RECONCILIATION_CHECKS = Counter(
    "reconciliation_checks_total",
    "Reconciliation items stored, one per (signal, follower account), by outcome.",
    ["outcome"],
)
REPORTS = Counter(
    "copytrade_recon_reports_total",
    "Reconciliation reports stored.",
)

zero_series(RECONCILIATION_CHECKS, outcome=[outcome.value for outcome in Outcome])
