"""Small HTTP clients for the REST gateway and the emulators' admin API (demo and tests)."""

from __future__ import annotations

from typing import Any

import aiohttp

BASE = "/api/institutional/copy-trading"


class ApiError(Exception):
    """The gateway answered with an error status."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class RestClient:
    """Call the gateway with a bearer token."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.token = token

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request to ``BASE + path``; return the JSON answer or raise ``ApiError``."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.session.request(
            method,
            f"{self.base_url}{BASE}{path}",
            json=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response:
            payload = await response.json(content_type=None)
            if response.status >= 400:
                raise ApiError(response.status, payload)
            return payload


class SimAdmin:
    """Drive an emulator through its ``/_sim/`` admin API."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(
            method, f"{self.base_url}/_sim/{path}", json=body
        ) as response:
            payload = await response.json(content_type=None)
            if response.status >= 400:
                raise ApiError(response.status, payload)
            return payload

    async def create_account(self, balances: dict[str, str], **permissions: bool) -> dict[str, str]:
        """Create an account with these balances; return its ``api_key`` and ``api_secret``."""
        return await self._call("POST", "accounts", {"balances": balances, **permissions})

    async def set_price(self, symbol: str, price: str) -> None:
        """Move a market's mark price (resting and stop orders may fill)."""
        await self._call("POST", "prices", {"symbol": symbol, "price": price})

    async def prices(self) -> dict[str, str]:
        """Return every market's mark price, by the venue's symbol."""
        return dict(await self._call("GET", "prices"))

    async def orders(self, api_key: str) -> list[dict[str, Any]]:
        """Return the venue's record of an account's orders."""
        result = await self._call("GET", f"accounts/{api_key}/orders")
        return result["orders"] if isinstance(result, dict) else result

    async def trades(self, api_key: str) -> list[dict[str, Any]]:
        """Return the venue's record of an account's trades."""
        result = await self._call("GET", f"accounts/{api_key}/trades")
        return result["trades"] if isinstance(result, dict) else result

    async def fund_futures(self, api_key: str, amount: str) -> None:
        """Credit an account's USDⓈ-M futures wallet (Binance emulator, ``/_sim/futures/``)."""
        await self._call("POST", f"futures/accounts/{api_key}/wallet", {"amount": amount})

    async def futures_positions(self, api_key: str) -> list[dict[str, Any]]:
        """Return the venue's record of an account's futures positions (flat ones included)."""
        return list(await self._call("GET", f"futures/accounts/{api_key}/positions"))

    async def balances(self, api_key: str) -> dict[str, dict[str, str]]:
        """Return the venue's record of an account's balances (``free`` and ``locked``)."""
        result: dict[str, dict[str, str]] = await self._call("GET", f"accounts/{api_key}/balances")
        return result

    async def hold_matching(self, held: bool, symbol: str | None = None) -> None:
        """Hold (or release) matching: new limit orders wait NEW, unmatched but cancellable."""
        body: dict[str, Any] = {"held": held}
        if symbol is not None:
            body["symbol"] = symbol
        await self._call("POST", "matching", body)
