"""``python -m recon_svc``: run the reconciliation service alone, configured by its environment."""

from __future__ import annotations

import asyncio
import sys

from meshkit.server import run_until_signalled
from meshkit.service import prepare_process
from meshkit.settings import ConfigError
from recon_svc.config import Settings
from recon_svc.server import build_server


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then drain and release everything."""
    running, release = await build_server(settings)
    print(f"recon_svc listening on {settings.bind_host}:{running.port}", flush=True)
    await run_until_signalled(running, on_stop=release)


def main() -> int:
    """Read the settings, prepare the process and serve."""
    try:
        settings = Settings.from_env()
    except ConfigError as e:
        print(f"recon_svc: {e}", file=sys.stderr)
        return 2
    prepare_process("recon_svc", settings.log_level, settings.metrics_port, settings.bind_host)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
