"""Fixtures for the exchange emulator tests: a fresh emulator per test, its admin API, and
unmodified ccxt clients pointed at it with only their URLs changed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from exchange_sim import SimCluster, start_venues
from tests.sim.sim_helpers import Admin, ExchangeFactory, exchange_factory


async def _cluster(rate_limits: bool) -> SimCluster:
    return await start_venues(("binance",), ports={"binance": 0}, rate_limits=rate_limits)


@pytest.fixture
async def sim() -> AsyncIterator[SimCluster]:
    """A fresh Binance emulator on a free port, rate limits off."""
    cluster = await _cluster(False)
    yield cluster
    await cluster.close()


@pytest.fixture
async def limited_sim() -> AsyncIterator[SimCluster]:
    """A fresh Binance emulator with rate limits enforced."""
    cluster = await _cluster(True)
    yield cluster
    await cluster.close()


async def _admin(cluster: SimCluster) -> AsyncIterator[Admin]:
    async with aiohttp.ClientSession() as session:
        yield Admin(cluster.urls["binance"], session)


@pytest.fixture
async def admin(sim: SimCluster) -> AsyncIterator[Admin]:
    """The admin client of ``sim``."""
    async for a in _admin(sim):
        yield a


@pytest.fixture
async def limited_admin(limited_sim: SimCluster) -> AsyncIterator[Admin]:
    """The admin client of ``limited_sim``."""
    async for a in _admin(limited_sim):
        yield a


@pytest.fixture
async def binance(sim: SimCluster) -> AsyncIterator[ExchangeFactory]:
    """Make an unmodified ccxt binance (async, or pro with ``pro=True``) for given credentials."""
    async for make in exchange_factory(sim.urls["binance"]):
        yield make


@pytest.fixture
async def limited_binance(limited_sim: SimCluster) -> AsyncIterator[ExchangeFactory]:
    """Like ``binance`` but against ``limited_sim``."""
    async for make in exchange_factory(limited_sim.urls["binance"]):
        yield make
