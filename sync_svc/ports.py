"""Interfaces the sync service depends on: the broker and the clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol

from sync_svc.domain.model import ExchangeAccount, LeaderFill, Portfolio, WatchItem


class BrokerPort(Protocol):
    """What the sync service asks of the broker; every call is bounded by ``timeout`` seconds."""

    async def get_exchange(
        self,
        exchange_id: str,
        *,
        user_id: str = "",
        timeout: float,
    ) -> ExchangeAccount:
        """Return the exchange account (NOT_FOUND when unknown or another user's)."""
        ...

    async def list_fills(
        self,
        exchange_id: str,
        since: datetime,
        *,
        timeout: float,
    ) -> list[LeaderFill]:
        """Return the account's fills with ``trade_time >= since``, oldest first."""
        ...

    async def get_portfolio(self, exchange_id: str, *, timeout: float) -> Portfolio:
        """Return the account's equity, the total of each asset, and when it was read."""
        ...

    def watch_fills(self, exchange_id: str) -> AsyncIterator[WatchItem]:
        """Stream the account's fills and its venue stream's state changes.

        The iterator ends when the broker ends the watch and raises a service error when the
        watch fails; closing it (``aclose``) cancels the watch. It has no deadline.
        """
        ...


class Clock(Protocol):
    """The current time."""

    def now(self) -> datetime:
        """Return the current time as an aware UTC datetime."""
        ...
