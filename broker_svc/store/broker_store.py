"""The broker's store: every table of the broker over one :class:`meshkit.db.Database`.

The same SQL runs on SQLite and PostgreSQL through :mod:`meshkit.db`.
"""

from __future__ import annotations

import pathlib

from broker_svc.store.accounts import AccountTable
from broker_svc.store.fences import FenceTable
from broker_svc.store.key_check import KeyCheckTable
from broker_svc.store.orders import OrderTable
from meshkit import db
from meshkit.audit import AuditLog

SCHEMA_DIR = pathlib.Path(__file__).parent / "schema"
AUDIT_TABLE = "broker_audit_log"


class BrokerStore(AccountTable, KeyCheckTable, OrderTable, FenceTable):
    """Accounts, orders, fences and attempts of the broker over one :class:`meshkit.db.Database`."""

    def __init__(self, database: db.Database, *, audit_actor: str = "service:broker") -> None:
        self.database = database
        self.audit = AuditLog(database, AUDIT_TABLE, default_actor=audit_actor)

    @classmethod
    async def open(cls, url: str, *, audit_actor: str = "service:broker") -> BrokerStore:
        """Connect to ``url`` and apply the broker's migrations.

        ``audit_actor`` is who the audit trail names for changes made outside a call (the
        broker itself, or ``operator:cli`` for the command line).
        """
        database = await db.connect(url)
        try:
            await db.migrate(database, "broker", SCHEMA_DIR)
        except BaseException:
            await database.close()
            raise
        return cls(database, audit_actor=audit_actor)

    async def migrate(self) -> list[int]:
        """Apply the broker's migrations not applied yet; return the versions applied now."""
        return await db.migrate(self.database, "broker", SCHEMA_DIR)

    async def close(self) -> None:
        """Close the database."""
        await self.database.close()
