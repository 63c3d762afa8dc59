"""Interfaces the sync service depends on: the store, the broker and the clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from meshkit.clock import Clock
from meshkit.leases import Lease, Replica
from sync_svc.domain.model import (
    AppendEntry,
    AppendResult,
    ExchangeAccount,
    LeaderFill,
    LeaderOrder,
    Portfolio,
    Signal,
    Source,
    SyncMode,
    SyncSettings,
    WatchItem,
)
from sync_svc.domain.orders import MirroredOrder

__all__ = [
    "BrokerPort",
    "Clock",
    "LeaseStatusPort",
    "LeasesPort",
    "SignalNoticesPort",
    "SyncStorePort",
]


class SyncStorePort(Protocol):
    """Where sources, leader fills, the per-source signal logs and stream acks are kept."""

    # Sources.

    async def create_source(self, source: Source) -> bool:
        """Insert ``source``; return False when its id or its request id exists already."""
        ...

    async def get_source(self, source_id: str) -> Source | None:
        """Return the source with its last sequence number, or None."""
        ...

    async def find_by_request(self, user_id: str, request_id: str) -> Source | None:
        """Return the user's source created with ``request_id``, or None."""
        ...

    async def list_exchange_sources(self) -> list[Source]:
        """Return every watched exchange-account source, oldest first."""
        ...

    async def unwatch(self, source_id: str) -> bool:
        """Mark a source as no longer read; return False when it was not watched."""
        ...

    async def rewatch(self, source_id: str, now: datetime) -> bool:
        """Watch an unwatched source again from ``now`` (start time and cursor move there);
        return False when it was watched."""
        ...

    async def update_sync_settings(self, source_id: str, settings: SyncSettings) -> None:
        """Replace a source's sync settings."""
        ...

    async def record_poll_success(
        self,
        source_id: str,
        cursor_time: datetime,
        at: datetime,
        last_error: str = "",
    ) -> None:
        """Move the cursor forward (never back), stamp the sync time and set the last error."""
        ...

    async def record_poll_failure(self, source_id: str, error: str) -> None:
        """Record why the last read of the venue failed."""
        ...

    async def update_sync_state(self, source_id: str, mode: SyncMode, last_error: str) -> None:
        """Record how the source is read now and what, if anything, is wrong with it."""
        ...

    async def record_down_since(self, source_id: str, down_since: datetime | None) -> None:
        """Record since when the venue cannot be read (None: it reads)."""
        ...

    async def update_equity(self, source_id: str, equity: Decimal | None) -> None:
        """Record the leader's equity as last read (None leaves it unchanged)."""
        ...

    # Leader fills.

    async def known_fills(
        self,
        source_id: str,
        keys: Iterable[tuple[str, str]],
    ) -> set[tuple[str, str]]:
        """Return which (symbol, trade id) pairs of ``keys`` are stored for the source."""
        ...

    async def recent_fills(self, source_id: str, since: datetime) -> list[LeaderFill]:
        """Return the source's stored fills traded at or after ``since``, in log order."""
        ...

    # The signal log.

    async def append(
        self,
        source_id: str,
        entries: Sequence[AppendEntry],
        log_time: datetime,
        *,
        token: int | None = None,
    ) -> list[AppendResult]:
        """Append ``entries`` to the source's log in one transaction; return where each landed.

        A signal id or a fill already logged is not appended again (its result holds the
        logged signal, ``created`` False). With ``token`` the append is fenced: it raises
        :class:`meshkit.leases.Fenced` and writes nothing when the source's lease is no longer
        held under that token.
        """
        ...

    async def list_signals(
        self,
        source_id: str,
        *,
        after_sequence: int = 0,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        limit: int = 1000,
    ) -> list[Signal]:
        """Return the source's signals after ``after_sequence`` in sequence order, with event
        time in ``[start_time, end_time)`` when given."""
        ...

    # Stream acknowledgements.

    async def open_leader_orders(self, source_id: str) -> list[MirroredOrder]:
        """Return the source's announced leader orders not seen ending yet."""
        ...

    async def close_leader_orders(self, source_id: str, order_ids: Sequence[str]) -> None:
        """Mark announced leader orders as ended without a signal (the venue shows them filled)."""
        ...

    async def record_ack(self, consumer: str, source_id: str, sequence: int, at: datetime) -> None:
        """Store ``sequence`` as the consumer's ack for the source if it is higher than the last."""
        ...


class BrokerPort(Protocol):
    """What the sync service asks of the broker; every call is bounded by ``timeout`` seconds."""

    async def get_exchange(
        self,
        exchange_id: str,
        *,
        user_id: str = "",
        timeout: float,  # noqa: ASYNC109 - the gRPC call's deadline, not an asyncio timeout
    ) -> ExchangeAccount:
        """Return the exchange account (NOT_FOUND when unknown or another user's)."""
        ...

    async def list_fills(
        self,
        exchange_id: str,
        since: datetime,
        *,
        timeout: float,  # noqa: ASYNC109 - the gRPC call's deadline, not an asyncio timeout
    ) -> list[LeaderFill]:
        """Return the account's fills with ``trade_time >= since``, oldest first."""
        ...

    async def get_portfolio(
        self,
        exchange_id: str,
        *,
        timeout: float,  # noqa: ASYNC109 - the gRPC call's deadline, not an asyncio timeout
    ) -> Portfolio:
        """Return the account's equity, the total of each asset, and when it was read."""
        ...

    async def list_orders(
        self,
        exchange_id: str,
        since: datetime,
        *,
        timeout: float,  # noqa: ASYNC109 - the gRPC call's deadline, not an asyncio timeout
    ) -> list[LeaderOrder]:
        """Return the account's orders created at or after ``since`` (any status), oldest first."""
        ...

    def watch_fills(self, exchange_id: str) -> AsyncIterator[WatchItem]:
        """Stream the account's fills and its venue stream's state changes.

        The iterator ends when the broker ends the watch and raises a service error when the
        watch fails; closing it (``aclose``) cancels the watch. It has no deadline.
        """
        ...


class LeasesPort(Protocol):
    """This replica's share of the watched sources' leases (``meshkit.leases.LeaseKeeper``)."""

    def token(self, resource: str) -> int | None:
        """Return the token under which this replica holds ``resource``, None if it does not."""
        ...

    async def start(self) -> None:
        """Join the replicas (a second replica on SQLite is refused) and run the rounds."""
        ...

    async def round(self) -> None:
        """Run one round now: renew, let go of what is not wanted, take this replica's share."""
        ...

    async def stop(self, *, release: bool = True) -> None:
        """Stop the rounds; with ``release``, hand every lease over at once."""
        ...


class LeaseStatusPort(Protocol):
    """Who holds which lease, and which replicas are there (for operators)."""

    async def leases(self) -> list[Lease]:
        """Return every lease by resource."""
        ...

    async def replicas(self) -> list[Replica]:
        """Return every replica, live or not, by id."""
        ...


class SignalNoticesPort(Protocol):
    """Word that a process (this one or another replica) committed signals to a source's log."""

    async def run(self, on_notice: Callable[[str], None], on_connected: Callable[[], None]) -> None:
        """Call ``on_notice(source_id)`` for each notice until cancelled.

        ``on_connected`` is called each time the notices (re)start: any sent while they were
        down are lost, so the caller re-reads whatever it serves. Never returns.
        """
        ...
