"""Binance spot REST endpoints (docs/exchange-protocols.md §2.3), on top of the core engine."""

from __future__ import annotations

import json
import logging
import secrets
import string
import zlib
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

from aiohttp import web

from exchange_sim.binance import codec
from exchange_sim.binance.auth import authenticate_rest
from exchange_sim.binance.errors import (
    BinanceError,
    bad_request,
    from_venue_error,
    illegal_chars,
    invalid_symbol,
    mandatory,
    not_required,
)
from exchange_sim.binance.limits import BinanceRateLimiter, request_weight
from exchange_sim.binance.markets import market_id, rate_limit_json, symbol_json
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
from exchange_sim.core import book
from exchange_sim.core.accounts import Account, AccountBook
from exchange_sim.core.decimals import ZERO, fmt8
from exchange_sim.core.errors import VenueError
from exchange_sim.core.markets import Market
from exchange_sim.core.orders import OrderRequest, OrderType, Side, TimeInForce
from exchange_sim.core.state import VenueState

log = logging.getLogger(__name__)

#: request key under which a handler leaves the authenticated API key (for the order-count headers)
ACCOUNT_KEY: Any = (
    web.RequestKey("binance_account", str)
    if hasattr(web, "RequestKey")  # aiohttp >= 3.12
    else "exchange_sim.binance.account"
)
DAY_MS = 86_400_000
T = TypeVar("T")

_ORDER_PARAMS = {
    "symbol",
    "side",
    "type",
    "timeInForce",
    "quantity",
    "quoteOrderQty",
    "price",
    "newClientOrderId",
    "stopPrice",
    "newOrderRespType",
    "strategyId",
    "strategyType",
    "selfTradePreventionMode",
    "recvWindow",
    "timestamp",
}
_INTERVALS_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
}
_ALNUM = string.ascii_letters + string.digits


async def signed_request(
    request: web.Request, accounts: AccountBook, now_ms: int
) -> tuple[Account, dict[str, str]]:
    """Authenticate a signed request (``X-MBX-APIKEY``, signed query and body) at ``now_ms``.

    Returns the account and the request's parameters, and leaves the account's API key on the
    request (``ACCOUNT_KEY``) for the order-count headers.
    """
    raw_body = await request.text() if request.can_read_body else ""
    account, params = authenticate_rest(
        accounts,
        request.headers.get("X-MBX-APIKEY"),
        request.rel_url.raw_query_string,
        raw_body,
        now_ms,
    )
    request[ACCOUNT_KEY] = account.api_key
    return account, params


