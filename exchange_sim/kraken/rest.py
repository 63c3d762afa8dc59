"""Kraken spot REST (docs/exchange-protocols.md §4.3) over the core engine.

``/0/public/<Method>`` (GET or POST) and ``/0/private/<Method>`` (POST, signed). Every reply is
``{"error": [], "result": ...}``; failures are ``{"error": ["<string>"], "result": {}}`` with HTTP
200 (404 for an unknown method). Choices where Kraken's documentation is silent or unverified are
written beside the code and in exchange_sim/README.md.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from aiohttp import web

from exchange_sim.core import book
from exchange_sim.core.accounts import Account
from exchange_sim.core.decimals import CTX, ZERO
from exchange_sim.core.errors import VenueError
from exchange_sim.core.orders import Order, OrderRequest, OrderType, Side, TimeInForce, Trade
from exchange_sim.kraken import codec, ids
from exchange_sim.kraken.auth import authenticate
from exchange_sim.kraken.errors import (
    INTERNAL_ERROR,
    INVALID_ORDER,
    PERMISSION_DENIED,
    POST_ONLY,
    UNKNOWN_ASSET,
    UNKNOWN_METHOD,
    UNKNOWN_ORDER,
    UNKNOWN_PAIR,
    UNKNOWN_WITHDRAW_KEY,
    KrakenError,
    from_venue_error,
    invalid_arguments,
    invalid_price,
)
from exchange_sim.kraken.limits import KrakenRateLimiter
from exchange_sim.kraken.markets import KrakenAsset, KrakenPair, asset_json, pair_json
from exchange_sim.kraken.params import (
    comma_list,
    decimal_places,
    opt_bool,
    opt_decimal,
    opt_int,
    opt_str,
    opt_time_ms,
)
from exchange_sim.kraken.state import TOKEN_LIFETIME_S, KrakenState

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
PAGE = 50  # ClosedOrders / TradesHistory page size (Kraken: 50, most recent first)
_OHLC_INTERVALS = {1, 5, 15, 30, 60, 240, 1440, 10080, 21600}  # minutes
_OHLC_LIMIT = 720
#: Private calls Kraken meters with the trading counter rather than the REST counter.
_NOT_METERED = {"AddOrder", "AmendOrder", "CancelOrder"}
#: ``AmendOrder`` parameters the emulator honours; anything else is refused, never ignored.
_AMEND_PARAMS = {"nonce", "txid", "cl_ord_id", "order_qty", "limit_price", "post_only"}
_ORDER_TYPES = {
    "market": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "stop-loss": OrderType.STOP_LOSS,
    "stop-loss-limit": OrderType.STOP_LOSS_LIMIT,
    "take-profit": OrderType.TAKE_PROFIT,
    "take-profit-limit": OrderType.TAKE_PROFIT_LIMIT,
}
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_ADD_ORDER_PARAMS = {
    "nonce",
    "pair",
    "type",
    "ordertype",
    "volume",
    "price",
    "price2",
    "timeinforce",
    "oflags",
    "cl_ord_id",
    "userref",
    "validate",
    "otp",
}
_OFLAGS = {"post", "fciq", "viqc"}  # fcib and nompp are not emulated: refused, never ignored
_WITHDRAW_METHODS = {  # asset id -> (method, network, minimum); [U] values
    "XXBT": ("Bitcoin", "Bitcoin", "0.0005"),
    "XETH": ("Ether", "Ethereum", "0.005"),
    "XLTC": ("Litecoin", "Litecoin", "0.002"),
}
T = TypeVar("T")
PublicHandler = Callable[[Mapping[str, str]], Any]
PrivateHandler = Callable[[Account, Mapping[str, str]], Any]


def ok(result: object) -> web.Response:
    """A successful Kraken reply (Decimals written as exact JSON numbers)."""
    return web.json_response({"error": [], "result": result}, dumps=codec.dumps)


def error_response(exc: KrakenError) -> web.Response:
    """A Kraken error reply."""
    return web.json_response(exc.body(), status=exc.http_status)


def kraken_middleware(limiter: KrakenRateLimiter) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Public rate limits (per IP) and Kraken error replies for every venue route."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            return await handler(request)
        try:
            if request.path.startswith("/0/public/"):
                limiter.admit_request(f"ip:{request.remote or 'unknown'}")
            return await handler(request)
        except KrakenError as exc:
            return error_response(exc)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("kraken emulator: %s %s failed", request.method, request.path)
            return error_response(KrakenError(INTERNAL_ERROR))

    return middleware


class KrakenRest:
    """The REST handlers of one emulated Kraken."""

    def __init__(self, state: KrakenState, limiter: KrakenRateLimiter) -> None:
        self.state = state
        self.engine = state.engine
        self.limiter = limiter
        self._amends = 0  # numbers the amend_id of each AmendOrder
        self._public: dict[str, PublicHandler] = {
            "Time": self.time,
            "SystemStatus": self.system_status,
            "Assets": self.assets,
            "AssetPairs": self.asset_pairs,
            "Ticker": self.ticker,
            "Depth": self.depth,
            "OHLC": self.ohlc,
        }
        self._private: dict[str, PrivateHandler] = {
            "Balance": self.balance,
            "BalanceEx": self.balance_ex,
            "AddOrder": self.add_order,
            "AmendOrder": self.amend_order,
            "CancelOrder": self.cancel_order,
            "CancelAll": self.cancel_all,
            "QueryOrders": self.query_orders,
            "OpenOrders": self.open_orders,
            "ClosedOrders": self.closed_orders,
            "TradesHistory": self.trades_history,
            "QueryTrades": self.query_trades,
            "GetWebSocketsToken": self.websockets_token,
            "GetApiKeyInfo": self.api_key_info,
            "WithdrawMethods": self.withdraw_methods,
            "WithdrawInfo": self.withdraw_info,
        }

    def routes(self) -> list[web.RouteDef]:
        """Every REST route."""
        return [
            web.get("/0/public/{method}", self.public),
            web.post("/0/public/{method}", self.public),
            web.post("/0/private/{method}", self.private),
        ]

    # ------------------------------------------------------------------ dispatch

    async def public(self, request: web.Request) -> web.Response:
        """``/0/public/<Method>``: query-string (or form body) parameters."""
        handler = self._public.get(request.match_info["method"])
        if handler is None:
            raise KrakenError(UNKNOWN_METHOD, 404)
        params = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            params.update(await request.post())  # type: ignore[arg-type]  # a urlencoded form: str values
        return ok(handler(params))

    async def private(self, request: web.Request) -> web.Response:
        """``/0/private/<Method>``: authenticated, then metered, then handled."""
        method = request.match_info["method"]
        handler = self._private.get(method)
        if handler is None:
            raise KrakenError(UNKNOWN_METHOD, 404)
        raw_body = await request.text()
        account, params = authenticate(
            self.engine.accounts,
            self.state.nonces,
            request.headers,
            request.rel_url.raw_path,
            raw_body,
        )
        if method not in _NOT_METERED:
            self.limiter.admit_request(f"key:{account.api_key}")
        return ok(handler(account, params))

    # ------------------------------------------------------------------ helpers

    def _pair(self, name: str | None) -> KrakenPair:
        pair = self.state.pair(name) if name else None
        if pair is None:
            raise KrakenError(UNKNOWN_PAIR)
        return pair

    def _pairs(self, params: Mapping[str, str]) -> list[KrakenPair]:
        names = comma_list(opt_str(params, "pair") or "")
        return [self._pair(n) for n in names] if names else list(self.state.pairs)

    def _asset(self, name: str) -> KrakenAsset:
        asset = self.state.assets_by_name.get(name.upper())
        if asset is None:
            raise KrakenError(UNKNOWN_ASSET)
        return asset

    def _pair_of(self, order: Order | Trade) -> KrakenPair:
        return self.state.by_symbol[order.symbol]

    def _order_txid_time(self, api_key: str) -> Callable[[str], int | None]:
        def time_of(txid: str) -> int | None:
            order = self._find_order(api_key, txid)
            return order.created_ms if order is not None else None

        return time_of

    def _find_order(self, api_key: str, txid: str) -> Order | None:
        number = ids.order_number(txid)
        if number is None:
            return None
        for order in self.engine.orders(api_key):
            if order.order_id == number:
                return order
        return None

    def _trade_txids(self, order: Order) -> list[str]:
        return [
            f.txid for f in codec.fills(self.engine.trades_of_order(order), consolidate_taker=True)
        ]

    def _order_info(self, order: Order, with_trades: bool) -> dict[str, object]:
        return codec.order_info(
            self._pair_of(order), order, self._trade_txids(order) if with_trades else None
        )

    @staticmethod
    def _venue_call(
        call: Callable[..., T],
        *args: Any,
        request: OrderRequest | None = None,
        pair: KrakenPair | None = None,
        **kwargs: Any,
    ) -> T:
        try:
            return call(*args, **kwargs)
        except VenueError as exc:
            raise from_venue_error(exc, request, pair) from None

    @staticmethod
    def _userref_filter(params: Mapping[str, str]) -> int | None:
        return opt_int(params, "userref", ids.USERREF_MIN, ids.USERREF_MAX)

    @staticmethod
    def _matches_userref(order: Order, userref: int | None) -> bool:
        return userref is None or ids.userref_of(order.client_order_id) == userref

    # ------------------------------------------------------------------ public

    def time(self, _: Mapping[str, str]) -> dict[str, object]:
        """``Time``."""
        now_s = self.state.clock.now_ms() // 1000
        return {
            "unixtime": now_s,
            "rfc1123": time.strftime("%a, %d %b %y %H:%M:%S +0000", time.gmtime(now_s)),
        }

    def system_status(self, _: Mapping[str, str]) -> dict[str, object]:
        """``SystemStatus``: always online."""
        return {
            "status": "online",
            "timestamp": codec.rfc3339(self.state.clock.now_ms())[:19] + "Z",
        }

    def assets(self, params: Mapping[str, str]) -> dict[str, object]:
        """``Assets`` (optionally ``asset=XBT,ZUSD``)."""
        names = comma_list(opt_str(params, "asset") or "")
        chosen = (
            [self._asset(n) for n in names] if names else list(self.state.assets_by_code.values())
        )
        return {a.asset_id: asset_json(a) for a in chosen}

    def asset_pairs(self, params: Mapping[str, str]) -> dict[str, object]:
        """``AssetPairs`` (``pair``, ``info`` = info | leverage | fees | margin)."""
        info = opt_str(params, "info") or "info"
        keys = {
            "info": None,
            "leverage": ("leverage_buy", "leverage_sell"),
            "fees": ("fees", "fees_maker", "fee_volume_currency"),
            "margin": ("margin_call", "margin_stop"),
        }
        if info not in keys:
            raise invalid_arguments("info")
        result: dict[str, object] = {}
        for pair in self._pairs(params):
            full = pair_json(pair)
            wanted = keys[info]
            result[pair.pair_id] = full if wanted is None else {k: full[k] for k in wanted}
        return result

    def ticker(self, params: Mapping[str, str]) -> dict[str, object]:
        """``Ticker``: best bid/ask from the synthetic book, last = mark, today and 24 h stats."""
        return {pair.pair_id: self._ticker(pair) for pair in self._pairs(params)}

    def _ticker(self, pair: KrakenPair) -> dict[str, object]:
        market = pair.market
        now = self.state.clock.now_ms()
        today, day_ago = now - now % DAY_MS, now - DAY_MS
        last = self.engine.mark(market.symbol)
        points = self.engine.history.prices(market.symbol)
        trades = self.engine.all_trades(market.symbol)

        def window(start: int) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, int]:
            before = [p for t, p in points if t < start]
            inside = [p for t, p in points if t >= start]
            opening = before[-1] if before else (inside[0] if inside else last)
            path = [opening, *inside]
            chosen = [t for t in trades if t.time_ms >= start]
            volume = sum((t.qty for t in chosen), ZERO)
            quote = sum((t.quote_qty for t in chosen), ZERO)
            vwap = CTX.divide(quote, volume) if volume else last
            return opening, min(path), max(path), volume, vwap, len(chosen)

        open_t, low_t, high_t, vol_t, vwap_t, n_t = window(today)
        _, low_d, high_d, vol_d, vwap_d, n_d = window(day_ago)
        ask, bid = book.asks(market, last)[0], book.bids(market, last)[0]

        def level(lv: book.Level) -> list[str]:
            return [
                codec.price_str(pair, lv.price),
                str(max(1, int(lv.qty))),
                codec.fixed(lv.qty, 3),
            ]

        return {
            "a": level(ask),
            "b": level(bid),
            "c": [
                codec.price_str(pair, last),
                codec.vol_str(pair, trades[-1].qty if trades else ZERO),
            ],
            "v": [codec.vol_str(pair, vol_t), codec.vol_str(pair, vol_d)],
            "p": [codec.cost_str(pair, vwap_t), codec.cost_str(pair, vwap_d)],
            "t": [n_t, n_d],
            "l": [codec.price_str(pair, low_t), codec.price_str(pair, low_d)],
            "h": [codec.price_str(pair, high_t), codec.price_str(pair, high_d)],
            "o": codec.price_str(pair, open_t),
        }

    def depth(self, params: Mapping[str, str]) -> dict[str, object]:
        """``Depth`` (``pair``, ``count`` 1-500, default 100): the synthetic book."""
        pair = self._pair(opt_str(params, "pair"))
        count = opt_int(params, "count", 1, 500) or 100
        mark = self.engine.mark(pair.symbol)
        stamp = self.state.clock.now_ms() // 1000

        def side(levels: list[book.Level]) -> list[list[object]]:
            return [
                [codec.price_str(pair, lv.price), codec.vol_str(pair, lv.qty), stamp]
                for lv in levels[:count]
            ]

        return {
            pair.pair_id: {
                "asks": side(book.asks(pair.market, mark)),
                "bids": side(book.bids(pair.market, mark)),
            }
        }

    def ohlc(self, params: Mapping[str, str]) -> dict[str, object]:
        """``OHLC`` from the price history: the last 720 bars, those after ``since`` (exclusive)
        when given; the last bar is the current, unfinished one and ``last`` the one before it."""
        pair = self._pair(opt_str(params, "pair"))
        interval = opt_int(params, "interval") or 1
        if interval not in _OHLC_INTERVALS:
            raise invalid_arguments("interval")
        since = opt_int(params, "since")
        interval_ms = interval * 60_000
        now = self.state.clock.now_ms()
        candles = self.engine.history.candles(
            pair.symbol, interval_ms, now_ms=now, limit=_OHLC_LIMIT
        )
        rows = []
        for c in candles:
            if since is not None and c.open_ms // 1000 <= since:
                continue
            vwap = CTX.divide(c.quote_volume, c.volume) if c.volume else c.close
            rows.append(
                [
                    c.open_ms // 1000,
                    codec.price_str(pair, c.open),
                    codec.price_str(pair, c.high),
                    codec.price_str(pair, c.low),
                    codec.price_str(pair, c.close),
                    codec.price_str(pair, vwap),
                    codec.vol_str(pair, c.volume),
                    c.trades,
                ]
            )
        last = (now // interval_ms * interval_ms - interval_ms) // 1000
        return {pair.pair_id: rows, "last": last}

    # ------------------------------------------------------------------ private: account

    def _balances(self, account: Account) -> list[tuple[str, int, Decimal, Decimal]]:
        rows = []
        for code, bal in sorted(account.balances.items()):
            asset = self.state.assets_by_code.get(code)
            rows.append(
                (self.state.asset_id(code), asset.decimals if asset else 8, bal.total, bal.locked)
            )
        return rows

    def balance(self, account: Account, _: Mapping[str, str]) -> dict[str, object]:
        """``Balance``: total per asset the account holds or has held."""
        return {
            asset_id: codec.fixed(total, places)
            for asset_id, places, total, _ in self._balances(account)
        }

    def balance_ex(self, account: Account, _: Mapping[str, str]) -> dict[str, object]:
        """``BalanceEx``: ``balance`` (truncated) and ``hold_trade`` (rounded up), so the free
        amount a client derives (balance - hold_trade) never exceeds the truth."""
        return {
            asset_id: {
                "balance": codec.fixed(total, places),
                "hold_trade": codec.fixed(locked, places, up=True),
            }
            for asset_id, places, total, locked in self._balances(account)
        }

    def websockets_token(self, account: Account, _: Mapping[str, str]) -> dict[str, object]:
        """``GetWebSocketsToken``: a token to subscribe with within 15 minutes."""
        return {
            "token": self.state.tokens.issue(account.api_key, self.state.clock.now_ms()),
            "expires": TOKEN_LIFETIME_S,
        }

    def api_key_info(self, account: Account, _: Mapping[str, str]) -> dict[str, object]:
        """``GetApiKeyInfo`` (needs no permission): the key's permissions. This is the probe for a
        withdraw-enabled key: ``withdraw-funds`` in ``permissions``. Permission names: [D] the
        docs' example shows query-funds, withdraw-funds, query-open-trades and modify-trades;
        query-closed-trades and cancel-close-trades are [U] by analogy."""
        permissions = ["query-funds", "query-open-trades", "query-closed-trades"]
        if account.can_trade:
            permissions += ["modify-trades", "cancel-close-trades"]
        if account.can_withdraw:
            permissions.append("withdraw-funds")
        now_s = str(self.state.clock.now_ms() // 1000)
        key = account.api_key.encode()
        code = f"{zlib.crc32(key):010d}{zlib.adler32(key):010d}"
        return {
            "apiKeyName": f"sim-{account.api_key[:8]}",
            "apiKey": account.api_key,
            "nonce": str(self.state.nonces.last(account.api_key) or 0),
            "nonceWindow": 0,
            "permissions": permissions,
            "iban": f"AA{code[:2]} {code[2:6]} {code[6:10]} {code[10:14]}",
            "validUntil": "0",
            "queryFrom": "0",
            "queryTo": "0",
            "createdTime": str(account.created_ms // 1000),
            "modifiedTime": str(account.created_ms // 1000),
            "ipAllowlist": [],
            "lastUsed": now_s,
        }

    def withdraw_methods(
        self, account: Account, params: Mapping[str, str]
    ) -> list[dict[str, object]]:
        """``WithdrawMethods``: needs the Query Funds and Withdraw Funds permissions
        (docs.kraken.com): a key without withdrawal rights gets ``EGeneral:Permission denied``."""
        if not account.can_withdraw:
            raise KrakenError(PERMISSION_DENIED)
        name = opt_str(params, "asset")
        assets = [self._asset(name)] if name else list(self.state.assets_by_code.values())
        rows: list[dict[str, object]] = []
        for asset in assets:
            method = _WITHDRAW_METHODS.get(asset.asset_id)
            if method is not None:
                rows.append(
                    {
                        "asset": asset.asset_id,
                        "method": method[0],
                        "network": method[1],
                        "minimum": method[2],
                    }
                )
        return rows

    def withdraw_info(self, account: Account, params: Mapping[str, str]) -> dict[str, object]:
        """``WithdrawInfo`` (``asset``, ``key``, ``amount``): needs Withdraw Funds. The emulator has
        no withdrawal addresses: a permitted key always gets ``EFunding:Unknown withdraw key``."""
        if not account.can_withdraw:
            raise KrakenError(PERMISSION_DENIED)
        self._asset(opt_str(params, "asset") or "")
        if opt_str(params, "key") is None:
            raise invalid_arguments("key")
        amount = opt_decimal(params, "amount")
        if amount is None or amount <= 0:
            raise invalid_arguments("amount")
        raise KrakenError(UNKNOWN_WITHDRAW_KEY)

    # ------------------------------------------------------------------ private: orders

    def add_order(self, account: Account, params: Mapping[str, str]) -> dict[str, object]:
        """``AddOrder``: market, limit (GTC, IOC, post-only), stop-loss and take-profit (-limit)."""
        if not account.can_trade:
            raise KrakenError(PERMISSION_DENIED)
        pair = self._pair(opt_str(params, "pair"))
        order_request = _order_request(pair, params)
        self.limiter.admit_order(f"key:{account.api_key}")
        order = self._venue_call(
            self.engine.place_order,
            account.api_key,
            order_request,
            request=order_request,
            pair=pair,
        )
        return {
            "descr": {"order": codec.descr_order(pair, order)},
            "txid": [ids.order_txid(order.order_id)],
        }

    def amend_order(self, account: Account, params: Mapping[str, str]) -> dict[str, object]:
        """``AmendOrder`` (what ccxt 4.5.90 ``edit_order`` calls; ``EditOrder`` is not emulated):
        the open GTC limit order named by ``txid`` or ``cl_ord_id`` keeps its txid and gets
        ``order_qty`` (total, not above what filled) and/or ``limit_price``. ``post_only=true``
        refuses a price that would take (``EOrder:Post only order``). An unknown or ended order:
        ``EOrder:Unknown order`` [U wording]; another order type: ``EGeneral:Invalid arguments``.
        Reply ``{"amend_id": <id>}``; the order's new state is read with ``QueryOrders``."""
        if not account.can_trade:
            raise KrakenError(PERMISSION_DENIED)
        unknown = sorted(set(params) - _AMEND_PARAMS)
        if unknown:  # display_qty, trigger_price, deadline: not emulated
            raise invalid_arguments(unknown[0])
        cl_ord_id, txid = opt_str(params, "cl_ord_id"), opt_str(params, "txid")
        if (cl_ord_id is None) == (txid is None):
            raise invalid_arguments("txid")
        open_orders = self.engine.open_orders(account.api_key)
        if cl_ord_id is not None:
            targets = [o for o in open_orders if ids.cl_ord_id_of(o.client_order_id) == cl_ord_id]
        else:
            number = ids.order_number(txid or "")
            targets = [o for o in open_orders if o.order_id == number]
        if not targets:
            raise KrakenError(UNKNOWN_ORDER)
        order = targets[0]
        pair = self._pair_of(order)
        quantity = opt_decimal(params, "order_qty")
        if quantity is not None and (quantity <= 0 or decimal_places(quantity) > pair.lot_decimals):
            raise invalid_arguments("order_qty")
        price = _price(pair, params, "limit_price")
        if quantity is None and price is None:
            raise invalid_arguments("order_qty")
        if opt_bool(params, "post_only", False) and price is not None:
            best = book.opposite_side(pair.market, self.engine.mark(order.symbol), order.side)
            if best and book.crosses(order.side, price, best[0].price):
                raise KrakenError(POST_ONLY)
        self._venue_call(
            self.engine.amend_order,
            account.api_key,
            order.symbol,
            order.order_id,
            quantity=quantity,
            price=price,
        )
        self._amends += 1
        return {"amend_id": ids.trade_txid((1 << 40) + self._amends)}

    def cancel_order(self, account: Account, params: Mapping[str, str]) -> dict[str, object]:
        """``CancelOrder`` by ``txid`` (an order txid, or an integer userref: all its open orders)
        or by ``cl_ord_id``. No open order matches: ``EOrder:Unknown order``."""
        if not account.can_trade:
            raise KrakenError(PERMISSION_DENIED)
        open_orders = self.engine.open_orders(account.api_key)
        cl_ord_id, txid = opt_str(params, "cl_ord_id"), opt_str(params, "txid")
        if cl_ord_id is not None:
            targets = [o for o in open_orders if ids.cl_ord_id_of(o.client_order_id) == cl_ord_id]
        elif txid is None:
            raise invalid_arguments("txid")
        elif ids.is_txid(txid):
            number = ids.order_number(txid)
            targets = [o for o in open_orders if o.order_id == number]
        else:
            userref = opt_int(params, "txid", ids.USERREF_MIN, ids.USERREF_MAX)
            targets = [o for o in open_orders if ids.userref_of(o.client_order_id) == userref]
        if not targets:
            raise KrakenError(UNKNOWN_ORDER)
        for order in targets:
            self._venue_call(
                self.engine.cancel_order, account.api_key, order.symbol, order_id=order.order_id
            )
        return {"count": len(targets)}

    def cancel_all(self, account: Account, _: Mapping[str, str]) -> dict[str, object]:
        """``CancelAll``: every open order of the account."""
        if not account.can_trade:
            raise KrakenError(PERMISSION_DENIED)
        open_orders = self.engine.open_orders(account.api_key)
        for order in open_orders:
            self._venue_call(
                self.engine.cancel_order, account.api_key, order.symbol, order_id=order.order_id
            )
        return {"count": len(open_orders)}

    def query_orders(self, account: Account, params: Mapping[str, str]) -> dict[str, object]:
        """``QueryOrders`` (``txid`` list of up to 50, ``trades``, ``userref``). A txid that is not
        one of the account's orders: ``EOrder:Invalid order`` (ccxt: InvalidOrder, the parent of
        OrderNotFound, so clients must handle both). A known order that fails the ``userref``
        filter is left out (an empty result: ccxt raises OrderNotFound)."""
        txids = comma_list(opt_str(params, "txid") or "")
        if not txids or len(txids) > 50:
            raise invalid_arguments("txid")
        userref = self._userref_filter(
            params
        )  # ccxt sends clientOrderId here: non-integers are invalid
        with_trades = opt_bool(params, "trades", False)
        result: dict[str, object] = {}
        for txid in txids:
            order = self._find_order(account.api_key, txid)
            if order is None:
                raise KrakenError(INVALID_ORDER)
            if self._matches_userref(order, userref):
                result[txid] = self._order_info(order, with_trades)
        return result

    def open_orders(self, account: Account, params: Mapping[str, str]) -> dict[str, object]:
        """``OpenOrders`` (``trades``, ``userref``; newest first).

        ``cl_ord_id`` is accepted and deliberately not applied: whether Kraken filters by it
        server-side is unverified (docs/reliability.md §5), so clients must filter the answer
        themselves, and a client that does works whichever way Kraken behaves.
        """
        userref = self._userref_filter(params)
        with_trades = opt_bool(params, "trades", False)
        orders = [
            o
            for o in reversed(self.engine.open_orders(account.api_key))
            if self._matches_userref(o, userref)
        ]
        return {
            "open": {ids.order_txid(o.order_id): self._order_info(o, with_trades) for o in orders}
        }

    def closed_orders(self, account: Account, params: Mapping[str, str]) -> dict[str, object]:
        """``ClosedOrders``: filled and canceled orders, 50 per page, most recently closed first.

        ``start`` (exclusive) / ``end`` (inclusive) are Unix seconds or order txids (their open
        time); ``closetime`` = open | close | both (default: either time in range); ``ofs`` pages;
        ``userref`` filters. ``cl_ord_id`` is not applied (see ``open_orders``).
        """
        userref = self._userref_filter(params)
        with_trades = opt_bool(params, "trades", False)
        time_of = self._order_txid_time(account.api_key)
        start, end = opt_time_ms(params, "start", time_of), opt_time_ms(params, "end", time_of)
        closetime = opt_str(params, "closetime") or "both"
        if closetime not in ("open", "close", "both"):
            raise invalid_arguments("closetime")
        offset = opt_int(params, "ofs", 0) or 0

        def in_range(ms: int) -> bool:
            return (start is None or ms > start) and (end is None or ms <= end)

        def chosen(order: Order) -> bool:
            times = {
                "open": (order.created_ms,),
                "close": (order.updated_ms,),
                "both": (order.created_ms, order.updated_ms),
            }[closetime]
            return any(in_range(t) for t in times) and self._matches_userref(order, userref)

        closed = [o for o in self.engine.orders(account.api_key) if not o.is_open and chosen(o)]
        closed.sort(key=lambda o: (o.updated_ms, o.order_id), reverse=True)
        page = closed[offset : offset + PAGE]
        return {
            "closed": {ids.order_txid(o.order_id): self._order_info(o, with_trades) for o in page},
            "count": len(closed),
        }

    def trades_history(self, account: Account, params: Mapping[str, str]) -> dict[str, object]:
        """``TradesHistory``: 50 per page, most recent first; ``start`` (exclusive) / ``end``
        (inclusive) as Unix seconds or trade txids; ``ofs``; ``consolidate_taker`` (default true:
        the fills of one taker execution are one record, named after the first)."""
        kind = opt_str(params, "type") or "all"
        if kind not in (
            "all",
            "any position",
            "closed position",
            "closing position",
            "no position",
        ):
            raise invalid_arguments("type")
        consolidate = opt_bool(params, "consolidate_taker", True)
        records = codec.fills(self.engine.trades(account.api_key), consolidate_taker=consolidate)
        if kind not in ("all", "no position"):  # spot only: no trade ever touches a position
            records = []
        by_txid = {r.txid: r.first.time_ms for r in records}
        start = opt_time_ms(params, "start", by_txid.get)
        end = opt_time_ms(params, "end", by_txid.get)
        offset = opt_int(params, "ofs", 0) or 0
        chosen = [
            r
            for r in records
            if (start is None or r.first.time_ms > start)
            and (end is None or r.first.time_ms <= end)
        ]
        chosen.reverse()
        orders = {o.order_id: o for o in self.engine.orders(account.api_key)}
        page = chosen[offset : offset + PAGE]
        return {
            "trades": {
                r.txid: codec.fill_json(self._pair_of(r.first), r, orders[r.first.order_id])
                for r in page
            },
            "count": len(chosen),
        }

    def query_trades(self, account: Account, params: Mapping[str, str]) -> dict[str, object]:
        """``QueryTrades`` (``txid`` list of up to 20): a consolidated record when the txid names
        one (as ``TradesHistory`` lists it), otherwise the single fill."""
        txids = comma_list(opt_str(params, "txid") or "")
        if not txids or len(txids) > 20:
            raise invalid_arguments("txid")
        trades = self.engine.trades(account.api_key)
        merged = {r.txid: r for r in codec.fills(trades, consolidate_taker=True)}
        singles = {ids.trade_txid(t.trade_id): codec.Fill((t,)) for t in trades}
        orders = {o.order_id: o for o in self.engine.orders(account.api_key)}
        result: dict[str, object] = {}
        for txid in txids:
            record = merged.get(txid) or singles.get(txid)
            if record is None:
                raise invalid_arguments("txid")
            result[txid] = codec.fill_json(
                self._pair_of(record.first), record, orders[record.first.order_id]
            )
        return result


