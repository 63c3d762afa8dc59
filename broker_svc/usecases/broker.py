"""The broker's use-cases as one façade: what the servicer calls."""

from __future__ import annotations

import asyncio
import contextlib

from broker_svc.crypto import Cipher
from broker_svc.ports import BrokerStorePort, Clock, Venues
from broker_svc.streams import WatchHub
from broker_svc.usecases.accounts import AccountUseCases
from broker_svc.usecases.market_data import MarketDataUseCases
from broker_svc.usecases.orders import OrderUseCases
from broker_svc.usecases.watches import WatchUseCases
from meshkit.clock import SystemClock


class Broker(AccountUseCases, OrderUseCases, MarketDataUseCases, WatchUseCases):
    """Accounts, credentials, orders, market data and watches at venues.

    Parameters
    ----------
    store
        The broker's tables.
    venues
        How to reach the venues.
    cipher
        Seals and opens stored credentials.
    clock
        Where the time comes from.
    """

    def __init__(
        self,
        store: BrokerStorePort,
        venues: Venues,
        cipher: Cipher,
        clock: Clock | None = None,
        resend_safe_after_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.venues = venues
        self.cipher = cipher
        self.clock = clock or SystemClock()
        self._resend_floor = resend_safe_after_seconds
        self._connections = {}
        self._connecting = {}
        self._keys_refused = set()
        self.streams = WatchHub()
        self._key_rotation = None
        self._priced = {}
        self._price_reads = {}

    async def close(self) -> None:
        """End every watch and close every venue connection."""
        if self._key_rotation is not None:
            self._key_rotation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._key_rotation
        await self.streams.close()
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            await connection.port.close()
        await self.venues.close()