def _random_id() -> str:
    """An id like the ones Binance generates (22 alphanumerics)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(22))


def error_response(exc: BinanceError) -> web.Response:
    """The JSON reply for a Binance error, with ``Retry-After`` when it has one."""
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else None
    return web.json_response(exc.body(), status=exc.http_status, headers=headers)


def binance_middleware(limiter: BinanceRateLimiter) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Rate limits, Binance error replies and usage headers for every venue route."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            return await handler(request)
        ip = request.remote or "unknown"
        try:
            limiter.admit(ip, request_weight(request.method, request.path, request.query))
            response = await handler(request)
        except BinanceError as exc:
            response = error_response(exc)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("binance emulator: %s %s failed", request.method, request.path)
            response = error_response(
                BinanceError(500, -1000, "An unknown error occurred while processing the request.")
            )
        if not response.prepared:
            response.headers.update(limiter.headers(ip, request.get(ACCOUNT_KEY)))
        return response

    return middleware


class BinanceRest:
    """The REST handlers of one emulated Binance."""

    def __init__(self, state: VenueState, limiter: BinanceRateLimiter) -> None:
        self.state = state
        self.engine = state.engine
        self.limiter = limiter
        self._by_id = {market_id(m): m for m in self.engine.markets.values()}

    def routes(self) -> list[web.RouteDef]:
        """Every REST route."""
        empty_list = self._signed_stub([])
        no_symbols = self._public_stub({"symbols": []})
        return [
            web.get("/api/v3/ping", self.ping),
            web.get("/api/v3/time", self.time),
            web.get("/api/v3/exchangeInfo", self.exchange_info),
            web.get("/api/v3/depth", self.depth),
            web.get("/api/v3/ticker/24hr", self.ticker_24hr),
            web.get("/api/v3/ticker/price", self.ticker_price),
            web.get("/api/v3/klines", self.klines),
            web.post("/api/v3/order", self.new_order),
            web.get("/api/v3/order", self.get_order),
            web.delete("/api/v3/order", self.cancel_order),
            web.post("/api/v3/order/cancelReplace", self.cancel_replace),
            web.get("/api/v3/openOrders", self.open_orders),
            web.delete("/api/v3/openOrders", self.cancel_all),
            web.get("/api/v3/allOrders", self.all_orders),
            web.get("/api/v3/myTrades", self.my_trades),
            web.get("/api/v3/account", self.account),
            web.get("/sapi/v1/account/apiRestrictions", self.api_restrictions),
            # Asked for by ccxt's load_markets with default options (doc §2.1): empty answers do.
            web.get("/sapi/v1/capital/config/getall", empty_list),
            web.get("/sapi/v1/margin/allPairs", empty_list),
            web.get("/sapi/v1/margin/isolated/allPairs", empty_list),
            web.get("/dapi/v1/exchangeInfo", no_symbols),
        ]

    # ------------------------------------------------------------------ helpers

    async def _signed(self, request: web.Request) -> tuple[Account, dict[str, str]]:
        return await signed_request(request, self.engine.accounts, self.state.clock.now_ms())

    def _market(self, params: dict[str, str]) -> Market:
        market = self._by_id.get(req_str(params, "symbol"))
        if market is None:
            raise invalid_symbol()
        return market

    def _markets(self, params: dict[str, str]) -> list[Market]:
        """``symbol`` (one), ``symbols`` (a JSON array) or every market."""
        if opt_str(params, "symbol") is not None:
            return [self._market(params)]
        raw = opt_str(params, "symbols")
        if raw is None:
            return list(self._by_id.values())
        try:
            ids = json.loads(raw)
        except ValueError:
            raise illegal_chars("symbols", '["BTCUSDT","ETHUSDT"]') from None
        if not isinstance(ids, list) or not all(
            isinstance(i, str) and i in self._by_id for i in ids
        ):
            raise invalid_symbol()
        return [self._by_id[i] for i in ids]

    @staticmethod
    def _venue_call(
        call: Callable[..., T], *args: Any, cancelling: bool = False, **kwargs: Any
    ) -> T:
        """``call(*args, **kwargs)`` with core rejections turned into Binance errors."""
        try:
            return call(*args, **kwargs)
        except VenueError as exc:
            raise from_venue_error(exc, cancelling=cancelling) from None

    def _signed_stub(self, payload: Any) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            await self._signed(request)
            return web.json_response(payload)

        return handler

    @staticmethod
    def _public_stub(payload: Any) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(_: web.Request) -> web.Response:
            return web.json_response(payload)

        return handler

    @staticmethod
    def _query(request: web.Request) -> dict[str, str]:
        return parse_query(request.rel_url.raw_query_string)

    # ------------------------------------------------------------------ public

    async def ping(self, _: web.Request) -> web.Response:
        """``GET /api/v3/ping``."""
        return web.json_response({})

    async def time(self, _: web.Request) -> web.Response:
        """``GET /api/v3/time``."""
        return web.json_response({"serverTime": self.state.clock.now_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        """``GET /api/v3/exchangeInfo``: markets, filters, order types and rate limits."""
        markets = self._markets(self._query(request))
        limits = [rate_limit_json("REQUEST_WEIGHT", self.limiter.weight.spec)]
        limits += [rate_limit_json("ORDERS", w.spec) for w in self.limiter.orders]
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": self.state.clock.now_ms(),
                "rateLimits": limits,
                "exchangeFilters": [],
                "symbols": [symbol_json(m) for m in markets],
            }
        )

    async def depth(self, request: web.Request) -> web.Response:
        """``GET /api/v3/depth``: the synthetic book around the mark price."""
        params = self._query(request)
        market = self._market(params)
        limit = limit_param(params, 100, 5000)
        mark = self.engine.mark(market.symbol)
        return web.json_response(
            {
                "lastUpdateId": self.state.clock.now_ms(),
                "bids": [[fmt8(lv.price), fmt8(lv.qty)] for lv in book.bids(market, mark)[:limit]],
                "asks": [[fmt8(lv.price), fmt8(lv.qty)] for lv in book.asks(market, mark)[:limit]],
            }
        )

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        """``GET /api/v3/ticker/24hr`` (one symbol: an object; several or all: a list)."""
        params = self._query(request)
        tickers = [self._ticker(m) for m in self._markets(params)]
        return web.json_response(tickers[0] if opt_str(params, "symbol") else tickers)

    async def ticker_price(self, request: web.Request) -> web.Response:
        """``GET /api/v3/ticker/price``."""
        params = self._query(request)
        rows = [
            {"symbol": market_id(m), "price": fmt8(self.engine.mark(m.symbol))}
            for m in self._markets(params)
        ]
        return web.json_response(rows[0] if opt_str(params, "symbol") else rows)

    async def klines(self, request: web.Request) -> web.Response:
        """``GET /api/v3/klines`` from the recorded mark prices and trades."""
        params = self._query(request)
        market = self._market(params)
        interval = _INTERVALS_MS.get(req_str(params, "interval"))
        if interval is None:
            raise bad_request(-1120, "Invalid interval.")
        candles = self.engine.history.candles(
            market.symbol,
            interval,
            now_ms=self.state.clock.now_ms(),
            start_ms=opt_int(params, "startTime"),
            end_ms=opt_int(params, "endTime"),
            limit=limit_param(params, 500, 1000),
        )
        return web.json_response(
            [
                [
                    c.open_ms,
                    fmt8(c.open),
                    fmt8(c.high),
                    fmt8(c.low),
                    fmt8(c.close),
                    fmt8(c.volume),
                    c.close_ms,
                    fmt8(c.quote_volume),
                    c.trades,
                    "0.00000000",
                    "0.00000000",
                    "0",
                ]
                for c in candles
            ]
        )

    def _ticker(self, market: Market) -> dict[str, object]:
        now = self.state.clock.now_ms()
        start = now - DAY_MS
        points = self.engine.history.prices(market.symbol)
        before = [p for t, p in points if t <= start]
        window = [p for t, p in points if t > start]
        last = self.engine.mark(market.symbol)
        open_ = before[-1] if before else (window[0] if window else last)
        path = [open_, *window]
        trades = [t for t in self.engine.all_trades(market.symbol) if t.time_ms > start]
        volume = sum((t.qty for t in trades), ZERO)
        quote_volume = sum((t.quote_qty for t in trades), ZERO)
        best_bid, best_ask = book.bids(market, last)[0], book.asks(market, last)[0]
        change = last - open_
        return {
            "symbol": market_id(market),
            "priceChange": fmt8(change),
            "priceChangePercent": f"{(change * 100 / open_):.3f}" if open_ else "0.000",
            "weightedAvgPrice": fmt8(quote_volume / volume if volume else last),
            "prevClosePrice": fmt8(open_),
            "lastPrice": fmt8(last),
            "lastQty": fmt8(trades[-1].qty if trades else ZERO),
            "bidPrice": fmt8(best_bid.price),
            "bidQty": fmt8(best_bid.qty),
            "askPrice": fmt8(best_ask.price),
            "askQty": fmt8(best_ask.qty),
            "openPrice": fmt8(open_),
            "highPrice": fmt8(max(path)),
            "lowPrice": fmt8(min(path)),
            "volume": fmt8(volume),
            "quoteVolume": fmt8(quote_volume),
            "openTime": start,
            "closeTime": now,
            "firstId": trades[0].trade_id if trades else -1,
            "lastId": trades[-1].trade_id if trades else -1,
            "count": len(trades),
        }

    # ------------------------------------------------------------------ orders

    async def new_order(self, request: web.Request) -> web.Response:
        """``POST /api/v3/order``."""
        account, params = await self._signed(request)
        self.limiter.admit_order(request.remote or "unknown", account.api_key)
        unread = set(params) - _ORDER_PARAMS - {"signature"}
        if unread:
            raise bad_request(
                -1104,
                f"Not all sent parameters were read; read '{len(params) - len(unread)}' "
                f"parameter(s) but was sent '{len(params)}'.",
            )
        order_request, resp_type = _order_request(self._market(params), params)
        order = self._venue_call(self.engine.place_order, account.api_key, order_request)
        return web.json_response(codec.new_order_json(self.engine, order, resp_type))

    async def get_order(self, request: web.Request) -> web.Response:
        """``GET /api/v3/order`` by ``orderId`` or ``origClientOrderId`` (-2013 when unknown)."""
        account, params = await self._signed(request)
        market = self._market(params)
        order_id, client_id = _order_ref(params)
        order = self._venue_call(
            self.engine.get_order,
            account.api_key,
            market.symbol,
            order_id=order_id,
            client_order_id=client_id,
        )
        return web.json_response(codec.order_json(self.engine, order))

    async def cancel_order(self, request: web.Request) -> web.Response:
        """``DELETE /api/v3/order`` (-2011 when unknown or no longer open)."""
        account, params = await self._signed(request)
        market = self._market(params)
        order_id, client_id = _order_ref(params)
        cancel_id = _client_id(params, "newClientOrderId")
        order = self._venue_call(
            self.engine.cancel_order,
            account.api_key,
            market.symbol,
            order_id=order_id,
            client_order_id=client_id,
            cancel_client_order_id=cancel_id,
            cancelling=True,
        )
        return web.json_response(codec.cancel_json(self.engine, order))

    async def cancel_replace(self, request: web.Request) -> web.Response:
        """``POST /api/v3/order/cancelReplace`` (ccxt ``edit_order`` on spot): cancel the order
        named by ``cancelOrderId`` / ``cancelOrigClientOrderId``, then place a NEW order (new id)
        from the ``POST /api/v3/order`` parameters.

        ``cancelReplaceMode`` ``STOP_ON_FAILURE``: a failed cancel (unknown, filled or ended
        order: ``-2011``) places nothing, HTTP 400 ``-2022``; ``ALLOW_FAILURE`` places the new
        order anyway (HTTP 409 ``-2021`` when exactly one part failed, 400 ``-2022`` when both
        did). A cancel that succeeded and a new order the venue refused: HTTP 409 ``-2021`` (the
        old order stays canceled). The error bodies carry ``data`` with ``cancelResult`` /
        ``newOrderResult`` (``SUCCESS`` / ``FAILURE`` / ``NOT_ATTEMPTED``) and the two
        responses, as Binance's docs show. Parameter errors reject the whole request first.
        """
        account, params = await self._signed(request)
        self.limiter.admit_order(request.remote or "unknown", account.api_key)
        unread = set(params) - _ORDER_PARAMS - _CANCEL_REPLACE_PARAMS - {"signature"}
        if unread:
            raise bad_request(
                -1104,
                f"Not all sent parameters were read; read '{len(params) - len(unread)}' "
                f"parameter(s) but was sent '{len(params)}'.",
            )
        mode = opt_str(params, "cancelReplaceMode")
        if mode is None:
            raise mandatory("cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise illegal_chars("cancelReplaceMode", "STOP_ON_FAILURE, ALLOW_FAILURE")
        market = self._market(params)
        cancel_id = opt_int(params, "cancelOrderId")
        cancel_client_id = opt_str(params, "cancelOrigClientOrderId")
        if cancel_id is None and cancel_client_id is None:
            raise bad_request(
                -1102,
                "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be sent, "
                "but both were empty/null!",
            )
        cancel_new_id = _client_id(params, "cancelNewClientOrderId")
        new_params = {k: v for k, v in params.items() if k not in _CANCEL_REPLACE_PARAMS}
        order_request, resp_type = _order_request(market, new_params)
        cancel_response: dict[str, object]
        try:
            canceled = self._venue_call(
                self.engine.cancel_order,
                account.api_key,
                market.symbol,
                order_id=cancel_id,
                client_order_id=cancel_client_id,
                cancel_client_order_id=cancel_new_id,
                cancelling=True,
            )
            cancel_ok, cancel_response = True, codec.cancel_json(self.engine, canceled)
        except BinanceError as exc:
            cancel_ok, cancel_response = False, exc.body()
        if not cancel_ok and mode == "STOP_ON_FAILURE":
            raise CancelReplaceError(400, -2022, "FAILURE", "NOT_ATTEMPTED", cancel_response, None)
        try:
            placed = self._venue_call(self.engine.place_order, account.api_key, order_request)
            new_ok, new_response = True, codec.new_order_json(self.engine, placed, resp_type)
        except BinanceError as exc:
            new_ok, new_response = False, exc.body()
        if cancel_ok and new_ok:
            return web.json_response(
                {
                    "cancelResult": "SUCCESS",
                    "newOrderResult": "SUCCESS",
                    "cancelResponse": cancel_response,
                    "newOrderResponse": new_response,
                }
            )
        raise CancelReplaceError(
            409 if cancel_ok or new_ok else 400,
            -2021 if cancel_ok or new_ok else -2022,
            "SUCCESS" if cancel_ok else "FAILURE",
            "SUCCESS" if new_ok else "FAILURE",
            cancel_response,
            new_response,
        )

    async def cancel_all(self, request: web.Request) -> web.Response:
        """``DELETE /api/v3/openOrders``: cancel every open order on a symbol."""
        account, params = await self._signed(request)
        market = self._market(params)
        open_orders = self.engine.open_orders(account.api_key, market.symbol)
        if not open_orders:
            raise bad_request(-2011, "Unknown order sent.")
        canceled = [
            self._venue_call(
                self.engine.cancel_order,
                account.api_key,
                market.symbol,
                order_id=o.order_id,
                cancel_client_order_id=_random_id(),
                cancelling=True,
            )
            for o in open_orders
        ]
        return web.json_response([codec.cancel_json(self.engine, o) for o in canceled])

    async def open_orders(self, request: web.Request) -> web.Response:
        """``GET /api/v3/openOrders`` (one symbol, or all without ``symbol``)."""
        account, params = await self._signed(request)
        symbol = self._market(params).symbol if opt_str(params, "symbol") else None
        orders = self.engine.open_orders(account.api_key, symbol)
        return web.json_response([codec.order_json(self.engine, o) for o in orders])

    async def all_orders(self, request: web.Request) -> web.Response:
        """``GET /api/v3/allOrders``: ``orderId`` (>=), ``startTime``, ``endTime``, ``limit``."""
        account, params = await self._signed(request)
        market = self._market(params)
        orders = self.engine.orders(account.api_key, market.symbol)
        chosen = history_page(
            orders,
            params,
            id_param="orderId",
            id_of=lambda o: o.order_id,
            time_of=lambda o: o.created_ms,
            max_span_ms=DAY_MS,
        )
        return web.json_response([codec.order_json(self.engine, o) for o in chosen])

    async def my_trades(self, request: web.Request) -> web.Response:
        """``GET /api/v3/myTrades``.

        Parameters: ``orderId``, ``fromId`` (>=), ``startTime``, ``endTime``, ``limit``.
        """
        account, params = await self._signed(request)
        market = self._market(params)
        trades = self.engine.trades(account.api_key, market.symbol)
        order_id = opt_int(params, "orderId")
        if order_id is not None:
            trades = [t for t in trades if t.order_id == order_id]
        chosen = history_page(
            trades,
            params,
            id_param="fromId",
            id_of=lambda t: t.trade_id,
            time_of=lambda t: t.time_ms,
            max_span_ms=DAY_MS,
        )
        return web.json_response([codec.trade_json(self.engine, t) for t in chosen])

    # ------------------------------------------------------------------ account

    async def account(self, request: web.Request) -> web.Response:
        """``GET /api/v3/account``: balances and permissions."""
        account, params = await self._signed(request)
        assets = {m.base for m in self.engine.markets.values()} | {
            m.quote for m in self.engine.markets.values()
        }
        assets |= set(account.balances)
        rows = [(a, account.balance(a).free, account.balance(a).locked) for a in sorted(assets)]
        if opt_str(params, "omitZeroBalances") == "true":
            rows = [r for r in rows if r[1] or r[2]]
        fees = self.engine.fees
        return web.json_response(
            {
                "makerCommission": int(fees.maker * 10_000),
                "takerCommission": int(fees.taker * 10_000),
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": fmt8(fees.maker),
                    "taker": fmt8(fees.taker),
                    "buyer": fmt8(ZERO),
                    "seller": fmt8(ZERO),
                },
                "canTrade": account.can_trade,
                "canWithdraw": account.can_withdraw,
                "canDeposit": account.can_deposit,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": account.updated_ms,
                "accountType": "SPOT",
                "balances": codec.balances_json(rows),
                "permissions": ["SPOT"],
                "uid": _uid(account),
            }
        )

    async def api_restrictions(self, request: web.Request) -> web.Response:
        """``GET /sapi/v1/account/apiRestrictions``: what the key may do."""
        account, _ = await self._signed(request)
        return web.json_response(
            {
                "ipRestrict": False,
                "createTime": account.created_ms,
                "enableReading": True,
                "enableWithdrawals": account.can_withdraw,
                "enableInternalTransfer": False,
                "enableMargin": False,
                "enableFutures": account.can_trade,  # the emulator's /fapi trades with any key
                "permitsUniversalTransfer": False,
                "enableVanillaOptions": False,
                "enableFixApiTrade": False,
                "enableFixReadOnly": False,
                "enableSpotAndMarginTrading": account.can_trade,
                "enablePortfolioMarginTrading": False,
            }
        )


# ---------------------------------------------------------------------- request parsing


#: ``cancelReplace`` parameters beyond those of ``POST /api/v3/order``.
_CANCEL_REPLACE_PARAMS = {
    "cancelReplaceMode",
    "cancelOrderId",
    "cancelOrigClientOrderId",
    "cancelNewClientOrderId",
}


class CancelReplaceError(BinanceError):
    """A ``cancelReplace`` that failed in part or whole: ``code``/``msg`` plus ``data``."""

    def __init__(
        self,
        http_status: int,
        code: int,
        cancel_result: str,
        new_result: str,
        cancel_response: dict[str, object],
        new_response: dict[str, object] | None,
    ) -> None:
        msg = (
            "Order cancel-replace partially failed."
            if code == -2021
            else "Order cancel-replace failed."
        )
        super().__init__(http_status, code, msg)
        self.data = {
            "cancelResult": cancel_result,
            "newOrderResult": new_result,
            "cancelResponse": cancel_response,
            "newOrderResponse": new_response,
        }

    def body(self) -> dict[str, object]:
        """``{"code", "msg", "data": {...}}``."""
        return {**super().body(), "data": self.data}


def _uid(account: Account) -> int:
    """A stable numeric account id derived from the key (Binance's ``uid``)."""
    return zlib.crc32(account.api_key.encode())


def _client_id(params: dict[str, str], name: str) -> str:
    value = opt_str(params, name)
    if value is None:
        return _random_id()
    if not CLIENT_ORDER_ID_RE.match(value):
        raise illegal_chars(name, "^[a-zA-Z0-9-_]{1,36}$")
    return value


def _order_ref(params: dict[str, str]) -> tuple[int | None, str | None]:
    order_id, client_id = opt_int(params, "orderId"), opt_str(params, "origClientOrderId")
    if order_id is None and client_id is None:
        raise bad_request(
            -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        )
    return order_id, client_id


_NEEDS = {  # order type -> (needs timeInForce, needs price, needs stopPrice)
    OrderType.MARKET: (False, False, False),
    OrderType.LIMIT: (True, True, False),
    OrderType.LIMIT_MAKER: (False, True, False),
    OrderType.STOP_LOSS: (False, False, True),
    OrderType.STOP_LOSS_LIMIT: (True, True, True),
    OrderType.TAKE_PROFIT: (False, False, True),
    OrderType.TAKE_PROFIT_LIMIT: (True, True, True),
}


def _order_request(market: Market, params: dict[str, str]) -> tuple[OrderRequest, str]:
    """Turn ``POST /api/v3/order`` parameters into a core request and the reply shape."""
    side = opt_enum(params, "side", Side, bad_request(-1117, "Invalid side."))
    kind = opt_enum(params, "type", OrderType, bad_request(-1116, "Invalid orderType."))
    if side is None:
        raise mandatory("side")
    if kind is None:
        raise mandatory("type")
    tif = opt_enum(params, "timeInForce", TimeInForce, bad_request(-1115, "Invalid timeInForce."))
    needs_tif, needs_price, needs_stop = _NEEDS[kind]
    price = _present_if(params, "price", needs_price)
    stop = _present_if(params, "stopPrice", needs_stop)
    if needs_tif and tif is None:
        raise mandatory("timeInForce")
    if not needs_tif and tif is not None:
        raise not_required("timeInForce")
    quantity, quote = opt_decimal(params, "quantity"), opt_decimal(params, "quoteOrderQty")
    if kind is OrderType.MARKET:
        if quantity is None and quote is None:
            raise bad_request(
                -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
            )
        if quantity is not None and quote is not None:
            raise not_required("quoteOrderQty")
    else:
        if quote is not None:
            raise not_required("quoteOrderQty")
        if quantity is None:
            raise mandatory("quantity")
    resp_type = opt_str(params, "newOrderRespType") or (
        "FULL" if kind in (OrderType.MARKET, OrderType.LIMIT) else "ACK"
    )
    if resp_type not in ("ACK", "RESULT", "FULL"):
        raise illegal_chars("newOrderRespType", "ACK, RESULT, FULL")
    return OrderRequest(
        symbol=market.symbol,
        side=side,
        type=kind,
        client_order_id=_client_id(params, "newClientOrderId"),
        quantity=quantity,
        quote_quantity=quote,
        price=price,
        stop_price=stop,
        time_in_force=tif,
    ), resp_type


def _present_if(params: dict[str, str], name: str, needed: bool) -> Decimal | None:
    value = opt_decimal(params, name)
    if needed and value is None:
        raise mandatory(name)
    if not needed and value is not None:
        raise not_required(name)
    return value
