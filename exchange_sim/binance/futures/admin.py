"""Admin routes of the futures side (``/_sim/futures/``): ground truth for tests, never signed.

* ``POST /_sim/futures/prices`` ``{"symbol": "BTCUSDT", "price": "51000"}`` (or
  ``BTC/USDT:USDT``): moves the mark price, triggers algo orders, fills crossed limit orders,
  liquidates; answers ``{"symbol", "price", "orders": [...]}``. ``GET`` lists every mark.
* ``POST /_sim/futures/funding`` ``{"symbol": "BTCUSDT", "rate": "0.0003"}`` sets a funding
  rate; ``{"settle": true}`` applies one funding event now (funding otherwise runs every 8
  hours of the venue clock).
* ``POST /_sim/futures/accounts/{api_key}/wallet`` ``{"amount": "10000"}``: credits (negative:
  debits) the USDT futures wallet; answers ``{"balance"}``. ``GET`` answers the wallet totals.
* ``GET /_sim/futures/accounts/{api_key}/orders`` | ``/algo-orders`` | ``/positions`` |
  ``/trades`` | ``/settings``: the venue's records, decimals as strings.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from exchange_sim.admin import account_key
from exchange_sim.binance.errors import BinanceError
from exchange_sim.binance.futures.engine import (
    AlgoOrder,
    FOrder,
    FuturesEngine,
    PositionView,
)
from exchange_sim.core.decimals import fmt_plain, to_decimal

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _plain(value: Decimal | None) -> str | None:
    return fmt_plain(value) if value is not None else None


def order_json(order: FOrder) -> dict[str, Any]:
    """A futures order as the admin API shows it."""
    return {
        "order_id": str(order.order_id),
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side.value.lower(),
        "type": order.type.value.lower(),
        "orig_type": (order.orig_type or order.type).value.lower(),
        "position_side": order.position_side.value,
        "reduce_only": order.reduce_only,
        "status": order.status.value.lower(),
        "price": _plain(order.price),
        "stop_price": _plain(order.stop_price),
        "quantity": _plain(order.quantity),
        "filled_quantity": _plain(order.executed_qty),
        "filled_quote": _plain(order.cum_quote),
        "average_price": _plain(order.avg_price),
        "realized_pnl": _plain(order.realized),
        "fee": _plain(order.fee),
        "created_ms": order.created_ms,
        "updated_ms": order.updated_ms,
    }


def algo_json(algo: AlgoOrder) -> dict[str, Any]:
    """An algo order as the admin API shows it."""
    req = algo.request
    return {
        "algo_id": str(algo.algo_id),
        "client_algo_id": algo.client_algo_id,
        "symbol": req.symbol,
        "side": req.side.value.lower(),
        "type": req.type.value.lower(),
        "position_side": req.position_side.value,
        "reduce_only": req.reduce_only,
        "close_position": req.close_position,
        "status": algo.status.value.lower(),
        "trigger_price": _plain(req.trigger_price),
        "price": _plain(req.price),
        "quantity": _plain(req.quantity),
        "actual_order_id": str(algo.actual_order_id) if algo.actual_order_id else None,
    }


def position_json(view: PositionView) -> dict[str, Any]:
    """A position as the admin API shows it."""
    return {
        "symbol": view.symbol,
        "position_side": view.side.value,
        "amount": fmt_plain(view.amount),
        "entry_price": fmt_plain(view.entry),
        "mark_price": fmt_plain(view.mark),
        "unrealized_pnl": fmt_plain(view.unrealized),
        "leverage": view.leverage,
        "margin_type": view.margin_type.value,
        "isolated_wallet": fmt_plain(view.isolated_wallet),
        "initial_margin": fmt_plain(view.initial_margin),
        "maintenance_margin": fmt_plain(view.maint_margin),
        "liquidation_price": fmt_plain(view.liquidation_price),
    }


class FuturesAdmin:
    """Handlers of ``/_sim/futures/``."""

    def __init__(self, engine: FuturesEngine) -> None:
        self.engine = engine

    def routes(self) -> list[web.RouteDef]:
        """Every futures admin route."""
        base = "/_sim/futures/accounts/{api_key:[^/]+}"
        return [
            web.post("/_sim/futures/prices", self._guard(self.set_price)),
            web.get("/_sim/futures/prices", self._guard(self.prices)),
            web.post("/_sim/futures/funding", self._guard(self.funding)),
            web.post(base + "/wallet", self._guard(self.fund)),
            web.get(base + "/wallet", self._guard(self.wallet)),
            web.get(base + "/orders", self._guard(self.orders)),
            web.get(base + "/algo-orders", self._guard(self.algos)),
            web.get(base + "/positions", self._guard(self.positions)),
            web.get(base + "/trades", self._guard(self.trades)),
            web.get(base + "/settings", self._guard(self.settings)),
        ]

    @staticmethod
    def _guard(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except (ValueError, BinanceError) as exc:
                text = exc.msg if isinstance(exc, BinanceError) else str(exc)
                return web.json_response({"error": text}, status=400)

        return guarded

    def _key(self, request: web.Request) -> str:
        return account_key(request, self.engine.accounts)

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.text(), parse_float=Decimal)
        except ValueError as exc:
            raise ValueError(f"body: not valid JSON ({exc})") from None
        if not isinstance(body, dict):
            raise ValueError("body: must be a JSON object")
        return body

    def _symbol(self, body: dict[str, Any]) -> str:
        perp = self.engine.find(str(body.get("symbol", "")))
        if perp is None:
            raise ValueError(f"symbol: unknown perpetual {body.get('symbol')!r}")
        return perp.id

    async def set_price(self, request: web.Request) -> web.Response:
        """Move a mark price."""
        body = await self._body(request)
        symbol = self._symbol(body)
        price = to_decimal(body.get("price"), "price")
        if price <= 0:
            raise ValueError("price: must be positive")
        touched = self.engine.set_mark_price(symbol, price)
        return web.json_response(
            {
                "symbol": symbol,
                "price": fmt_plain(price),
                "orders": [order_json(o) for o in touched],
            }
        )

    async def prices(self, _: web.Request) -> web.Response:
        """Every mark price."""
        return web.json_response({p: fmt_plain(self.engine.mark(p)) for p in self.engine.perps})

    async def funding(self, request: web.Request) -> web.Response:
        """Set a funding rate, or settle one funding event now."""
        body = await self._body(request)
        if "rate" in body:
            self.engine.set_funding_rate(self._symbol(body), to_decimal(body["rate"], "rate"))
        settle = body.get("settle", False)
        if not isinstance(settle, bool):
            raise ValueError("settle: must be true or false")
        if settle:
            self.engine.settle_funding_now()
        return web.json_response(
            {p: fmt_plain(self.engine.funding_rate(p)) for p in self.engine.perps}
        )

    async def fund(self, request: web.Request) -> web.Response:
        """Credit or debit the USDT futures wallet."""
        api_key = self._key(request)
        body = await self._body(request)
        balance = self.engine.deposit(api_key, to_decimal(body.get("amount"), "amount"))
        return web.json_response({"asset": "USDT", "balance": fmt_plain(balance)})

    async def wallet(self, request: web.Request) -> web.Response:
        """The wallet's totals."""
        api_key = self._key(request)
        view = self.engine.account(api_key)
        return web.json_response(
            {
                "asset": "USDT",
                "wallet_balance": fmt_plain(view.wallet_balance),
                "cross_wallet_balance": fmt_plain(view.cross_wallet_balance),
                "unrealized_pnl": fmt_plain(view.unrealized),
                "margin_balance": fmt_plain(view.margin_balance),
                "initial_margin": fmt_plain(view.initial_margin),
                "maintenance_margin": fmt_plain(view.maint_margin),
                "available_balance": fmt_plain(view.available),
                "dual_side_position": self.engine.wallet(api_key).dual_side,
                "incomes": [
                    {
                        "symbol": i.symbol,
                        "type": i.kind,
                        "amount": fmt_plain(i.amount),
                        "time_ms": i.time_ms,
                    }
                    for i in self.engine.incomes(api_key)
                ],
            }
        )

    async def orders(self, request: web.Request) -> web.Response:
        """Every futures order of the account."""
        return web.json_response([order_json(o) for o in self.engine.orders(self._key(request))])

    async def algos(self, request: web.Request) -> web.Response:
        """Every algo order of the account."""
        return web.json_response([algo_json(a) for a in self.engine.algos(self._key(request))])

    async def positions(self, request: web.Request) -> web.Response:
        """Every position of the account (flat ones included once traded)."""
        views = self.engine.positions(self._key(request))
        return web.json_response([position_json(v) for v in views])

    async def trades(self, request: web.Request) -> web.Response:
        """Every fill of the account."""
        return web.json_response(
            [
                {
                    "trade_id": str(t.trade_id),
                    "order_id": str(t.order_id),
                    "symbol": t.symbol,
                    "side": t.side.value.lower(),
                    "position_side": t.position_side.value,
                    "price": fmt_plain(t.price),
                    "quantity": fmt_plain(t.qty),
                    "realized_pnl": fmt_plain(t.realized),
                    "fee": fmt_plain(t.fee),
                    "is_maker": t.is_maker,
                    "time_ms": t.time_ms,
                }
                for t in self.engine.trades(self._key(request))
            ]
        )

    async def settings(self, request: web.Request) -> web.Response:
        """Leverage and margin type per symbol."""
        api_key = self._key(request)
        return web.json_response(
            {
                p: {
                    "leverage": self.engine.settings(api_key, p).leverage,
                    "margin_type": self.engine.settings(api_key, p).margin_type.value,
                }
                for p in self.engine.perps
            }
        )
