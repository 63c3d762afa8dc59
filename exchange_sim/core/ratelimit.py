"""Rate-limit building blocks: sliding-window counters and an IP ban book.

Windows slide (the last N ms) rather than reset on the clock boundary: a client that never
breaks a sliding window never breaks the venue's fixed windows either, so passing against the
emulator is the stricter test.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class WindowSpec:
    """``limit`` units per ``interval_ms``; ``label`` names it in headers (``1M``, ``10S``)."""

    interval_ms: int
    limit: int
    label: str


class KeyedWindows:
    """Units spent per key (an IP, an account) in a sliding window."""

    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec
        self._events: dict[str, deque[tuple[int, int]]] = {}

    def _trimmed(self, key: str, now_ms: int) -> deque[tuple[int, int]]:
        events = self._events.setdefault(key, deque())
        horizon = now_ms - self.spec.interval_ms
        while events and events[0][0] <= horizon:
            events.popleft()
        return events

    def used(self, key: str, now_ms: int) -> int:
        """Units spent by ``key`` in the window ending now."""
        return sum(cost for _, cost in self._trimmed(key, now_ms))

    def fits(self, key: str, now_ms: int, cost: int) -> bool:
        """Whether spending ``cost`` more stays within the limit."""
        return self.used(key, now_ms) + cost <= self.spec.limit

    def spend(self, key: str, now_ms: int, cost: int) -> None:
        """Record ``cost`` units for ``key`` now."""
        if cost > 0:
            self._trimmed(key, now_ms).append((now_ms, cost))

    def wait_ms(self, key: str, now_ms: int, cost: int) -> int:
        """How long until ``cost`` more units would fit."""
        events = self._trimmed(key, now_ms)
        excess = sum(c for _, c in events) + cost - self.spec.limit
        for ts, c in events:
            if excess <= 0:
                break
            excess -= c
            if excess <= 0:
                return ts + self.spec.interval_ms - now_ms
        return 0 if excess <= 0 else self.spec.interval_ms

    def reset(self) -> None:
        """Forget everything."""
        self._events.clear()


class BanBook:
    """Per-IP back-off windows (after a 429) and bans (for not backing off)."""

    def __init__(self) -> None:
        self._backoff_until: dict[str, int] = {}
        self._banned_until: dict[str, int] = {}

    def banned_ms(self, ip: str, now_ms: int) -> int:
        """Milliseconds of ban left for ``ip`` (0 when not banned)."""
        return max(0, self._banned_until.get(ip, 0) - now_ms)

    def in_backoff(self, ip: str, now_ms: int) -> bool:
        """Whether ``ip`` was told to wait (Retry-After) and that wait is not over."""
        return self._backoff_until.get(ip, 0) > now_ms

    def back_off(self, ip: str, until_ms: int) -> None:
        """Record that ``ip`` was told to wait until ``until_ms``."""
        self._backoff_until[ip] = max(until_ms, self._backoff_until.get(ip, 0))

    def ban(self, ip: str, until_ms: int) -> None:
        """Ban ``ip`` until ``until_ms``."""
        self._banned_until[ip] = max(until_ms, self._banned_until.get(ip, 0))

    def reset(self) -> None:
        """Lift every ban and back-off."""
        self._backoff_until.clear()
        self._banned_until.clear()


class RateLimiter(Protocol):
    """What the admin API needs from a venue's limiter."""

    enabled: bool

    def configure(self, *, enabled: bool | None = None, ban_seconds: int | None = None) -> None:
        """Switch limits on or off (which also resets counters and bans), change the ban length."""
        ...

    def status(self) -> dict[str, object]:
        """A JSON-able description of the limits."""
        ...
