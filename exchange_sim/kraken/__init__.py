"""A wire-compatible emulator of Kraken spot (REST, WebSocket v2 ``executions``, admin API).

Unmodified ccxt 4.5.90 (``kraken`` in sync, async_support and pro) works against it with only
``exchange.urls`` overridden (``point_kraken_at``). Markets BTC/USD, ETH/USD and LTC/USD
(``XXBTZUSD``, ``XETHZUSD``, ``XLTCZUSD``). Behaviour choices where Kraken's documentation is
silent or unverified are written where they are implemented and in exchange_sim/README.md:
``kraken.rest`` (orders, history paging, client ids, permission probes), ``kraken.limits``
(rate limits), ``kraken.ws`` (the executions stream), ``kraken.ids`` (identifiers).

Permissions: ``can_trade: false`` gets ``EGeneral:Permission denied`` on ``AddOrder``,
``CancelOrder`` and ``CancelAll``; ``can_withdraw: false`` on ``WithdrawMethods`` and
``WithdrawInfo``. ``GetApiKeyInfo`` lists the key's permissions (``withdraw-funds`` for
withdrawal rights) and needs none itself.
"""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Iterable

from aiohttp import web

from exchange_sim.admin import add_admin_routes, fault_middleware
from exchange_sim.core.clock import Clock, WallClock
from exchange_sim.core.engine import FeeSchedule, MatchingEngine
from exchange_sim.core.state import VenueState
from exchange_sim.kraken.limits import DEFAULT_LOCKOUT_SECONDS, KrakenRateLimiter
from exchange_sim.kraken.markets import DEFAULT_PAIRS, MAKER_FEE, TAKER_FEE, KrakenPair
from exchange_sim.kraken.rest import KrakenRest, kraken_middleware
from exchange_sim.kraken.state import KrakenState
from exchange_sim.kraken.urls import point_kraken_at
from exchange_sim.kraken.ws import KrakenWs

__all__ = [
    "DEFAULT_PAIRS",
    "KrakenState",
    "build_kraken_app",
    "new_kraken_state",
    "point_kraken_at",
]

WS_PATH = "/ws-auth/v2"
_KEY_ALPHABET = string.ascii_letters + string.digits
#: Kraken's first fee tier: 0.16 % maker, 0.26 % taker, charged in the quote currency.
KRAKEN_FEES = FeeSchedule(maker=MAKER_FEE, taker=TAKER_FEE)


def _credentials() -> tuple[str, str]:
    """A Kraken-style key pair: a 56-character key and a base64 secret of 64 bytes. Real keys are
    base64 too; these leave out ``/`` and ``+`` so they fit in admin URLs
    (``/_sim/accounts/{key}``)."""
    key = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(56))
    return key, base64.b64encode(secrets.token_bytes(64)).decode()


def new_kraken_state(
    *,
    rate_limits: bool = False,
    clock: Clock | None = None,
    pairs: Iterable[KrakenPair] = DEFAULT_PAIRS,
    fees: FeeSchedule | None = None,
    ban_seconds: int = DEFAULT_LOCKOUT_SECONDS,
    history_days: int = 0,
) -> KrakenState:
    """A fresh emulated Kraken: default pairs at their default prices, no accounts.

    ``history_days`` of synthetic prices precede the start (exchange_sim.core.history).
    """
    clock = clock or WallClock()
    pairs = tuple(pairs)
    engine = MatchingEngine(
        (p.market for p in pairs), clock, fees or KRAKEN_FEES, history_days=history_days
    )
    limiter = KrakenRateLimiter(clock, enabled=rate_limits, ban_seconds=ban_seconds)
    return KrakenState(
        name="kraken", engine=engine, limiter=limiter, new_credentials=_credentials, pairs=pairs
    )


def build_kraken_app(state: VenueState) -> web.Application:
    """The aiohttp application serving REST, ``/ws-auth/v2`` and ``/_sim/`` on one port."""
    limiter = state.limiter
    if not isinstance(state, KrakenState) or not isinstance(limiter, KrakenRateLimiter):
        raise TypeError("build_kraken_app needs a state made by new_kraken_state")
    app = web.Application(middlewares=[fault_middleware(state), kraken_middleware(limiter)])
    app.add_routes(KrakenRest(state, limiter).routes())
    ws = KrakenWs(state)
    app.router.add_get(WS_PATH, ws.handle)
    app.on_shutdown.append(ws.close_all)
    add_admin_routes(app, state)
    return app
