"""Prometheus metrics shared by every service (go-grpc-middleware names) and the exporter."""

from __future__ import annotations

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from prometheus_client import Counter, Histogram, start_http_server

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
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def observe_handled(
    kind: str, service: str, method: str, code: grpc.StatusCode, seconds: float
) -> None:
    """Count one finished RPC and record how long it took."""
    GRPC_HANDLED.labels(kind, service, method, code.name).inc()
    GRPC_HANDLING.labels(kind, service, method).observe(seconds)


def preinitialize(service_descriptor: ServiceDescriptor) -> None:
    """Create the OK series of every method of a service so dashboards show zeros, not gaps."""
    full_name = service_descriptor.full_name
    for method in service_descriptor.methods:
        if method.client_streaming and method.server_streaming:
            kind = "bidi_stream"
        elif method.server_streaming:
            kind = "server_stream"
        elif method.client_streaming:
            kind = "client_stream"
        else:
            kind = "unary"
        GRPC_STARTED.labels(kind, full_name, method.name)
        GRPC_HANDLED.labels(kind, full_name, method.name, "OK")


def start_exporter(port: int, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` on ``port``; port 0 turns the exporter off."""
    if port:
        start_http_server(port, addr=host)
