"""``python -m sync_svc``: run the sync service alone, configured by the environment."""

from __future__ import annotations

import asyncio

from meshkit.server import run_until_signalled
from meshkit.service import prepare_process
from sync_svc.config import Settings
from sync_svc.server import build_server


async def _main() -> None:
    settings = Settings.from_env()
    prepare_process("sync_svc", settings.log_level, settings.metrics_port, settings.bind_host)
    running, close = await build_server(settings)
    print(f"sync_svc listening on {settings.bind_host}:{running.port}", flush=True)
    await run_until_signalled(running, on_stop=close)


def main() -> None:
    """Run the service until SIGTERM or SIGINT."""
    asyncio.run(_main())


if __name__ == "__main__":
    main()
