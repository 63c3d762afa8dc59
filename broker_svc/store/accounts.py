"""The ``exchange_accounts`` table: accounts with their sealed credentials, and their audit."""

from __future__ import annotations

from datetime import datetime

from broker_svc.domain.model import ExchangeAccount
from broker_svc.domain.records import AccountRow
from broker_svc.store.rows import ACCOUNT_COLUMNS, account_row, b64
from meshkit import db
from meshkit.audit import AuditEntry, AuditEvent, AuditLog
from meshkit.codec import to_iso, utcnow


class AccountTable:
    """The accounts of the broker (a part of :class:`~broker_svc.store.BrokerStore`)."""

    database: db.Database
    audit: AuditLog

    async def insert_account(
        self,
        row: AccountRow,
        request_id: str = "",
        *,
        audit: AuditEvent | None = None,
    ) -> AccountRow:
        """Store a new account; with a ``request_id`` already used by its user, return that one.

        ``audit`` is appended in the same transaction when the account is new.
        """
        account = row.account
        async with self.database.transaction() as tx:
            inserted = await tx.execute(
                f"INSERT INTO exchange_accounts ({ACCOUNT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    account.exchange_id,
                    account.user_id,
                    account.exchange_name,
                    account.label,
                    account.api_key_hint,
                    b64(row.ciphertext),
                    b64(row.nonce),
                    row.key_id,
                    request_id or None,
                    to_iso(account.created_at),
                    None,
                ),
            )
            if inserted and audit is not None:
                await self.audit.append(tx, audit, account.created_at)
        if inserted:
            return row
        existing = (
            await self.account_by_request(account.user_id, request_id) if request_id else None
        )
        if existing is None:
            raise db.UniqueViolation("exchange account already exists")
        return existing

    async def account_by_request(self, user_id: str, request_id: str) -> AccountRow | None:
        """Return the account ``user_id`` registered with ``request_id``, deleted or not."""
        row = await self.database.fetchone(
            f"SELECT {ACCOUNT_COLUMNS} FROM exchange_accounts WHERE user_id = ? AND request_id = ?",
            (user_id, request_id),
        )
        return account_row(row) if row else None

    async def get_account(self, exchange_id: str) -> AccountRow | None:
        """Return the account ``exchange_id``, deleted or not."""
        row = await self.database.fetchone(
            f"SELECT {ACCOUNT_COLUMNS} FROM exchange_accounts WHERE exchange_id = ?",
            (exchange_id,),
        )
        return account_row(row) if row else None

    async def list_accounts(self, user_id: str) -> list[ExchangeAccount]:
        """Return the live accounts of ``user_id``, oldest first."""
        rows = await self.database.fetchall(
            f"SELECT {ACCOUNT_COLUMNS} FROM exchange_accounts"
            " WHERE user_id = ? AND deleted_at IS NULL ORDER BY created_at, exchange_id",
            (user_id,),
        )
        return [account_row(row).account for row in rows]

    async def delete_account(
        self,
        exchange_id: str,
        deleted_at: datetime,
        *,
        audit: AuditEvent | None = None,
    ) -> bool:
        """Mark the account deleted and erase its sealed credentials; return whether it was live.

        ``audit`` is appended in the same transaction when the account was live.
        """
        async with self.database.transaction() as tx:
            changed = await tx.execute(
                "UPDATE exchange_accounts SET deleted_at = ?, ciphertext = ?, nonce = ?"
                " WHERE exchange_id = ? AND deleted_at IS NULL",
                (to_iso(deleted_at), "", "", exchange_id),
            )
            if changed > 0 and audit is not None:
                await self.audit.append(tx, audit, deleted_at)
        return changed > 0

    async def list_audit_entries(
        self,
        owner_user_id: str,
        before_seq: int,
        limit: int,
    ) -> list[AuditEntry]:
        """Return ``owner_user_id``'s audit entries below ``before_seq`` (0: all), newest first."""
        return await self.audit.entries_of(owner_user_id, before_seq=before_seq, limit=limit)

    async def record_audit(self, event: AuditEvent, now: datetime) -> None:
        """Append an entry for something seen rather than changed (a venue refusing our keys)."""
        await self.audit.record(event, now)

    async def sealed_accounts(self) -> list[AccountRow]:
        """Return every live account with its sealed credentials (for key rotation)."""
        rows = await self.database.fetchall(
            f"SELECT {ACCOUNT_COLUMNS} FROM exchange_accounts WHERE deleted_at IS NULL"
            " ORDER BY created_at, exchange_id",
        )
        return [account_row(row) for row in rows]

    async def replace_credentials(
        self,
        exchange_id: str,
        expected_key_id: str,
        ciphertext: bytes,
        nonce: bytes,
        key_id: str,
        *,
        audit: AuditEvent | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Swap in re-sealed credentials if the row is still sealed by ``expected_key_id``.

        ``audit`` is appended (at ``now``) in the same transaction when the row moved.
        """
        async with self.database.transaction() as tx:
            changed = await tx.execute(
                "UPDATE exchange_accounts SET ciphertext = ?, nonce = ?, key_id = ?"
                " WHERE exchange_id = ? AND key_id = ? AND deleted_at IS NULL",
                (b64(ciphertext), b64(nonce), key_id, exchange_id, expected_key_id),
            )
            if changed > 0 and audit is not None:
                await self.audit.append(tx, audit, now or utcnow())
        return changed > 0

    async def sealed_key_ids(self) -> dict[str, int]:
        """Return how many live accounts each key id sealed."""
        rows = await self.database.fetchall(
            "SELECT key_id, COUNT(*) AS accounts FROM exchange_accounts"
            " WHERE deleted_at IS NULL GROUP BY key_id",
        )
        return {row["key_id"]: int(row["accounts"]) for row in rows}
