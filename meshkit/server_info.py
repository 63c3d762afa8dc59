"""``copytrade.common.v1.ServerInfoService``: what runs on a gRPC port, for the operator's tools.

Every server :func:`meshkit.server.start_server` builds serves it beside the health service,
and like health it is open to any caller with a mesh certificate (``meshkit.access``): the
answer names the component, its version and when it started, never a user or an account.
On the engine it also carries the copy configurations per status, read from the engine's own
``copytrade_engine_configs{status}`` gauge (design.md §4.5), so the operator's
``copytrade status`` asks the running engine instead of reading its database.
"""

from __future__ import annotations

import importlib.metadata
import time
from typing import Any

from google.protobuf import timestamp_pb2
from prometheus_client import REGISTRY

from copytrade.common.v1 import server_info_service_pb2, server_info_service_pb2_grpc

SERVICE_NAME = "copytrade.common.v1.ServerInfoService"
CONFIGS_GAUGE = "copytrade_engine_configs"
"""The engine's per-status gauge of copy configurations (its ``status`` label)."""
PACKAGE = "copytrade"


def package_version() -> str:
    """Return the installed ``copytrade`` package's version, or ``unknown`` outside an install."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def copy_configs_by_status(registry: Any = REGISTRY) -> dict[str, int]:
    """Return the samples of this process's ``copytrade_engine_configs`` gauge (``{}`` if none)."""
    counts: dict[str, int] = {}
    for family in registry.collect():
        if family.name != CONFIGS_GAUGE:
            continue
        for sample in family.samples:
            status = sample.labels.get("status")
            if status:
                counts[status] = int(sample.value)
    return counts


class ServerInfoServicer(server_info_service_pb2_grpc.ServerInfoServiceServicer):
    """Answers ``GetServerInfo`` for one server (``component``: broker, engine, sync, recon)."""

    def __init__(self, component: str, *, registry: Any = REGISTRY) -> None:
        self.component = component
        self.version = package_version()
        self.started = time.time()
        self._registry = registry

    async def GetServerInfo(
        self,
        request: server_info_service_pb2.GetServerInfoRequest,
        context: Any,
    ) -> server_info_service_pb2.GetServerInfoResponse:
        """Describe this server."""
        start = timestamp_pb2.Timestamp()
        start.FromNanoseconds(int(self.started * 1e9))
        return server_info_service_pb2.GetServerInfoResponse(
            component=self.component,
            version=self.version,
            start_time=start,
            copy_configs_by_status=copy_configs_by_status(self._registry),
        )


def component_of(domain: str) -> str:
    """Return the component named by an error domain (``engine.copytrade`` -> ``engine``)."""
    return domain.split(".", 1)[0]


def register(server: Any, domain: str) -> None:
    """Add the service to a ``grpc.aio`` server whose errors carry ``domain``."""
    server_info_service_pb2_grpc.add_ServerInfoServiceServicer_to_server(
        ServerInfoServicer(component_of(domain)), server
    )
