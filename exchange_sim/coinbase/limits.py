"""Coinbase rate limits, answered the way Coinbase answers them: HTTP 429, no ban.

* Private (signed) requests: 300 a minute per API key.
* New orders (``POST /api/v3/brokerage/orders``): 3 a second per API key, on top of the above.
* Public requests: 10 a second per IP (Coinbase's documented public limit).

Over a limit the reply is HTTP 429 ``{"error": "rate_limit_exceeded", ...}`` (ccxt:
``RateLimitExceeded``; see ``errors.rate_limited``), without ``Retry-After`` (Coinbase documents
none) and without any ban: the next request that fits the window goes through. Windows slide
(stricter than fixed windows). Requests answered 429 do not count. Counting goes on while limits
are off; only enforcement stops; switching on or off resets the counters. ``ban_seconds`` from
the admin API is accepted and ignored (Coinbase does not ban).
"""

from __future__ import annotations

from exchange_sim.coinbase.errors import rate_limited
from exchange_sim.core.clock import Clock
from exchange_sim.core.ratelimit import KeyedWindows, WindowSpec

PRIVATE_1M = WindowSpec(60_000, 300, "1M")
ORDERS_1S = WindowSpec(1_000, 3, "1S")
PUBLIC_1S = WindowSpec(1_000, 10, "1S")


class CoinbaseRateLimiter:
    """The three windows of one emulated Coinbase."""

    def __init__(
        self,
        clock: Clock,
        *,
        enabled: bool,
        private: WindowSpec = PRIVATE_1M,
        orders: WindowSpec = ORDERS_1S,
        public: WindowSpec = PUBLIC_1S,
    ) -> None:
        self.clock = clock
        self.enabled = enabled
        self.private = KeyedWindows(private)
        self.orders = KeyedWindows(orders)
        self.public = KeyedWindows(public)

    def configure(self, *, enabled: bool | None = None, ban_seconds: int | None = None) -> None:
        """Switch enforcement (resetting the counters); ``ban_seconds`` has no effect here."""
        del ban_seconds
        if enabled is not None:
            self.enabled = enabled
            for window in (self.private, self.orders, self.public):
                window.reset()

    def status(self) -> dict[str, object]:
        """The configuration, for the admin API."""

        def spec(window: KeyedWindows) -> dict[str, object]:
            return {"limit": window.spec.limit, "interval": window.spec.label}

        return {
            "enabled": self.enabled,
            "bans": False,
            "private_per_key": spec(self.private),
            "orders_per_key": spec(self.orders),
            "public_per_ip": spec(self.public),
        }

    def _admit(self, key: str, *windows: KeyedWindows) -> None:
        now = self.clock.now_ms()
        if self.enabled and not all(w.fits(key, now, 1) for w in windows):
            raise rate_limited()
        for window in windows:
            window.spend(key, now, 1)

    def admit_public(self, ip: str) -> None:
        """Count a public request from ``ip`` or raise the 429."""
        self._admit(ip, self.public)

    def admit_private(self, api_key: str, *, new_order: bool = False) -> None:
        """Count a signed request of ``api_key`` (and a new order) or raise the 429."""
        self._admit(api_key, *((self.private, self.orders) if new_order else (self.private,)))
