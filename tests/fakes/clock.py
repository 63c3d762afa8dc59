"""The tests' clocks: a wall clock (aware UTC datetimes) and a monotonic timer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("a FakeClock tells aware UTC times: give it one")
    return when.astimezone(UTC)


class FakeClock:
    """A ``meshkit.clock.Clock`` a test controls.

    ``FakeClock()`` stands still at 2026-01-01 00:00 UTC (``FakeClock(start)`` at ``start``) and
    moves only by :meth:`advance` or :meth:`set`. ``FakeClock.real_time()`` follows the system
    clock, for services whose collaborators stamp real times; :meth:`advance` then shifts it
    forward and :meth:`set` pins it until ``set(None)`` lets it follow the system clock again.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._pinned: datetime | None = _aware(start or DEFAULT_START)
        self._offset = timedelta(0)

    @classmethod
    def real_time(cls) -> FakeClock:
        """A clock that follows the system clock until pinned."""
        clock = cls()
        clock._pinned = None
        return clock

    def now(self) -> datetime:
        """Return the current time as an aware UTC datetime."""
        if self._pinned is not None:
            return self._pinned
        return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        step = timedelta(seconds=seconds)
        if self._pinned is not None:
            self._pinned += step
        else:
            self._offset += step

    def set(self, when: datetime | None) -> None:
        """Pin the clock at ``when``; ``None`` lets it follow the system clock (plus advances)."""
        self._pinned = None if when is None else _aware(when)


class FakeMonotonic:
    """A monotonic timer in float seconds that moves only when told to, or when slept on.

    Callable (``time.monotonic``'s shape) and with a ``clock()`` method, for the limiters that
    take either; ``sleep`` records how long it was asked to wait and moves the time that far.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def clock(self) -> float:
        """Return the current time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move forward."""
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the wait and move forward by it, without waiting."""
        self.slept.append(seconds)
        self.now += seconds
