"""Run the engine alone: ``python -m engine_svc`` (configured by environment)."""

from __future__ import annotations

import asyncio

from engine_svc.config import Settings
from engine_svc.server import build_server
from meshkit.server import run_until_signalled
from meshkit.service import prepare_process


async def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    settings = Settings.from_env()
    prepare_process("engine", settings.log_level, settings.metrics_port, settings.bind_host)
    running, stop = await build_server(settings)
    print(f"engine_svc listening on {settings.bind_host}:{running.port}", flush=True)
    await run_until_signalled(running, on_stop=stop)


if __name__ == "__main__":
    asyncio.run(main())
