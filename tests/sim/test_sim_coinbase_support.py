"""Fixtures and helpers for the Coinbase emulator tests (imported by the other
``test_sim_coinbase_*`` modules; it holds no tests itself).

ccxt clients are unmodified ``ccxt.async_support.coinbase`` / ``ccxt.pro.coinbase`` objects with
only their URLs pointed at the emulator and ``enableRateLimit: False``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from exchange_sim import SimCluster, start_venues
from exchange_sim.ccxt_urls import point_ccxt_at
from exchange_sim.coinbase import CoinbaseState
from tests.sim.sim_helpers import Admin, ExchangeFactory

VENUE = "coinbase"
FUNDS = {"USD": "1000000", "BTC": "10", "ETH": "100", "LTC": "1000"}


class CoinbaseAdmin(Admin):
    """``Admin`` with the account routes percent-encoding the key: CDP key names hold ``/``."""

    async def orders(self, api_key: str) -> list[dict[str, Any]]:
        return await self.call("GET", f"/_sim/accounts/{quote(api_key, safe='')}/orders")

    async def trades(self, api_key: str) -> list[dict[str, Any]]:
        return await self.call("GET", f"/_sim/accounts/{quote(api_key, safe='')}/trades")

    async def balances(self, api_key: str) -> dict[str, dict[str, str]]:
        return await self.call("GET", f"/_sim/accounts/{quote(api_key, safe='')}/balances")


async def new_account(
    admin: Admin, balances: dict[str, str] | None = None, **flags: Any
) -> dict[str, str]:
    """Open an emulator account (CDP credentials unless ``api_secret`` is given)."""
    return await admin.call(
        "POST", "/_sim/accounts", {"balances": FUNDS if balances is None else balances, **flags}
    )


def b64url(raw: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_jwt(
    creds: dict[str, str], claims: dict[str, Any], header: dict[str, Any] | None = None
) -> str:
    """An ES256 JWT signed with the account's PEM (raw r||s signature, as CDP expects)."""
    key = serialization.load_pem_private_key(creds["api_secret"].encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    head = {
        "alg": "ES256",
        "typ": "JWT",
        "kid": creds["api_key"],
        "nonce": secrets.token_hex(16),
        **(header or {}),
    }
    signing_input = b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def claims_for(
    creds: dict[str, str], uri: str | None, *, now: int | None = None, **extra: Any
) -> dict[str, Any]:
    """The claims ccxt puts in a token (``uri`` None for WebSocket tokens)."""
    now = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "aud": ["retail_rest_api_proxy"],
        "iss": "coinbase-cloud",
        "nbf": now,
        "exp": now + 120,
        "sub": creds["api_key"],
        "iat": now,
        **extra,
    }
    if uri is not None:
        claims["uri"] = uri
    return claims


def legacy_headers(
    key: str, secret: str, method: str, path: str, body: str = "", timestamp: int | None = None
) -> dict[str, str]:
    """Legacy ``CB-ACCESS-*`` headers."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    sign = hmac.new(
        secret.encode(), (stamp + method + path + body).encode(), hashlib.sha256
    ).hexdigest()
    return {
        "CB-ACCESS-KEY": key,
        "CB-ACCESS-SIGN": sign,
        "CB-ACCESS-TIMESTAMP": stamp,
        "Content-Type": "application/json",
    }


async def _clients(base_url: str) -> AsyncIterator[ExchangeFactory]:
    made: list[Any] = []

    async def make(creds: dict[str, str], *, pro: bool = False, load: bool = True) -> Any:
        module = ccxt_pro if pro else ccxt_async
        exchange = module.coinbase(
            {"apiKey": creds["api_key"], "secret": creds["api_secret"], "enableRateLimit": False}
        )
        point_ccxt_at(exchange, base_url)
        made.append(exchange)
        if load:
            await exchange.load_markets()
        return exchange

    yield make
    for exchange in made:
        await exchange.close()


async def _cluster(rate_limits: bool) -> AsyncIterator[SimCluster]:
    cluster = await start_venues((VENUE,), ports={VENUE: 0}, rate_limits=rate_limits)
    try:
        yield cluster
    finally:
        await cluster.close()


@pytest.fixture
async def cb_sim() -> AsyncIterator[SimCluster]:
    """A fresh Coinbase emulator on a free port, rate limits off."""
    async for cluster in _cluster(False):
        yield cluster


@pytest.fixture
async def cb_limited_sim() -> AsyncIterator[SimCluster]:
    """A fresh Coinbase emulator with rate limits enforced."""
    async for cluster in _cluster(True):
        yield cluster


@pytest.fixture
def cb_state(cb_sim: SimCluster) -> CoinbaseState:
    """The in-process state of ``cb_sim`` (white-box tests)."""
    state = cb_sim.states[VENUE]
    assert isinstance(state, CoinbaseState)
    return state


@pytest.fixture
async def cb_admin(cb_sim: SimCluster) -> AsyncIterator[Admin]:
    """The ``/_sim/`` client of ``cb_sim``."""
    async with aiohttp.ClientSession() as session:
        yield CoinbaseAdmin(cb_sim.urls[VENUE], session)


@pytest.fixture
async def cb_limited_admin(cb_limited_sim: SimCluster) -> AsyncIterator[Admin]:
    """The ``/_sim/`` client of ``cb_limited_sim``."""
    async with aiohttp.ClientSession() as session:
        yield CoinbaseAdmin(cb_limited_sim.urls[VENUE], session)


@pytest.fixture
async def coinbase(cb_sim: SimCluster) -> AsyncIterator[ExchangeFactory]:
    """Make unmodified ccxt coinbase clients (async, or pro with ``pro=True``) for ``cb_sim``."""
    async for make in _clients(cb_sim.urls[VENUE]):
        yield make


@pytest.fixture
async def limited_coinbase(cb_limited_sim: SimCluster) -> AsyncIterator[ExchangeFactory]:
    """Like ``coinbase`` but against ``cb_limited_sim``."""
    async for make in _clients(cb_limited_sim.urls[VENUE]):
        yield make
