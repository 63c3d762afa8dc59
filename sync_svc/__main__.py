"""``python -m sync_svc [migrate]``: run the sync service alone, configured by its environment.

Start-up failures and exit codes: :mod:`meshkit.service`.
"""

from __future__ import annotations

import logging

from meshkit.server import run_until_signalled
from meshkit.service import ensure_can_listen, main, prepare_process
from sync_svc.config import Settings
from sync_svc.server import build_server
from sync_svc.store import SyncStore


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT."""
    prepare_process("sync_svc", settings.log_level, settings.metrics_port, settings.bind_host)
    ensure_can_listen("GRPC_PORT", settings.bind_host, settings.grpc_port)
    running, close = await build_server(settings)
    logging.getLogger("sync_svc").info(
        "sync_svc listening on %s:%s", settings.bind_host, running.port
    )
    await run_until_signalled(running, on_stop=close)


if __name__ == "__main__":
    main(
        "sync_svc",
        Settings.from_env,
        serve,
        store=SyncStore,
        default_database_url=Settings.database_url,
    )
