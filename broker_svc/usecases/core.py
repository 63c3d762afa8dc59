"""What every part of the broker's use cases shares: its ports, its state and a few lookups."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from broker_svc.crypto import Cipher
from broker_svc.domain.model import ExchangeAccount, Market, VenueProfile
from broker_svc.domain.records import AccountRow
from broker_svc.ports import BrokerStorePort, Clock, ExchangePort, Venues
from broker_svc.streams import WatchHub
from meshkit import errors


@dataclass
class _Connection:
    account: ExchangeAccount
    port: ExchangePort


class BrokerCore:
    """The ports and state of :class:`~broker_svc.usecases.Broker`, and lookups every part uses."""

    store: BrokerStorePort
    venues: Venues
    cipher: Cipher
    clock: Clock
    streams: WatchHub
    _resend_floor: float | None
    _connections: dict[str, _Connection]
    _connecting: dict[str, asyncio.Lock]
    # Accounts whose keys the venue refused since their last accepted call (audited once).
    _keys_refused: set[str]
    _key_rotation: asyncio.Task[None] | None
    # The symbols that valued each (account, quote) last, and the price reads on their way.
    _priced: dict[tuple[str, str], tuple[str, ...]]
    _price_reads: dict[tuple[str, str], asyncio.Future[Decimal | None]]

    def profile(self, venue: str) -> VenueProfile:
        """Return the profile of a supported venue, or fail naming ``exchange_name``."""
        profile = self.venues.profile(venue)
        if profile is None:
            names = ", ".join(p.name for p in self.venues.profiles())
            raise errors.invalid("exchange_name", f"is not a supported venue (supported: {names})")
        return profile

    async def _account_row(self, exchange_id: str, user_id: str) -> AccountRow:
        row = await self.store.get_account(exchange_id)
        if (
            row is None
            or row.account.deleted_at is not None
            or (user_id and row.account.user_id != user_id)
        ):
            raise errors.NotFound(
                f"exchange account {exchange_id} not found",
                reason="EXCHANGE_NOT_FOUND",
                metadata={"exchange_id": exchange_id},
            )
        return row

    async def _market(self, port: ExchangePort, symbol: str, profile: VenueProfile) -> Market:
        markets = await port.load_markets()
        market = markets.get(symbol)
        if market is None:
            raise errors.InvalidArgument(
                errors.FieldViolation("symbol", f"{symbol} is not a market at {profile.name}"),
                reason="INVALID_SYMBOL",
            )
        return market
