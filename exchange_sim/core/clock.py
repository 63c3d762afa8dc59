"""Clocks in integer milliseconds: the wall clock by default, a manual one for tests."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the time in integer milliseconds since the Unix epoch."""

    def now_ms(self) -> int:
        """Return the current time in milliseconds."""
        ...


class WallClock:
    """The system clock."""

    def now_ms(self) -> int:
        """Return the wall-clock time in milliseconds."""
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that only moves when told to (deterministic tests)."""

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        """Return the current manual time."""
        return self._now

    def advance(self, ms: int) -> None:
        """Move the clock forward by ``ms`` milliseconds."""
        if ms < 0:
            raise ValueError("a clock never goes backwards")
        self._now += ms

    def set(self, now_ms: int) -> None:
        """Jump to ``now_ms`` (must not be in the past)."""
        self.advance(now_ms - self._now)
