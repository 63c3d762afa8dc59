"""The ``broker_fences`` and ``order_attempts`` tables: lease fences and placement attempts.

``broker_fences`` keeps, per key (a leader source an engine replica copies under a lease), the
highest fencing token the broker has seen. ``order_attempts`` has one row per client order id,
committed before the order's first venue call, under the fence it was sent with.

The guarantee both give together: once :meth:`FenceTable.raise_fence` of ``(key, T)`` has
returned, no attempt carrying ``key`` and a token below ``T`` is recorded any more
(:meth:`FenceTable.begin_attempt` refuses it), and an order reaches a venue only after its
attempt is recorded. So when no attempt row exists for a client order id after a fence, the
lease's previous holder never sent that order and never will. On PostgreSQL the attempt's
transaction share-locks the fence row, so a raise waits for an attempt being recorded under
the old token and an attempt that starts after the raise sees the new token; SQLite runs one
writer at a time.
"""

from __future__ import annotations

from datetime import datetime

from broker_svc.domain.records import Fence
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

    async def begin_attempt(
        self,
        account_id: str,
        client_order_id: str,
        fence: Fence,
        now: datetime,
    ) -> int | None:
        """Record the attempt to place an order before it is sent, unless its fence is stale.

        Returns ``None`` when the attempt is recorded (or was already: a re-send of the same
        client order id keeps the first row), or the key's higher token when the fence is
        stale and nothing was recorded. An order without a fence (empty key) is recorded under
        key ``''`` and token 0, so "never placed" is provable for every order.
        """
        if fence.present:
            await self._raise(self.database, fence)
        async with self.database.transaction() as tx:
            if fence.present:
                lock = " FOR SHARE" if self.database.dialect == "postgresql" else ""
                row = await tx.fetchone(
                    f"SELECT token FROM broker_fences WHERE fence_key = ?{lock}",
                    (fence.key,),
                )
                stored = int(row["token"]) if row else fence.token
                if stored > fence.token:
                    return stored
            await tx.execute(
                "INSERT INTO order_attempts"
                " (client_order_id, account_id, fence_key, token, started_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (client_order_id, account_id, fence.key, fence.token, to_iso(now)),
            )
        return None

    async def attempted(self, client_order_id: str) -> bool:
        """Return whether an attempt to place ``client_order_id`` was ever recorded."""
        row = await self.database.fetchone(
            "SELECT 1 AS found FROM order_attempts WHERE client_order_id = ?",
            (client_order_id,),
        )
        return row is not None
