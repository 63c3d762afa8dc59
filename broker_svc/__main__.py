"""``python -m broker_svc``: run the broker alone, configured by its environment."""

from __future__ import annotations

import asyncio
import sys

from broker_svc.config import Settings
from broker_svc.keys import KeyCheckFailed
from broker_svc.server import build_server
from meshkit.server import run_until_signalled
from meshkit.service import prepare_process
from meshkit.settings import ConfigError


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then drain and release everything."""
    running, release = await build_server(settings)
    print(f"broker_svc listening on {settings.bind_host}:{running.port}", flush=True)
    await run_until_signalled(running, on_stop=release)


def main() -> int:
    """Read the settings, prepare the process and serve."""
    try:
        settings = Settings.from_env()
    except ConfigError as e:
        print(f"broker_svc: {e}", file=sys.stderr)
        return 2
    prepare_process("broker_svc", settings.log_level, settings.metrics_port, settings.bind_host)
    try:
        asyncio.run(serve(settings))
    except KeyCheckFailed as e:
        print(
            f"broker_svc: ENCRYPTION_KEY does not open this broker's stored credentials: {e};"
            " set ENCRYPTION_KEY (or ENCRYPTION_KEYS_PREVIOUS) to the key that sealed them",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
