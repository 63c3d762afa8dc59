"""Check the PromQL of the dashboards and alert rules against what the mesh really exposes.

A dashboard whose query names a metric that no process exposes (renamed, misspelled, never
built) shows "No data" forever and nobody notices; an alert on it never fires. This module
finds those before an operator does:

- :class:`Scrape` is what a set of ``/metrics`` pages offers: every series name (a histogram's
  ``_bucket``, ``_sum`` and ``_count``, a counter's ``_total``) and the label names seen on it.
  A family that is declared (``# TYPE``) but has no series yet (``copy_trades_failed_total``
  before the first failure) takes its label names from its declaration in the code
  (:func:`declared_labels`, read from the source, not imported). ``job`` and ``instance`` are on
  every series (Prometheus adds them), and ``up`` and the ``scrape_*`` series exist for every
  target.
- :func:`check_expr` parses one query with ``promql_parser`` (a binding of the Rust PromQL
  parser) and walks it: every selected metric must be in the scrape, every label a selector
  matches must be on that metric, and every label an aggregation groups by, a binary operation
  matches on or a ``group_left`` copies must be on its operand, following how each node changes
  the labels (``label_replace`` adds one, ``histogram_quantile`` needs and drops ``le``, ``sum by``
  keeps only those named). Grafana's ``$__rate_interval`` and friends become a duration first;
  ``$exchange`` inside a matcher's value is just a string to the parser.
- :func:`dashboard_queries` and :func:`rule_queries` list every query of the dashboard JSON files
  (panels, rows' panels, template variables' ``label_values``, legend ``{{label}}``s) and of the
  Prometheus rule files, each with where it is, so a finding names the dashboard and panel (or
  the rule file and rule).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser as pq
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus" / "rules"
PRODUCT_PACKAGES = (
    "meshkit",
    "broker_svc",
    "engine_svc",
    "sync_svc",
    "recon_svc",
    "gateway",
    "exchange_sim",
)

TARGET_LABELS = frozenset({"job", "instance"})
"""Labels Prometheus attaches to every series it scrapes."""

PROMETHEUS_SERIES = ("up", "scrape_duration_seconds", "scrape_samples_scraped")
"""Series Prometheus makes for every target itself (labels: the target's)."""

# Grafana's interval variables stand where PromQL wants a duration.
_GRAFANA_DURATIONS = re.compile(r"\$\{?__(?:rate_interval|interval|range)(?:_ms|_s)?\}?")
_LEGEND_LABEL = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:(.*),\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", re.S
)
_QUERY_RESULT = re.compile(r"^\s*query_result\((.*)\)\s*$", re.S)

_SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}
# The label a family's own series add: a histogram's buckets, a summary's quantiles.
_SERIES_LABELS = {"_bucket": {"le"}, "": set()}

_METRIC_CLASSES = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}


@dataclass
class Scrape:
    """What the scraped ``/metrics`` pages offer: series names and their label names."""

    series: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], declarations: Mapping[str, tuple[str, ...]] | None = None
    ) -> Scrape:
        """Read Prometheus text expositions (one per target).

        ``declarations`` (family name to label names, :func:`declared_labels`) gives the label
        names of a family the page declares but has no series of yet.
        """
        scrape = cls()
        for name in PROMETHEUS_SERIES:
            scrape.series[name] = set()
        for text in texts:
            for family in text_string_to_metric_families(text):
                suffixes = _SERIES_SUFFIXES.get(family.type, ("",))
                declared = set((declarations or {}).get(family.name, ()))
                for suffix in suffixes:
                    labels = scrape.series.setdefault(family.name + suffix, set())
                    if not family.samples:
                        labels |= declared
                        if suffix == "_bucket":
                            labels.add("le")
                        if family.type == "summary" and suffix == "":
                            labels.add("quantile")
                for sample in family.samples:
                    scrape.series.setdefault(sample.name, set()).update(sample.labels)
        return scrape

    def add(self, name: str, labels: Iterable[str]) -> None:
        """Make ``name`` known with ``labels`` (a recording rule's output)."""
        self.series.setdefault(name, set()).update(labels)

    def labels(self, name: str) -> frozenset[str] | None:
        """Return the label names of series ``name`` (with the target's), None when unknown."""
        if name not in self.series:
            return None
        return frozenset(self.series[name]) | TARGET_LABELS


