"""``python -m gateway``: serve the REST gateway configured by the environment."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from gateway.config import Settings
from gateway.server import start_gateway
from meshkit import logs
from meshkit.settings import ConfigError

log = logging.getLogger("gateway")


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then drain requests in flight and close."""
    running = await start_gateway(settings)
    print(f"gateway listening on {running.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        await running.close()


def main() -> int:
    """Read the settings, configure logging and serve."""
    try:
        settings = Settings.from_env()
    except ConfigError as e:
        print(f"gateway: {e}", file=sys.stderr)
        return 2
    logs.configure("gateway", settings.log_level)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
