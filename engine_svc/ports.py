"""Interfaces the engine's use-cases depend on: the broker, the sync service and the clock.

Implementations raise :mod:`meshkit.errors` types: ``NotFound`` for an unknown object,
``InvalidArgument``/``FailedPrecondition`` for a refusal, ``ResourceExhausted`` for a rate
limit, ``OutcomeUnknown`` when an order may or may not have been placed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from engine_svc.domain.model import (
    Candle,
    Intent,
    MarketInfo,
    Portfolio,
    Signal,
    SourceKind,
    SyncSettings,
    VenueOrder,
)


@dataclass(frozen=True)
class ExchangeAccount:
    """A registered exchange account, as far as the engine needs to know it."""

    exchange_id: str
    exchange_name: str


@dataclass(frozen=True)
class Source:
    """A leader as the sync service describes it."""

    source_id: str
    kind: SourceKind | None
    user_id: str
    public: bool
    last_sequence: int
    mode: str
    last_sync_time: datetime | None
    equity: Decimal | None = None


@dataclass(frozen=True)
class Heartbeat:
    """The signal stream is alive and has nothing to send."""

    send_time: datetime | None = None


class BrokerPort(Protocol):
    """The broker service, acting for the owner of the accounts named."""

    async def get_exchange(self, exchange_id: str, user_id: str) -> ExchangeAccount:
        """Return the user's exchange account; ``NotFound`` when it is not theirs or absent."""
        ...

    async def get_portfolio(self, exchange_id: str, user_id: str) -> Portfolio:
        """Return the account's balances and equity in its main quote currency."""
        ...

    async def get_market(self, exchange_id: str, symbol: str, user_id: str) -> MarketInfo:
        """Return the market ``symbol`` of the account's venue, with its last price."""
        ...

    async def list_candles(
        self,
        exchange_id: str,
        symbol: str,
        timeframe: str,
        limit: int,
        user_id: str,
    ) -> list[Candle]:
        """Return the market's most recent candles, oldest first; ``NotFound`` without it."""
        ...

    async def place_order(self, intent: Intent, user_id: str) -> VenueOrder:
        """Place the intent's order with its client order id; never retried here."""
        ...

    async def get_order(
        self,
        exchange_id: str,
        client_order_id: str,
        symbol: str,
        user_id: str,
    ) -> VenueOrder:
        """Look an order up by client order id; ``NotFound`` when the venue has none."""
        ...

    async def cancel_order(
        self,
        exchange_id: str,
        client_order_id: str,
        symbol: str,
        user_id: str,
    ) -> VenueOrder:
        """Cancel an order by client order id and return it as the venue reports it."""
        ...


class SignalStream(Protocol):
    """One open ``StreamSignals`` call."""

    async def subscribe(self, source_id: str, after_sequence: int) -> None:
        """Ask for the source's signals after ``after_sequence`` (resets that source)."""
        ...

    async def ack(self, source_id: str, sequence: int) -> None:
        """Say every signal of the source up to ``sequence`` is stored."""
        ...

    async def receive(self) -> Signal | Heartbeat | None:
        """Return the next message, ``None`` when the stream ended; raise when it broke."""
        ...

    async def close(self) -> None:
        """End the call."""
        ...


class SyncPort(Protocol):
    """The sync service."""

    async def get_source(self, source_id: str) -> Source:
        """Return the source; ``NotFound`` when there is none."""
        ...

    async def watch_exchange_source(
        self,
        exchange_id: str,
        sync_settings: SyncSettings,
        user_id: str,
    ) -> Source:
        """Start (or keep) watching an exchange account as a source."""
        ...

    async def unwatch_exchange_source(self, exchange_id: str, user_id: str) -> Source:
        """Stop watching an exchange account no configuration copies any more."""
        ...

    async def open_signal_stream(self) -> SignalStream:
        """Open the signal stream."""
        ...


class Clock(Protocol):
    """Where the current time comes from."""

    def now(self) -> datetime:
        """Return the current time as an aware UTC datetime."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current time as an aware UTC datetime."""
        from meshkit.codec import utcnow

        return utcnow()
