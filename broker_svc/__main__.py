"""``python -m broker_svc [migrate]``: run the broker alone, configured by its environment.

Start-up failures and exit codes: :mod:`meshkit.service`.
"""

from __future__ import annotations

import logging

from broker_svc.config import DEFAULT_DATABASE_URL, Settings
from broker_svc.keys import KeyCheckFailed
from broker_svc.server import build_server
from broker_svc.store import BrokerStore
from meshkit.server import run_until_signalled
from meshkit.service import StartupError, ensure_can_listen, main, prepare_process


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then drain and release everything."""
    prepare_process("broker_svc", settings.log_level, settings.metrics_port, settings.bind_host)
    ensure_can_listen("GRPC_PORT", settings.bind_host, settings.grpc_port)
    try:
        running, release = await build_server(settings)
    except KeyCheckFailed as e:
        raise StartupError(
            f"ENCRYPTION_KEY does not open this broker's stored credentials: {e};"
            " set ENCRYPTION_KEY (or ENCRYPTION_KEYS_PREVIOUS) to the key that sealed them",
        ) from None
    logging.getLogger("broker_svc").info(
        "broker_svc listening on %s:%s", settings.bind_host, running.port
    )
    await run_until_signalled(running, on_stop=release)


if __name__ == "__main__":
    # migrate needs only DATABASE_URL: it opens no credential, so no ENCRYPTION_KEY either.
    main(
        "broker_svc",
        Settings.from_env,
        serve,
        store=BrokerStore,
        default_database_url=DEFAULT_DATABASE_URL,
    )
