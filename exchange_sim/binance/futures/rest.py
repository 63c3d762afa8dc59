"""Binance USDⓈ-M REST endpoints (``/fapi/v1``, ``/fapi/v2``, ``/fapi/v3``) on the futures engine.

Signing, timing, rate limits (``binance_middleware``) and faults are the spot ones: the same
port, the same keys. The listen key endpoints take the API key header only, unsigned, as on
Binance (``USER_STREAM`` security).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from aiohttp import web

from exchange_sim.binance.auth import lookup_key
from exchange_sim.binance.errors import bad_request, illegal_chars, mandatory, not_required
from exchange_sim.binance.futures import codec
from exchange_sim.binance.futures.engine import (
    FOrderRequest,
    FOrderType,
    FStatus,
    FTimeInForce,
    FuturesEngine,
    MarginType,
    PositionSide,
)
from exchange_sim.binance.futures.margin import next_funding_ms
from exchange_sim.binance.futures.markets import symbol_json
from exchange_sim.binance.limits import BinanceRateLimiter
from exchange_sim.binance.markets import rate_limit_json
from exchange_sim.binance.params import (
    CLIENT_ORDER_ID_RE,
    history_page,
    limit_param,
    opt_decimal,
    opt_enum,
    opt_int,
    opt_str,
    parse_query,
    req_str,
)
from exchange_sim.binance.rest import ACCOUNT_KEY, signed_request
from exchange_sim.core import book
from exchange_sim.core.accounts import Account
from exchange_sim.core.decimals import fmt8, fmt_plain
from exchange_sim.core.orders import Side

LISTEN_KEY_TTL_MS = 60 * 60_000

_ORDER_PARAMS = {
    "symbol",
    "side",
    "positionSide",
    "type",
    "timeInForce",
    "quantity",
    "reduceOnly",
    "price",
    "newClientOrderId",
    "clientAlgoId",
    "algoType",
    "stopPrice",
    "triggerPrice",
    "closePosition",
    "workingType",
    "priceProtect",
    "newOrderRespType",
    "priceMatch",
    "selfTradePreventionMode",
    "goodTillDate",
    "recvWindow",
    "timestamp",
    "signature",
}


def _bool(params: dict[str, str], name: str) -> bool:
    value = opt_str(params, name)
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise illegal_chars(name, "true, false")
    return value.lower() == "true"


def _client_id(params: dict[str, str], name: str) -> str:
    value = opt_str(params, name)
    if value is None:
        return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(22))
    if not CLIENT_ORDER_ID_RE.match(value):
        raise illegal_chars(name, "^[\\.A-Z\\:/a-z0-9_-]{1,36}$")
    return value


def order_request(params: dict[str, str], *, algo: bool) -> FOrderRequest:
    """Parse ``POST /fapi/v1/order`` or ``POST /fapi/v1/algoOrder`` parameters."""
    unread = set(params) - _ORDER_PARAMS
    if unread:
        raise bad_request(-1104, f"Not all sent parameters were read; unread: {sorted(unread)}.")
    side = opt_enum(params, "side", Side, bad_request(-1117, "Invalid side."))
    kind = opt_enum(params, "type", FOrderType, bad_request(-1116, "Invalid orderType."))
    if side is None:
        raise mandatory("side")
    if kind is None:
        raise mandatory("type")
    if algo and req_str(params, "algoType") != "CONDITIONAL":
        raise illegal_chars("algoType", "CONDITIONAL")
    tif = opt_enum(params, "timeInForce", FTimeInForce, bad_request(-1115, "Invalid timeInForce."))
    price = opt_decimal(params, "price")
    trigger = opt_decimal(params, "triggerPrice" if algo else "stopPrice")
    close_position = _bool(params, "closePosition")
    quantity = opt_decimal(params, "quantity")
    if kind.priced and price is None:
        raise mandatory("price")
    if not kind.priced and price is not None:
        raise not_required("price")
    if kind.conditional and trigger is None:
        raise mandatory("triggerPrice" if algo else "stopPrice")
    if quantity is None and not close_position:
        raise mandatory("quantity")
    if kind is FOrderType.LIMIT and tif is None:
        raise mandatory("timeInForce")
    if close_position and (quantity is not None or _bool(params, "reduceOnly")):
        raise bad_request(-1106, "Parameter 'closePosition' sent when not required.")
    position_side = opt_enum(
        params, "positionSide", PositionSide, illegal_chars("positionSide", "BOTH, LONG, SHORT")
    )
    return FOrderRequest(
        symbol=req_str(params, "symbol"),
        side=side,
        type=kind,
        client_order_id=_client_id(params, "clientAlgoId" if algo else "newClientOrderId"),
        quantity=quantity,
        price=price,
        trigger_price=trigger,
        time_in_force=tif if kind.priced else None,
        position_side=position_side or PositionSide.BOTH,
        reduce_only=_bool(params, "reduceOnly"),
        close_position=close_position,
        working_type=opt_str(params, "workingType") or "CONTRACT_PRICE",
    )


class FuturesRest:
    """The ``/fapi`` handlers of one emulated Binance."""

    def __init__(
        self,
        engine: FuturesEngine,
        accounts_now: Callable[[], int],
        limiter: BinanceRateLimiter,
    ) -> None:
        self.engine = engine
        self.now = accounts_now
        self.limiter = limiter
        self.listen_keys: dict[str, tuple[str, int]] = {}  # key -> (api key, expiry ms)

    def routes(self) -> list[web.RouteDef]:
        """Every ``/fapi`` route."""
        return [
            web.get("/fapi/v1/ping", self.ping),
            web.get("/fapi/v1/time", self.time),
            web.get("/fapi/v1/exchangeInfo", self.exchange_info),
            web.get("/fapi/v1/premiumIndex", self.premium_index),
            web.get("/fapi/v1/depth", self.depth),
            web.get("/fapi/v1/ticker/price", self.ticker_price),
            web.get("/fapi/v1/ticker/24hr", self.ticker_24hr),
            web.get("/fapi/v2/ticker/price", self.ticker_price),
            web.post("/fapi/v1/order", self.new_order),
            web.get("/fapi/v1/order", self.get_order),
            web.delete("/fapi/v1/order", self.cancel_order),
            web.get("/fapi/v1/openOrders", self.open_orders),
            web.delete("/fapi/v1/allOpenOrders", self.cancel_all),
            web.get("/fapi/v1/allOrders", self.all_orders),
            web.get("/fapi/v1/userTrades", self.user_trades),
            web.post("/fapi/v1/algoOrder", self.new_algo),
            web.get("/fapi/v1/algoOrder", self.get_algo),
            web.delete("/fapi/v1/algoOrder", self.cancel_algo),
            web.get("/fapi/v1/openAlgoOrders", self.open_algos),
            web.get("/fapi/v1/allAlgoOrders", self.all_algos),
            web.post("/fapi/v1/leverage", self.leverage),
            web.post("/fapi/v1/marginType", self.margin_type),
            web.post("/fapi/v1/positionSide/dual", self.set_dual),
            web.get("/fapi/v1/positionSide/dual", self.get_dual),
            web.get("/fapi/v1/leverageBracket", self.leverage_bracket),
            web.get("/fapi/v1/symbolConfig", self.symbol_config),
            web.get("/fapi/v2/positionRisk", self.position_risk_v2),
            web.get("/fapi/v3/positionRisk", self.position_risk_v3),
            web.get("/fapi/v2/account", self.account),
            web.get("/fapi/v3/account", self.account),
            web.get("/fapi/v2/balance", self.balance),
            web.get("/fapi/v3/balance", self.balance),
            web.get("/fapi/v1/income", self.income),
            web.post("/fapi/v1/listenKey", self.listen_key_new),
            web.put("/fapi/v1/listenKey", self.listen_key_keep),
            web.delete("/fapi/v1/listenKey", self.listen_key_close),
        ]

    # ------------------------------------------------------------------ helpers

    async def _signed(self, request: web.Request) -> tuple[Account, dict[str, str]]:
        return await signed_request(request, self.engine.accounts, self.now())

    def _symbol(self, params: dict[str, str]) -> str:
        return self.engine.perp(req_str(params, "symbol")).id

    def _opt_symbol(self, params: dict[str, str]) -> str | None:
        return self._symbol(params) if opt_str(params, "symbol") else None

    @staticmethod
    def _query(request: web.Request) -> dict[str, str]:
        return parse_query(request.rel_url.raw_query_string)

    # ------------------------------------------------------------------ public

    async def ping(self, _: web.Request) -> web.Response:
        """``GET /fapi/v1/ping``."""
        return web.json_response({})

    async def time(self, _: web.Request) -> web.Response:
        """``GET /fapi/v1/time``."""
        return web.json_response({"serverTime": self.now()})

    async def exchange_info(self, _: web.Request) -> web.Response:
        """``GET /fapi/v1/exchangeInfo``: every perpetual with its filters."""
        limits = [rate_limit_json("REQUEST_WEIGHT", self.limiter.weight.spec)]
        limits += [rate_limit_json("ORDERS", w.spec) for w in self.limiter.orders]
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": self.now(),
                "futuresType": "U_MARGINED",
                "rateLimits": limits,
                "exchangeFilters": [],
                "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "0"}],
                "symbols": [symbol_json(p) for p in self.engine.perps.values()],
            }
        )

    async def premium_index(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/premiumIndex``: mark price and funding (one symbol or all)."""
        params = self._query(request)
        symbol = self._opt_symbol(params)
        self.engine.tick()
        now = self.now()
        rows = [
            {
                "symbol": p.id,
                "markPrice": fmt8(self.engine.mark(p.id)),
                "indexPrice": fmt8(self.engine.mark(p.id)),
                "estimatedSettlePrice": fmt8(self.engine.mark(p.id)),
                "lastFundingRate": fmt8(self.engine.funding_rate(p.id)),
                "interestRate": "0.00010000",
                "nextFundingTime": next_funding_ms(now),
                "time": now,
            }
            for p in self.engine.perps.values()
            if symbol in (None, p.id)
        ]
        return web.json_response(rows[0] if symbol else rows)

    async def depth(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/depth``: the synthetic book around the mark."""
        params = self._query(request)
        perp = self.engine.perp(req_str(params, "symbol"))
        limit = limit_param(params, 500, 1000)
        mark = self.engine.mark(perp.id)
        now = self.now()
        return web.json_response(
            {
                "lastUpdateId": now,
                "E": now,
                "T": now,
                "bids": [
                    [fmt_plain(lv.price), fmt_plain(lv.qty)]
                    for lv in book.bids(perp.market, mark)[:limit]
                ],
                "asks": [
                    [fmt_plain(lv.price), fmt_plain(lv.qty)]
                    for lv in book.asks(perp.market, mark)[:limit]
                ],
            }
        )

    async def ticker_price(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/ticker/price``."""
        params = self._query(request)
        symbol = self._opt_symbol(params)
        rows = [
            {"symbol": p.id, "price": fmt_plain(self.engine.mark(p.id)), "time": self.now()}
            for p in self.engine.perps.values()
            if symbol in (None, p.id)
        ]
        return web.json_response(rows[0] if symbol else rows)

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/ticker/24hr`` (ccxt ``fetch_ticker``): the mark as the last price; the
        emulator keeps no 24-hour statistics, so the day opened, peaked and bottomed there."""
        params = self._query(request)
        symbol = self._opt_symbol(params)
        now = self.now()
        rows = []
        for perp in self.engine.perps.values():
            if symbol not in (None, perp.id):
                continue
            mark = fmt_plain(self.engine.mark(perp.id))
            rows.append(
                {
                    "symbol": perp.id,
                    "priceChange": "0",
                    "priceChangePercent": "0",
                    "weightedAvgPrice": mark,
                    "lastPrice": mark,
                    "lastQty": "0",
                    "openPrice": mark,
                    "highPrice": mark,
                    "lowPrice": mark,
                    "volume": "0",
                    "quoteVolume": "0",
                    "openTime": now - 86_400_000,
                    "closeTime": now,
                    "firstId": 0,
                    "lastId": 0,
                    "count": 0,
                }
            )
        return web.json_response(rows[0] if symbol else rows)

    # ------------------------------------------------------------------ orders

    async def new_order(self, request: web.Request) -> web.Response:
        """``POST /fapi/v1/order`` (MARKET, LIMIT; conditional types: -4120)."""
        account, params = await self._signed(request)
        self.limiter.admit_order(request.remote or "unknown", account.api_key)
        req = order_request(params, algo=False)
        order = self.engine.place_order(account.api_key, req)
        # ACK and RESULT answer alike here: the order has already run when the reply is made
        return web.json_response(codec.order_json(order, with_time=False))

    def _ref(self, params: dict[str, str]) -> tuple[int | None, str | None]:
        return opt_int(params, "orderId"), opt_str(params, "origClientOrderId")

    async def get_order(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/order`` (-2013)."""
        account, params = await self._signed(request)
        order = self.engine.get_order(account.api_key, self._symbol(params), *self._ref(params))
        return web.json_response(codec.order_json(order))

    async def cancel_order(self, request: web.Request) -> web.Response:
        """``DELETE /fapi/v1/order`` (-2011)."""
        account, params = await self._signed(request)
        order = self.engine.cancel_order(account.api_key, self._symbol(params), *self._ref(params))
        return web.json_response(codec.order_json(order, with_time=False))

    async def cancel_all(self, request: web.Request) -> web.Response:
        """``DELETE /fapi/v1/allOpenOrders``."""
        account, params = await self._signed(request)
        symbol = self._symbol(params)
        for order in self.engine.orders(account.api_key, symbol):
            if order.status in (FStatus.NEW, FStatus.PARTIALLY_FILLED):
                self.engine.cancel_order(account.api_key, symbol, order.order_id, None)
        return web.json_response(
            {"code": 200, "msg": "The operation of cancel all open order is done."}
        )

    async def open_orders(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/openOrders`` (one symbol, or all)."""
        account, params = await self._signed(request)
        orders = self.engine.orders(account.api_key, self._opt_symbol(params))
        return web.json_response([codec.order_json(o) for o in orders if o.is_open])

    async def all_orders(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/allOrders``: ``orderId`` (>=), ``startTime``, ``endTime``, ``limit``."""
        account, params = await self._signed(request)
        orders = self.engine.orders(account.api_key, self._symbol(params))
        orders = history_page(
            orders,
            params,
            id_param="orderId",
            id_of=lambda o: o.order_id,
            time_of=lambda o: o.created_ms,
        )
        return web.json_response([codec.order_json(o) for o in orders])

    async def user_trades(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/userTrades``: ``orderId``, ``fromId``, ``startTime``, ``endTime``."""
        account, params = await self._signed(request)
        trades = self.engine.trades(account.api_key, self._symbol(params))
        order_id = opt_int(params, "orderId")
        if order_id is not None:
            trades = [t for t in trades if t.order_id == order_id]
        trades = history_page(
            trades,
            params,
            id_param="fromId",
            id_of=lambda t: t.trade_id,
            time_of=lambda t: t.time_ms,
        )
        return web.json_response([codec.trade_json(t) for t in trades])

    # ------------------------------------------------------------------ algo orders

    async def new_algo(self, request: web.Request) -> web.Response:
        """``POST /fapi/v1/algoOrder`` (``algoType=CONDITIONAL``)."""
        account, params = await self._signed(request)
        self.limiter.admit_order(request.remote or "unknown", account.api_key)
        algo = self.engine.place_algo(account.api_key, order_request(params, algo=True))
        return web.json_response(codec.algo_json(algo))

    def _algo_ref(self, params: dict[str, str]) -> tuple[int | None, str | None]:
        return opt_int(params, "algoId"), opt_str(params, "clientAlgoId")

    async def get_algo(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/algoOrder``."""
        account, params = await self._signed(request)
        algo = self.engine.get_algo(account.api_key, *self._algo_ref(params))
        return web.json_response(codec.algo_json(algo))

    async def cancel_algo(self, request: web.Request) -> web.Response:
        """``DELETE /fapi/v1/algoOrder``."""
        account, params = await self._signed(request)
        algo = self.engine.cancel_algo(account.api_key, *self._algo_ref(params))
        return web.json_response(
            {
                "algoId": algo.algo_id,
                "clientAlgoId": algo.client_algo_id,
                "code": "200",
                "msg": "success",
            }
        )

    async def open_algos(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/openAlgoOrders``."""
        account, params = await self._signed(request)
        algos = self.engine.algos(account.api_key, self._opt_symbol(params))
        return web.json_response([codec.algo_json(a) for a in algos if a.is_open])

    async def all_algos(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/allAlgoOrders``."""
        account, params = await self._signed(request)
        algos = self.engine.algos(account.api_key, self._symbol(params))
        return web.json_response([codec.algo_json(a) for a in algos])

    # ------------------------------------------------------------------ settings

    async def leverage(self, request: web.Request) -> web.Response:
        """``POST /fapi/v1/leverage``."""
        account, params = await self._signed(request)
        symbol = self._symbol(params)
        value = opt_int(params, "leverage")
        if value is None:
            raise mandatory("leverage")
        settings = self.engine.set_leverage(account.api_key, symbol, value)
        return web.json_response(
            {"leverage": settings.leverage, "maxNotionalValue": "100000000", "symbol": symbol}
        )

    async def margin_type(self, request: web.Request) -> web.Response:
        """``POST /fapi/v1/marginType`` (ISOLATED or CROSSED; -4046 when unchanged)."""
        account, params = await self._signed(request)
        symbol = self._symbol(params)
        kind = opt_enum(
            params, "marginType", MarginType, illegal_chars("marginType", "ISOLATED, CROSSED")
        )
        if kind is None:
            raise mandatory("marginType")
        self.engine.set_margin_type(account.api_key, symbol, kind)
        return web.json_response({"code": 200, "msg": "success"})

    async def set_dual(self, request: web.Request) -> web.Response:
        """``POST /fapi/v1/positionSide/dual`` (``dualSidePosition=true`` is hedge mode)."""
        account, params = await self._signed(request)
        if opt_str(params, "dualSidePosition") is None:
            raise mandatory("dualSidePosition")
        self.engine.set_dual_side(account.api_key, _bool(params, "dualSidePosition"))
        return web.json_response({"code": 200, "msg": "success"})

    async def get_dual(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/positionSide/dual``."""
        account, _ = await self._signed(request)
        return web.json_response(
            {"dualSidePosition": self.engine.wallet(account.api_key).dual_side}
        )

    async def leverage_bracket(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/leverageBracket``: one bracket per symbol (maintenance amount 0)."""
        _, params = await self._signed(request)
        symbol = self._opt_symbol(params)
        rows = [
            {
                "symbol": p.id,
                "notionalCoef": 1.0,
                "brackets": [
                    {
                        "bracket": 1,
                        "initialLeverage": p.max_leverage,
                        "notionalCap": 100000000,
                        "notionalFloor": 0,
                        "maintMarginRatio": float(p.maint_margin_rate),
                        "cum": 0.0,
                    }
                ],
            }
            for p in self.engine.perps.values()
            if symbol in (None, p.id)
        ]
        return web.json_response(rows)

    async def symbol_config(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/symbolConfig`` (ccxt binanceusdm ``fetch_leverages``): the account's
        leverage and margin type on every symbol (or ``symbol``), a position open or not."""
        account, params = await self._signed(request)
        symbol = self._opt_symbol(params)
        rows = []
        for perp in self.engine.perps.values():
            if symbol not in (None, perp.id):
                continue
            settings = self.engine.settings(account.api_key, perp.id)
            rows.append(
                {
                    "symbol": perp.id,
                    "marginType": settings.margin_type.value,
                    "isAutoAddMargin": False,
                    "leverage": settings.leverage,
                    "maxNotionalValue": "100000000",
                }
            )
        return web.json_response(rows)

    # ------------------------------------------------------------------ account

    async def position_risk_v2(self, request: web.Request) -> web.Response:
        """``GET /fapi/v2/positionRisk``: every symbol (one-way: BOTH; hedge: LONG and SHORT)."""
        account, params = await self._signed(request)
        symbol = self._opt_symbol(params)
        views = {(v.symbol, v.side): v for v in self.engine.positions(account.api_key, symbol)}
        wallet = self.engine.wallet(account.api_key)
        sides = (
            (PositionSide.LONG, PositionSide.SHORT) if wallet.dual_side else (PositionSide.BOTH,)
        )
        rows = []
        for perp in self.engine.perps.values():
            if symbol not in (None, perp.id):
                continue
            for side in sides:
                view = views.get((perp.id, side))
                if view is None:
                    view = self.engine.empty_view(account.api_key, perp.id, side)
                rows.append(codec.position_v2_json(view))
        return web.json_response(rows)

    async def position_risk_v3(self, request: web.Request) -> web.Response:
        """``GET /fapi/v3/positionRisk``: only positions that are open (as Binance's v3)."""
        account, params = await self._signed(request)
        views = self.engine.positions(account.api_key, self._opt_symbol(params))
        return web.json_response([codec.position_v3_json(v) for v in views if v.amount != 0])

    async def account(self, request: web.Request) -> web.Response:
        """``GET /fapi/v2/account`` and ``/fapi/v3/account``."""
        account, _ = await self._signed(request)
        view = self.engine.account(account.api_key)
        return web.json_response(codec.account_json(view, self.engine.positions(account.api_key)))

    async def balance(self, request: web.Request) -> web.Response:
        """``GET /fapi/v2/balance`` and ``/fapi/v3/balance``."""
        account, _ = await self._signed(request)
        view = self.engine.account(account.api_key)
        return web.json_response([codec.balance_json(view, account.api_key[:8])])

    async def income(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/income``: ``symbol``, ``incomeType``, ``startTime``, ``endTime``."""
        account, params = await self._signed(request)
        symbol = self._opt_symbol(params)
        kind = opt_str(params, "incomeType")
        rows = [
            i
            for i in self.engine.incomes(account.api_key)
            if symbol in (None, i.symbol) and kind in (None, i.kind)
        ]
        start, end = opt_int(params, "startTime"), opt_int(params, "endTime")
        rows = [
            i
            for i in rows
            if (start is None or i.time_ms >= start) and (end is None or i.time_ms <= end)
        ]
        rows = rows[: limit_param(params, 100, 1000)]
        return web.json_response(
            [
                {
                    "symbol": i.symbol,
                    "incomeType": i.kind,
                    "income": fmt8(i.amount),
                    "asset": "USDT",
                    "info": i.kind,
                    "time": i.time_ms,
                    "tranId": i.tran_id,
                    "tradeId": "",
                }
                for i in rows
            ]
        )

    # ------------------------------------------------------------------ listen keys

    def _key_account(self, request: web.Request) -> Account:
        account = lookup_key(self.engine.accounts, request.headers.get("X-MBX-APIKEY"))
        request[ACCOUNT_KEY] = account.api_key
        return account

    def _extend_live_key(self, api_key: str) -> str | None:
        # The account's unexpired listen key, extended by 60 minutes from now; None if none.
        now = self.now()
        for key, (owner, expiry) in self.listen_keys.items():
            if owner == api_key and expiry > now:
                self.listen_keys[key] = (owner, now + LISTEN_KEY_TTL_MS)
                return key
        return None

    async def listen_key_new(self, request: web.Request) -> web.Response:
        """``POST /fapi/v1/listenKey``: the account's active key (a new one if none)."""
        account = self._key_account(request)
        key = self._extend_live_key(account.api_key)
        if key is None:
            key = secrets.token_urlsafe(48)
            self.listen_keys[key] = (account.api_key, self.now() + LISTEN_KEY_TTL_MS)
        return web.json_response({"listenKey": key})

    async def listen_key_keep(self, request: web.Request) -> web.Response:
        """``PUT /fapi/v1/listenKey``: extend the account's key by 60 minutes (-1125)."""
        key = self._extend_live_key(self._key_account(request).api_key)
        if key is None:
            raise bad_request(-1125, "This listenKey does not exist.")
        return web.json_response({"listenKey": key})

    async def listen_key_close(self, request: web.Request) -> web.Response:
        """``DELETE /fapi/v1/listenKey``."""
        account = self._key_account(request)
        for key, (owner, _) in list(self.listen_keys.items()):
            if owner == account.api_key:
                del self.listen_keys[key]
        return web.json_response({})

    def owner_of(self, listen_key: str) -> str | None:
        """The API key behind a live listen key."""
        entry = self.listen_keys.get(listen_key)
        if entry is None or entry[1] <= self.now():
            return None
        return entry[0]
