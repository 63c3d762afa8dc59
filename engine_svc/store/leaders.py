"""The published leaders table (``published_leaders``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine_svc.domain.leaders import Leader
from meshkit import db
from meshkit.audit import AuditEvent, AuditLog
from meshkit.codec import from_iso, to_iso

_COLUMNS = (
    "leader_id, user_id, exchange_id, exchange_name, display_name, start_sequence,"
    " published_at, unpublished_at"
)


def _leader(row: Mapping[str, Any]) -> Leader:
    return Leader(
        leader_id=row["leader_id"],
        user_id=row["user_id"],
        exchange_id=row["exchange_id"],
        exchange_name=row["exchange_name"],
        display_name=row["display_name"],
        start_sequence=int(row["start_sequence"]),
        published_at=from_iso(row["published_at"]),
        unpublished_at=from_iso(row["unpublished_at"]) if row["unpublished_at"] else None,
    )


class LeaderTable:
    """Publishing and withdrawing leaders, each change audited in its transaction."""

    database: db.Database
    audit: AuditLog

    async def publish_leader(self, leader: Leader, *, audit: AuditEvent) -> Leader:
        """Insert ``leader``; when its account is published already, return that leader."""
        params = (
            leader.leader_id,
            leader.user_id,
            leader.exchange_id,
            leader.exchange_name,
            leader.display_name,
            leader.start_sequence,
            to_iso(leader.published_at),
            None,
        )
        try:
            async with self.database.transaction() as tx:
                changed = await tx.execute(
                    f"INSERT INTO published_leaders ({_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    params,
                )
                if changed == 1:
                    await self.audit.append(tx, audit, leader.published_at)
        except db.UniqueViolation:
            changed = 0
        if changed == 1:
            return leader
        existing = await self.live_leader_of(leader.exchange_id)
        if existing is None:
            raise RuntimeError("a leader insert conflicted but no live leader exists")
        return existing

    async def get_leader(self, leader_id: str) -> Leader | None:
        """Return the leader ``leader_id`` (withdrawn ones too), ``None`` when there is none."""
        row = await self.database.fetchone(
            f"SELECT {_COLUMNS} FROM published_leaders WHERE leader_id = ?", (leader_id,)
        )
        return _leader(row) if row else None

    async def live_leader_of(self, exchange_id: str) -> Leader | None:
        """Return the published (not withdrawn) leader of ``exchange_id``, if any."""
        row = await self.database.fetchone(
            f"SELECT {_COLUMNS} FROM published_leaders"
            " WHERE exchange_id = ? AND unpublished_at IS NULL",
            (exchange_id,),
        )
        return _leader(row) if row else None

    async def live_leaders(self) -> list[Leader]:
        """Return every published leader, oldest first."""
        rows = await self.database.fetchall(
            f"SELECT {_COLUMNS} FROM published_leaders WHERE unpublished_at IS NULL"
            " ORDER BY published_at, leader_id"
        )
        return [_leader(row) for row in rows]

    async def unpublish_leader(self, leader_id: str, now: datetime, *, audit: AuditEvent) -> bool:
        """Withdraw the leader; return whether it was published until now."""
        async with self.database.transaction() as tx:
            changed = await tx.execute(
                "UPDATE published_leaders SET unpublished_at = ?"
                " WHERE leader_id = ? AND unpublished_at IS NULL",
                (to_iso(now), leader_id),
            )
            if changed == 1:
                await self.audit.append(tx, audit, now)
        return changed == 1
