"""Every labelled metric of every service exists at 0 for its known label values from the start,
and every label value a call site can use is one of the known ones (so a new reason, trigger or
method added without its zero series fails here, not on a dashboard that shows nothing).
"""

from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

import broker_svc.metrics
import engine_svc.metrics
import recon_svc.metrics
import sync_svc.metrics
from engine_svc.domain.model import IntentState
from meshkit import leases
from meshkit.metrics import KNOWN_LABELS, VENUES
from recon_svc.domain.model import Outcome

ROOT = pathlib.Path(__file__).resolve().parents[3]

for _service in leases.FENCED_WHAT:  # as each replica keeper does at start
    leases.preinitialize(_service)

FRESH_PROCESS = """
import json, sys
from prometheus_client import generate_latest
import broker_svc.metrics, engine_svc.metrics, recon_svc.metrics, sync_svc.metrics
from meshkit import leases
from meshkit.metrics import KNOWN_LABELS
for service in ("engine", "sync", "broker"):
    leases.preinitialize(service)
known = {m: {l: sorted(v) for l, v in labels.items()} for m, labels in KNOWN_LABELS.items()}
json.dump({"text": generate_latest().decode(), "known": known}, sys.stdout)
"""


@pytest.fixture(scope="module")
def fresh() -> tuple[
    dict[str, list[tuple[dict[str, str], float]]], dict[str, dict[str, list[str]]]
]:
    """The default registry of a process that imported the services' metrics, and nothing else."""
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS], cwd=ROOT, capture_output=True, text=True, check=True
    )
    out = json.loads(done.stdout)
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(out["text"]):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples, out["known"]


def test_copy_trades_failed_is_at_zero_for_every_venue_and_reason_from_the_start(fresh) -> None:
    samples, _ = fresh
    failed = {
        (labels["exchange"], labels["reason"]): value
        for labels, value in samples["copy_trades_failed_total"]
    }
    for venue in VENUES:
        for reason in engine_svc.metrics.COPY_FAILURE_REASONS:
            assert failed[(venue, reason)] == 0.0
    assert {labels["state"] for labels, _ in samples["copytrade_engine_intents_total"]} == {
        state.value for state in IntentState
    }
    assert {labels["outcome"] for labels, _ in samples["reconciliation_checks_total"]} == {
        outcome.value for outcome in Outcome
    }


def test_every_known_label_value_of_every_service_has_a_series_at_zero(fresh) -> None:
    samples, known = fresh
    for name in (
        "copy_trades_executed",
        "copytrade_sync_backfills",
        "copytrade_sync_leader_fills",
        "realtime_sync_connections",
        "sync_latency_seconds",
        "broker_connections",
        "copytrade_broker_venue_requests",
        "copytrade_lease_acquisitions",
        "copytrade_leases_lost",
        "copytrade_fenced_writes",
    ):
        assert name in known, name
    for name, labels in known.items():
        series = samples.get(name + "_total") or samples.get(name) or samples[name + "_count"]
        for label, values in labels.items():
            present = {s[label] for s, _ in series}
            assert set(values) <= present, (name, label, set(values) - present)
        assert all(value == 0.0 for _, value in series), name
    assert ({"service": "sync", "what": "append"}, 0.0) in samples["copytrade_fenced_writes_total"]


def test_the_services_exporters_serve_process_metrics(fresh) -> None:
    samples, _ = fresh
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"):
        assert name in samples, name
    assert "python_gc_objects_collected_total" in samples


def test_the_mesh_venues_are_the_brokers_venue_profiles() -> None:
    from broker_svc.adapters.venues import VENUE_CLASSES

    assert set(VENUES) == set(VENUE_CLASSES)


# ---------------------------------------------------------------- closed sets at the call sites

SCANNED = ("engine_svc", "sync_svc", "broker_svc", "recon_svc", "meshkit")
METRIC_MODULES = {
    "engine_svc": engine_svc.metrics,
    "sync_svc": sync_svc.metrics,
    "broker_svc": broker_svc.metrics,
    "recon_svc": recon_svc.metrics,
}
OPEN_LABELS = frozenset({"exchange", "status", "service"})
"""Labels whose values come from data (a venue name, an HTTP status, the keeper's service):
their usual values are created at 0, but a call site may use another."""
DEFINITIVE = frozenset(
    {
        "InvalidArgument",
        "FailedPrecondition",
        "NotFound",
        "Unauthenticated",
        "PermissionDenied",
        "Unimplemented",
    }
)
"""The errors the engine records as a failed copy (engine_svc/copy/sender.py ``_DEFINITIVE``)."""
NEVER_FAILED = frozenset({"FENCED", "DUPLICATE_CLIENT_ORDER_ID"})
"""PlaceOrder refusals the engine does not count as failed copies (a takeover, an order that
exists)."""


def _trees(*packages: str) -> Iterator[tuple[pathlib.Path, ast.Module]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT), ast.parse(path.read_text())


def _calls(tree: ast.Module, name: str) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called == name:
                yield node


