"""Valuing follower portfolios at a fan-out: a venue's price is read once for every account
valued at that moment, and an account's price is asked for with its balances, not after them;
nothing is kept once the read answers, so no portfolio is valued with an older price."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from broker_svc.domain.model import Balance
from broker_svc.usecases.market_data import MarketDataUseCases
from meshkit import errors
from tests.fakes.clock import FakeClock


class _Venue:
    """One venue's public price, released on demand; every call in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.price = Decimal(60000)
        self.release = asyncio.Event()
        self.error: Exception | None = None
        self.both_asked = asyncio.Event()


class _Port:
    def __init__(self, venue: _Venue, btc: str) -> None:
        self._venue = venue
        self._btc = Decimal(btc)

    async def fetch_balances(self) -> list[Balance]:
        self._venue.calls.append("balances")
        if self._venue.calls.count("balances") == 2:
            self._venue.both_asked.set()
        for _ in range(3):  # on its way: other tasks run meanwhile
            await asyncio.sleep(0)
        self._venue.calls.append("balances answered")
        return [Balance("USDT", Decimal(1000), Decimal(0)), Balance("BTC", self._btc, Decimal(0))]

    async def load_markets(self) -> dict[str, Any]:
        return {"BTC/USDT": object()}

    async def fetch_last_price(self, symbol: str) -> Decimal:
        self._venue.calls.append(f"price {symbol}")
        await self._venue.release.wait()
        if self._venue.error is not None:
            raise self._venue.error
        return self._venue.price


def _use_cases(venue: _Venue) -> MarketDataUseCases:
    use_cases = MarketDataUseCases.__new__(MarketDataUseCases)
    ports = {"a": _Port(venue, "1"), "b": _Port(venue, "2")}

    async def _connection(exchange_id: str, user_id: str) -> Any:
        return SimpleNamespace(
            account=SimpleNamespace(exchange_name="binance"), port=ports[exchange_id]
        )

    vars(use_cases).update(
        clock=FakeClock(),
        _connection=_connection,
        _priced={},
        _price_reads={},
        profile=lambda name: SimpleNamespace(features=(), main_quote="USDT"),
    )
    return use_cases


async def test_accounts_valued_at_once_share_one_price_read() -> None:
    venue = _Venue()
    use_cases = _use_cases(venue)
    reads = [asyncio.create_task(use_cases.portfolio(a, "u", "")) for a in ("a", "b")]
    await venue.both_asked.wait()
    venue.release.set()
    a, b = await asyncio.gather(*reads)
    assert venue.calls.count("price BTC/USDT") == 1
    assert (a.equity, b.equity) == (Decimal(61000), Decimal(121000))


async def test_a_shared_read_that_fails_fails_every_caller_and_is_not_kept() -> None:
    venue = _Venue()
    use_cases = _use_cases(venue)
    venue.error = errors.Unavailable("venue down", reason="VENUE_UNAVAILABLE")
    reads = [asyncio.create_task(use_cases.portfolio(a, "u", "")) for a in ("a", "b")]
    await venue.both_asked.wait()
    venue.release.set()
    for read in reads:
        with pytest.raises(errors.Unavailable):
            await read
    venue.error = None
    venue.price = Decimal(50000)
    portfolio = await use_cases.portfolio("a", "u", "")
    assert portfolio.equity == Decimal(51000)  # asked again: the new price, not a kept one


async def test_an_accounts_held_prices_are_asked_for_with_its_balances() -> None:
    venue = _Venue()
    use_cases = _use_cases(venue)
    venue.release.set()
    await use_cases.portfolio("a", "u", "")
    assert venue.calls == ["balances", "balances answered", "price BTC/USDT"]  # none known yet
    venue.calls.clear()
    venue.price = Decimal(70000)
    portfolio = await use_cases.portfolio("a", "u", "")
    # Asked while the balances were on their way: one round trip, not two.
    assert venue.calls.index("price BTC/USDT") < venue.calls.index("balances answered")
    assert portfolio.equity == Decimal(71000)
