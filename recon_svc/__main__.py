"""``python -m recon_svc [migrate]``: run the reconciliation service alone, configured by its
environment.

Start-up failures and exit codes: :mod:`meshkit.service`.
"""

from __future__ import annotations

import logging

from meshkit.server import run_until_signalled
from meshkit.service import ensure_can_listen, main, prepare_process
from recon_svc.config import DEFAULT_DATABASE_URL, Settings
from recon_svc.server import build_server
from recon_svc.store import ReconStore


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then drain and release everything."""
    prepare_process("recon_svc", settings.log_level, settings.metrics_port, settings.bind_host)
    ensure_can_listen("GRPC_PORT", settings.bind_host, settings.grpc_port)
    running, release = await build_server(settings)
    logging.getLogger("recon_svc").info(
        "recon_svc listening on %s:%s", settings.bind_host, running.port
    )
    await run_until_signalled(running, on_stop=release)


if __name__ == "__main__":
    main(
        "recon_svc",
        Settings.from_env,
        serve,
        store=ReconStore,
        default_database_url=DEFAULT_DATABASE_URL,
    )
