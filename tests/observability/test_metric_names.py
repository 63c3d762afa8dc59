"""Every metric and label the dashboards and alert rules query exists on a live mesh's /metrics.

One mesh (every service's metrics port open), one leader trade copied and reconciled, then the
gateway's and each service's ``/metrics`` are scraped. Every panel query and template variable
of ``deploy/grafana/dashboards/*.json`` and every ``expr`` of ``deploy/prometheus/rules/*.yml``
is parsed as PromQL and walked (tests/observability/metric_check.py); a metric no target
exposes, or a label a query matches, groups by or prints that the metric does not carry, fails
the test naming the dashboard and panel (or the rule). The same scrape then proves the check can
fail: a renamed metric and a misspelled label in a real dashboard are both reported.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.observability.live_mesh import copy_one_trade, metered_mesh, scrape
from tests.observability.metric_check import (
    Scrape,
    all_queries,
    check_queries,
    declared_labels,
    load_dashboards,
    rule_files,
)


def _replace_in(dashboard: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    text = json.dumps(dashboard)
    assert old in text, f"the dashboard no longer has {old!r}: pick another mutation"
    return json.loads(text.replace(old, new, 1))


async def test_every_dashboard_and_rule_query_names_metrics_and_labels_the_mesh_exposes(
    tmp_path,
) -> None:
    async with metered_mesh(tmp_path / "mesh") as (mesh, urls), aiohttp.ClientSession() as http:
        await copy_one_trade(mesh, http)
        pages = await scrape(http, urls)
    assert set(pages) == {"gateway", "broker", "engine", "sync", "recon"}
    exposed = Scrape.from_texts(pages.values(), declared_labels())
    dashboards = load_dashboards()
    rules = rule_files()

    findings = check_queries(all_queries(dashboards, rules), copy.deepcopy(exposed))
    assert not findings, "queries name what no /metrics exposes:\n" + "\n".join(findings)

    # The check can fail: a renamed histogram and a misspelled label in a real dashboard.
    overview = next(d for d in dashboards.values() if d["title"] == "Copy Trading Overview")
    broken = _replace_in(
        overview, "trade_execution_time_seconds_bucket", "trade_execution_seconds_bucket"
    )
    broken = _replace_in(broken, "sum by (exchange, reason)", "sum by (exchange, reasons)")
    findings = check_queries(all_queries({Path("broken.json"): broken}, []), copy.deepcopy(exposed))
    assert any(
        'dashboard "Copy Trading Overview", panel "Copy latency' in f
        and "'trade_execution_seconds_bucket' is in no scraped /metrics" in f
        for f in findings
    ), findings
    assert any(
        'panel "Copies failed per second by exchange and reason"' in f
        and "label 'reasons' (sum by) is not on its operand" in f
        for f in findings
    ), findings
