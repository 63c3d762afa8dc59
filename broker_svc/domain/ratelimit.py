"""Venue request budgets as sliding windows, and when the next request may go (pure).

A venue counts requests in windows that slide (the emulators) or reset on the clock (the real
venues); a client that never puts more than ``limit`` units in ANY span of ``interval`` seconds
breaks neither. :class:`SlidingWindow` keeps the send times of one budget, including future
ones already promised to waiting callers, and answers the earliest time a request of some cost
fits. Requests are scheduled in order per budget (never before the last one promised), which
keeps the answer exact and the queue fair. Times are plain seconds from any monotonic origin;
nothing here sleeps or reads a clock.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

VENUE_SCOPE = "venue"
"""A budget shared by every account the broker holds at a venue (the venue counts per IP)."""
ACCOUNT_SCOPE = "account"
"""A budget of one API key."""
_EPSILON = 1e-6
"""A microsecond past the end of a span: float sums must not put an event back inside it."""


@dataclass(frozen=True)
class Budget:
    """One request budget of a venue: at most ``limit`` units per ``interval_seconds``."""

    name: str
    limit: int
    interval_seconds: float
    scope: str = ACCOUNT_SCOPE


def replica_share(limit: int, replicas: int) -> int:
    """Return one broker replica's part of a venue limit that ``replicas`` replicas share.

    The venue counts every replica's requests against one limit (an API key's, or an IP's
    when the replicas leave through one address), so each replica spends at most
    ``limit // replicas`` units: together they never exceed it. At least 1 unit, so a replica
    can always send (only a limit below the number of replicas could then be exceeded).
    """
    return max(1, limit // max(1, replicas))


@dataclass(frozen=True)
class ChargeRule:
    """What one request costs from one budget.

    ``api`` matches one element of ccxt's API path (``"private"``, ``"v3"``, ``"sapi"``),
    ``method`` the HTTP method and ``path`` ccxt's endpoint path; ``"*"`` matches anything.
    ``cost`` ``None`` charges ccxt's own cost of the endpoint times the venue's scale, rounded up
    (at least 1): ccxt's per-endpoint weights are kept. The first matching rule of a budget wins.
    """

    budget: str
    api: str = "*"
    method: str = "*"
    path: str = "*"
    cost: int | None = 1

    def matches(self, api: Sequence[str], method: str, path: str) -> bool:
        """Return whether a request to ``api``/``method``/``path`` falls under this rule."""
        return (
            (self.api == "*" or self.api in api)
            and (self.method == "*" or self.method == method.upper())
            and (self.path == "*" or self.path == path)
        )


def request_charges(
    rules: Iterable[ChargeRule],
    api: str | Sequence[str],
    method: str,
    path: str,
    ccxt_cost: float,
    scale: float = 1.0,
) -> dict[str, int]:
    """Return the units a request spends from each budget (budgets it does not touch left out)."""
    parts = (api,) if isinstance(api, str) else tuple(api)
    charges: dict[str, int] = {}
    decided: set[str] = set()
    for rule in rules:
        if rule.budget in decided or not rule.matches(parts, method, path):
            continue
        decided.add(rule.budget)
        cost = rule.cost
        if cost is None:
            cost = max(1, math.ceil(round(float(ccxt_cost) * scale, 6)))
        if cost > 0:
            charges[rule.budget] = cost
    return charges


class SlidingWindow:
    """The send times of one budget, past and promised.

    Parameters
    ----------
    limit
        Units allowed in any span of ``interval`` seconds.
    interval
        The span, in seconds, already widened by any safety margin the caller wants.
    """

    def __init__(self, limit: int, interval: float) -> None:
        self.limit = limit
        self.interval = interval
        self._events: deque[tuple[float, int, int]] = deque()  # (time, cost, token)
        self._tokens = itertools.count(1)

    @property
    def last(self) -> float:
        """Return the time of the latest event, past or promised (``-inf`` when none)."""
        return self._events[-1][0] if self._events else -math.inf

    def used(self, at: float) -> int:
        """Return the units spent in the span ending at ``at`` (inclusive)."""
        horizon = at - self.interval
        return sum(cost for time, cost, _ in self._events if horizon < time <= at)

    def earliest(self, cost: int, not_before: float) -> float:
        """Return the earliest time at or after ``not_before`` (and the last event) that fits.

        A cost above the limit is treated as the whole limit: it goes alone in its span.
        """
        start = max(not_before, self.last)
        cost = min(cost, self.limit)
        horizon = start - self.interval
        inside = [(time, spent) for time, spent, _ in self._events if time > horizon]
        excess = sum(spent for _, spent in inside) + cost - self.limit
        if excess <= 0:
            return start
        for time, spent in inside:
            excess -= spent
            if excess <= 0:
                return time + self.interval + _EPSILON
        return start  # unreachable: the costs inside cover any excess

    def add(self, time: float, cost: int) -> int:
        """Record ``cost`` units at ``time`` (not before the last event) and return its token."""
        token = next(self._tokens)
        self._events.append((max(time, self.last), cost, token))
        return token

    def remove(self, token: int) -> None:
        """Forget an event (a promised request that was never sent)."""
        for index, (_, _, held) in enumerate(self._events):
            if held == token:
                del self._events[index]
                return

    def prune(self, now: float) -> None:
        """Drop the events that can no longer count at ``now`` or later."""
        horizon = now - self.interval
        while self._events and self._events[0][0] <= horizon:
            self._events.popleft()


def schedule(
    charges: Mapping[SlidingWindow, int],
    now: float,
    paused_until: float = -math.inf,
) -> float:
    """Return the earliest time at or after ``now`` and any pause when every charge fits.

    One pass suffices: every event of every window is at or before the start, so a window that
    fits at some time fits at every later time.
    """
    start = max(now, paused_until, *(window.last for window in charges), -math.inf)
    return max([start, *(window.earliest(cost, start) for window, cost in charges.items())])
