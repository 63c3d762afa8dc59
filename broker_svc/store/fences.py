"""The ``broker_fences`` and ``order_attempts`` tables: lease fences and placement attempts.

``broker_fences`` keeps, per key (a leader source an engine replica copies under a lease), the
highest fencing token the broker has seen. ``order_attempts`` has one row per client order id,
committed before the order's first venue call, under the fence it was sent with.

``prepare_order`` records an order's attempt and reserves its client order id in
``broker_orders`` in one transaction: one durable write before the venue call.

The guarantee both give together: once :meth:`FenceTable.raise_fence` of ``(key, T)`` has
returned, no attempt carrying ``key`` and a token below ``T`` is recorded any more
(:meth:`FenceTable.prepare_order` refuses it), and an order reaches a venue only after its
attempt is recorded. So when no attempt row exists for a client order id after a fence, the
lease's previous holder never sent that order and never will. On PostgreSQL the attempt's
transaction share-locks the fence row, so a raise waits for an attempt being recorded under
the old token and an attempt that starts after the raise sees the new token; SQLite runs one
writer at a time.
"""

from __future__ import annotations

from datetime import datetime

from broker_svc.domain.model import OrderRequest
from broker_svc.domain.records import Fence, Prepared
from broker_svc.store.orders import reservation
from broker_svc.store.rows import ORDER_COLUMNS, order_record
from meshkit import db
from meshkit.codec import to_iso


class FenceTable:
    """Fences and attempts (a part of :class:`~broker_svc.store.BrokerStore`)."""

    database: db.Database

    async def _raise(self, executor: db.Executor, fence: Fence) -> None:
        await executor.execute(
            "INSERT INTO broker_fences (fence_key, token) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (fence.key, fence.token),
        )
        await executor.execute(
            "UPDATE broker_fences SET token = ? WHERE fence_key = ? AND token < ?",
            (fence.token, fence.key, fence.token),
        )

    async def raise_fence(self, fence: Fence) -> int:
        """Raise the key's token to ``fence.token`` if it is lower; return the key's token now.

        A returned token above ``fence.token`` means a later holder fenced the key first.
        """
        async with self.database.transaction() as tx:
            await self._raise(tx, fence)
            row = await tx.fetchone(
                "SELECT token FROM broker_fences WHERE fence_key = ?",
                (fence.key,),
            )
        return int(row["token"]) if row else fence.token

    async def prepare_order(
        self,
        exchange_id: str,
        request: OrderRequest,
        fence: Fence,
        now: datetime,
    ) -> Prepared:
        """Record the attempt to place ``request`` and reserve its client order id, in one
        transaction, before any venue call; unless its fence is stale.

        Returns ``Prepared(fenced=T)`` when the key's token ``T`` is above ``fence.token``
        (nothing recorded); otherwise the attempt is recorded (a repeat keeps the first row)
        and either ``Prepared(reserved=True)`` (the id was free: this call sends it) or
        ``Prepared(existing=record)`` (the broker's record of the order under the id). An
        order without a fence (empty key) is recorded under key ``''`` and token 0, so "never
        placed" is provable for every order.

        The key's token is read (share-locked on PostgreSQL) in the same transaction. The
        first order under a new token raises it first in statements of its own, so orders
        under one key never wait on each other's row lock.
        """
        async with self.database.transaction() as tx:
            prepared = await self._prepare(tx, exchange_id, request, fence, now)
        if prepared is not None:
            return prepared
        await self._raise(self.database, fence)
        async with self.database.transaction() as tx:
            prepared = await self._prepare(tx, exchange_id, request, fence, now)
        if prepared is None:  # pragma: no cover - a key's token never goes down
            raise RuntimeError(f"the fence {fence.key} is below {fence.token} after raising it")
        return prepared

    async def _prepare(
        self,
        tx: db.Executor,
        exchange_id: str,
        request: OrderRequest,
        fence: Fence,
        now: datetime,
    ) -> Prepared | None:
        # None: the key's token is below the fence's (or the key is new): raise it first.
        if fence.present:
            lock = " FOR SHARE" if self.database.dialect == "postgresql" else ""
            row = await tx.fetchone(
                f"SELECT token FROM broker_fences WHERE fence_key = ?{lock}",
                (fence.key,),
            )
            stored = int(row["token"]) if row else None
            if stored is None or stored < fence.token:
                return None
            if stored > fence.token:
                return Prepared(fenced=stored)
        await tx.execute(
            "INSERT INTO order_attempts"
            " (client_order_id, account_id, fence_key, token, started_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (request.client_order_id, exchange_id, fence.key, fence.token, to_iso(now)),
        )
        if await tx.execute(*reservation(exchange_id, request, now)) > 0:
            return Prepared(reserved=True)
        row = await tx.fetchone(
            f"SELECT {ORDER_COLUMNS} FROM broker_orders"
            " WHERE exchange_id = ? AND client_order_id = ?",
            (exchange_id, request.client_order_id),
        )
        return Prepared(existing=order_record(row) if row else None)

    async def attempted(self, client_order_id: str) -> bool:
        """Return whether an attempt to place ``client_order_id`` was ever recorded."""
        row = await self.database.fetchone(
            "SELECT 1 AS found FROM order_attempts WHERE client_order_id = ?",
            (client_order_id,),
        )
        return row is not None
