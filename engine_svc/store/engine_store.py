"""The engine's store: one database, its schema, and the tables' reads and writes."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import AsyncIterator

from engine_svc.store.configs import ConfigTable
from engine_svc.store.inbox import InboxTable
from engine_svc.store.intents import IntentTable
from engine_svc.store.leader_alerts import LeaderAlertTable
from engine_svc.store.leaders import LeaderTable
from engine_svc.store.risk import RiskTable
from engine_svc.store.transaction import SignalTransaction
from meshkit import db
from meshkit.audit import AuditEntry, AuditLog
from meshkit.leases import LeaseTable

SCHEMA_DIR = pathlib.Path(__file__).parent / "schema"
SERVICE = "engine"
AUDIT_TABLE = "engine_audit_log"
LEASE_PREFIX = "engine"


class EngineStore(ConfigTable, InboxTable, IntentTable, RiskTable, LeaderTable, LeaderAlertTable):
    """Configurations, inbox and intents over one :class:`meshkit.db.Database`."""

    def __init__(self, database: db.Database) -> None:
        self.database = database
        self.audit = AuditLog(database, AUDIT_TABLE, default_actor="service:engine")
        self.leases = LeaseTable(database, LEASE_PREFIX)

    @classmethod
    async def open(cls, url: str) -> EngineStore:
        """Connect to ``url`` and bring the schema up to date."""
        database = await db.connect(url)
        store = cls(database)
        await store.migrate()
        return store

    async def migrate(self) -> list[int]:
        """Apply the schema files not applied yet; return the versions applied now."""
        return await db.migrate(self.database, SERVICE, SCHEMA_DIR)

    async def close(self) -> None:
        """Close the database."""
        await self.database.close()

    @contextlib.asynccontextmanager
    async def signal_transaction(
        self, fence: tuple[str, int] | None = None
    ) -> AsyncIterator[SignalTransaction]:
        """Open the one transaction in which a signal and all its intents are written.

        With ``fence`` (a source and the lease token this replica holds it under) the
        transaction first checks that the token is still current, and raises
        :class:`meshkit.leases.Fenced` before writing anything when it is not.
        """
        async with self.database.transaction() as tx:
            if fence is not None:
                await self.leases.check_current(tx, *fence)
            yield SignalTransaction(tx, self.audit)

    async def list_audit_entries(
        self,
        owner_user_id: str,
        before_seq: int,
        limit: int,
    ) -> list[AuditEntry]:
        """Return ``owner_user_id``'s audit entries below ``before_seq`` (0: all), newest first."""
        return await self.audit.entries_of(owner_user_id, before_seq=before_seq, limit=limit)
