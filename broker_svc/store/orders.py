"""The ``broker_orders`` table: follower orders as the broker last saw them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from broker_svc.domain.model import Order, OrderRequest, OrderStatus
from broker_svc.domain.records import OrderRecord
from broker_svc.store.rows import ORDER_COLUMNS, order_record, text_or_none
from meshkit import db
from meshkit.codec import format_decimal, to_iso


def reservation(
    exchange_id: str, request: OrderRequest, now: datetime
) -> tuple[str, tuple[Any, ...]]:
    """Return the statement and parameters that reserve ``request``'s client order id (an
    unresolved ``broker_orders`` row; nothing when the id is taken)."""
    stamp = to_iso(now)
    return (
        f"INSERT INTO broker_orders ({ORDER_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            exchange_id,
            request.client_order_id,
            request.symbol,
            request.side.value,
            request.type.value,
            request.time_in_force.value if request.time_in_force else None,
            format_decimal(request.quantity),
            text_or_none(request.price),
            text_or_none(request.stop_price),
            "",
            OrderStatus.UNKNOWN.value,
            "0",
            None,
            stamp,
            stamp,
            stamp,
        ),
    )


class OrderTable:
    """The follower orders (a part of :class:`~broker_svc.store.BrokerStore`)."""

    database: db.Database

    async def reserve_order(self, exchange_id: str, request: OrderRequest, now: datetime) -> bool:
        """Record that ``request`` is about to be sent; return ``False`` when the id is taken."""
        inserted = await self.database.execute(*reservation(exchange_id, request, now))
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
            f"INSERT INTO broker_orders ({ORDER_COLUMNS})"
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
                text_or_none(order.price),
                text_or_none(order.stop_price),
                order.venue_order_id,
                order.status.value,
                format_decimal(order.filled_quantity),
                text_or_none(order.average_price),
                stamp,
                stamp,
                stamp,
            ),
        )

    async def get_order(self, exchange_id: str, client_order_id: str) -> OrderRecord | None:
        """Return the broker's record of an order, ``None`` when it has none."""
        row = await self.database.fetchone(
            f"SELECT {ORDER_COLUMNS} FROM broker_orders"
            " WHERE exchange_id = ? AND client_order_id = ?",
            (exchange_id, client_order_id),
        )
        return order_record(row) if row else None

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
