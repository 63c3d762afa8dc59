"""The broker's tables: exchange accounts with sealed credentials, and follower orders.

The same SQL runs on SQLite and PostgreSQL through :mod:`meshkit.db`. Ciphertexts and nonces
are stored as base64 text, money as Decimal strings and times as fixed-width ISO text.
"""

from __future__ import annotations

import base64
import pathlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from broker_svc.domain.model import (
    ExchangeAccount,
    Order,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from meshkit import db
from meshkit.audit import AuditEntry, AuditEvent, AuditLog
from meshkit.codec import format_decimal, from_iso, to_iso, utcnow

SCHEMA_DIR = pathlib.Path(__file__).parent / "schema"
AUDIT_TABLE = "broker_audit_log"
_KEY_CHECK_ID = "credentials"

_ACCOUNT_COLUMNS = (
    "exchange_id, user_id, exchange_name, label, api_key_hint, ciphertext, nonce, key_id,"
    " request_id, created_at, deleted_at"
)
_ORDER_COLUMNS = (
    "exchange_id, client_order_id, symbol, side, type, time_in_force, quantity, price, stop_price,"
    " venue_order_id, status, filled_quantity, average_price, sent_at, created_at, updated_at"
)


@dataclass(frozen=True)
class AccountRow:
    """An account and its sealed credentials (empty once the account is deleted)."""

    account: ExchangeAccount
    ciphertext: bytes = field(repr=False)
    nonce: bytes = field(repr=False)
    key_id: str


@dataclass(frozen=True)
class KeyCheck:
    """The key-check value: a known plaintext sealed by the key ``key_id``."""

    ciphertext: bytes = field(repr=False)
    nonce: bytes = field(repr=False)
    key_id: str
    updated_at: datetime


@dataclass(frozen=True)
class OrderRecord:
    """A follower order as the broker last saw it: what was asked and what the venue said."""

    exchange_id: str
    request: OrderRequest
    venue_order_id: str
    status: OrderStatus
    filled_quantity: Decimal
    average_price: Decimal | None
    sent_at: datetime
    created_at: datetime
    updated_at: datetime

    @property
    def unresolved(self) -> bool:
        """Return whether the broker sent the order without learning what the venue did."""
        return self.status is OrderStatus.UNKNOWN and not self.venue_order_id


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text) if text else b""


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None or text == "" else Decimal(text)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def _account_row(row: dict[str, Any]) -> AccountRow:
    account = ExchangeAccount(
        exchange_id=row["exchange_id"],
        user_id=row["user_id"],
        exchange_name=row["exchange_name"],
        label=row["label"],
        api_key_hint=row["api_key_hint"],
        created_at=from_iso(row["created_at"]),
        deleted_at=from_iso(row["deleted_at"]) if row["deleted_at"] else None,
    )
    return AccountRow(account, _unb64(row["ciphertext"]), _unb64(row["nonce"]), row["key_id"])


def _order_record(row: dict[str, Any]) -> OrderRecord:
    request = OrderRequest(
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=OrderSide(row["side"]),
        type=OrderType(row["type"]),
        quantity=Decimal(row["quantity"]),
        price=_decimal(row["price"]),
        stop_price=_decimal(row["stop_price"]),
        time_in_force=TimeInForce(row["time_in_force"]) if row["time_in_force"] else None,
    )
    return OrderRecord(
        exchange_id=row["exchange_id"],
        request=request,
        venue_order_id=row["venue_order_id"],
        status=OrderStatus(row["status"]),
        filled_quantity=Decimal(row["filled_quantity"]),
        average_price=_decimal(row["average_price"]),
        sent_at=from_iso(row["sent_at"]),
        created_at=from_iso(row["created_at"]),
        updated_at=from_iso(row["updated_at"]),
    )


