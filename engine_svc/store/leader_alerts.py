"""The open leader outage alerts (``leader_stream_alerts``), each change audited in its commit."""

from __future__ import annotations

from datetime import datetime

from meshkit import db
from meshkit.audit import AuditEvent, AuditLog
from meshkit.codec import from_iso, to_iso


class LeaderAlertTable:
    """One row per configuration whose leader's venue has been unreadable too long."""

    database: db.Database
    audit: AuditLog

    async def open_leader_alerts(self) -> dict[str, datetime]:
        """Return, per configuration with an open alert, since when its leader is down."""
        rows = await self.database.fetchall(
            "SELECT config_id, down_since FROM leader_stream_alerts"
        )
        return {row["config_id"]: from_iso(row["down_since"]) for row in rows}

    async def open_leader_alert(
        self,
        config_id: str,
        source_id: str,
        down_since: datetime,
        now: datetime,
        *,
        audit: AuditEvent,
    ) -> bool:
        """Open the configuration's alert and write ``audit``; False when one is open already."""
        async with self.database.transaction() as tx:
            added = await tx.execute(
                "INSERT INTO leader_stream_alerts (config_id, source_id, down_since, alerted_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (config_id) DO NOTHING",
                (config_id, source_id, to_iso(down_since), to_iso(now)),
            )
            if added != 1:
                return False
            await self.audit.append(tx, audit, now)
        return True

    async def close_leader_alert(self, config_id: str, now: datetime, *, audit: AuditEvent) -> bool:
        """Close the configuration's alert and write ``audit``; False when none was open."""
        async with self.database.transaction() as tx:
            removed = await tx.execute(
                "DELETE FROM leader_stream_alerts WHERE config_id = ?", (config_id,)
            )
            if removed != 1:
                return False
            await self.audit.append(tx, audit, now)
        return True
