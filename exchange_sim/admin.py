"""The emulator admin API under ``/_sim/`` (docs/design.md §4.4) and the fault-injection middleware.

Venue-neutral: every emulator mounts the same routes on its own port. Not signed, not rate
limited, never subject to fault rules. JSON decimals are strings (numbers are accepted on input
and read exactly, never through float). Errors are ``{"error": "<field>: <what is wrong>"}``
with HTTP 400 (bad input) or 404 (unknown account).

Routes:

* ``POST /_sim/accounts``
  ``{"balances": {"USDT": "10000"}, "can_trade": true, "can_withdraw": false}`` (optional
  ``api_key`` / ``api_secret`` for fixed credentials) → ``{"api_key", "api_secret"}``.
* ``GET /_sim/accounts/{api_key}/orders``: every order of the account, oldest first, with its
  client order id (the venue's truth). ``.../trades``: every trade, by id, with the client
  order id of its order. ``.../balances``: ``{"USDT": {"free": "...", "locked": "..."}}``.
* ``POST /_sim/prices`` ``{"symbol": "BTC/USDT", "price": "50000"}``: moves the mark price,
  triggers stops, fills crossed resting orders; answers ``{"symbol", "price", "orders": [...]}``
  with the orders it touched. ``GET /_sim/prices``: ``{"BTC/USDT": "50000", ...}``.
* ``POST /_sim/faults``: one rule or a list (see ``core.faults``) → ``{"added": n}``;
  ``GET /_sim/faults`` lists the active rules; ``DELETE /_sim/faults`` → ``{"cleared": n}``.
* ``POST /_sim/rate-limits`` ``{"enabled": false}`` (optional ``ban_seconds``) → the limiter
  status, also at ``GET /_sim/rate-limits``. Switching resets counters and bans.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from exchange_sim.core.accounts import AccountBook
from exchange_sim.core.decimals import fmt_plain, to_decimal
from exchange_sim.core.faults import FaultRule
from exchange_sim.core.orders import Order, Trade
from exchange_sim.core.state import VenueState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _BadInput(Exception):
    pass


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.text(), parse_float=Decimal)
    except ValueError as exc:
        raise _BadInput(f"body: not valid JSON ({exc})") from None


def account_key(request: web.Request, accounts: AccountBook) -> str:
    """Return the ``{api_key}`` of the path; 404 ``api_key: no such account`` when unknown."""
    api_key = request.match_info["api_key"]
    if accounts.find(api_key) is None:
        raise web.HTTPNotFound(
            text=json.dumps({"error": "api_key: no such account"}),
            content_type="application/json",
        )
    return api_key


def _bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise _BadInput(f"{name}: must be true or false")
    return value


def order_json(order: Order) -> dict[str, Any]:
    """An order as the admin API shows it (venue-neutral, decimals as strings)."""

    def d(value: Decimal | None) -> str | None:
        return fmt_plain(value) if value is not None else None

    return {
        "order_id": str(order.order_id),
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side.value.lower(),
        "type": order.type.value.lower(),
        "time_in_force": order.time_in_force.value if order.time_in_force else None,
        "status": order.status.value.lower(),
        "price": d(order.price),
        "stop_price": d(order.stop_price),
        "quantity": d(order.quantity),
        "quote_quantity": d(order.quote_quantity),
        "filled_quantity": d(order.executed_qty),
        "filled_quote": d(order.cum_quote),
        "fee": d(order.fee),
        "fee_asset": order.fee_asset,
        "created_ms": order.created_ms,
        "updated_ms": order.updated_ms,
        "trade_ids": [str(t) for t in order.trade_ids],
    }


def trade_json(trade: Trade, client_order_id: str) -> dict[str, Any]:
    """A trade as the admin API shows it."""
    return {
        "trade_id": str(trade.trade_id),
        "order_id": str(trade.order_id),
        "client_order_id": client_order_id,
        "symbol": trade.symbol,
        "side": trade.side.value.lower(),
        "price": fmt_plain(trade.price),
        "quantity": fmt_plain(trade.qty),
        "quote_quantity": fmt_plain(trade.quote_qty),
        "fee": fmt_plain(trade.fee),
        "fee_asset": trade.fee_asset,
        "is_maker": trade.is_maker,
        "time_ms": trade.time_ms,
    }


class AdminApi:
    """Handlers of ``/_sim/`` for one venue."""

    def __init__(self, state: VenueState) -> None:
        self.state = state
        self.engine = state.engine

    def routes(self) -> list[web.RouteDef]:
        """Every admin route."""
        return [
            web.post("/_sim/accounts", self._guard(self.create_account)),
            web.get("/_sim/accounts/{api_key:.+}/orders", self._guard(self.orders)),
            web.get("/_sim/accounts/{api_key:.+}/trades", self._guard(self.trades)),
            web.get("/_sim/accounts/{api_key:.+}/balances", self._guard(self.balances)),
            web.post("/_sim/prices", self._guard(self.set_price)),
            web.get("/_sim/prices", self._guard(self.prices)),
            web.post("/_sim/matching", self._guard(self.hold_matching)),
            web.post("/_sim/faults", self._guard(self.add_faults)),
            web.get("/_sim/faults", self._guard(self.faults)),
            web.delete("/_sim/faults", self._guard(self.clear_faults)),
            web.post("/_sim/rate-limits", self._guard(self.set_rate_limits)),
            web.get("/_sim/rate-limits", self._guard(self.rate_limits)),
            web.post("/_sim/streams", self._guard(self.set_stream_faults)),
            web.get("/_sim/streams", self._guard(self.stream_faults)),
            web.post("/_sim/streams/close", self._guard(self.close_streams)),
        ]

    @staticmethod
    def _guard(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except (_BadInput, ValueError) as exc:
                return _bad(str(exc))

        return guarded

    def _account_key(self, request: web.Request) -> str:
        return account_key(request, self.engine.accounts)

    async def create_account(self, request: web.Request) -> web.Response:
        """Open an account with balances and permissions; returns its credentials."""
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise _BadInput("body: must be a JSON object")
        raw_balances = body.get("balances", {})
        if not isinstance(raw_balances, dict):
            raise _BadInput("balances: must map assets to amounts")
        balances = {
            str(asset): to_decimal(amount, f"balances.{asset}")
            for asset, amount in raw_balances.items()
        }
        api_key, api_secret = self.state.new_credentials()
        api_key, api_secret = body.get("api_key") or api_key, body.get("api_secret") or api_secret
        if not isinstance(api_key, str) or not isinstance(api_secret, str):
            raise _BadInput("api_key: must be a string")
        self.engine.create_account(
            api_key,
            api_secret,
            balances=balances,
            can_trade=_bool(body, "can_trade", True),
            can_withdraw=_bool(body, "can_withdraw", False),
        )
        return web.json_response({"api_key": api_key, "api_secret": api_secret})

    async def orders(self, request: web.Request) -> web.Response:
        """Every order of an account (the venue's truth)."""
        return web.json_response(
            [order_json(o) for o in self.engine.orders(self._account_key(request))]
        )

    async def trades(self, request: web.Request) -> web.Response:
        """Every trade of an account, with the client order id of its order."""
        api_key = self._account_key(request)
        client_ids = {o.order_id: o.client_order_id for o in self.engine.orders(api_key)}
        return web.json_response(
            [trade_json(t, client_ids[t.order_id]) for t in self.engine.trades(api_key)]
        )

    async def balances(self, request: web.Request) -> web.Response:
        """Free and locked balance per asset."""
        account = self.engine.accounts.get(self._account_key(request))
        return web.json_response(
            {
                asset: {"free": fmt_plain(b.free), "locked": fmt_plain(b.locked)}
                for asset, b in sorted(account.balances.items())
            }
        )

    async def set_price(self, request: web.Request) -> web.Response:
        """Move a mark price (triggers stops, fills crossed resting orders)."""
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise _BadInput("body: must be a JSON object")
        market = self.state.market_by_name(str(body.get("symbol", "")))
        if market is None:
            raise _BadInput(f"symbol: unknown market {body.get('symbol')!r}")
        price = to_decimal(body.get("price"), "price")
        if price <= 0:
            raise _BadInput("price: must be positive")
        touched = self.engine.set_mark_price(market.symbol, price)
        return web.json_response(
            {
                "symbol": market.symbol,
                "price": fmt_plain(price),
                "orders": [order_json(o) for o in touched],
            }
        )

    async def hold_matching(self, request: web.Request) -> web.Response:
        """Hold (``{"held": true}``) or release the matching of limit orders, in one market
        (``symbol``) or all; new limit orders then wait, NEW, until released."""
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise _BadInput("body: must be a JSON object")
        held = body.get("held")
        if not isinstance(held, bool):
            raise _BadInput("held: must be true or false")
        symbol = None
        if body.get("symbol") is not None:
            market = self.state.market_by_name(str(body["symbol"]))
            if market is None:
                raise _BadInput(f"symbol: unknown market {body.get('symbol')!r}")
            symbol = market.symbol
        touched = self.engine.hold_matching(symbol, held)
        return web.json_response(
            {"held": self.engine.held_symbols, "orders": [order_json(o) for o in touched]}
        )

    async def prices(self, _: web.Request) -> web.Response:
        """Every mark price."""
        return web.json_response({s: fmt_plain(self.engine.mark(s)) for s in self.engine.markets})

    async def add_faults(self, request: web.Request) -> web.Response:
        """Add one fault rule or a list of them."""
        body = await _json_body(request)
        raw_rules = body if isinstance(body, list) else [body]
        rules = [FaultRule.parse(_plain(r)) for r in raw_rules]
        for rule in rules:
            self.state.faults.add(rule)
        return web.json_response({"added": len(rules)})

    async def faults(self, _: web.Request) -> web.Response:
        """The active fault rules."""
        return web.json_response([r.to_json() for r in self.state.faults.rules()])

    async def clear_faults(self, _: web.Request) -> web.Response:
        """Remove every fault rule."""
        return web.json_response({"cleared": self.state.faults.clear()})

    async def set_rate_limits(self, request: web.Request) -> web.Response:
        """Switch rate limits on or off (resets counters and bans); optional ``ban_seconds``."""
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise _BadInput("body: must be a JSON object")
        enabled = body.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise _BadInput("enabled: must be true or false")
        ban_seconds = body.get("ban_seconds")
        if ban_seconds is not None and (
            isinstance(ban_seconds, bool) or not isinstance(ban_seconds, int) or ban_seconds < 1
        ):
            raise _BadInput("ban_seconds: must be a positive integer")
        self.state.limiter.configure(enabled=enabled, ban_seconds=ban_seconds)
        return web.json_response(self.state.limiter.status())

    async def rate_limits(self, _: web.Request) -> web.Response:
        """The limiter status."""
        return web.json_response(self.state.limiter.status())

    async def set_stream_faults(self, request: web.Request) -> web.Response:
        """Silently drop a share of private stream events: ``{"drop_fraction": 0.1, "seed": 7}``."""
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise _BadInput("body: must be a JSON object")
        fraction = body.get("drop_fraction", 0)
        if isinstance(fraction, bool) or not isinstance(fraction, (int, Decimal)):
            raise _BadInput("drop_fraction: must be a number between 0 and 1")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise _BadInput("seed: must be an integer")
        self.state.streams.configure(float(fraction), seed)
        return web.json_response(self.state.streams.status())

    async def stream_faults(self, _: web.Request) -> web.Response:
        """The stream faults in force and how many events they dropped."""
        return web.json_response(self.state.streams.status())

    async def close_streams(self, request: web.Request) -> web.Response:
        """Close every private stream socket now (a drop, or an expired subscription)."""
        body = await _json_body(request) if request.can_read_body else {}
        reason = str((body or {}).get("reason", "stream closed by the venue"))
        return web.json_response({"closed": await self.state.streams.close_all(reason)})


def _plain(value: Any) -> Any:
    """Turn the Decimals ``parse_float`` produced back into JSON-friendly floats (fault rules only:
    their numbers are durations, never money)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def add_admin_routes(app: web.Application, state: VenueState) -> None:
    """Mount ``/_sim/`` on a venue's app."""
    app.add_routes(AdminApi(state).routes())


def _fault_response(rule: FaultRule) -> web.Response:
    if isinstance(rule.body, (dict, list)):
        return web.json_response(rule.body, status=rule.status or 500, headers=rule.headers)
    return web.Response(text=rule.body or "", status=rule.status or 500, headers=rule.headers)


def _reset_connection(request: web.Request) -> None:
    # SO_LINGER with a zero timeout makes close() send a TCP RST instead of a FIN: the client
    # sees "connection reset by peer", as behind a proxy or a load balancer that dropped it.
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def fault_middleware(state: VenueState) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Apply the venue's fault rules (``core.faults``) to every non-admin request."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            return await handler(request)
        rule = state.faults.take(request.method, request.path)
        if rule is None:
            return await handler(request)
        if rule.reset:
            if rule.execute:
                await handler(request)
            else:
                await request.read()  # the whole request reached the venue, unprocessed
            await asyncio.sleep(rule.delay_s)
            _reset_connection(request)
            # Nothing can be answered on a reset connection; aiohttp drops this response.
            return web.Response(status=499)
        if not rule.execute:
            await asyncio.sleep(rule.delay_s)
            return await handler(request) if rule.status is None else _fault_response(rule)
        response = await handler(request)
        await asyncio.sleep(rule.delay_s)
        return response if rule.status is None else _fault_response(rule)

    return middleware
