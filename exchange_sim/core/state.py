"""Everything one emulated venue holds: its engine, fault rules, limiter and credential maker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from exchange_sim.core.clock import Clock
from exchange_sim.core.engine import FeeSchedule, MatchingEngine
from exchange_sim.core.faults import FaultRegistry
from exchange_sim.core.markets import Market
from exchange_sim.core.ratelimit import RateLimiter
from exchange_sim.core.streams import StreamFaults

__all__ = ["FeeSchedule", "VenueState"]


@dataclass
class VenueState:
    """The state behind one venue's HTTP app (shared by its REST, WebSocket and admin routes)."""

    name: str
    engine: MatchingEngine
    limiter: RateLimiter
    new_credentials: Callable[[], tuple[str, str]]
    faults: FaultRegistry = field(default_factory=FaultRegistry)
    streams: StreamFaults = field(default_factory=StreamFaults)

    @property
    def clock(self) -> Clock:
        """The venue's clock."""
        return self.engine.clock

    def market_by_name(self, name: str) -> Market | None:
        """A market by unified symbol (``BTC/USDT``) or by its concatenated id (``BTCUSDT``)."""
        market = self.engine.markets.get(name)
        if market is not None:
            return market
        for candidate in self.engine.markets.values():
            if candidate.base + candidate.quote == name.upper():
                return candidate
        return None
