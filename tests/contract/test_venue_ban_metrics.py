"""``copytrade_broker_venue_bans_total``: a venue's ban or lockout is counted apart from a plain
rate limit (the alert ``CopytradeVenueBanned`` reads it; docs/alerts.md).

Each emulator is told to answer the next ticker read as the real venue does: Binance with a 418
"IP banned" or a 429, Kraken with ``EGeneral:Temporary lockout`` or an order rate limit.
"""

from __future__ import annotations

import contextlib
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY

from broker_svc.adapters.ratelimit import RateLimits
from broker_svc.adapters.venues import VENUE_CLASSES
from broker_svc.domain.model import Credentials
from meshkit import errors

sim = pytest.importorskip("exchange_sim", reason="the emulators are not available")

TICKER = {"binance": "/api/v3/ticker/24hr", "kraken": "/0/public/Ticker"}
SYMBOL = {"binance": "BTC/USDT", "kraken": "BTC/USD"}

CASES = {
    "binance 418 ban": (
        "binance",
        {
            "status": 418,
            "headers": {"Retry-After": "1"},
            "body": {"code": -1003, "msg": "Way too much request weight used; IP banned until 1."},
        },
        True,
    ),
    "binance 429": (
        "binance",
        {
            "status": 429,
            "headers": {"Retry-After": "1"},
            "body": {"code": -1003, "msg": "Too much request weight used"},
        },
        False,
    ),
    "kraken lockout": (
        "kraken",
        {"status": 200, "body": {"error": ["EGeneral:Temporary lockout"], "result": {}}},
        True,
    ),
    "kraken rate limit": (
        "kraken",
        {"status": 200, "body": {"error": ["EAPI:Rate limit exceeded"], "result": {}}},
        False,
    ),
}


def _count(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _rate_limited(venue: str) -> float:
    # Every status label (a Kraken error comes with HTTP 200: status "200").
    return sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "copytrade_broker_venue_rate_limited"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels.get("exchange") == venue
    )


@pytest.mark.parametrize("case", list(CASES))
async def test_a_ban_is_counted_as_a_ban_and_a_rate_limit_is_not(case: str) -> None:
    venue, fault, is_ban = CASES[case]
    cluster = await sim.start_venues((venue,))
    url = cluster.urls[venue]
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(cluster.close)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        async with session.post(url + "/_sim/accounts", json={"balances": {}}) as response:
            made: dict[str, Any] = await response.json()
        port = VENUE_CLASSES[venue](
            Credentials(made["api_key"], made["api_secret"]),
            base_url=url,
            limits=RateLimits(max_wait=0.5),
        )
        try:
            await port.load_markets()
            async with session.post(
                url + "/_sim/faults",
                json={"method": "*", "path": TICKER[venue], "count": 1, **fault},
            ) as response:
                assert response.status == 200, case
            bans = _count("copytrade_broker_venue_bans_total", {"exchange": venue})
            limited = _rate_limited(venue)
            with pytest.raises(errors.ResourceExhausted):
                await port.fetch_last_price(SYMBOL[venue])
        finally:
            await port.close()
    assert _rate_limited(venue) == limited + 1
    assert _count("copytrade_broker_venue_bans_total", {"exchange": venue}) == bans + is_ban