def declared_labels(
    root: Path = ROOT, packages: Iterable[str] = PRODUCT_PACKAGES
) -> dict[str, tuple[str, ...]]:
    """Return the label names of every metric the product code declares, by family name.

    Reads ``Counter("name", "help", ["label", ...])`` (or ``labelnames=...``) calls in the
    packages' source; a counter's family name is its name without ``_total``. Label lists given
    as a module-level constant of literal strings are followed; others are left out.
    """
    found: dict[str, tuple[str, ...]] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            constants: dict[str, Any] = {}
            for statement in tree.body:
                if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                    target = statement.targets[0]
                    if isinstance(target, ast.Name):
                        constants[target.id] = statement.value
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                called = node.func
                class_name = (
                    called.id
                    if isinstance(called, ast.Name)
                    else called.attr
                    if isinstance(called, ast.Attribute)
                    else ""
                )
                if class_name not in _METRIC_CLASSES or not node.args:
                    continue
                name = node.args[0]
                if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                    continue
                labels_node = node.args[2] if len(node.args) > 2 else None
                for keyword in node.keywords:
                    if keyword.arg == "labelnames":
                        labels_node = keyword.value
                if isinstance(labels_node, ast.Name):
                    labels_node = constants.get(labels_node.id)
                labels = _literal_strings(labels_node) if labels_node is not None else ()
                if labels is None:
                    continue
                family = name.value
                if class_name == "Counter" and family.endswith("_total"):
                    family = family[: -len("_total")]
                found[family] = labels
    return found


def _literal_strings(node: ast.AST) -> tuple[str, ...] | None:
    if not isinstance(node, ast.List | ast.Tuple):
        return None
    strings = []
    for element in node.elts:
        if not (isinstance(element, ast.Constant) and isinstance(element.value, str)):
            return None
        strings.append(element.value)
    return tuple(strings)


@dataclass(frozen=True)
class _Value:
    """What a sub-expression yields: a scalar, or a vector whose label names are known (or not)."""

    scalar: bool
    labels: frozenset[str] | None = None  # None: unknown (a missing metric, a regex name)


_SCALAR = _Value(scalar=True, labels=frozenset())
_UNKNOWN = _Value(scalar=False, labels=None)


def grafana_to_promql(query: str) -> str:
    """Replace Grafana's interval variables with a duration, so the query parses as PromQL."""
    return _GRAFANA_DURATIONS.sub("5m", query)


def check_expr(query: str, scrape: Scrape) -> list[str]:
    """Return what is wrong with one query against ``scrape`` (empty: every name exists)."""
    problems: list[str] = []
    _checked(query, scrape, problems)
    return problems


def result_labels(query: str, scrape: Scrape) -> frozenset[str] | None:
    """Return the label names of the query's result (None when they cannot be known)."""
    return _checked(query, scrape, []).labels


def _checked(query: str, scrape: Scrape, problems: list[str]) -> _Value:
    try:
        expr = pq.parse(grafana_to_promql(query))
    except ValueError as e:
        problems.append(f"does not parse as PromQL: {e}")
        return _UNKNOWN
    return _Walker(scrape, problems).value(expr)


