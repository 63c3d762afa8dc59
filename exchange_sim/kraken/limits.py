"""Kraken rate limits, answered the way Kraken answers them (HTTP 200 with an ``error`` string).

Real Kraken meters private REST calls with a decaying per-key counter (15-20 points, -0.33 to
-1 per second, some calls cost 2) and orders with a per-pair trading counter. The emulator uses
a simpler, fixed model in sliding windows:

* 60 requests per minute per API key for private calls, per IP for public ones. Over it:
  ``EAPI:Rate limit exceeded``. ``AddOrder`` and ``CancelOrder`` do not count here (on Kraken
  they are metered by the trading counter instead; ccxt gives them cost 0).
* 1 ``AddOrder`` per second per API key. Over it: ``EOrder:Rate limit exceeded``.
* Kraken says calls made while limited keep the limit on longer. The emulator: a REST call made
  while its caller still has to wait after ``EAPI:Rate limit exceeded`` locks the caller out for
  ``ban_seconds`` (default 60) with ``EGeneral:Temporary lockout`` (orders included). [U]
* Rejected calls do not count. Counting stops while limits are off; switching resets everything.
"""

from __future__ import annotations

from exchange_sim.core.clock import Clock
from exchange_sim.core.ratelimit import BanBook, KeyedWindows, WindowSpec
from exchange_sim.kraken.errors import LOCKOUT, ORDER_RATE_LIMIT, RATE_LIMIT, KrakenError

REQUESTS_1M = WindowSpec(60_000, 60, "1M")
ORDERS_1S = WindowSpec(1_000, 1, "1S")
DEFAULT_LOCKOUT_SECONDS = 60


class KrakenRateLimiter:
    """Request and order limits of one emulated Kraken."""

    def __init__(
        self,
        clock: Clock,
        *,
        enabled: bool,
        requests: WindowSpec = REQUESTS_1M,
        orders: WindowSpec = ORDERS_1S,
        ban_seconds: int = DEFAULT_LOCKOUT_SECONDS,
    ) -> None:
        self.clock = clock
        self.enabled = enabled
        self.ban_seconds = ban_seconds
        self.requests = KeyedWindows(requests)
        self.orders = KeyedWindows(orders)
        self.bans = BanBook()

    def configure(self, *, enabled: bool | None = None, ban_seconds: int | None = None) -> None:
        """Switch enforcement (resetting counters and lockouts) and/or change the lockout length."""
        if ban_seconds is not None:
            self.ban_seconds = ban_seconds
        if enabled is not None:
            self.enabled = enabled
            self.requests.reset()
            self.orders.reset()
            self.bans.reset()

    def status(self) -> dict[str, object]:
        """The configuration, for the admin API."""
        return {
            "enabled": self.enabled,
            "ban_seconds": self.ban_seconds,
            "requests": {
                "limit": self.requests.spec.limit,
                "interval": self.requests.spec.label,
                "per": "api key (private), ip (public)",
            },
            "orders": {
                "limit": self.orders.spec.limit,
                "interval": self.orders.spec.label,
                "per": "api key",
            },
        }

    def admit_request(self, caller: str) -> None:
        """Count one REST call of ``caller`` (``key:<api key>``, ``ip:<address>``) or refuse it."""
        if not self.enabled:
            return
        now = self.clock.now_ms()
        self._check_lockout(caller, now, escalate=True)
        if not self.requests.fits(caller, now, 1):
            self.bans.back_off(caller, now + self.requests.wait_ms(caller, now, 1))
            raise KrakenError(RATE_LIMIT)
        self.requests.spend(caller, now, 1)

    def admit_order(self, caller: str) -> None:
        """Count one ``AddOrder`` of ``caller``, or refuse it."""
        if not self.enabled:
            return
        now = self.clock.now_ms()
        self._check_lockout(caller, now, escalate=False)
        if not self.orders.fits(caller, now, 1):
            raise KrakenError(ORDER_RATE_LIMIT)
        self.orders.spend(caller, now, 1)

    def _check_lockout(self, caller: str, now: int, *, escalate: bool) -> None:
        if self.bans.banned_ms(caller, now):
            raise KrakenError(LOCKOUT)
        if escalate and self.bans.in_backoff(caller, now):
            self.bans.ban(caller, now + self.ban_seconds * 1000)
            raise KrakenError(LOCKOUT)
