"""The PromQL checker finds what a dashboard or rule gets wrong, and accepts what is right.

The exposition here is made by prometheus_client itself (the library every service uses), so
the series names (``_total``, ``_bucket``...) are the real ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tests.observability.metric_check import (
    Scrape,
    all_queries,
    check_expr,
    check_queries,
    declared_labels,
)


@pytest.fixture(scope="module")
def exposed() -> Scrape:
    """A scrape of a counter with series, one with none yet, a gauge and a histogram."""
    registry = CollectorRegistry()
    executed = Counter("copy_trades_executed_total", "", ["exchange"], registry=registry)
    executed.labels("binance").inc()
    Counter("copy_trades_failed_total", "", ["exchange", "reason"], registry=registry)
    Gauge("broker_connections", "", ["exchange"], registry=registry).labels("kraken").set(1)
    Histogram("trade_execution_time_seconds", "", registry=registry).observe(0.2)
    text = generate_latest(registry).decode()
    return Scrape.from_texts([text], {"copy_trades_failed": ("exchange", "reason")})


def _dashboard(expr: str, legend: str = "") -> dict[str, Any]:
    return {
        "title": "Copy Trading Overview",
        "panels": [
            {
                "type": "row",
                "title": "Copies",
                "panels": [
                    {
                        "title": "Copies per second",
                        "targets": [{"refId": "A", "expr": expr, "legendFormat": legend}],
                    }
                ],
            }
        ],
    }


def _findings(exposed: Scrape, expr: str, legend: str = "") -> list[str]:
    return check_queries(all_queries({Path("d.json"): _dashboard(expr, legend)}, []), exposed)


def test_a_renamed_metric_is_reported_with_its_dashboard_and_panel(exposed: Scrape) -> None:
    findings = _findings(exposed, "sum(rate(copy_trades_executed[$__rate_interval]))")
    assert len(findings) == 1
    assert findings[0].startswith('dashboard "Copy Trading Overview", panel "Copies per second"')
    assert "metric 'copy_trades_executed' is in no scraped /metrics" in findings[0]


@pytest.mark.parametrize(
    ("expr", "label"),
    [
        ('rate(copy_trades_executed_total{exchnage=~"$exchange"}[5m])', "exchnage"),
        ("sum by (venue) (rate(copy_trades_executed_total[5m]))", "venue"),
        ("sum without (venue) (broker_connections)", "venue"),
        ('copy_trades_failed_total{reasn="x"}', "reasn"),
        (
            "sum by (exchange) (broker_connections) / on (venue) "
            "sum by (exchange) (broker_connections)",
            "venue",
        ),
        (
            "sum by (exchange) (rate(copy_trades_executed_total[5m])) / ignoring (mode) group_left "
            "(region) sum by (exchange) (broker_connections)",
            "region",
        ),
        (
            "histogram_quantile(0.99, sum by (exchange) (rate(copy_trades_executed_total[5m])))",
            "le",
        ),
        ('label_replace(broker_connections, "venue", "$1", "exchnage", "(.*)")', "exchnage"),
    ],
)
def test_an_unknown_label_is_reported(exposed: Scrape, expr: str, label: str) -> None:
    problems = check_expr(expr, exposed)
    assert any(f"label {label!r}" in p for p in problems), problems


@pytest.mark.parametrize(
    "expr",
    [
        # Histogram series and their le; Grafana's variables; Prometheus's own labels.
        "histogram_quantile(0.5, sum by (le) "
        "(rate(trade_execution_time_seconds_bucket[$__rate_interval])))",
        "sum(rate(trade_execution_time_seconds_sum[5m])) "
        "/ sum(rate(trade_execution_time_seconds_count[5m]))",
        "sum by (job, instance) "
        '(rate(copy_trades_executed_total{exchange=~"$exchange"}[${__rate_interval}]))',
        'up{job=~"copytrade-.*"} == 0',
        # A family with no series yet takes its declared labels.
        "sum by (exchange, reason) (increase(copy_trades_failed_total[1h])) or vector(0)",
        # A label made by label_replace may be grouped by and matched on.
        'sum by (venue) (label_replace(broker_connections, "venue", "$1", "exchange", "(.*)"))',
        "sum by (exchange, reason) (rate(copy_trades_failed_total[5m])) / ignoring (reason) "
        "group_left () "
        "sum by (exchange) (rate(copy_trades_executed_total[5m]))",
        "time() - max(broker_connections)",
    ],
)
def test_correct_queries_pass(exposed: Scrape, expr: str) -> None:
    assert check_expr(expr, exposed) == []


def test_a_query_that_does_not_parse_is_reported(exposed: Scrape) -> None:
    problems = check_expr("sum(rate(copy_trades_executed_total[5m])", exposed)
    assert problems and problems[0].startswith("does not parse as PromQL")


def test_a_legend_label_missing_from_the_result_is_reported(exposed: Scrape) -> None:
    expr = "sum by (exchange) (rate(copy_trades_executed_total[5m]))"
    assert _findings(exposed, expr, "{{exchange}}") == []
    findings = _findings(exposed, expr, "{{exchange}} {{reason}}")
    assert len(findings) == 1 and "label 'reason' (legend or variable)" in findings[0]


def test_a_template_variable_names_its_metric_and_label(exposed: Scrape) -> None:
    dashboard = {
        "title": "Exchange Performance",
        "templating": {
            "list": [
                {"type": "datasource", "name": "datasource", "query": "prometheus"},
                {
                    "type": "query",
                    "name": "exchange",
                    "query": {"query": "label_values(broker_connections, venue)"},
                },
            ]
        },
    }
    findings = check_queries(all_queries({Path("d.json"): dashboard}, []), exposed)
    assert len(findings) == 1
    assert findings[0].startswith('dashboard "Exchange Performance", variable "exchange"')
    assert "'venue'" in findings[0]


def test_rules_are_checked_and_recorded_series_become_known(
    exposed: Scrape, tmp_path: Path
) -> None:
    rules = tmp_path / "copytrade.yml"
    rules.write_text(
        "groups:\n"
        "  - name: copies\n"
        "    rules:\n"
        "      - record: exchange:copy_trades_executed:rate5m\n"
        "        expr: sum by (exchange) (rate(copy_trades_executed_total[5m]))\n"
        "      - alert: CopyFailures\n"
        "        expr: sum by (reason) (rate(copy_trades_failure_total[5m])) > 0\n",
        encoding="utf-8",
    )
    dashboard = _dashboard("exchange:copy_trades_executed:rate5m", "{{exchange}}")
    findings = check_queries(all_queries({Path("d.json"): dashboard}, [rules]), exposed)
    assert len(findings) == 1, findings
    assert findings[0].startswith("rule file copytrade.yml, group copies, alert CopyFailures")
    assert "'copy_trades_failure_total'" in findings[0]


def test_declared_labels_are_read_from_the_code() -> None:
    declared = declared_labels()
    assert declared["copy_trades_failed"] == ("exchange", "reason")
    assert declared["grpc_server_handled"] == (
        "grpc_type",
        "grpc_service",
        "grpc_method",
        "grpc_code",
    )
    assert declared["trade_execution_time_seconds"] == ()
