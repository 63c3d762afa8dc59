"""Faults on a venue's private WebSocket streams, the ways real streams lose events.

Exchange streams drop messages while they look healthy, close on expiry, and reconnect without
replaying what was missed (docs/reliability.md §1.4). A venue's stream code asks
``drop_event()`` before pushing an account event and registers its sockets' closer, so tests can:

* drop a fraction of account events silently while pings and heartbeats continue;
* close every socket at once (a dropped connection, or a subscription that expired).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Closer = Callable[[str], Awaitable[int]]


@dataclass
class StreamFaults:
    """The stream faults in force on one venue."""

    drop_fraction: float = 0.0
    dropped: int = 0
    _random: random.Random = field(default_factory=random.Random)
    _closers: list[Closer] = field(default_factory=list)

    def configure(self, drop_fraction: float, seed: int | None = None) -> None:
        """Drop this fraction (0 to 1) of account events from now on, seeded for replay."""
        if not 0.0 <= drop_fraction <= 1.0:
            raise ValueError("drop_fraction: must be between 0 and 1")
        self.drop_fraction = drop_fraction
        self.dropped = 0
        self._random = random.Random(seed)

    def drop_event(self) -> bool:
        """Return whether the next account event is to be lost."""
        if self.drop_fraction and self._random.random() < self.drop_fraction:
            self.dropped += 1
            return True
        return False

    def register_closer(self, closer: Closer) -> None:
        """Register how a stream server closes all its sockets (returns how many it closed)."""
        self._closers.append(closer)

    async def close_all(self, reason: str) -> int:
        """Close every private stream socket of the venue; return how many were closed."""
        closed = 0
        for closer in self._closers:
            closed += await closer(reason)
        return closed

    def status(self) -> dict[str, float | int]:
        """What is in force and what it did."""
        return {"drop_fraction": self.drop_fraction, "dropped": self.dropped}
