"""A wire-compatible emulator of Coinbase Advanced Trade spot (REST v2 + v3, ``user`` WebSocket).

Unmodified ccxt 4.5.90 (``coinbase`` in sync, async_support and pro) works against it with only
``exchange.urls`` changed (``point_coinbase_at``). ``POST /_sim/accounts`` hands out CDP-style
credentials: the key name ``organizations/.../apiKeys/...`` and an EC P-256 private key in PEM
as ``api_secret``. An account created with an explicit non-PEM ``api_secret`` is a legacy HMAC key.

Where the behaviour is Coinbase-specific or unverified, the choice is written where it is
implemented: ``orders`` (order rules, fee-inclusive quote-sized buys), ``rest`` (duplicate
``client_order_id``, paging, lookups), ``errors`` (reply shapes and what ccxt raises), ``auth``
(JWT checks), ``limits`` (429s), ``codec`` (statuses), ``ws`` (user channel, heartbeats,
idle close). Fees: 0.6 % maker, 1.2 % taker (Coinbase's entry tier), charged in the quote
currency as in the core.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from aiohttp import web

from exchange_sim.admin import add_admin_routes, fault_middleware
from exchange_sim.coinbase.auth import new_cdp_credentials
from exchange_sim.coinbase.ccxt_urls import point_coinbase_at
from exchange_sim.coinbase.limits import CoinbaseRateLimiter
from exchange_sim.coinbase.markets import DEFAULT_PRODUCTS, Product
from exchange_sim.coinbase.rest import CoinbaseRest, coinbase_middleware
from exchange_sim.coinbase.state import CoinbaseState
from exchange_sim.coinbase.ws import CoinbaseWs
from exchange_sim.core.clock import Clock, WallClock
from exchange_sim.core.engine import FeeSchedule, MatchingEngine

__all__ = [
    "COINBASE_FEES",
    "DEFAULT_PRODUCTS",
    "CoinbaseState",
    "build_coinbase_app",
    "new_coinbase_state",
    "point_coinbase_at",
]

#: Coinbase Advanced's entry tier ($0-1K 30-day volume): 0.60 % maker, 1.20 % taker.
COINBASE_FEES = FeeSchedule(maker=Decimal("0.006"), taker=Decimal("0.012"))


def new_coinbase_state(
    *,
    rate_limits: bool = False,
    clock: Clock | None = None,
    products: Iterable[Product] = DEFAULT_PRODUCTS,
    fees: FeeSchedule | None = None,
    history_days: int = 0,
) -> CoinbaseState:
    """A fresh emulated Coinbase: BTC-USD, ETH-USD, LTC-USD at 50000 / 3000 / 100, no accounts.

    ``history_days`` of synthetic prices precede the start (exchange_sim.core.history).
    """
    clock = clock or WallClock()
    chosen = list(products)
    engine = MatchingEngine(
        [p.market for p in chosen], clock, fees or COINBASE_FEES, history_days=history_days
    )
    limiter = CoinbaseRateLimiter(clock, enabled=rate_limits)
    return CoinbaseState(
        name="coinbase",
        engine=engine,
        limiter=limiter,
        new_credentials=new_cdp_credentials,
        products={p.product_id: p for p in chosen},
    )


def build_coinbase_app(state: CoinbaseState) -> web.Application:
    """The aiohttp application serving REST, ``/ws`` and ``/_sim/`` on one port."""
    limiter = state.limiter
    if not isinstance(state, CoinbaseState) or not isinstance(limiter, CoinbaseRateLimiter):
        raise TypeError("build_coinbase_app needs a state made by new_coinbase_state")
    app = web.Application(middlewares=[fault_middleware(state), coinbase_middleware()])
    app.add_routes(CoinbaseRest(state, limiter).routes())
    ws = CoinbaseWs(state)
    app.router.add_get("/ws", ws.handle)
    app.on_shutdown.append(ws.close_all)
    add_admin_routes(app, state)
    return app
