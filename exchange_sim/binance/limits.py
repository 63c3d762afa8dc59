"""Binance rate limits: request weight per IP, new orders per account, 429 then 418 bans.

* Request weight: 1,200 per minute per IP (``X-MBX-USED-WEIGHT-1M`` on every response).
  Over it: HTTP 429 ``-1003`` with ``Retry-After``.
* New orders: 10 per second (and 100 per 10 s) per account (``X-MBX-ORDER-COUNT-1S`` and
  ``-10S`` on every response to a request with a known API key). Over it: HTTP 429 ``-1015``.
  Real Binance documents that -1015 may come without ``Retry-After``; the emulator always sends
  one, so clients must not rely on it being absent or present.
* A request from an IP that is still inside a ``Retry-After`` wait gets HTTP 418 ``-1003`` and
  bans the IP for ``ban_seconds`` (Binance: 2 minutes to 3 days); during the ban every request
  gets 418 with the time left in ``Retry-After``.
* Requests answered 418/429 do not count. Counting goes on while limits are switched off (the
  headers stay truthful); only enforcement stops. Switching on or off resets counters and bans.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from exchange_sim.binance.errors import BinanceError
from exchange_sim.core.clock import Clock
from exchange_sim.core.ratelimit import BanBook, KeyedWindows, WindowSpec

WEIGHT_1M = WindowSpec(60_000, 1200, "1M")
ORDERS_1S = WindowSpec(1_000, 10, "1S")
ORDERS_10S = WindowSpec(10_000, 100, "10S")
DEFAULT_BAN_SECONDS = 120

_INTERVAL_WORDS = {"S": "SECOND", "M": "MINUTE", "H": "HOUR", "D": "DAY"}


def _per(spec: WindowSpec) -> str:
    num, letter = spec.label[:-1], _INTERVAL_WORDS[spec.label[-1]]
    return letter if num == "1" else f"{num} {letter}S"


def _seconds(ms: int) -> int:
    return max(1, math.ceil(ms / 1000))


class BinanceRateLimiter:
    """Weight and order-count limits of one emulated Binance."""

    def __init__(
        self,
        clock: Clock,
        *,
        enabled: bool,
        weight: WindowSpec = WEIGHT_1M,
        orders: tuple[WindowSpec, ...] = (ORDERS_1S, ORDERS_10S),
        ban_seconds: int = DEFAULT_BAN_SECONDS,
    ) -> None:
        self.clock = clock
        self.enabled = enabled
        self.ban_seconds = ban_seconds
        self.weight = KeyedWindows(weight)
        self.orders = tuple(KeyedWindows(spec) for spec in orders)
        self.bans = BanBook()

    # -- admin

    def configure(self, *, enabled: bool | None = None, ban_seconds: int | None = None) -> None:
        """Switch enforcement (resetting all counters and bans) and/or change the ban length."""
        if ban_seconds is not None:
            self.ban_seconds = ban_seconds
        if enabled is not None:
            self.enabled = enabled
            self.weight.reset()
            for window in self.orders:
                window.reset()
            self.bans.reset()

    def status(self) -> dict[str, object]:
        """The configuration, for the admin API."""
        return {
            "enabled": self.enabled,
            "ban_seconds": self.ban_seconds,
            "weight": {"limit": self.weight.spec.limit, "interval": self.weight.spec.label},
            "orders": [{"limit": w.spec.limit, "interval": w.spec.label} for w in self.orders],
        }

    # -- enforcement

    def admit(self, ip: str, weight: int) -> None:
        """Charge a request's weight to ``ip``, or raise the 418/429 reply."""
        now = self.clock.now_ms()
        if self.enabled:
            banned = self.bans.banned_ms(ip, now)
            if banned == 0 and self.bans.in_backoff(ip, now):
                banned = self.ban_seconds * 1000
                self.bans.ban(ip, now + banned)
            if banned:
                raise self._banned(now + banned, banned)
            if not self.weight.fits(ip, now, weight):
                wait = self.weight.wait_ms(ip, now, weight)
                self.bans.back_off(ip, now + wait)
                spec = self.weight.spec
                raise BinanceError(
                    429,
                    -1003,
                    f"Too much request weight used; current limit is {spec.limit} "
                    f"request weight per {_per(spec)}. Please use WebSocket Streams for live "
                    "updates to avoid polling the API.",
                    retry_after_s=_seconds(wait),
                )
        self.weight.spend(ip, now, weight)

    def admit_order(self, ip: str, account_key: str) -> None:
        """Count a new order against the account, or raise the 429 ``-1015`` reply."""
        now = self.clock.now_ms()
        if self.enabled:
            for window in self.orders:
                if not window.fits(account_key, now, 1):
                    wait = window.wait_ms(account_key, now, 1)
                    self.bans.back_off(ip, now + wait)
                    raise BinanceError(
                        429,
                        -1015,
                        f"Too many new orders; current limit is {window.spec.limit} "
                        f"orders per {_per(window.spec)}.",
                        retry_after_s=_seconds(wait),
                    )
        for window in self.orders:
            window.spend(account_key, now, 1)

    def headers(self, ip: str, account_key: str | None) -> Mapping[str, str]:
        """The usage headers for a response."""
        now = self.clock.now_ms()
        headers = {f"X-MBX-USED-WEIGHT-{self.weight.spec.label}": str(self.weight.used(ip, now))}
        if account_key is not None:
            for window in self.orders:
                headers[f"X-MBX-ORDER-COUNT-{window.spec.label}"] = str(
                    window.used(account_key, now)
                )
        return headers

    @staticmethod
    def _banned(until_ms: int, left_ms: int) -> BinanceError:
        return BinanceError(
            418,
            -1003,
            f"Way too much request weight used; IP banned until {until_ms}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            retry_after_s=_seconds(left_ms),
        )


def request_weight(method: str, path: str, query: Mapping[str, str]) -> int:
    """The weight Binance charges for a request (docs: order endpoints 1, account 20...)."""
    has_symbol = "symbol" in query or "symbols" in query
    if path == "/api/v3/depth":
        limit = int(query["limit"]) if query.get("limit", "").isdigit() else 100
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    if path == "/api/v3/openOrders" and method == "GET":
        return 6 if has_symbol else 80
    if path == "/api/v3/ticker/24hr":
        return 2 if has_symbol else 80
    if path == "/api/v3/ticker/price":
        return 2 if has_symbol else 4
    if path == "/fapi/v1/openOrders" and method == "GET":
        return 1 if has_symbol else 40
    return _WEIGHTS.get(path, 1)


_WEIGHTS = {
    "/api/v3/exchangeInfo": 20,
    "/api/v3/account": 20,
    "/api/v3/myTrades": 20,
    "/api/v3/allOrders": 20,
    "/api/v3/klines": 2,
    "/ws-api/v3": 2,
    "/sapi/v1/capital/config/getall": 10,
    "/sapi/v1/margin/isolated/allPairs": 10,
    # USDⓈ-M futures (Binance's documented weights)
    "/fapi/v1/allOrders": 5,
    "/fapi/v1/userTrades": 5,
    "/fapi/v2/account": 5,
    "/fapi/v3/account": 5,
    "/fapi/v2/balance": 5,
    "/fapi/v3/balance": 5,
    "/fapi/v2/positionRisk": 5,
    "/fapi/v3/positionRisk": 5,
    "/fapi/v1/income": 30,
    "/fapi/v1/allAlgoOrders": 5,
}
