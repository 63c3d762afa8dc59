"""The reconciliation tables: reports (``trade_reconciliations``) and their items.

The same SQL runs on SQLite and PostgreSQL through :mod:`meshkit.db`. Quantities are Decimal
strings and times fixed-width ISO text. A report and its items are written in one transaction,
with the counts derived from the items.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from meshkit import db
from meshkit.audit import AuditEntry, AuditEvent, AuditLog
from meshkit.codec import format_decimal, from_iso, to_iso
from recon_svc.domain.model import Counts, Item, ItemKind, Outcome, Report

SCHEMA_DIR = pathlib.Path(__file__).parent / "schema"
SERVICE = "recon"
AUDIT_TABLE = "recon_audit_log"

_REPORT_COLUMNS = (
    "id, config_id, user_id, start_time, end_time, total_count, matched_count,"
    " mismatched_count, missing_count, duplicate_count, error_count, created_at, extra_count"
)
_REPORT_SELECT = _REPORT_COLUMNS + ", complete"
_ITEM_COLUMNS = (
    "reconciliation_id, item_index, sequence, signal_id, target_exchange_id, client_order_id,"
    " outcome, detail, intent_state, venue_filled_quantity, kind, symbol, expected_position,"
    " venue_position, drift, correction_client_order_id"
)
_ITEM_PLACEHOLDERS = "(" + ", ".join("?" * 16) + ")"
_ITEMS_PER_STATEMENT = 100
_STREAMED_ITEMS_PER_STATEMENT = 500
"""Rows per INSERT of a streamed batch (16 parameters each: within SQLite's and PostgreSQL's
limits on one statement's parameters)."""


def _report(row: dict[str, Any], items: tuple[Item, ...] = ()) -> Report:
    return Report(
        reconciliation_id=row["id"],
        config_id=row["config_id"],
        user_id=row["user_id"],
        start_time=from_iso(row["start_time"]),
        end_time=from_iso(row["end_time"]),
        created_at=from_iso(row["created_at"]),
        counts=Counts(
            total=int(row["total_count"]),
            matched=int(row["matched_count"]),
            mismatched=int(row["mismatched_count"]),
            missing=int(row["missing_count"]),
            duplicate=int(row["duplicate_count"]),
            error=int(row["error_count"]),
            extra=int(row["extra_count"]),
        ),
        items=items,
        complete=bool(row["complete"]),
    )


def _optional_decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _text_of(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def _item(row: dict[str, Any]) -> Item:
    quantity = row["venue_filled_quantity"]
    return Item(
        sequence=int(row["sequence"]),
        signal_id=row["signal_id"],
        target_exchange_id=row["target_exchange_id"],
        client_order_id=row["client_order_id"],
        outcome=Outcome(row["outcome"]),
        detail=row["detail"],
        intent_state=row["intent_state"],
        venue_filled_quantity=None if quantity is None else Decimal(quantity),
        kind=ItemKind(row["kind"]),
        symbol=row["symbol"],
        expected_position=_optional_decimal(row["expected_position"]),
        venue_position=_optional_decimal(row["venue_position"]),
        drift=_optional_decimal(row["drift"]),
        correction_client_order_id=row["correction_client_order_id"],
    )


def _item_params(reconciliation_id: str, index: int, item: Item) -> tuple[Any, ...]:
    return (
        reconciliation_id,
        index,
        item.sequence,
        item.signal_id,
        item.target_exchange_id,
        item.client_order_id,
        item.outcome.value,
        item.detail,
        item.intent_state,
        _text_of(item.venue_filled_quantity),
        item.kind.value,
        item.symbol,
        _text_of(item.expected_position),
        _text_of(item.venue_position),
        _text_of(item.drift),
        item.correction_client_order_id,
    )


class ReconStore:
    """Reports and items of the reconciliation service over one :class:`meshkit.db.Database`."""

    def __init__(self, database: db.Database) -> None:
        self.database = database
        self.audit = AuditLog(database, AUDIT_TABLE, default_actor="service:recon")

    @classmethod
    async def open(cls, url: str) -> ReconStore:
        """Connect to ``url`` and apply the service's migrations."""
        database = await db.connect(url)
        try:
            await db.migrate(database, SERVICE, SCHEMA_DIR)
        except BaseException:
            await database.close()
            raise
        return cls(database)

    async def migrate(self) -> list[int]:
        """Apply the service's migrations not applied yet; return the versions applied now."""
        return await db.migrate(self.database, SERVICE, SCHEMA_DIR)

    async def close(self) -> None:
        """Close the database."""
        await self.database.close()

    async def save_report(self, report: Report, *, audit: AuditEvent | None = None) -> Report:
        """Store ``report`` and its items in one transaction; return it as stored.

        The stored counts are derived from the items, whatever ``report.counts`` says.
        Saving the same report id again changes nothing. ``audit`` is appended in the same
        transaction when the report is new.
        """
        counts = Counts.of(report.items)
        # Copy items by sequence, then account; the others after them, in the order given.
        copies = sorted(
            (i for i in report.items if i.kind is ItemKind.COPY),
            key=lambda i: (i.sequence, i.target_exchange_id),
        )
        ordered = copies + [i for i in report.items if i.kind is not ItemKind.COPY]
        async with self.database.transaction() as tx:
            inserted = await tx.execute(
                f"INSERT INTO trade_reconciliations ({_REPORT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    report.reconciliation_id,
                    report.config_id,
                    report.user_id,
                    to_iso(report.start_time),
                    to_iso(report.end_time),
                    counts.total,
                    counts.matched,
                    counts.mismatched,
                    counts.missing,
                    counts.duplicate,
                    counts.error,
                    to_iso(report.created_at),
                    counts.extra,
                ),
            )
            if inserted:
                for start in range(0, len(ordered), _ITEMS_PER_STATEMENT):
                    chunk = ordered[start : start + _ITEMS_PER_STATEMENT]
                    placeholders = ", ".join(_ITEM_PLACEHOLDERS for _ in chunk)
                    params: list[Any] = []
                    for index, item in enumerate(chunk, start):
                        params.extend(_item_params(report.reconciliation_id, index, item))
                    await tx.execute(
                        f"INSERT INTO reconciliation_items ({_ITEM_COLUMNS}) VALUES {placeholders}",
                        params,
                    )
                if audit is not None:
                    await self.audit.append(tx, audit, report.created_at)
        stored = await self.get_report(report.reconciliation_id)
        assert stored is not None
        return stored

    async def start_report(self, report: Report) -> None:
        """Store a report's row before its items (:meth:`add_items`), not listed until
        :meth:`finish_report`; its counts are written then."""
        await self.database.execute(
            f"INSERT INTO trade_reconciliations ({_REPORT_COLUMNS}, complete)"
            " VALUES (?, ?, ?, ?, ?, 0, 0, 0, 0, 0, 0, ?, 0, 0)",
            (
                report.reconciliation_id,
                report.config_id,
                report.user_id,
                to_iso(report.start_time),
                to_iso(report.end_time),
                to_iso(report.created_at),
            ),
        )

    async def add_items(self, reconciliation_id: str, items: Sequence[tuple[int, Item]]) -> None:
        """Store a batch of a started report's items, each at its ``item_index``, in one
        transaction (the report's order is the indexes' order; they need not be contiguous)."""
        async with self.database.transaction() as tx:
            for start in range(0, len(items), _STREAMED_ITEMS_PER_STATEMENT):
                chunk = items[start : start + _STREAMED_ITEMS_PER_STATEMENT]
                params: list[Any] = []
                for index, item in chunk:
                    params.extend(_item_params(reconciliation_id, index, item))
                placeholders = ", ".join(_ITEM_PLACEHOLDERS for _ in chunk)
                await tx.execute(
                    f"INSERT INTO reconciliation_items ({_ITEM_COLUMNS}) VALUES {placeholders}",
                    params,
                )

    async def discard_items(self, reconciliation_id: str) -> None:
        """Delete a started report's items (it ends with other items, or none)."""
        await self.database.execute(
            "DELETE FROM reconciliation_items WHERE reconciliation_id = ?", (reconciliation_id,)
        )

    async def finish_report(self, report: Report, *, audit: AuditEvent | None = None) -> Report:
        """Write a started report's counts and list it, with ``audit``, in one transaction.

        Returns the report as stored, without its items.
        """
        counts = report.counts
        async with self.database.transaction() as tx:
            await tx.execute(
                "UPDATE trade_reconciliations SET total_count = ?, matched_count = ?,"
                " mismatched_count = ?, missing_count = ?, duplicate_count = ?,"
                " error_count = ?, extra_count = ?, complete = 1 WHERE id = ? AND complete = 0",
                (
                    counts.total,
                    counts.matched,
                    counts.mismatched,
                    counts.missing,
                    counts.duplicate,
                    counts.error,
                    counts.extra,
                    report.reconciliation_id,
                ),
            )
            if audit is not None:
                await self.audit.append(tx, audit, report.created_at)
        stored = await self.get_report(report.reconciliation_id, with_items=False)
        assert stored is not None
        return stored

    async def get_report(self, reconciliation_id: str, *, with_items: bool = True) -> Report | None:
        """Return the report with its items (in the order they were stored), or ``None``."""
        row = await self.database.fetchone(
            f"SELECT {_REPORT_SELECT} FROM trade_reconciliations WHERE id = ?",
            (reconciliation_id,),
        )
        if row is None:
            return None
        if not with_items:
            return _report(row)
        rows = await self.database.fetchall(
            f"SELECT {_ITEM_COLUMNS} FROM reconciliation_items WHERE reconciliation_id = ?"
            " ORDER BY item_index",
            (reconciliation_id,),
        )
        return _report(row, tuple(_item(r) for r in rows))

    async def list_items(
        self, reconciliation_id: str, after_index: int, limit: int
    ) -> list[tuple[int, Item]]:
        """Return up to ``limit`` of a report's items after ``after_index`` (-1: from the
        first), in the report's order, each with its index."""
        rows = await self.database.fetchall(
            f"SELECT {_ITEM_COLUMNS} FROM reconciliation_items WHERE reconciliation_id = ?"
            " AND item_index > ? ORDER BY item_index LIMIT ?",
            (reconciliation_id, after_index, limit),
        )
        return [(int(r["item_index"]), _item(r)) for r in rows]

    async def list_audit_entries(
        self,
        owner_user_id: str,
        before_seq: int,
        limit: int,
    ) -> list[AuditEntry]:
        """Return ``owner_user_id``'s audit entries below ``before_seq`` (0: all), newest first."""
        return await self.audit.entries_of(owner_user_id, before_seq=before_seq, limit=limit)

    async def list_reports(self, config_id: str, user_id: str, limit: int) -> list[Report]:
        """Return the newest ``limit`` reports of ``config_id`` made for ``user_id``, no items."""
        rows = await self.database.fetchall(
            f"SELECT {_REPORT_SELECT} FROM trade_reconciliations"
            " WHERE config_id = ? AND user_id = ? AND complete = 1"
            " ORDER BY created_at DESC, id DESC LIMIT ?",
            (config_id, user_id, limit),
        )
        return [_report(row) for row in rows]
