"""The follower portfolios GET /status shows: a read (the risk monitor's or a status's) serves
for up to max_age while no intent of the account changed; concurrent reads of an account share
one venue call; a failed read is every waiter's and is not kept."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from engine_svc.domain.model import AssetBalance, Portfolio
from engine_svc.risk_monitor import Valuations


def _portfolio(total: str) -> Portfolio:
    return Portfolio(
        balances=(AssetBalance("USDT", Decimal(total), Decimal(total)),),
        equity=Decimal(total),
        quote_currency="USDT",
    )


class Venue:
    def __init__(self) -> None:
        self.reads = 0
        self.total = "100"
        self.gate: asyncio.Event | None = None
        self.error: Exception | None = None

    async def load(self) -> Portfolio:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return _portfolio(self.total)


async def test_a_read_serves_until_max_age_or_an_intent_change() -> None:
    now = [10.0]
    valuations = Valuations(max_age=1.0, clock=lambda: now[0])
    venue = Venue()
    first = await valuations.read("acct", "u1", "t1", venue.load)
    venue.total = "90"
    now[0] += 0.9
    assert await valuations.read("acct", "u1", "t1", venue.load) is first
    assert venue.reads == 1
    # A fill of the account (its intents' marker moved): read again at once.
    assert (await valuations.read("acct", "u1", "t2", venue.load)).equity == Decimal("90")
    assert venue.reads == 2
    venue.total = "80"
    now[0] += 1.1
    assert (await valuations.read("acct", "u1", "t2", venue.load)).equity == Decimal("80")
    assert venue.reads == 3
    # Another user's read of the same id is not shared.
    await valuations.read("acct", "u2", "t2", venue.load)
    assert venue.reads == 4


async def test_the_monitors_read_serves_status_and_concurrent_reads_share_one() -> None:
    now = [10.0]
    valuations = Valuations(max_age=1.0, clock=lambda: now[0])
    venue = Venue()
    valuations.put("acct", "u1", _portfolio("70"), "t1", read_at=9.5)
    assert (await valuations.read("acct", "u1", "t1", venue.load)).equity == Decimal("70")
    assert venue.reads == 0

    venue.gate = asyncio.Event()
    waiting = [
        asyncio.ensure_future(valuations.read("b", "u1", "t1", venue.load)) for _ in range(5)
    ]
    await asyncio.sleep(0)
    venue.gate.set()
    assert {id(p) for p in await asyncio.gather(*waiting)} == {id(waiting[0].result())}
    assert venue.reads == 1


async def test_a_failed_read_is_every_waiters_and_not_kept() -> None:
    valuations = Valuations(max_age=1.0, clock=lambda: 10.0)
    venue = Venue()
    venue.gate, venue.error = asyncio.Event(), RuntimeError("venue down")
    waiting = [
        asyncio.ensure_future(valuations.read("a", "u1", "t1", venue.load)) for _ in range(3)
    ]
    await asyncio.sleep(0)
    venue.gate.set()
    for task in waiting:
        with pytest.raises(RuntimeError):
            await task
    venue.error = None
    assert (await valuations.read("a", "u1", "t1", venue.load)).equity == Decimal("100")
    assert venue.reads == 2
