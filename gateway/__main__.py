"""``python -m gateway [migrate]``: serve the REST gateway configured by the environment.

Start-up failures and exit codes: :mod:`meshkit.service`. With ``GATEWAY_WORKERS`` above 1 this
process supervises that many workers on the port (:mod:`gateway.workers`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import ssl

from gateway import workers
from gateway.config import Settings
from gateway.server import GatewayDeps, start_gateway
from gateway.store import GatewayStore
from meshkit import db, logs, tracing
from meshkit.service import EXIT_UNAVAILABLE, StartupError, ensure_can_listen, main

log = logging.getLogger("gateway")


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then drain requests in flight and close."""
    logs.configure("gateway", settings.log_level)
    role = workers.WorkerRole.from_env()
    if role is None:
        count = workers.worker_count(settings)
        ensure_can_listen("GATEWAY_PORT", settings.bind_host, settings.port)
        if count > 1:
            await _supervise(settings, count)
            return
    else:
        workers.die_with_supervisor(role)
    tracing.configure("gateway")  # on only with OTEL_EXPORTER_OTLP_ENDPOINT (meshkit.tracing)
    deps = None
    if role is not None:
        deps = GatewayDeps(worker=role, webhook_dispatcher=role.singleton)
    try:
        running = await start_gateway(settings, deps)
    except ssl.SSLError as e:
        raise StartupError(
            f"GATEWAY_HTTPS_CERT {settings.https_cert} and GATEWAY_HTTPS_KEY are not a usable"
            f" certificate and key: {e.reason or e}",
        ) from None
    except OSError as e:
        if e.errno != errno.EADDRINUSE or e.filename is not None:
            raise
        raise StartupError(
            f"GATEWAY_PORT {settings.port}: cannot listen on {settings.bind_host}:{settings.port}:"
            f" {e.strerror or 'address already in use'}",
            EXIT_UNAVAILABLE,
        ) from None
    log.info("gateway listening on %s", running.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        await running.close()


async def _supervise(settings: Settings, count: int) -> None:
    async def migrate() -> None:
        database = await db.connect(settings.database_url)
        try:
            await GatewayStore(database).migrate()
        finally:
            await database.close()

    try:
        code = await workers.supervise(settings, count, migrate)
    except OSError as e:
        if not workers.address_in_use(e):
            raise
        raise StartupError(
            f"GATEWAY_PORT {settings.port}: cannot listen on {settings.bind_host}:{settings.port}:"
            f" {e.strerror or 'address already in use'}",
            EXIT_UNAVAILABLE,
        ) from None
    if code:
        raise StartupError(f"a gateway worker exited with {code}", EXIT_UNAVAILABLE)


if __name__ == "__main__":
    main(
        "gateway",
        Settings.from_env,
        serve,
        store=GatewayStore,
        default_database_url=Settings.database_url,
    )
