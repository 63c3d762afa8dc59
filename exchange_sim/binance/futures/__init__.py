"""Binance USDⓈ-M futures on the Binance emulator's port (``/fapi/v1``, ``/fapi/v2``, ``/fapi/v3``).

The state (``engine.FuturesEngine``) shares the venue's accounts and clock with spot but keeps
its own wallets, positions, orders and mark prices. ``margin`` holds the pure arithmetic.
docs/exchange-protocols.md §2.9 lists what ccxt 4.5.90 ``binanceusdm`` sends.
"""

from __future__ import annotations

from aiohttp import web

from exchange_sim.binance.futures.admin import FuturesAdmin
from exchange_sim.binance.futures.engine import FuturesEngine
from exchange_sim.binance.futures.markets import DEFAULT_PERPETUALS, Perpetual
from exchange_sim.binance.futures.rest import FuturesRest
from exchange_sim.binance.futures.stream import FuturesUserStream
from exchange_sim.binance.limits import BinanceRateLimiter
from exchange_sim.core.state import VenueState

__all__ = ["DEFAULT_PERPETUALS", "FuturesEngine", "Perpetual", "add_futures_routes"]


def add_futures_routes(
    app: web.Application, state: VenueState, engine: FuturesEngine, limiter: BinanceRateLimiter
) -> None:
    """Mount the ``/fapi`` REST routes, the user-stream sockets and ``/_sim/futures/``."""
    rest = FuturesRest(engine, state.clock.now_ms, limiter)
    app.add_routes(rest.routes())
    stream = FuturesUserStream(engine, rest, state.streams)
    app.router.add_get("/private/ws", stream.handle)
    app.router.add_get("/ws/{listen_key}", stream.handle)
    app.on_shutdown.append(stream.close_all)
    app.add_routes(FuturesAdmin(engine).routes())
