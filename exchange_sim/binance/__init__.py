"""A wire-compatible emulator of Binance spot (REST, WebSocket API user data stream, admin API).

Unmodified ccxt 4.5.90 (sync, async_support and pro) works against it with only
``exchange.urls`` overridden (see ``exchange_sim.ccxt_urls``). Behaviour choices where Binance's
documentation is silent or unverified are written where they are implemented:
``exchange_sim.core.engine`` (matching, locking, client order ids), ``binance.limits``
(rate limits), ``binance.rest`` (history paging).

Trading permission: an account created with ``can_trade: false`` is answered the way Binance
answers a key without "Enable Spot & Margin Trading": HTTP 401
``{"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}`` on placing or
cancelling orders (reads keep working). ccxt raises ``AuthenticationError`` for it, or
``DDoSProtection`` if that client already made a successful private call (ccxt quirk).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import web

from exchange_sim.admin import add_admin_routes, fault_middleware
from exchange_sim.binance.futures import DEFAULT_PERPETUALS, FuturesEngine, add_futures_routes
from exchange_sim.binance.limits import DEFAULT_BAN_SECONDS, BinanceRateLimiter
from exchange_sim.binance.markets import DEFAULT_MARKETS
from exchange_sim.binance.rest import BinanceRest, binance_middleware
from exchange_sim.binance.wsapi import BinanceWsApi
from exchange_sim.core.clock import Clock, WallClock
from exchange_sim.core.engine import FeeSchedule, MatchingEngine
from exchange_sim.core.markets import Market
from exchange_sim.core.state import VenueState

__all__ = ["DEFAULT_MARKETS", "BinanceState", "build_binance_app", "new_binance_state"]


@dataclass
class BinanceState(VenueState):
    """The venue state plus the USDⓈ-M futures side (same accounts and clock)."""

    futures: FuturesEngine | None = field(default=None)


def _credentials() -> tuple[str, str]:
    """A Binance-style HMAC key pair (64 alphanumerics each)."""
    return secrets.token_hex(32), secrets.token_hex(32)


def new_binance_state(
    *,
    rate_limits: bool = False,
    clock: Clock | None = None,
    markets: Iterable[Market] = DEFAULT_MARKETS,
    fees: FeeSchedule | None = None,
    ban_seconds: int = DEFAULT_BAN_SECONDS,
    history_days: int = 0,
) -> VenueState:
    """A fresh emulated Binance: default markets at their default prices, no accounts.

    ``history_days`` of synthetic prices precede the start (exchange_sim.core.history).
    """
    clock = clock or WallClock()
    engine = MatchingEngine(markets, clock, fees, history_days=history_days)
    limiter = BinanceRateLimiter(clock, enabled=rate_limits, ban_seconds=ban_seconds)
    return BinanceState(
        name="binance",
        engine=engine,
        limiter=limiter,
        new_credentials=_credentials,
        futures=FuturesEngine(DEFAULT_PERPETUALS, clock, engine.accounts),
    )


def build_binance_app(state: VenueState) -> web.Application:
    """The aiohttp application serving REST, ``/ws-api/v3`` and ``/_sim/`` on one port."""
    limiter = state.limiter
    if not isinstance(limiter, BinanceRateLimiter):
        raise TypeError("build_binance_app needs a state made by new_binance_state")
    app = web.Application(middlewares=[fault_middleware(state), binance_middleware(limiter)])
    app.add_routes(BinanceRest(state, limiter).routes())
    ws_api = BinanceWsApi(state)
    app.router.add_get("/ws-api/v3", ws_api.handle)
    app.on_shutdown.append(ws_api.close_all)
    if isinstance(state, BinanceState) and state.futures is not None:
        add_futures_routes(app, state, state.futures, limiter)
    add_admin_routes(app, state)
    return app
