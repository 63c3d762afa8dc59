"""The broker's limiter against each emulator with the venue's own limits on: a burst of orders
never draws a 429 (or a ban), and a Retry-After is obeyed to the letter.

The emulators count what they refuse in their limiter; these tests watch it by wrapping the
limiter's ``admit*`` methods of the running venue (white box: ``cluster.states[venue]``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from broker_svc.adapters.ratelimit import RateLimits
from broker_svc.adapters.venues import VENUE_CLASSES
from broker_svc.domain.model import Credentials, OrderRequest, OrderType, Side
from meshkit import errors

sim = pytest.importorskip("exchange_sim", reason="the emulators are not available")

SYMBOLS = {
    "binance": ("BTC/USDT", "USDT"),
    "coinbase": ("BTC/USD", "USD"),
    "kraken": ("BTC/USD", "USD"),
}
BURST = {"binance": 14, "coinbase": 5, "kraken": 3}


@dataclass
class VenueCounter:
    """Every request the venue's limiter saw, and every one it refused (429, 418, lockout)."""

    admitted: list[float] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def watch(self, limiter: Any) -> None:
        for name in dir(limiter):
            if name.startswith("admit") and callable(getattr(limiter, name)):
                setattr(limiter, name, self._wrap(getattr(limiter, name)))

    def _wrap(self, admit: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.admitted.append(time.monotonic())
            try:
                return admit(*args, **kwargs)
            except Exception as e:
                self.refused.append(f"{type(e).__name__}: {e}")
                raise

        return counted


@dataclass
class LimitedVenue:
    name: str
    url: str
    counter: VenueCounter
    session: aiohttp.ClientSession

    async def account(self, balances: dict[str, str]) -> Credentials:
        async with self.session.post(
            self.url + "/_sim/accounts", json={"balances": balances}
        ) as response:
            made = await response.json()
        return Credentials(made["api_key"], made["api_secret"])


@pytest.fixture(params=["binance", "coinbase", "kraken"])
async def limited(request: pytest.FixtureRequest) -> AsyncIterator[LimitedVenue]:
    """One emulator with its rate limits on, and a counter of what it refused."""
    cluster = await sim.start_venues((request.param,), rate_limits=True)
    counter = VenueCounter()
    counter.watch(cluster.states[request.param].limiter)
    try:
        async with aiohttp.ClientSession() as session:
            yield LimitedVenue(request.param, cluster.urls[request.param], counter, session)
    finally:
        await cluster.close()


def _market_buy(symbol: str) -> OrderRequest:
    return OrderRequest(str(uuid.uuid4()), symbol, Side.BUY, OrderType.MARKET, Decimal("0.001"))


async def test_a_burst_of_orders_waits_its_turn_and_never_draws_a_429(
    limited: LimitedVenue,
) -> None:
    symbol, quote = SYMBOLS[limited.name]
    limits = RateLimits(max_wait=10.0)
    port = VENUE_CLASSES[limited.name](
        await limited.account({quote: "100000"}), base_url=limited.url, limits=limits
    )
    try:
        await port.load_markets()
        started = time.monotonic()
        orders = await asyncio.gather(
            *(port.place_order(_market_buy(symbol)) for _ in range(BURST[limited.name]))
        )
        took = time.monotonic() - started
    finally:
        await port.close()
    assert len({o.venue_order_id for o in orders}) == BURST[limited.name]
    assert limited.counter.refused == []
    order_budget = min(
        (b for b in VENUE_CLASSES[limited.name].budgets() if b.name == "orders"),
        key=lambda b: b.interval_seconds,
    )
    # The burst had to be spread out: it could not all go within one order window.
    assert took >= (BURST[limited.name] - order_budget.limit) / order_budget.limit * 0.9


async def test_a_burst_beyond_the_wait_allowed_is_refused_here_not_at_the_venue(
    limited: LimitedVenue,
) -> None:
    symbol, quote = SYMBOLS[limited.name]
    port = VENUE_CLASSES[limited.name](
        await limited.account({quote: "100000"}),
        base_url=limited.url,
        limits=RateLimits(max_wait=0.2),
    )
    try:
        await port.load_markets()
        results = await asyncio.gather(
            *(port.place_order(_market_buy(symbol)) for _ in range(BURST[limited.name] + 4)),
            return_exceptions=True,
        )
    finally:
        await port.close()
    refused = [r for r in results if isinstance(r, BaseException)]
    assert refused and all(isinstance(r, errors.ResourceExhausted) for r in refused)
    assert all(r.retry_after and r.retry_after > 0 for r in refused)
    assert limited.counter.refused == []


async def test_a_retry_after_from_the_venue_is_obeyed_before_anything_else_is_sent(
    limited: LimitedVenue,
) -> None:
    symbol, quote = SYMBOLS[limited.name]
    port = VENUE_CLASSES[limited.name](
        await limited.account({quote: "100"}), base_url=limited.url, limits=RateLimits(max_wait=0.5)
    )
    ticker_path = {
        "binance": "/api/v3/ticker/24hr",
        "coinbase": "/api/v3/brokerage/market/products/BTC-USD/ticker",
        "kraken": "/0/public/Ticker",
    }[limited.name]
    try:
        await port.load_markets()
        async with limited.session.post(
            limited.url + "/_sim/faults",
            json={
                "method": "*",
                "path": ticker_path,
                "status": 429,
                "headers": {"Retry-After": "1"},
                "body": {"code": -1003, "msg": "Too much request weight used"},
                "count": 1,
            },
        ) as response:
            assert response.status == 200
        told = time.monotonic()
        with pytest.raises(errors.ResourceExhausted) as caught:
            await port.fetch_last_price(symbol)
        assert caught.value.retry_after == pytest.approx(1.0, abs=0.1)
        before = len(limited.counter.admitted)
        with pytest.raises(errors.ResourceExhausted):
            await port.fetch_balances()  # refused here: the venue is not asked inside the wait
        assert len(limited.counter.admitted) == before
        await asyncio.sleep(max(0.0, told + 0.6 - time.monotonic()))
        await port.fetch_balances()  # the rest of the wait is short: waited, then sent
        assert len(limited.counter.admitted) > before
        assert all(at >= told + 1.0 for at in limited.counter.admitted[before:])
    finally:
        await port.close()
    assert limited.counter.refused == []