class _Walker:
    def __init__(self, scrape: Scrape, problems: list[str]) -> None:
        self.scrape = scrape
        self.problems = problems

    def need(self, labels: Iterable[str], have: _Value, what: str) -> None:
        if have.labels is None:
            return
        for label in labels:
            if label not in have.labels:
                self.problems.append(
                    f"label {label!r} ({what}) is not on its operand, whose labels are "
                    f"{sorted(have.labels)}"
                )

    def value(self, expr: Any) -> _Value:
        if isinstance(expr, pq.NumberLiteral | pq.StringLiteral):
            return _SCALAR
        if isinstance(expr, pq.ParenExpr | pq.UnaryExpr | pq.SubqueryExpr):
            return self.value(expr.expr)
        if isinstance(expr, pq.MatrixSelector):
            return self.selector(expr.vector_selector)
        if isinstance(expr, pq.VectorSelector):
            return self.selector(expr)
        if isinstance(expr, pq.Call):
            return self.call(expr)
        if isinstance(expr, pq.AggregateExpr):
            return self.aggregate(expr)
        if isinstance(expr, pq.BinaryExpr):
            return self.binary(expr)
        self.problems.append(f"unhandled PromQL node {type(expr).__name__}")
        return _UNKNOWN

    def selector(self, selector: Any) -> _Value:
        matchers = list(selector.matchers.matchers)
        for group in selector.matchers.or_matchers:
            matchers += group
        name = selector.name
        if name is None:
            names = [m for m in matchers if m.name == "__name__"]
            if len(names) == 1 and names[0].op == pq.MatchOp.Equal:
                name = names[0].value
            else:
                return _UNKNOWN  # a regex over names: nothing to check against
        labels = self.scrape.labels(name)
        if labels is None:
            self.problems.append(f"metric {name!r} is in no scraped /metrics")
            return _UNKNOWN
        for matcher in matchers:
            if matcher.name != "__name__" and matcher.name not in labels:
                self.problems.append(
                    f"label {matcher.name!r} is not on metric {name!r} (its labels: "
                    f"{sorted(labels)})"
                )
        return _Value(scalar=False, labels=labels)

    def call(self, call: Any) -> _Value:
        name = call.func.name
        args = [self.value(a) for a in call.args]
        vectors = [v for v, a in zip(args, call.args, strict=True) if not _literal(a)]
        if call.func.return_type == pq.ValueType.Scalar:
            return _SCALAR
        if name in ("label_replace", "label_join"):
            source = vectors[0] if vectors else _UNKNOWN
            strings = [a.val for a in call.args[1:] if isinstance(a, pq.StringLiteral)]
            destination = strings[0] if strings else ""
            sources = strings[2:3] if name == "label_replace" else strings[2:]
            self.need([s for s in sources if s], source, f"source of {name}")
            if source.labels is None:
                return _UNKNOWN
            return _Value(scalar=False, labels=source.labels | {destination})
        if name == "histogram_quantile" or name.startswith("histogram_"):
            source = vectors[-1] if vectors else _UNKNOWN
            if name in ("histogram_quantile", "histogram_fraction"):
                self.need(["le"], source, f"{name} needs the buckets' le")
            if source.labels is None:
                return _UNKNOWN
            return _Value(scalar=False, labels=source.labels - {"le"})
        if name in ("vector", "time", "pi") or not vectors:
            return _Value(scalar=False, labels=frozenset())
        if name.startswith("absent"):
            return _Value(scalar=False, labels=None)
        return vectors[0]

    def aggregate(self, aggregate: Any) -> _Value:
        inner = self.value(aggregate.expr)
        op = str(aggregate.op)
        modifier = aggregate.modifier
        listed = list(modifier.labels) if modifier is not None else []
        by = modifier is not None and modifier.type == pq.AggModifierType.By
        self.need(listed, inner, f"{op} {'by' if by else 'without'}")
        if op in ("topk", "bottomk", "limitk", "limit_ratio"):
            return inner
        extra: set[str] = set()
        if op == "count_values" and isinstance(aggregate.param, pq.StringLiteral):
            extra.add(aggregate.param.val)
        if modifier is None:
            return _Value(scalar=False, labels=frozenset(extra))
        if by:
            return _Value(scalar=False, labels=frozenset(listed) | extra)
        if inner.labels is None:
            return _UNKNOWN
        return _Value(scalar=False, labels=(inner.labels - set(listed)) | extra)

    def binary(self, binary: Any) -> _Value:
        lhs, rhs = self.value(binary.lhs), self.value(binary.rhs)
        if lhs.scalar and rhs.scalar:
            return _SCALAR
        if lhs.scalar or rhs.scalar:
            return rhs if lhs.scalar else lhs
        modifier = binary.modifier
        op = str(binary.op)
        matching = modifier.matching if modifier is not None else None
        on = matching is not None and matching.type == pq.LabelModifierType.Include
        matched = list(matching.labels) if matching is not None else []
        if on:
            self.need(matched, lhs, f"on() of {op}, left side")
            self.need(matched, rhs, f"on() of {op}, right side")
        elif matched and lhs.labels is not None and rhs.labels is not None:
            either = _Value(scalar=False, labels=lhs.labels | rhs.labels)
            self.need(matched, either, f"ignoring() of {op}")
        if op == "or":
            if lhs.labels is None or rhs.labels is None:
                return _UNKNOWN
            return _Value(scalar=False, labels=lhs.labels | rhs.labels)
        if op in ("and", "unless"):
            return lhs
        card = modifier.card if modifier is not None else pq.VectorMatchCardinality.OneToOne
        group = list(modifier.group_labels or []) if modifier is not None else []
        if card == pq.VectorMatchCardinality.ManyToOne:
            self.need(group, rhs, f"group_left of {op}")
            many = lhs
        elif card == pq.VectorMatchCardinality.OneToMany:
            self.need(group, lhs, f"group_right of {op}")
            many = rhs
        else:
            if lhs.labels is None:
                return _UNKNOWN
            if on:
                return _Value(scalar=False, labels=lhs.labels & set(matched))
            return _Value(scalar=False, labels=lhs.labels - set(matched))
        if many.labels is None:
            return _UNKNOWN
        return _Value(scalar=False, labels=many.labels | set(group))


