"""The venues the broker trades on through ccxt, and how to connect to them; and a set of venues
ports as one (the ccxt venues beside the paper venue)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from broker_svc.adapters.binance import BinanceExchange
from broker_svc.adapters.binance_usdm import BinanceUsdmExchange
from broker_svc.adapters.ccxt import CcxtExchange
from broker_svc.adapters.coinbase import CoinbaseExchange
from broker_svc.adapters.kraken import KrakenExchange
from broker_svc.adapters.ratelimit import RateLimits
from broker_svc.domain.model import Credentials, Market, VenueProfile
from broker_svc.ports import ExchangePort, Venues

VENUE_CLASSES: dict[str, type[CcxtExchange]] = {
    "binance": BinanceExchange,
    "binanceusdm": BinanceUsdmExchange,
    "coinbase": CoinbaseExchange,
    "kraken": KrakenExchange,
}
"""The venues the broker trades on: one entry (and one small class) per venue."""


class CcxtVenues:
    """Connections to the supported venues through ccxt, with cached public markets.

    Parameters
    ----------
    venue_urls
        Where a venue's API lives, by venue name (``VENUE_URLS``); absent means the real venue.
    timeout_ms
        The ccxt timeout of each call.
    classes
        The venue classes by name (``VENUE_CLASSES`` by default).
    market_ttl_seconds
        How long the public markets of a venue are reused.
    rate_limits
        The process's one rate limiter, shared by every connection.
    """

    def __init__(
        self,
        venue_urls: Mapping[str, str] | None = None,
        *,
        timeout_ms: int = 10_000,
        classes: Mapping[str, type[CcxtExchange]] | None = None,
        market_ttl_seconds: float = 300.0,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self._urls = dict(venue_urls or {})
        self._timeout_ms = timeout_ms
        self._classes = dict(classes if classes is not None else VENUE_CLASSES)
        self._ttl = market_ttl_seconds
        self.rate_limits = rate_limits or RateLimits()
        self._public: dict[str, CcxtExchange] = {}
        self._public_read: dict[str, float] = {}
        self._public_lock = asyncio.Lock()
        for cls in self._classes.values():
            # Fail at startup when the pinned ccxt lacks something a venue needs.
            cls.check_capabilities(cls.ccxt_class()().has)

    def profiles(self) -> list[VenueProfile]:
        """Return every supported venue's profile."""
        return [cls.profile() for cls in self._classes.values()]

    def profile(self, venue: str) -> VenueProfile | None:
        """Return the profile of ``venue``, ``None`` when unsupported."""
        cls = self._classes.get(venue)
        return cls.profile() if cls else None

    def connect(self, venue: str, credentials: Credentials | None) -> CcxtExchange:
        """Open a client for ``venue`` with ``credentials``."""
        cls = self._classes[venue]
        return cls(
            credentials,
            base_url=self._urls.get(venue) or self._urls.get(cls.shares_url_with or ""),
            timeout_ms=self._timeout_ms,
            limits=self.rate_limits,
        )

    async def public_markets(self, venue: str) -> Mapping[str, Market]:
        """Return the markets of ``venue`` from a public client, refreshed after the TTL."""
        async with self._public_lock:
            exchange = self._public.get(venue)
            stale = time.monotonic() - self._public_read.get(venue, 0.0) > self._ttl
            if exchange is None or stale:
                if exchange is not None:
                    await exchange.close()
                exchange = self.connect(venue, None)
                self._public[venue] = exchange
                self._public_read[venue] = time.monotonic()
        return await exchange.load_markets()

    async def close(self) -> None:
        """Close the public clients."""
        for exchange in self._public.values():
            await exchange.close()
        self._public.clear()


class VenueSet:
    """Several venues ports as one: each venue name is served by the first part that has it.

    Parameters
    ----------
    parts
        The venues ports (``CcxtVenues``, ``PaperVenues``), in order of precedence.
    """

    def __init__(self, *parts: Venues) -> None:
        self._parts = parts

    def _part(self, venue: str) -> Venues:
        for part in self._parts:
            if part.profile(venue) is not None:
                return part
        raise KeyError(venue)

    def profiles(self) -> list[VenueProfile]:
        """Return every part's profiles, a name listed once."""
        found: dict[str, VenueProfile] = {}
        for part in self._parts:
            for profile in part.profiles():
                found.setdefault(profile.name, profile)
        return list(found.values())

    def profile(self, venue: str) -> VenueProfile | None:
        """Return the profile of ``venue``, ``None`` when no part has it."""
        for part in self._parts:
            profile = part.profile(venue)
            if profile is not None:
                return profile
        return None

    def connect(self, venue: str, credentials: Credentials | None) -> ExchangePort:
        """Open a connection to ``venue`` at the part that has it."""
        return self._part(venue).connect(venue, credentials)

    async def public_markets(self, venue: str) -> Mapping[str, Market]:
        """Return the markets of ``venue`` from the part that has it."""
        return await self._part(venue).public_markets(venue)

    async def close(self) -> None:
        """Close every part."""
        for part in self._parts:
            await part.close()