class BrokerStore:
    """Accounts and orders of the broker over one :class:`meshkit.db.Database`."""

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

    # Accounts ---------------------------------------------------------------------------------

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
                f"INSERT INTO exchange_accounts ({_ACCOUNT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    account.exchange_id,
                    account.user_id,
                    account.exchange_name,
                    account.label,
                    account.api_key_hint,
                    _b64(row.ciphertext),
                    _b64(row.nonce),
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
            f"SELECT {_ACCOUNT_COLUMNS} FROM exchange_accounts"
            " WHERE user_id = ? AND request_id = ?",
            (user_id, request_id),
        )
        return _account_row(row) if row else None

    async def get_account(self, exchange_id: str) -> AccountRow | None:
        """Return the account ``exchange_id``, deleted or not."""
        row = await self.database.fetchone(
            f"SELECT {_ACCOUNT_COLUMNS} FROM exchange_accounts WHERE exchange_id = ?",
            (exchange_id,),
        )
        return _account_row(row) if row else None

    async def list_accounts(self, user_id: str) -> list[ExchangeAccount]:
        """Return the live accounts of ``user_id``, oldest first."""
        rows = await self.database.fetchall(
            f"SELECT {_ACCOUNT_COLUMNS} FROM exchange_accounts"
            " WHERE user_id = ? AND deleted_at IS NULL ORDER BY created_at, exchange_id",
            (user_id,),
        )
        return [_account_row(row).account for row in rows]

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

    async def sealed_accounts(self) -> list[AccountRow]:
        """Return every live account with its sealed credentials (for key rotation)."""
        rows = await self.database.fetchall(
            f"SELECT {_ACCOUNT_COLUMNS} FROM exchange_accounts WHERE deleted_at IS NULL"
            " ORDER BY created_at, exchange_id",
        )
        return [_account_row(row) for row in rows]

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
                (_b64(ciphertext), _b64(nonce), key_id, exchange_id, expected_key_id),
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

    # Key check --------------------------------------------------------------------------------

    async def key_check(self) -> KeyCheck | None:
        """Return the sealed key-check value, ``None`` before the first start wrote it."""
        row = await self.database.fetchone(
            "SELECT ciphertext, nonce, key_id, updated_at FROM broker_key_check WHERE check_id = ?",
            (_KEY_CHECK_ID,),
        )
        if row is None:
            return None
        return KeyCheck(
            _unb64(row["ciphertext"]),
            _unb64(row["nonce"]),
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
            (_KEY_CHECK_ID, _b64(ciphertext), _b64(nonce), key_id, to_iso(now)),
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
            (_b64(ciphertext), _b64(nonce), key_id, to_iso(now), _KEY_CHECK_ID, expected_key_id),
        )
        return changed > 0

    # Orders -----------------------------------------------------------------------------------

    async def reserve_order(self, exchange_id: str, request: OrderRequest, now: datetime) -> bool:
        """Record that ``request`` is about to be sent; return ``False`` when the id is taken."""
        stamp = to_iso(now)
        inserted = await self.database.execute(
            f"INSERT INTO broker_orders ({_ORDER_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                exchange_id,
                request.client_order_id,
                request.symbol,
                request.side.value,
                request.type.value,
                request.time_in_force.value if request.time_in_force else None,
                format_decimal(request.quantity),
                _text(request.price),
                _text(request.stop_price),
                "",
                OrderStatus.UNKNOWN.value,
                "0",
                None,
                stamp,
                stamp,
                stamp,
            ),
        )
        return inserted > 0

    async def mark_resent(self, exchange_id: str, client_order_id: str, now: datetime) -> bool:
        """Move the send time of an unresolved order to ``now`` before sending it again."""
        changed = await self.database.execute(
            "UPDATE broker_orders SET sent_at = ?, updated_at = ?"
            " WHERE exchange_id = ? AND client_order_id = ? AND status = ? AND venue_order_id = ?",
            (to_iso(now), to_iso(now), exchange_id, client_order_id, OrderStatus.UNKNOWN.value, ""),
        )
        return changed > 0

    async def forget_unsent(self, exchange_id: str, client_order_id: str) -> None:
        """Drop the reservation of an order the venue proved it never took."""
        await self.database.execute(
            "DELETE FROM broker_orders"
            " WHERE exchange_id = ? AND client_order_id = ? AND status = ? AND venue_order_id = ?",
            (exchange_id, client_order_id, OrderStatus.UNKNOWN.value, ""),
        )

    async def record_order(self, exchange_id: str, order: Order, now: datetime) -> None:
        """Upsert the order as the venue reported it."""
        stamp = to_iso(now)
        await self.database.execute(
            f"INSERT INTO broker_orders ({_ORDER_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (exchange_id, client_order_id) DO UPDATE SET"
            " venue_order_id = excluded.venue_order_id, status = excluded.status,"
            " filled_quantity = excluded.filled_quantity, average_price = excluded.average_price,"
            " updated_at = excluded.updated_at",
            (
                exchange_id,
                order.client_order_id,
                order.symbol,
                order.side.value,
                order.type.value,
                order.time_in_force.value if order.time_in_force else None,
                format_decimal(order.quantity),
                _text(order.price),
                _text(order.stop_price),
                order.venue_order_id,
                order.status.value,
                format_decimal(order.filled_quantity),
                _text(order.average_price),
                stamp,
                stamp,
                stamp,
            ),
        )

    async def get_order(self, exchange_id: str, client_order_id: str) -> OrderRecord | None:
        """Return the broker's record of an order, ``None`` when it has none."""
        row = await self.database.fetchone(
            f"SELECT {_ORDER_COLUMNS} FROM broker_orders"
            " WHERE exchange_id = ? AND client_order_id = ?",
            (exchange_id, client_order_id),
        )
        return _order_record(row) if row else None

    async def client_order_ids(
        self, exchange_id: str, venue_order_ids: list[str]
    ) -> dict[str, str]:
        """Return the client order id the broker knows for each of ``venue_order_ids``."""
        wanted = sorted({v for v in venue_order_ids if v})
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = await self.database.fetchall(
                "SELECT venue_order_id, client_order_id FROM broker_orders"
                f" WHERE exchange_id = ? AND venue_order_id IN ({marks})",
                (exchange_id, *chunk),
            )
            found.update({row["venue_order_id"]: row["client_order_id"] for row in rows})
        return found