def _literal(expr: Any) -> bool:
    return isinstance(expr, pq.NumberLiteral | pq.StringLiteral)


@dataclass(frozen=True)
class Query:
    """One query of a dashboard or rule file, and where it is written."""

    where: str
    expr: str
    legend: str = ""  # a Grafana legend format: its {{label}}s must be on the result
    label: str = ""  # a label_values() variable: the label it lists
    record: str = ""  # a recording rule: the series name it writes
    record_labels: tuple[str, ...] = ()


def dashboard_files(directory: Path = DASHBOARDS) -> list[Path]:
    """Return the dashboard JSON files."""
    return sorted(directory.glob("*.json"))


def rule_files(directory: Path = RULES) -> list[Path]:
    """Return the Prometheus rule files (none is fine)."""
    return sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries(dashboard: Mapping[str, Any]) -> Iterator[Query]:
    """Yield every PromQL query of a dashboard: panel targets and template variables."""
    title = dashboard.get("title", "?")
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                where = (
                    f'dashboard "{title}", panel "{panel.get("title", "?")}" '
                    f"(target {target.get('refId', '?')})"
                )
                yield Query(where, target["expr"], legend=target.get("legendFormat", ""))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        where = f'dashboard "{title}", variable "{variable.get("name", "?")}"'
        if found := _LABEL_VALUES.match(query or ""):
            expr, label = found.group(1), found.group(2)
            if expr:
                yield Query(where, expr, label=label)
        elif found := _QUERY_RESULT.match(query or ""):
            yield Query(where, found.group(1))


def rule_queries(path: Path) -> Iterator[Query]:
    """Yield every ``expr`` of a Prometheus rule file (alerts and recording rules)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for group in document.get("groups", []) or []:
        for rule in group.get("rules", []) or []:
            name = rule.get("alert") or rule.get("record") or "?"
            kind = "alert" if "alert" in rule else "record"
            where = f"rule file {path.name}, group {group.get('name', '?')}, {kind} {name}"
            yield Query(
                where,
                str(rule.get("expr", "")),
                record=rule.get("record", ""),
                record_labels=tuple((rule.get("labels") or {}).keys()),
            )


def load_dashboards(directory: Path = DASHBOARDS) -> dict[Path, dict[str, Any]]:
    """Return every dashboard JSON document by file."""
    return {
        path: json.loads(path.read_text(encoding="utf-8")) for path in dashboard_files(directory)
    }


def all_queries(dashboards: Mapping[Path, Mapping[str, Any]], rules: Iterable[Path]) -> list[Query]:
    """Return the rule files' queries (recording rules first, in order), then the dashboards'."""
    queries = [q for path in rules for q in rule_queries(path)]
    for dashboard in dashboards.values():
        queries += list(dashboard_queries(dashboard))
    return queries


def check_queries(queries: Iterable[Query], scrape: Scrape) -> list[str]:
    """Return every finding, each naming where the query is; recorded series become known."""
    findings: list[str] = []
    queries = list(queries)
    # A recorded series exists once its rule runs: known to the queries after it and anywhere
    # in the dashboards, with the labels of its expression and the rule's own.
    for query in queries:
        if query.record:
            labels = result_labels(query.expr, scrape)
            scrape.add(query.record, [*(labels or ()), *query.record_labels])
    for query in queries:
        problems = check_expr(query.expr, scrape)
        if not problems:
            labels = result_labels(query.expr, scrape)
            if labels is not None:
                wanted = [*_LEGEND_LABEL.findall(query.legend)]
                if query.label:
                    wanted.append(query.label)
                problems += [
                    f"label {label!r} (legend or variable) is not on the result, whose labels "
                    f"are {sorted(labels)}"
                    for label in wanted
                    if label not in labels
                ]
        findings += [f"{query.where}: {problem} in: {query.expr}" for problem in problems]
    return findings
