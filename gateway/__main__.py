"""``python -m gateway [migrate]``: serve the REST gateway configured by the environment.

Start-up failures and exit codes: :mod:`meshkit.service`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import ssl

from gateway.config import Settings
from gateway.server import start_gateway
from gateway.store import GatewayStore
from meshkit import logs, tracing
from meshkit.service import EXIT_UNAVAILABLE, StartupError, ensure_can_listen, main

log = logging.getLogger("gateway")


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then drain requests in flight and close."""
    logs.configure("gateway", settings.log_level)
    tracing.configure("gateway")  # on only with OTEL_EXPORTER_OTLP_ENDPOINT (meshkit.tracing)
    ensure_can_listen("GATEWAY_PORT", settings.bind_host, settings.port)
    try:
        running = await start_gateway(settings)
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


if __name__ == "__main__":
    main(
        "gateway",
        Settings.from_env,
        serve,
        store=GatewayStore,
        default_database_url=Settings.database_url,
    )
