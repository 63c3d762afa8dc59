"""This broker replica among its peers: a heartbeat in ``broker_replicas``, and its share of
every venue's rate limit.

Broker replicas hold no lease: the lease keeper of :mod:`meshkit.leases` runs with no work
wanted, so a round is only a heartbeat. After every round the replica counts the live
replicas and gives its rate limiter (``RateLimits.set_replicas``) the venue limits divided by
that count, so that all the replicas together never exceed a venue's limit. On SQLite a
second replica is refused at :meth:`~meshkit.leases.LeaseKeeper.start` (``ConfigError``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from meshkit.leases import LeaseKeeper, LeaseTable

log = logging.getLogger("broker_svc.membership")


async def _no_work() -> set[str]:
    return set()


async def _never(resource: str, token: int) -> None:  # pragma: no cover - no lease is wanted
    return None


class BrokerMembership(LeaseKeeper):
    """The broker's lease keeper: membership only, telling ``on_replicas`` the live count.

    Parameters
    ----------
    table
        The ``broker_replicas`` and ``broker_leases`` tables.
    on_replicas
        Called after every round with the number of live replicas (this one included, at
        least 1).
    replica_id
        This replica's id (``None``: ``$REPLICA_ID``, else host, pid and a nonce).
    ttl_seconds
        How long a heartbeat holds; a round runs every third of it.
    """

    def __init__(
        self,
        table: LeaseTable,
        on_replicas: Callable[[int], None],
        *,
        replica_id: str | None = None,
        address: str = "",
        ttl_seconds: float = 3.0,
    ) -> None:
        super().__init__(
            table,
            service="broker",
            wanted=_no_work,
            on_acquired=_never,
            on_lost=_never,
            replica_id=replica_id,
            address=address,
            ttl_seconds=ttl_seconds,
        )
        self._on_replicas = on_replicas
        self.replicas = 1

    async def round(self) -> None:
        """Heartbeat, then share the venue limits with the replicas alive now."""
        await super().round()
        live = max(1, len(await self.table.live_replicas()))
        if live != self.replicas:
            log.info("%d broker replicas share the venue rate limits now", live)
        self.replicas = live
        self._on_replicas(live)
