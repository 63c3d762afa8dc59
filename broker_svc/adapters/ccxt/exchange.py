"""The live exchange port: one ``ccxt.pro`` client per account, for REST and WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from broker_svc import metrics
from broker_svc.adapters.ccxt.capabilities import VenueCapabilities
from broker_svc.adapters.ccxt.rest import CcxtRest
from broker_svc.adapters.ccxt.streams import CcxtStreams
from broker_svc.adapters.ratelimit import RateLimits
from broker_svc.domain.model import Credentials, RateLimit, VenueProfile


class CcxtExchange(CcxtRest, CcxtStreams):
    """One account at one venue through one ``ccxt.pro`` client (REST and WebSocket).

    Subclasses name the venue and its data in ``capabilities``; the base class reads only that
    data, plus a few small hooks a subclass may override where a venue differs in behaviour, not
    in data. Every HTTP request the client makes goes through the account's rate limiter first
    (ccxt's own throttle is off; ccxt's per-endpoint costs are kept as the charges).

    Parameters
    ----------
    credentials
        The account's keys, or ``None`` for a public client (markets and tickers only).
    base_url
        Where the venue's API lives (an emulator); ``None`` means the real venue.
    timeout_ms
        The ccxt timeout of each call.
    client
        A ready client, for tests; by default one is built from ``capabilities``.
    limits
        The process's rate limiter; by default one private to this connection.
    """

    capabilities: ClassVar[VenueCapabilities] = VenueCapabilities(ccxt_id="")
    shares_url_with: ClassVar[str | None] = None
    """Another venue whose ``VENUE_URLS`` entry serves this one too when it has none of its own
    (Binance USDⓈ-M and spot on one emulator port)."""

    def __init__(
        self,
        credentials: Credentials | None,
        *,
        base_url: str | None = None,
        timeout_ms: int = 10_000,
        client: Any | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        self.venue = self.capabilities.ccxt_id
        limits = limits or RateLimits()
        self.limiter = limits.account(
            self.venue,
            self.budgets(),
            credentials.api_key if credentials else None,
        )
        built = client is None
        if client is None:
            client = self._build_client(credentials, base_url, timeout_ms)
        self._client = client
        if built:
            self._install_rest_hooks(client)
            self._install_stream_hooks(client)
        self._markets = None
        self._markets_loading = None
        self._closed = False
        self._pumps = {}
        self._stream_ready = asyncio.Event()
        self._last_sequence = None
        self.check_capabilities(self._client.has)
        metrics.BROKER_CONNECTIONS.labels(self.venue).inc()

    @classmethod
    def profile(cls) -> VenueProfile:
        """Return what the broker can do at this venue, from the capability data."""
        has = cls.capabilities
        return VenueProfile(
            name=has.ccxt_id,
            order_support=tuple(has.order_support),
            features=tuple(has.features),
            rate_limits=tuple(
                RateLimit(b.name, b.limit, int(b.interval_seconds)) for b in cls.budgets()
            ),
            main_quote=has.main_quote,
            symbol_required_for_lookup=has.symbol_required_for_lookup,
            resend_safe_after_seconds=float(has.resend_safe_after_seconds),
        )

    @classmethod
    def check_capabilities(cls, has: Mapping[str, Any]) -> None:
        """Fail when the ccxt ``has`` table lacks a method the broker needs at this venue."""
        missing = [name for name in cls.capabilities.required_ccxt_has if not has.get(name)]
        if missing:
            raise RuntimeError(f"ccxt {cls.capabilities.ccxt_id} lacks {', '.join(missing)}")

    async def close(self) -> None:
        """Stop the streams and close the ccxt client's HTTP session and sockets."""
        if not self._closed:
            self._closed = True
            for pump in list(self._pumps.values()):
                pump.task.cancel()
                pump.publish("end", None)
            self._pumps.clear()
            metrics.BROKER_CONNECTIONS.labels(self.venue).dec()
            await self._client.close()
