"""Interfaces the reconciliation service depends on: engine, sync, broker, store and clock.

Every call to another service is bounded by ``timeout`` seconds and fails with a
:mod:`meshkit.errors` type; a read that timed out is ``Unavailable``, never an unknown outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from meshkit.audit import AuditEntry, AuditEvent
from meshkit.clock import Clock
from meshkit.vocabulary import Side
from recon_svc.domain.model import (
    CopyConfig,
    Intent,
    Item,
    LeaderSignal,
    Report,
    VenueFill,
    VenueHoldings,
    VenueOrder,
)

__all__ = ["BrokerPort", "Clock", "EnginePort", "ReportStore", "SyncPort"]


class EnginePort(Protocol):
    """What reconciliation reads from the engine, always on behalf of a user."""

    async def get_config(
        self,
        config_id: str,
        *,
        user_id: str,
        timeout: float,  # noqa: ASYNC109 - the gRPC call's deadline, not an asyncio timeout
    ) -> CopyConfig:
        """Return the configuration (NOT_FOUND when unknown or another user's)."""
        ...

    async def list_copied_orders(
        self,
        config_id: str,
        start_time: datetime,
        *,
        target_exchange_id: str,
        page_token: str,
        page_size: int,
        user_id: str,
        timeout: float,  # noqa: ASYNC109 - the gRPC call's deadline, not an asyncio timeout
    ) -> tuple[list[Intent], str]:
        """Return one page of one follower account's intents written at or after
        ``start_time``, oldest first, and the next page's token ("" after the last)."""
        ...

    async def correct_position(
        self,
        config_id: str,
        target_exchange_id: str,
        symbol: str,
        side: Side,
        quantity: Decimal,
        reconciliation_id: str,
        *,
        user_id: str,
        timeout: float,  # noqa: ASYNC109 - the gRPC call's deadline, not an asyncio timeout
    ) -> Intent:
        """Have the engine write a correction intent (through its risk gate); return it."""
        ...


class SyncPort(Protocol):
    """What reconciliation reads from the sync service."""

    async def list_signals(
        self,
        source_id: str,
        *,
        after_sequence: int,
        start_time: datetime,
        end_time: datetime,
        page_size: int,
        timeout: float,  # noqa: ASYNC109 - the gRPC call's deadline, not an asyncio timeout
    ) -> list[LeaderSignal]:
        """Return one page of the source's signals with event time in the window, by sequence."""
        ...


class BrokerPort(Protocol):
    """What reconciliation reads from the broker: the venue's truth."""

    async def list_orders(
        self,
        exchange_id: str,
        symbols: Sequence[str],
        start_time: datetime,
        *,
        user_id: str,
        timeout: float,  # noqa: ASYNC109 - the gRPC call's deadline, not an asyncio timeout
    ) -> list[VenueOrder]:
        """Return the account's venue orders created at or after ``start_time``, oldest first."""
        ...

    async def list_fills(
        self,
        exchange_id: str,
        symbols: Sequence[str],
        since: datetime,
        *,
        user_id: str,
        timeout: float,  # noqa: ASYNC109 - the gRPC call's deadline, not an asyncio timeout
    ) -> list[VenueFill]:
        """Return the account's trades at or after ``since``, oldest first."""
        ...

    async def get_holdings(
        self,
        exchange_id: str,
        *,
        user_id: str,
        timeout: float,  # noqa: ASYNC109 - the gRPC call's deadline, not an asyncio timeout
    ) -> VenueHoldings:
        """Return each asset's total at the account's venue (assets holding 0 may be absent)
        and its open derivatives positions."""
        ...


class ReportStore(Protocol):
    """Where reports are kept."""

    async def save_report(self, report: Report, *, audit: AuditEvent | None = None) -> Report:
        """Store a report and its items (and ``audit``) in one transaction; return it as stored."""
        ...

    async def start_report(self, report: Report) -> None:
        """Store a report's row before its items; it is not listed until finished."""
        ...

    async def add_items(self, reconciliation_id: str, items: Sequence[tuple[int, Item]]) -> None:
        """Store a batch of a started report's items, each at its index."""
        ...

    async def discard_items(self, reconciliation_id: str) -> None:
        """Delete a started report's items."""
        ...

    async def finish_report(self, report: Report, *, audit: AuditEvent | None = None) -> Report:
        """Write a started report's counts (and ``audit``) in one transaction and list it;
        return it as stored, without items."""
        ...

    async def get_report(self, reconciliation_id: str, *, with_items: bool = True) -> Report | None:
        """Return a report (with its items unless ``with_items`` is false), or ``None``."""
        ...

    async def list_items(
        self, reconciliation_id: str, after_index: int, limit: int
    ) -> list[tuple[int, Item]]:
        """Return up to ``limit`` of a report's items after ``after_index``, with indexes."""
        ...

    async def list_audit_entries(
        self,
        owner_user_id: str,
        before_seq: int,
        limit: int,
    ) -> list[AuditEntry]:
        """Return the user's audit entries below ``before_seq`` (0: all), newest first."""
        ...

    async def list_reports(self, config_id: str, user_id: str, limit: int) -> list[Report]:
        """Return the newest reports of a configuration, without items."""
        ...
