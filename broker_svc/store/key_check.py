"""The ``broker_key_check`` table: the one key-check value, sealed by the broker's key."""

from __future__ import annotations

from datetime import datetime

from broker_svc.domain.records import KeyCheck
from broker_svc.store.rows import b64, unb64
from meshkit import db
from meshkit.codec import from_iso, to_iso

_KEY_CHECK_ID = "credentials"


class KeyCheckTable:
    """The key-check value (a part of :class:`~broker_svc.store.BrokerStore`)."""

    database: db.Database

    async def key_check(self) -> KeyCheck | None:
        """Return the sealed key-check value, ``None`` before the first start wrote it."""
        row = await self.database.fetchone(
            "SELECT ciphertext, nonce, key_id, updated_at FROM broker_key_check WHERE check_id = ?",
            (_KEY_CHECK_ID,),
        )
        if row is None:
            return None
        return KeyCheck(
            unb64(row["ciphertext"]),
            unb64(row["nonce"]),
            row["key_id"],
            from_iso(row["updated_at"]),
        )

    async def insert_key_check(
        self,
        ciphertext: bytes,
        nonce: bytes,
        key_id: str,
        now: datetime,
    ) -> bool:
        """Store the key-check value unless one exists; return whether this call stored it."""
        inserted = await self.database.execute(
            "INSERT INTO broker_key_check (check_id, ciphertext, nonce, key_id, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (_KEY_CHECK_ID, b64(ciphertext), b64(nonce), key_id, to_iso(now)),
        )
        return inserted > 0

    async def replace_key_check(
        self,
        expected_key_id: str,
        ciphertext: bytes,
        nonce: bytes,
        key_id: str,
        now: datetime,
    ) -> bool:
        """Swap in a re-sealed key-check value if it is still sealed by ``expected_key_id``."""
        changed = await self.database.execute(
            "UPDATE broker_key_check SET ciphertext = ?, nonce = ?, key_id = ?, updated_at = ?"
            " WHERE check_id = ? AND key_id = ?",
            (b64(ciphertext), b64(nonce), key_id, to_iso(now), _KEY_CHECK_ID, expected_key_id),
        )
        return changed > 0
