"""Interfaces the broker's use-cases depend on: venues, the store and the clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from broker_svc.domain.model import (
    Balance,
    Candle,
    Credentials,
    Fill,
    KeyPermissions,
    Market,
    Order,
    OrderHint,
    OrderRequest,
    StreamEvent,
    VenueProfile,
    WatchChannel,
)


class ExchangePort(Protocol):
    """One authenticated connection to one account at one venue.

    Methods raise :mod:`meshkit.errors` types: a venue rejection is ``InvalidArgument`` or
    ``FailedPrecondition``, an unknown order ``NotFound``, a rate limit ``ResourceExhausted``,
    an unreachable venue ``Unavailable``, and an ambiguous answer to :meth:`place_order`
    ``OutcomeUnknown`` (never retried here).
    """

    venue: str

    async def load_markets(self) -> Mapping[str, Market]:
        """Return the venue's markets by symbol, loaded once per connection."""
        ...

    async def place_order(self, request: OrderRequest) -> Order:
        """Place ``request`` with its client order id passed to the venue natively."""
        ...

    async def fetch_order(
        self,
        client_order_id: str,
        symbol: str,
        hint: OrderHint | None = None,
    ) -> Order:
        """Look an order up by its client order id; ``hint`` is what the broker knows of it."""
        ...

    async def cancel_order(
        self,
        client_order_id: str,
        symbol: str,
        hint: OrderHint | None = None,
    ) -> Order:
        """Cancel an order by its client order id and return it as the venue reports it."""
        ...

    async def fetch_orders(
        self,
        symbols: Sequence[str],
        start: datetime,
        end: datetime,
    ) -> list[Order]:
        """Return the orders created in ``[start, end)`` on ``symbols``, oldest first."""
        ...

    async def fetch_fills(self, symbols: Sequence[str], since: datetime | None) -> list[Fill]:
        """Return the fills at or after ``since`` on ``symbols``, oldest first."""
        ...

    async def fetch_balances(self) -> list[Balance]:
        """Return every balance of the account."""
        ...

    async def fetch_last_price(self, symbol: str) -> Decimal | None:
        """Return the last traded price of ``symbol``, ``None`` when the venue has none."""
        ...

    async def fetch_key_permissions(self) -> KeyPermissions | None:
        """Return what the API key may do, ``None`` when the venue does not say."""
        ...

    async def fetch_candles(
        self,
        symbol: str,
        timeframe: str,
        since: datetime | None,
        limit: int,
    ) -> list[Candle]:
        """Return up to ``limit`` candles of ``symbol``, oldest first (latest without ``since``)."""
        ...

    def watch(self, channel: WatchChannel) -> AsyncIterator[Order | Fill | StreamEvent]:
        """Stream the account's orders or fills, with the venue stream's state changes.

        The first item is a ``CONNECTED`` event once the venue confirmed the subscription; the
        stream reconnects by itself (``DISCONNECTED`` then ``CONNECTED``) and runs until closed.
        """
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...


class Venues(Protocol):
    """The venues the broker can trade on, and how to connect to them."""

    def profiles(self) -> Sequence[VenueProfile]:
        """Return every supported venue's profile."""
        ...

    def profile(self, venue: str) -> VenueProfile | None:
        """Return the profile of ``venue``, ``None`` when it is not supported."""
        ...

    def connect(self, venue: str, credentials: Credentials | None) -> ExchangePort:
        """Open a connection to ``venue`` (public only when ``credentials`` is ``None``)."""
        ...

    async def public_markets(self, venue: str) -> Mapping[str, Market]:
        """Return the markets of ``venue`` without credentials (cached for a while)."""
        ...

    async def close(self) -> None:
        """Close the public connections."""
        ...


class Clock(Protocol):
    """Where the current time comes from."""

    def now(self) -> datetime:
        """Return the current time as an aware UTC datetime."""
        ...
