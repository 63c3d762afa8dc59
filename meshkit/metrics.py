"""Prometheus metrics shared by every service (go-grpc-middleware names) and the exporter."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from prometheus_client import Counter, Histogram, start_http_server
from prometheus_client.metrics import MetricWrapperBase

VENUES = ("binance", "binanceusdm", "coinbase", "kraken")
"""The venues the mesh trades on (the broker's venue profiles, ``broker_svc.adapters.venues``):
the ``exchange`` label values every service creates at 0 from the start."""

KNOWN_LABELS: dict[str, dict[str, set[str]]] = {}
"""Every label value :func:`zero_series` created, by metric name and label name (for tests)."""

HANDLING_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
"""The buckets of the gRPC handling histograms, server and client alike."""

GRPC_STARTED = Counter(
    "grpc_server_started_total",
    "RPCs started on the server.",
    ["grpc_type", "grpc_service", "grpc_method"],
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, whatever their outcome.",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
GRPC_HANDLING = Histogram(
    "grpc_server_handling_seconds",
    "Time to handle an RPC on the server.",
    ["grpc_type", "grpc_service", "grpc_method"],
    buckets=HANDLING_BUCKETS,
)


def observe_handled(
    kind: str, service: str, method: str, code: grpc.StatusCode, seconds: float
) -> None:
    """Count one finished RPC and record how long it took."""
    GRPC_HANDLED.labels(kind, service, method, code.name).inc()
    GRPC_HANDLING.labels(kind, service, method).observe(seconds)


def method_kind(method: MethodDescriptor) -> str:
    """Return go-grpc-middleware's ``grpc_type`` of a method."""
    if method.client_streaming and method.server_streaming:
        return "bidi_stream"
    if method.server_streaming:
        return "server_stream"
    if method.client_streaming:
        return "client_stream"
    return "unary"


def preinitialize(
    service_descriptor: ServiceDescriptor,
    started: MetricWrapperBase = GRPC_STARTED,
    handled: MetricWrapperBase = GRPC_HANDLED,
) -> None:
    """Create the OK series of every method of a service so dashboards show zeros, not gaps.

    The server's counters by default; the gRPC client metrics pass theirs.
    """
    full_name = service_descriptor.full_name
    for method in service_descriptor.methods:
        labels = {
            "grpc_type": [method_kind(method)],
            "grpc_service": [full_name],
            "grpc_method": [method.name],
        }
        zero_series(started, **labels)
        zero_series(handled, **labels, grpc_code=["OK"])


def zero_series(metric: MetricWrapperBase, **values: Iterable[str]) -> None:
    """Create every combination of the given label values at 0, so rates read 0, not nothing.

    Every label of ``metric`` must be given (by name), each with its known values; a service
    calls this at start for each of its labelled metrics, and :data:`KNOWN_LABELS` remembers
    the values for the tests that check each call site uses one of them.
    """
    names = tuple(metric._labelnames)
    if set(values) != set(names):
        raise ValueError(f"{metric._name}: labels {sorted(values)} are not {sorted(names)}")
    columns = [tuple(values[name]) for name in names]
    known = KNOWN_LABELS.setdefault(metric._name, {name: set() for name in names})
    for name, column in zip(names, columns, strict=True):
        known[name].update(column)
    for combination in itertools.product(*columns):
        metric.labels(*combination)


def start_exporter(port: int, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` on ``port``; port 0 turns the exporter off."""
    if port:
        start_http_server(port, addr=host)
