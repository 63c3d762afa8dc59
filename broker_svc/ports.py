"""Interfaces the broker's use-cases depend on: venues, the store and the clock.

Only the composition root (:mod:`broker_svc.server`) names the concrete classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from broker_svc.domain.model import (
    Balance,
    Candle,
    Credentials,
    ExchangeAccount,
    Fill,
    KeyPermissions,
    Market,
    MarketLeverage,
    Order,
    OrderHint,
    OrderRequest,
    Position,
    StreamEvent,
    VenueProfile,
    WatchChannel,
)
from broker_svc.domain.records import AccountRow, Fence, KeyCheck, OrderRecord, Prepared
from meshkit.audit import AuditEntry, AuditEvent
from meshkit.clock import Clock

__all__ = ["BrokerStorePort", "Clock", "ExchangePort", "Venues"]


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

    async def fetch_positions(self) -> list[Position]:
        """Return the open positions (only called at venues with the ``positions`` feature)."""
        ...

    async def fetch_leverages(self) -> list[MarketLeverage]:
        """Return the leverage setting on every derivatives market, a position open or not
        (only called at venues with the ``leverage`` feature)."""
        ...

    async def set_leverage(self, symbol: str, leverage: int, margin_mode: str) -> int:
        """Set ``margin_mode`` (unless empty), then ``leverage``, on ``symbol``; return the
        leverage now in force (only called at venues with the ``leverage`` feature)."""
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


class BrokerStorePort(Protocol):
    """The broker's tables: accounts with sealed credentials, the key check, orders and fences.

    Writes that take an ``audit`` event append it in the same transaction as the change.
    """

    # Accounts ---------------------------------------------------------------------------------

    async def insert_account(
        self,
        row: AccountRow,
        request_id: str = "",
        *,
        audit: AuditEvent | None = None,
    ) -> AccountRow:
        """Store a new account; with a ``request_id`` already used by its user, return that one."""
        ...

    async def account_by_request(self, user_id: str, request_id: str) -> AccountRow | None:
        """Return the account ``user_id`` registered with ``request_id``, deleted or not."""
        ...

    async def get_account(self, exchange_id: str) -> AccountRow | None:
        """Return the account ``exchange_id``, deleted or not."""
        ...

    async def list_accounts(self, user_id: str) -> list[ExchangeAccount]:
        """Return the live accounts of ``user_id``, oldest first."""
        ...

    async def delete_account(
        self,
        exchange_id: str,
        deleted_at: datetime,
        *,
        audit: AuditEvent | None = None,
    ) -> bool:
        """Mark the account deleted and erase its sealed credentials; return whether it was live."""
        ...

    async def list_audit_entries(
        self,
        owner_user_id: str,
        before_seq: int,
        limit: int,
    ) -> list[AuditEntry]:
        """Return ``owner_user_id``'s audit entries below ``before_seq`` (0: all), newest first."""
        ...

    async def record_audit(self, event: AuditEvent, now: datetime) -> None:
        """Append an entry for something seen rather than changed (a venue refusing our keys)."""
        ...

    async def sealed_accounts(self) -> list[AccountRow]:
        """Return every live account with its sealed credentials (for key rotation)."""
        ...

    async def replace_credentials(
        self,
        exchange_id: str,
        expected_key_id: str,
        ciphertext: bytes,
        nonce: bytes,
        key_id: str,
        *,
        audit: AuditEvent | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Swap in re-sealed credentials if the row is still sealed by ``expected_key_id``."""
        ...

    async def sealed_key_ids(self) -> dict[str, int]:
        """Return how many live accounts each key id sealed."""
        ...

    # Key check --------------------------------------------------------------------------------

    async def key_check(self) -> KeyCheck | None:
        """Return the sealed key-check value, ``None`` before the first start wrote it."""
        ...

    async def insert_key_check(
        self,
        ciphertext: bytes,
        nonce: bytes,
        key_id: str,
        now: datetime,
    ) -> bool:
        """Store the key-check value unless one exists; return whether this call stored it."""
        ...

    async def replace_key_check(
        self,
        expected_key_id: str,
        ciphertext: bytes,
        nonce: bytes,
        key_id: str,
        now: datetime,
    ) -> bool:
        """Swap in a re-sealed key-check value if it is still sealed by ``expected_key_id``."""
        ...

    # Orders -----------------------------------------------------------------------------------

    async def reserve_order(self, exchange_id: str, request: OrderRequest, now: datetime) -> bool:
        """Record that ``request`` is about to be sent; return ``False`` when the id is taken."""
        ...

    async def mark_resent(self, exchange_id: str, client_order_id: str, now: datetime) -> bool:
        """Move the send time of an unresolved order to ``now`` before sending it again."""
        ...

    async def forget_unsent(self, exchange_id: str, client_order_id: str) -> None:
        """Drop the reservation of an order the venue proved it never took."""
        ...

    async def record_order(self, exchange_id: str, order: Order, now: datetime) -> None:
        """Upsert the order as the venue reported it."""
        ...

    async def get_order(self, exchange_id: str, client_order_id: str) -> OrderRecord | None:
        """Return the broker's record of an order, ``None`` when it has none."""
        ...

    async def client_order_ids(
        self, exchange_id: str, venue_order_ids: list[str]
    ) -> dict[str, str]:
        """Return the client order id the broker knows for each of ``venue_order_ids``."""
        ...

    # Fences and attempts ---------------------------------------------------------------------

    async def raise_fence(self, fence: Fence) -> int:
        """Raise the key's token to ``fence.token`` if it is lower; return the key's token now."""
        ...

    async def prepare_order(
        self,
        exchange_id: str,
        request: OrderRequest,
        fence: Fence,
        now: datetime,
    ) -> Prepared:
        """Record an order's attempt and reserve its client order id, in one transaction,
        before any venue call; ``Prepared.fenced`` is the higher token when fenced.

        Otherwise ``reserved`` (the id was free) or ``existing`` (the record under the id).
        Once :meth:`raise_fence` of ``(key, T)`` has returned, an attempt under ``key`` with
        a token below ``T`` is never recorded.
        """
        ...

    async def attempted(self, client_order_id: str) -> bool:
        """Return whether an attempt to place ``client_order_id`` was ever recorded."""
        ...

    # Lifetime ---------------------------------------------------------------------------------

    async def close(self) -> None:
        """Release the store's connections."""
        ...
