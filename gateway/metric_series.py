"""What the gateway's ``/metrics`` serves besides its HTTP counters.

The gateway keeps its metrics in its own registry (one per :class:`gateway.server.Gateway`),
so the process collectors (``process_*``, ``python_gc_*``, ``python_info``) and the gRPC
client metrics its channels record in the default registry (:mod:`meshkit.client_metrics`) are
added to it here, and every route's success series is created at 0 from the start.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import (
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from gateway.routes import Route
from meshkit.client_metrics import GRPC_CLIENT_HANDLED, GRPC_CLIENT_HANDLING, GRPC_CLIENT_STARTED
from meshkit.metrics import zero_series

PLAIN_ROUTES = ("/livez", "/readyz", "/healthz", "/openapi.json", "/metrics")
"""The gateway's own GET routes, counted like the API's."""


class _Shared(Collector):
    """Metrics of the default registry served by another registry as well."""

    def __init__(self, metrics: Iterable[MetricWrapperBase]) -> None:
        self._metrics = tuple(metrics)

    def describe(self) -> Iterator[Metric]:
        for metric in self._metrics:
            yield from metric.describe()

    def collect(self) -> Iterator[Metric]:
        for metric in self._metrics:
            yield from metric.collect()


def prepare(
    registry: CollectorRegistry, requests: MetricWrapperBase, routes: Sequence[Route]
) -> None:
    """Add the process and gRPC client metrics to ``registry``; create ``requests``' zeros."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(_Shared((GRPC_CLIENT_STARTED, GRPC_CLIENT_HANDLED, GRPC_CLIENT_HANDLING)))
    for route in routes:
        zero_series(requests, method=[route.verb], route=[route.template], code=["200"])
    zero_series(requests, method=["GET"], route=PLAIN_ROUTES, code=["200"])
