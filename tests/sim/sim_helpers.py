"""Helpers for the exchange emulator tests: an admin API client and a ccxt client factory."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro

from exchange_sim.ccxt_urls import binance_options, point_ccxt_at

RICH = {"USDT": "1000000", "BTC": "10", "ETH": "100"}


class Admin:
    """A thin client of the emulator's ``/_sim/`` API (and raw signed Binance calls)."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.session = session

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        async with self.session.request(method, self.base_url + path, json=body) as response:
            payload = await response.json()
            assert response.status == expect, payload
            return payload

    async def account(self, balances: dict[str, str] | None = None, **flags: Any) -> dict[str, str]:
        return await self.call("POST", "/_sim/accounts", {"balances": balances or RICH, **flags})

    async def set_price(self, symbol: str, price: str) -> dict[str, Any]:
        return await self.call("POST", "/_sim/prices", {"symbol": symbol, "price": price})

    async def orders(self, api_key: str) -> list[dict[str, Any]]:
        return await self.call("GET", f"/_sim/accounts/{api_key}/orders")

    async def trades(self, api_key: str) -> list[dict[str, Any]]:
        return await self.call("GET", f"/_sim/accounts/{api_key}/trades")

    async def balances(self, api_key: str) -> dict[str, dict[str, str]]:
        return await self.call("GET", f"/_sim/accounts/{api_key}/balances")

    async def signed(
        self,
        method: str,
        path: str,
        creds: dict[str, str],
        params: dict[str, Any],
        *,
        timestamp: int | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """A hand-signed Binance request (query for GET/DELETE, form body otherwise)."""
        query = urlencode({**params, "timestamp": timestamp or int(time.time() * 1000)})
        query += (
            "&signature="
            + hmac.new(creds["api_secret"].encode(), query.encode(), hashlib.sha256).hexdigest()
        )
        headers = {"X-MBX-APIKEY": creds["api_key"]}
        url = self.base_url + path
        if method in ("GET", "DELETE"):
            request = self.session.request(method, f"{url}?{query}", headers=headers)
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            request = self.session.request(method, url, data=query, headers=headers)
        async with request as response:
            return response.status, dict(response.headers), await response.json()


ExchangeFactory = Callable[..., Awaitable[Any]]


async def exchange_factory(base_url: str) -> AsyncIterator[ExchangeFactory]:
    """Yield a maker of ccxt binance clients pointed at ``base_url``; closes them afterwards."""
    made: list[Any] = []

    async def make(creds: dict[str, str], *, pro: bool = False, load: bool = True) -> Any:
        module = ccxt_pro if pro else ccxt_async
        exchange = module.binance(
            {
                "apiKey": creds["api_key"],
                "secret": creds["api_secret"],
                "enableRateLimit": False,
                "options": binance_options(),
            }
        )
        point_ccxt_at(exchange, base_url)
        made.append(exchange)
        if load:
            await exchange.load_markets()
        return exchange

    yield make
    for exchange in made:
        await exchange.close()
