"""The broker's one rate limiter: a budget per account and per venue, and venue pauses.

Every request the broker makes to a venue for an account first takes its units from that
account's budgets and from the venue-wide budgets (the venue counts those per IP, so every
account of this process shares them). A request waits when its turn is near, and is refused
with ``ResourceExhausted`` (and the wait in ``retry_after``) when it is not: a caller is never
held longer than ``max_wait``. A ``Retry-After`` from the venue pauses the scope it names
(venue or account): nothing is sent there until it passes.

One :class:`RateLimits` per process; :meth:`RateLimits.account` hands out the limiter of one API
key, shared by every connection that uses the key (the test of a key and the account's own
connection included), with the lock and nonce Kraken needs to sign its requests one at a time.

Several broker replicas share each venue's limits: :meth:`RateLimits.set_replicas` gives this
process its part, every budget's limit divided by the number of live replicas
(:func:`~broker_svc.domain.ratelimit.replica_share`), so the replicas together never exceed
the venue's limit. The broker's membership loop calls it after every round.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from broker_svc import metrics
from broker_svc.domain.ratelimit import (
    ACCOUNT_SCOPE,
    VENUE_SCOPE,
    Budget,
    SlidingWindow,
    replica_share,
    schedule,
)
from meshkit import errors

DEFAULT_GUARD_SECONDS = 0.05
"""Added to every interval: the venue stamps a request when it arrives, a little after us."""
DEFAULT_MAX_WAIT_SECONDS = 2.0


@dataclass
class _Scope:
    windows: dict[str, list[SlidingWindow]] = field(default_factory=dict)
    paused_until: float = -math.inf
    # Each window's budget limit at the venue, before this replica's share was taken.
    venue_limits: dict[SlidingWindow, int] = field(default_factory=dict)

    def share(self, replicas: int) -> None:
        for window, limit in self.venue_limits.items():
            window.limit = replica_share(limit, replicas)


class VenueLimits:
    """The venue-wide budgets of one venue and its pause."""

    def __init__(
        self,
        venue: str,
        budgets: Sequence[Budget],
        guard: float,
        replicas: int = 1,
    ) -> None:
        self.venue = venue
        self.budgets = tuple(budgets)
        self.guard = guard
        self.replicas = replicas
        self.scope = _windows(budgets, VENUE_SCOPE, guard, replicas)
        self.accounts: dict[str, AccountLimiter] = {}


def _windows(budgets: Sequence[Budget], scope: str, guard: float, replicas: int) -> _Scope:
    held = _Scope()
    for budget in budgets:
        if budget.scope == scope:
            window = SlidingWindow(
                replica_share(budget.limit, replicas), budget.interval_seconds + guard
            )
            held.windows.setdefault(budget.name, []).append(window)
            held.venue_limits[window] = budget.limit
    return held


class AccountLimiter:
    """The budgets of one API key at one venue, with the venue's shared ones behind it.

    Parameters
    ----------
    venue
        The venue-wide limits this account shares.
    enabled
        ``False`` skips the budgets (``BROKER_RATE_LIMITS=off``); venue pauses still hold.
    max_wait
        The longest a request waits for its turn before it is refused.
    """

    def __init__(
        self,
        venue: VenueLimits,
        *,
        enabled: bool = True,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.venue = venue
        self.enabled = enabled
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self.scope = _windows(venue.budgets, ACCOUNT_SCOPE, venue.guard, venue.replicas)
        self.serial = asyncio.Lock()
        self._last_nonce = 0
        self.waited_seconds = 0.0

    def next_nonce(self) -> int:
        """Return a millisecond nonce strictly above every earlier one of this key."""
        self._last_nonce = max(int(time.time() * 1000), self._last_nonce + 1)
        return self._last_nonce

    def paused_for(self) -> float:
        """Return the seconds left of a venue pause on this account (0 when none)."""
        until = max(self.scope.paused_until, self.venue.scope.paused_until)
        return max(0.0, until - self._clock())

    def pause(self, seconds: float, scope: str) -> None:
        """Send nothing to ``scope`` (``venue`` or ``account``) for ``seconds``."""
        held = self.venue.scope if scope == VENUE_SCOPE else self.scope
        held.paused_until = max(held.paused_until, self._clock() + max(seconds, 0.0))

    def _charged(self, charges: Mapping[str, int]) -> dict[SlidingWindow, int]:
        charged: dict[SlidingWindow, int] = {}
        if not self.enabled:
            return charged
        for name, cost in charges.items():
            for held in (self.scope, self.venue.scope):
                for window in held.windows.get(name, ()):
                    charged[window] = cost
        return charged

    @contextlib.asynccontextmanager
    async def turn(
        self,
        charges: Mapping[str, int],
        max_wait: float | None = None,
    ) -> AsyncIterator[None]:
        """Wait for the turn of a request costing ``charges`` and hold it while it is sent.

        Raises ``ResourceExhausted`` (with the wait as ``retry_after``) when the turn is
        further away than ``max_wait`` or a venue pause lasts longer; nothing is spent then.
        """
        limit = self.max_wait if max_wait is None else max_wait
        deadline = self._clock() + limit
        while True:
            now = self._clock()
            charged = self._charged(charges)
            paused_until = max(self.scope.paused_until, self.venue.scope.paused_until)
            for window in charged:
                window.prune(now)
            at = schedule(charged, now, paused_until)
            if at > deadline:
                metrics.RATE_LIMIT_REFUSED.labels(self.venue.venue).inc()
                raise errors.ResourceExhausted(
                    f"the venue's rate limit for this account is used up; retry in"
                    f" {math.ceil(at - now)} s",
                    retry_after=at - now,
                    reason="RATE_LIMITED",
                    metadata={"venue": self.venue.venue},
                )
            tokens = [(window, window.add(at, cost)) for window, cost in charged.items()]
            try:
                if at > now:
                    self.waited_seconds += at - now
                    metrics.RATE_LIMIT_WAIT.labels(self.venue.venue).inc(at - now)
                    await self._sleep(at - now)
            except BaseException:
                for window, token in tokens:
                    window.remove(token)
                raise
            if max(self.scope.paused_until, self.venue.scope.paused_until) > self._clock():
                # A pause arrived while this request waited: give its turn back and look again.
                for window, token in tokens:
                    window.remove(token)
                continue
            break
        yield


class RateLimits:
    """Every venue's and account's limiter of one broker process.

    Parameters
    ----------
    enabled
        ``False`` turns the budgets off (``BROKER_RATE_LIMITS=off``).
    max_wait
        The longest a request waits for its turn.
    guard
        Seconds added to every interval.
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
        guard: float = DEFAULT_GUARD_SECONDS,
    ) -> None:
        self.enabled = enabled
        self.max_wait = max_wait
        self.guard = guard
        self.replicas = 1
        self._venues: dict[str, VenueLimits] = {}

    def set_replicas(self, replicas: int) -> None:
        """Share every venue limit with ``replicas`` live broker replicas (this one included).

        Every budget, per account and per venue, allows this process ``limit // replicas``
        units (at least 1) from now on; requests already promised keep their turn.
        """
        replicas = max(1, replicas)
        if replicas == self.replicas:
            return
        self.replicas = replicas
        for limits in self._venues.values():
            limits.replicas = replicas
            limits.scope.share(replicas)
            for limiter in limits.accounts.values():
                limiter.scope.share(replicas)

    def account(self, venue: str, budgets: Sequence[Budget], api_key: str | None) -> AccountLimiter:
        """Return the limiter of ``api_key`` at ``venue`` (public requests share one)."""
        limits = self._venues.get(venue)
        if limits is None:
            limits = VenueLimits(venue, budgets, self.guard, self.replicas)
            self._venues[venue] = limits
        key = "public" if not api_key else hashlib.sha256(api_key.encode()).hexdigest()[:24]
        limiter = limits.accounts.get(key)
        if limiter is None:
            limiter = AccountLimiter(limits, enabled=self.enabled, max_wait=self.max_wait)
            limits.accounts[key] = limiter
        return limiter
