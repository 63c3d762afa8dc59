"""The signal inbox (``signal_inbox``) and where each copied source resumes from it."""

from __future__ import annotations

from engine_svc.domain.model import CopyStatus, Signal
from engine_svc.settings_json import signal_from_json
from meshkit import db


class InboxTable:
    """The stored signals, and the subscriptions the consumer resumes from them."""

    database: db.Database

    async def subscriptions(self) -> dict[str, int]:
        """Return where to resume each source a configuration not stopped copies.

        A halted configuration still takes its signals (each recorded as skipped, ``halted``),
        so that a resume copies from then on and never the trades of the halt.

        That is the highest sequence in the inbox, or the lowest start sequence of the
        source's configurations when that is higher (history is never copied).
        """
        rows = await self.database.fetchall(
            "SELECT source_id, MIN(start_sequence) AS start FROM copy_trading_configs"
            " WHERE status <> ? GROUP BY source_id",
            (CopyStatus.STOPPED.value,),
        )
        result: dict[str, int] = {}
        for row in rows:
            stored = await self.inbox_max(row["source_id"])
            result[row["source_id"]] = max(stored, int(row["start"]))
        return result

    async def subscription_of(self, source_id: str) -> int | None:
        """Return where to resume ``source_id``, ``None`` when no live configuration copies it."""
        row = await self.database.fetchone(
            "SELECT MIN(start_sequence) AS start, COUNT(*) AS n FROM copy_trading_configs"
            " WHERE source_id = ? AND status <> ?",
            (source_id, CopyStatus.STOPPED.value),
        )
        if row is None or not row["n"]:
            return None
        return max(await self.inbox_max(source_id), int(row["start"]))

    # -- inbox

    async def inbox_max(self, source_id: str) -> int:
        """Return the highest sequence of ``source_id`` in the inbox, 0 when none."""
        row = await self.database.fetchone(
            "SELECT MAX(sequence) AS top FROM signal_inbox WHERE source_id = ?",
            (source_id,),
        )
        return int(row["top"]) if row and row["top"] is not None else 0

    async def has_signal(self, source_id: str, sequence: int) -> bool:
        """Return whether the inbox holds the signal."""
        row = await self.database.fetchone(
            "SELECT 1 AS found FROM signal_inbox WHERE source_id = ? AND sequence = ?",
            (source_id, sequence),
        )
        return row is not None

    async def get_signal(self, source_id: str, sequence: int) -> Signal | None:
        """Return the stored signal, ``None`` when the inbox does not hold it."""
        row = await self.database.fetchone(
            "SELECT signal FROM signal_inbox WHERE source_id = ? AND sequence = ?",
            (source_id, sequence),
        )
        return signal_from_json(row["signal"]) if row else None
