"""Watches: an account's orders or fills as they happen, one venue stream for every watcher."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from broker_svc.domain.model import Fill, Order, StreamEvent, WatchChannel
from broker_svc.streams import Subscription
from broker_svc.usecases.connections import ConnectionPool
from meshkit import errors


class WatchUseCases(ConnectionPool):
    """Streams of an account's orders and fills."""

    @contextlib.asynccontextmanager
    async def watch(
        self,
        exchange_id: str,
        user_id: str,
        channel: WatchChannel,
        symbols: Sequence[str],
    ) -> AsyncIterator[AsyncIterator[Order | Fill | StreamEvent]]:
        """Watch an account's orders or fills; one venue stream serves every watcher of it.

        The first item is a ``CONNECTED`` event once the venue confirmed the subscription (the
        caller backfills through ``ListFills`` then); fills the venue reports without their
        order's client id get it from the broker's records.
        """
        connection = await self._connection(exchange_id, user_id)
        if symbols:
            profile = self.profile(connection.account.exchange_name)
            for index, symbol in enumerate(symbols):
                markets = await connection.port.load_markets()
                if symbol not in markets:
                    raise errors.InvalidArgument(
                        errors.FieldViolation(
                            f"symbols[{index}]", f"{symbol} is not a market at {profile.name}"
                        ),
                        reason="INVALID_SYMBOL",
                    )
        async with self.streams.watch(
            (exchange_id, channel),
            lambda: connection.port.watch(channel),
            symbols,
        ) as subscription:
            yield self._with_client_ids(exchange_id, subscription)

    async def _with_client_ids(
        self, exchange_id: str, subscription: Subscription
    ) -> AsyncIterator[Order | Fill | StreamEvent]:
        async for item in subscription:
            if isinstance(item, Fill) and not item.client_order_id and item.venue_order_id:
                known = await self.store.client_order_ids(exchange_id, [item.venue_order_id])
                item = replace(item, client_order_id=known.get(item.venue_order_id, ""))
            yield item
