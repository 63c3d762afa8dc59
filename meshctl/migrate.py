"""``copytrade migrate``: apply every component's database migrations, one component at a time.

Each component's store applies its own numbered SQL files (:func:`meshkit.db.migrate`, the
same code ``python -m <package> migrate`` and a starting service run), on its SQLite file in
the data dir or on the one PostgreSQL database of ``--database-url``. Applied migrations are
recorded in ``schema_migrations``, so a second run changes nothing and says so. A failure
names the component and the database (its password shown as ``***``) and the cause, and the
other components are still migrated.
"""

from __future__ import annotations

import importlib
import pathlib
from collections.abc import Callable

from meshctl.config_check import mask
from meshctl.launcher import database_url
from meshkit import db
from meshkit.service import EXIT_OK, MigratableStore, explain, migrate_database

Output = Callable[[str], None]

STORES = {
    "gateway": ("gateway.store", "GatewayStore"),
    "broker": ("broker_svc.store", "BrokerStore"),
    "engine": ("engine_svc.store", "EngineStore"),
    "sync": ("sync_svc.store", "SyncStore"),
    "recon": ("recon_svc.store", "ReconStore"),
}
"""Each component and its store class (which knows its migrations)."""


def store_class(component: str) -> Callable[[db.Database], MigratableStore]:
    """Return the store class of ``component``."""
    module, name = STORES[component]
    found: Callable[[db.Database], MigratableStore] = getattr(importlib.import_module(module), name)
    return found


async def migrate_all(
    data_dir: pathlib.Path,
    shared_url: str | None,
    out: Output = print,
) -> int:
    """Migrate every component's database; return 0, or the worst exit code of a failure.

    The exit codes are the services' (:mod:`meshkit.service`): 1 when a database is
    unavailable, 2 when a URL or file is wrong.
    """
    if not shared_url:
        data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before any database opens
    code = EXIT_OK
    for index, component in enumerate(STORES, start=1):
        url = database_url(data_dir, component, shared_url)
        where = db.redact_url(url)
        out(f"[{index}/{len(STORES)}] {component}: migrating {where}")
        try:
            said = await migrate_database(url, store_class(component))
        except Exception as e:
            failure, message = explain(e, {})
            said = mask(message, {})
            named = said if where in said else f"database {where}: {said}"
            out(f"  {component}: FAILED: {named}")
            code = max(code, failure)
            continue
        out(f"  {component}: {said.removeprefix(f'migrated {where}: ')}")
    out("migrations done" if code == EXIT_OK else "migrations failed (above)")
    return code