def _literals(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    if isinstance(node, ast.BoolOp):
        return [value for part in node.values for value in _literals(part)]
    return []


def _metric(path: pathlib.Path, receiver: ast.expr) -> MetricWrapperBase | None:
    name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
    module = METRIC_MODULES.get(path.parts[0])
    for owner in (module, leases):
        found = getattr(owner, name, None) if owner is not None else None
        if isinstance(found, MetricWrapperBase):
            return found
    return None


def _children(metric: MetricWrapperBase) -> dict[str, set[str]]:
    """The label values of the series a metric created at import by other means."""
    return {
        label: {values[i] for values in metric._metrics}
        for i, label in enumerate(metric._labelnames)
    }


def _accepted(node: ast.expr) -> bool:
    """Whether a computed label value is bounded where it is made."""
    if isinstance(node, ast.Attribute) and node.attr == "value":
        return True  # an enum member's value: the zero series cover the whole enum
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in ("failure_reason", "venue_outcome")
    # checked where they are made: test_every_dynamic_label_value_comes_from_a_known_set
    return isinstance(node, ast.Name) and node.id in ("trigger", "path", "why", "method")


def test_every_label_value_at_a_call_site_is_a_known_one() -> None:
    problems: list[str] = []
    seen = 0
    for path, tree in _trees(*SCANNED):
        for call in _calls(tree, "labels"):
            assert isinstance(call.func, ast.Attribute)
            metric = _metric(path, call.func.value)
            if metric is None:
                continue
            seen += 1
            known = KNOWN_LABELS.get(metric._name) or _children(metric)
            for label, arg in zip(metric._labelnames, call.args, strict=True):
                if label in OPEN_LABELS:
                    continue
                where = f"{path}:{call.lineno} {metric._name}{{{label}}}"
                literals = _literals(arg)
                for value in literals:
                    if value not in known[label]:
                        problems.append(f"{where}: {value!r} has no series at 0")
                if not literals and not _accepted(arg):
                    problems.append(f"{where}: {ast.unparse(arg)} is not a known value")
    assert seen > 30
    assert not problems, "\n".join(problems)


def test_every_dynamic_label_value_comes_from_a_known_set() -> None:
    found: dict[str, set[str]] = {
        "trigger": set(),
        "path": set(),
        "why": set(),
        "method": set(),
        "failed": set(),
        "venue_outcome": set(),
        "fenced": set(),
    }
    for path, tree in _trees(*SCANNED):
        package = path.parts[0]
        for name, key in (("request_backfill", "trigger"), ("add", "trigger")):
            for call in _calls(tree, name):
                if name == "add" and "_triggers" not in ast.unparse(call.func):
                    continue
                found[key].update(_literals(call.args[0]))
        for call in _calls(tree, "ingest"):
            if package == "sync_svc" and len(call.args) >= 3:
                found["path"].update(_literals(call.args[2]))
        for call in _calls(tree, "_ingest"):
            found["path"].update(_literals(call.args[2]))
        for call in _calls(tree, "_lose"):
            found["why"].update(_literals(call.args[1]))
        if package == "broker_svc":
            for name in ("_call", "_paged"):
                for call in _calls(tree, name):
                    found["method"].update(_literals(call.args[0]))
        for error in DEFINITIVE if package in ("broker_svc", "meshkit") else ():
            for call in _calls(tree, error):
                for keyword in call.keywords:
                    if keyword.arg == "reason":
                        found["failed"].update(v.lower() for v in _literals(keyword.value))
        if path.parts[:3] == ("broker_svc", "adapters", "ccxt"):
            for node in ast.walk(tree):
                if isinstance(node, ast.keyword) and node.arg == "reason":
                    found["venue_outcome"].update(v.lower() for v in _literals(node.value))
        for call in _calls(tree, "labels"):
            if ast.unparse(call.func.value) == "FENCED_WRITES":
                found["fenced"].add("/".join(v for a in call.args for v in _literals(a)))

    assert found["trigger"] and set(found["trigger"]) <= set(sync_svc.metrics.BACKFILL_TRIGGERS)
    assert found["path"] == set(sync_svc.metrics.FILL_PATHS)
    assert found["why"] == set(leases.LOST_WHY)
    assert found["method"] - {""} <= set(broker_svc.metrics.VENUE_METHODS), found["method"]
    failed = found["failed"] - {v.lower() for v in NEVER_FAILED}
    defaults = {"invalid_argument", "not_found", "failed_precondition", "unauthenticated"}
    defaults |= {"permission_denied", "unimplemented"}
    missing = (failed | defaults) - engine_svc.metrics.COPY_FAILURE_REASONS
    assert not missing, f"add to engine_svc.metrics.COPY_FAILURE_REASONS: {sorted(missing)}"
    missing = found["venue_outcome"] - set(broker_svc.metrics.VENUE_OUTCOMES)
    assert not missing, f"add to broker_svc.metrics.VENUE_OUTCOMES: {sorted(missing)}"
    fenced = {
        f"{service}/{what}" for service, whats in leases.FENCED_WHAT.items() for what in whats
    }
    assert found["fenced"] == fenced


def test_an_unlisted_reason_is_counted_as_other() -> None:
    assert engine_svc.metrics.failure_reason("insufficient_funds") == "insufficient_funds"
    assert engine_svc.metrics.failure_reason("something_new") == "other"
    assert broker_svc.metrics.venue_outcome("RATE_LIMITED") == "rate_limited"
    assert broker_svc.metrics.venue_outcome("SOMETHING_NEW") == "other"
