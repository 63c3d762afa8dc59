"""Server bootstrap: one ``grpc.aio`` server per service with the shared interceptor,
the standard health service, optional mutual TLS, and graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from meshkit import server_info
from meshkit.access import Guard
from meshkit.clients import KEEPALIVE_OPTIONS
from meshkit.interceptors import ServiceInterceptor
from meshkit.settings import TlsSettings

log = logging.getLogger("meshkit.server")


@dataclass
class Registration:
    """A servicer and how to add it: ``add_XServicer_to_server`` and the service's full name."""

    add: Callable[[Any, grpc.aio.Server], None]
    servicer: Any
    full_name: str


@dataclass
class RunningServer:
    """A started server, its bound port and its health servicer."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: tuple[str, ...]
    # The plaintext listener that serves only the health service (0: none).
    health_port: int = 0
    health_server: grpc.aio.Server | None = None

    async def stop(self, grace: float | None = 5.0) -> None:
        """Report NOT_SERVING, then stop, letting calls in flight finish within ``grace``."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.health_server is not None:
            await self.health_server.stop(None)


async def start_server(
    registrations: Sequence[Registration],
    *,
    domain: str,
    guard: Guard,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: TlsSettings | None = None,
    health_port: int | None = None,
) -> RunningServer:
    """Build, bind and start a server for ``registrations``; port 0 picks a free port.

    With ``tls`` the server speaks only mutual TLS: a client must present a certificate of
    the mesh's CA. Without it (in-process tests) it binds loopback only. ``guard`` admits
    every call (access table, user assertion).

    ``health_port`` (``None``: none; 0 picks a free port) adds a plaintext listener that
    serves only ``grpc.health.v1.Health``, so that a probe without a mesh certificate
    (kubelet's native gRPC probe cannot present one) can ask whether the service serves.
    It carries nothing else: no RPC of the service is reachable through it.
    """
    if (tls is None or not tls.enabled) and host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"refusing plaintext gRPC on {host}: give the server TLS settings")
    options = [
        *KEEPALIVE_OPTIONS,
        ("grpc.so_reuseport", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ]
    server = grpc.aio.server(interceptors=[ServiceInterceptor(domain, guard)], options=options)
    for registration in registrations:
        registration.add(registration.servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server_info.register(server, domain)  # component and version, open like health
    address = f"{host}:{port}"
    if tls is not None and tls.enabled:
        # Three small local files, read once while the server starts, before it serves.
        with (
            open(tls.key, "rb") as key,  # noqa: ASYNC230 - read once, at startup
            open(tls.cert, "rb") as cert,  # noqa: ASYNC230 - read once, at startup
            open(tls.ca, "rb") as ca,  # noqa: ASYNC230 - read once, at startup
        ):
            credentials = grpc.ssl_server_credentials(
                [(key.read(), cert.read())],
                root_certificates=ca.read(),
                require_client_auth=True,
            )
        bound = server.add_secure_port(address, credentials)
    else:
        bound = server.add_insecure_port(address)
    if not bound:
        raise OSError(f"could not bind {address}")
    await server.start()
    names = tuple(r.full_name for r in registrations)
    for name in ("", *names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    running = RunningServer(server, bound, health_servicer, names)
    if health_port is not None:
        probe_server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, probe_server)
        probe_bound = probe_server.add_insecure_port(f"{host}:{health_port}")
        if not probe_bound:
            await server.stop(None)
            raise OSError(f"could not bind the health port {host}:{health_port}")
        await probe_server.start()
        running.health_port, running.health_server = probe_bound, probe_server
    return running


async def run_until_signalled(
    running: RunningServer,
    *,
    on_stop: Callable[[], Awaitable[None]] | None = None,
    grace: float = 5.0,
) -> None:
    """Serve until SIGTERM or SIGINT, then drain health, stop the server and run ``on_stop``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: draining for up to %.1fs", grace)
    await running.stop(grace)
    if on_stop is not None:
        await on_stop()
