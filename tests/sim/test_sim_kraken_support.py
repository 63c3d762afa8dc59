"""Fixtures and helpers for the Kraken emulator tests (imported by the test_sim_kraken_* modules):
a fresh emulator per test, its admin API, unmodified ccxt ``kraken`` clients pointed at it with
only their URLs changed, and hand-signed Kraken calls for what ccxt cannot send."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from exchange_sim import SimCluster, start_venues
from exchange_sim.kraken import point_kraken_at
from exchange_sim.kraken.auth import sign
from tests.sim.sim_helpers import Admin

RICH = {"USD": "1000000", "BTC": "10", "ETH": "100", "LTC": "1000"}
KrakenFactory = Callable[..., Awaitable[Any]]


class KrakenAdmin(Admin):
    """The ``/_sim/`` client plus raw, hand-signed Kraken calls."""

    async def account(self, balances: dict[str, str] | None = None, **flags: Any) -> dict[str, str]:
        return await self.call("POST", "/_sim/accounts", {"balances": balances or RICH, **flags})

    async def private(
        self,
        method: str,
        creds: dict[str, str],
        params: dict[str, Any] | None = None,
        *,
        nonce: int | None = None,
        secret: str | None = None,
    ) -> dict[str, Any]:
        """``POST /0/private/<method>`` signed like ccxt signs it; returns the JSON body."""
        nonce_text = str(nonce if nonce is not None else time.time_ns() // 1000)
        body = urlencode({"nonce": nonce_text, **(params or {})})
        path = f"/0/private/{method}"
        headers = {
            "API-Key": creds["api_key"],
            "API-Sign": sign(secret or creds["api_secret"], path, nonce_text, body),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        async with self.session.post(self.base_url + path, data=body, headers=headers) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def public(self, method: str, **params: Any) -> dict[str, Any]:
        """``GET /0/public/<method>``."""
        async with self.session.get(
            f"{self.base_url}/0/public/{method}", params=params
        ) as response:
            return await response.json()


async def _cluster(rate_limits: bool) -> SimCluster:
    return await start_venues(("kraken",), ports={"kraken": 0}, rate_limits=rate_limits)


async def _admin(cluster: SimCluster) -> AsyncIterator[KrakenAdmin]:
    async with aiohttp.ClientSession() as session:
        yield KrakenAdmin(cluster.urls["kraken"], session)


async def _factory(base_url: str) -> AsyncIterator[KrakenFactory]:
    made: list[Any] = []

    async def make(creds: dict[str, str], *, pro: bool = False, load: bool = True) -> Any:
        module = ccxt_pro if pro else ccxt_async
        exchange = module.kraken(
            {"apiKey": creds["api_key"], "secret": creds["api_secret"], "enableRateLimit": False}
        )
        point_kraken_at(exchange, base_url)
        made.append(exchange)
        if load:
            await exchange.load_markets()
        return exchange

    yield make
    for exchange in made:
        await exchange.close()


@pytest.fixture(name="kraken_sim")
async def kraken_sim_fixture() -> AsyncIterator[SimCluster]:
    """A fresh Kraken emulator on a free port, rate limits off."""
    cluster = await _cluster(False)
    yield cluster
    await cluster.close()


@pytest.fixture(name="kraken_limited_sim")
async def kraken_limited_sim_fixture() -> AsyncIterator[SimCluster]:
    """A fresh Kraken emulator with rate limits enforced."""
    cluster = await _cluster(True)
    yield cluster
    await cluster.close()


@pytest.fixture(name="kadmin")
async def kadmin_fixture(kraken_sim: SimCluster) -> AsyncIterator[KrakenAdmin]:
    """The admin client of ``kraken_sim``."""
    async for admin in _admin(kraken_sim):
        yield admin


@pytest.fixture(name="limited_kadmin")
async def limited_kadmin_fixture(kraken_limited_sim: SimCluster) -> AsyncIterator[KrakenAdmin]:
    """The admin client of ``kraken_limited_sim``."""
    async for admin in _admin(kraken_limited_sim):
        yield admin


@pytest.fixture(name="kraken")
async def kraken_fixture(kraken_sim: SimCluster) -> AsyncIterator[KrakenFactory]:
    """Make an unmodified ccxt kraken (async, or pro with ``pro=True``) for given credentials."""
    async for make in _factory(kraken_sim.urls["kraken"]):
        yield make


@pytest.fixture(name="limited_kraken")
async def limited_kraken_fixture(kraken_limited_sim: SimCluster) -> AsyncIterator[KrakenFactory]:
    """Like ``kraken`` but against ``kraken_limited_sim``."""
    async for make in _factory(kraken_limited_sim.urls["kraken"]):
        yield make
