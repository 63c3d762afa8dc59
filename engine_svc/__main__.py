"""``python -m engine_svc [migrate]``: run the engine alone, configured by its environment.

Start-up failures and exit codes: :mod:`meshkit.service`.
"""

from __future__ import annotations

import logging

from engine_svc.config import DEFAULT_DATABASE_URL, Settings
from engine_svc.server import build_server
from engine_svc.store import EngineStore
from meshkit.server import run_until_signalled
from meshkit.service import ensure_can_listen, main, prepare_process


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT."""
    prepare_process("engine", settings.log_level, settings.metrics_port, settings.bind_host)
    ensure_can_listen("GRPC_PORT", settings.bind_host, settings.grpc_port)
    running, stop = await build_server(settings)
    logging.getLogger("engine_svc").info(
        "engine_svc listening on %s:%s", settings.bind_host, running.port
    )
    await run_until_signalled(running, on_stop=stop)


if __name__ == "__main__":
    main(
        "engine_svc",
        Settings.from_env,
        serve,
        store=EngineStore,
        default_database_url=DEFAULT_DATABASE_URL,
    )