# ---------------------------------------------------------------------- AddOrder parameters


def _price(pair: KrakenPair, params: Mapping[str, str], name: str) -> Decimal | None:
    """An absolute price with at most ``pair_decimals`` decimals (relative +/-/#/% prices are not
    emulated and are refused)."""
    value = opt_decimal(params, name)
    if value is None:
        return None
    if value <= 0:
        raise invalid_arguments(name)
    if decimal_places(value) > pair.pair_decimals:
        raise invalid_price(pair)
    return value


def _order_request(pair: KrakenPair, params: Mapping[str, str]) -> OrderRequest:
    """Turn ``AddOrder`` parameters into a core request; refuse what the emulator does not do."""
    unknown = sorted(set(params) - _ADD_ORDER_PARAMS)
    if unknown:  # margin, close orders, iceberg, expiry...: refused rather than silently ignored
        raise invalid_arguments(unknown[0])
    if opt_bool(params, "validate", False):
        raise invalid_arguments("validate")
    side = _SIDES.get(params.get("type", ""))
    if side is None:
        raise invalid_arguments("type")
    kind = _ORDER_TYPES.get(params.get("ordertype", ""))
    if kind is None:
        raise invalid_arguments("ordertype")
    flags = set(comma_list(params.get("oflags", "")))
    if flags - _OFLAGS:
        raise invalid_arguments("oflags")
    viqc, post = "viqc" in flags, "post" in flags
    if viqc and not (kind is OrderType.MARKET and side is Side.BUY):
        raise invalid_arguments("viqc")
    if post and kind is not OrderType.LIMIT:
        raise invalid_arguments("oflags")
    volume = opt_decimal(params, "volume")
    places = pair.cost_decimals if viqc else pair.lot_decimals
    if volume is None or volume <= 0 or decimal_places(volume) > places:
        raise invalid_arguments("volume")
    # [U] FOK (and GTD, which needs expiretm) on REST AddOrder are not emulated: refused, so a
    # client never relies on a time in force the emulator cannot vouch for.
    tif_name = opt_str(params, "timeinforce")
    if tif_name not in (None, "GTC", "IOC"):
        raise invalid_arguments("timeinforce")
    tif = TimeInForce(tif_name) if tif_name else TimeInForce.GTC
    price, price2 = _price(pair, params, "price"), _price(pair, params, "price2")
    cl_ord_id = opt_str(params, "cl_ord_id")
    if cl_ord_id is not None and not ids.valid_cl_ord_id(cl_ord_id):
        raise invalid_arguments("cl_ord_id")
    userref = opt_int(params, "userref", ids.USERREF_MIN, ids.USERREF_MAX)
    if cl_ord_id is not None and userref is not None:  # mutually exclusive on Kraken
        raise invalid_arguments("cl_ord_id")
    common: dict[str, Any] = {
        "symbol": pair.symbol,
        "side": side,
        "client_order_id": ids.internal_client_id(cl_ord_id, userref),
    }
    if kind is OrderType.MARKET:
        _absent(price, "price")
        _absent(price2, "price2")
        if viqc:
            return OrderRequest(type=kind, quote_quantity=volume, **common)
        return OrderRequest(type=kind, quantity=volume, **common)
    if price is None:
        raise invalid_arguments("price")
    if kind is OrderType.LIMIT:
        _absent(price2, "price2")
        if post:
            if tif is TimeInForce.IOC:
                raise invalid_arguments("timeinforce")
            return OrderRequest(type=OrderType.LIMIT_MAKER, quantity=volume, price=price, **common)
        return OrderRequest(type=kind, quantity=volume, price=price, time_in_force=tif, **common)
    if kind in (OrderType.STOP_LOSS, OrderType.TAKE_PROFIT):
        _absent(price2, "price2")
        return OrderRequest(type=kind, quantity=volume, stop_price=price, **common)
    if price2 is None:
        raise invalid_arguments("price2")
    return OrderRequest(
        type=kind,
        quantity=volume,
        stop_price=price,
        price=price2,
        time_in_force=tif,
        **common,
    )


def _absent(value: Decimal | None, name: str) -> None:
    if value is not None:
        raise invalid_arguments(name)
