"""Market data of an account's venue: its portfolio valued, a market and its candles; the
leverage of a derivatives market."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from broker_svc.domain.model import Candle, Market
from broker_svc.domain.portfolio import (
    Portfolio,
    is_quote_equivalent,
    pricing_symbols,
    value_portfolio,
)
from broker_svc.ports import ExchangePort
from broker_svc.usecases.connections import ConnectionPool
from meshkit import errors


class MarketDataUseCases(ConnectionPool):
    """Balances, prices, markets and candles at the venue of an account."""

    async def portfolio(
        self, exchange_id: str, user_id: str, quote: str, *, include_leverages: bool = False
    ) -> Portfolio:
        """Read the account's balances and value them in ``quote`` (the venue's main by default).

        With ``include_leverages``, at a venue with leverage, also the leverage setting on every
        derivatives market, read before the positions: the positions' stamp still says which
        fills they hold, and a leverage set before a fill they hold is in the read.
        """
        connection = await self._connection(exchange_id, user_id)
        venue = connection.account.exchange_name
        profile = self.profile(venue)
        quote = quote or profile.main_quote
        # The prices that valued this account last time are asked for with its balances,
        # not after them: one round trip to the venue instead of two (see _price).
        early = {
            symbol: self._price(venue, connection.port, symbol)
            for symbol in self._priced_with(exchange_id, quote)
        }
        try:
            balances = await connection.port.fetch_balances()
            read_at = self.clock.now()
            markets = await connection.port.load_markets()
            wanted: dict[str, str] = {}
            for balance in balances:
                if balance.total == 0 or is_quote_equivalent(balance.asset, quote):
                    continue
                for symbol in pricing_symbols(balance.asset, quote):
                    if symbol in markets:
                        wanted[balance.asset] = symbol
                        break
            asked = {
                symbol: early.pop(symbol)
                if symbol in early
                else self._price(venue, connection.port, symbol)
                for symbol in wanted.values()
            }
            for future in asked.values():  # a second error than gather's is not reported
                future.add_done_callback(_retrieved)
            answers = await asyncio.gather(*asked.values())
        finally:
            for unwanted in early.values():  # held no more: its answer is not needed
                unwanted.add_done_callback(_retrieved)
        self._priced[(exchange_id, quote)] = tuple(asked)
        prices = {
            symbol: price for symbol, price in zip(asked, answers, strict=True) if price is not None
        }
        portfolio = value_portfolio(balances, prices, quote, read_at)
        if include_leverages and "leverage" in profile.features:
            leverages = tuple(await connection.port.fetch_leverages())
            portfolio = replace(portfolio, leverages=leverages)
        if "positions" in profile.features:
            requested_at = self.clock.now()
            positions = await connection.port.fetch_positions()
            # Stamped when the positions came back, with when they were asked for: the venue
            # took them at some instant in between, so sync cannot tell whether a fill traded
            # in that window is in them (it does not use the read for that symbol).
            portfolio = replace(
                portfolio,
                positions=tuple(positions),
                read_at=self.clock.now(),
                positions_requested_at=requested_at,
            )
        return portfolio

    def _priced_with(self, exchange_id: str, quote: str) -> tuple[str, ...]:
        # The symbols that valued the account's last portfolio in ``quote`` (none at first).
        return self._priced.get((exchange_id, quote), ())

    def _price(self, venue: str, port: ExchangePort, symbol: str) -> asyncio.Future[Decimal | None]:
        """Return the venue's last price of ``symbol``, read once for every concurrent caller.

        A price is public: when many accounts of one venue are valued at the same moment (a
        signal read for every follower), the callers that ask while a read of the same price
        is on its way share its answer (or its error). Nothing is kept after it answers, so
        a price is never older than the read its caller waited for.
        """
        key = (venue, symbol)
        reads = self._price_reads
        running = reads.get(key)
        if running is None:
            running = asyncio.ensure_future(port.fetch_last_price(symbol))
            reads[key] = running
            running.add_done_callback(lambda _: reads.pop(key))
        # Each caller waits on its own view: one cancelled caller cancels nobody else's read.
        return asyncio.ensure_future(asyncio.shield(running))

    async def set_leverage(
        self, exchange_id: str, user_id: str, symbol: str, leverage: int, margin_mode: str
    ) -> int:
        """Set leverage (and margin mode) on a derivatives market of the account's venue."""
        connection = await self._connection(exchange_id, user_id)
        profile = self.profile(connection.account.exchange_name)
        if "leverage" not in profile.features:
            raise errors.FailedPrecondition(
                f"{profile.name} has no leverage to set",
                reason="LEVERAGE_UNSUPPORTED",
                metadata={"exchange": profile.name},
            )
        await self._market(connection.port, symbol, profile)
        return await connection.port.set_leverage(symbol, leverage, margin_mode)

    async def market(
        self, exchange_id: str, user_id: str, symbol: str
    ) -> tuple[Market, Decimal | None]:
        """Return a market of the account's venue and its last price."""
        connection = await self._connection(exchange_id, user_id)
        venue = connection.account.exchange_name
        profile = self.profile(venue)
        market = await self._market(connection.port, symbol, profile)
        return market, await self._price(venue, connection.port, symbol)

    async def candles(
        self,
        exchange_id: str,
        user_id: str,
        symbol: str,
        timeframe: str,
        since: datetime | None,
        limit: int,
    ) -> list[Candle]:
        """Return a market's candles of ``timeframe``, oldest first."""
        connection = await self._connection(exchange_id, user_id)
        profile = self.profile(connection.account.exchange_name)
        await self._market(connection.port, symbol, profile)
        return await connection.port.fetch_candles(symbol, timeframe, since, limit)


def _retrieved(future: asyncio.Future[Decimal | None]) -> None:
    # A price read nobody waits for any more: take its error, if any, so none is reported.
    if not future.cancelled():
        future.exception()
