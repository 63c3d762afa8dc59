"""Coinbase REST endpoints ccxt 4.5.90 uses for spot (docs/exchange-protocols.md §3.3), on the core.

Public routes count against the per-IP window; private ones are authenticated first (JWT or
legacy HMAC, see ``auth``) and then count against the per-key window (orders also against the
per-key order window).

Paging: ``orders/historical/batch`` and ``orders/historical/fills`` return the newest first,
``limit`` items (default 100, at most 1000 orders / 3000 fills) and an opaque ``cursor`` for the
next page (``has_next`` on orders); ``brokerage/accounts`` pages by ``cursor`` (default 49, at
most 250), ``/v2/accounts`` by ``starting_after`` (default 25, at most 300). The defaults are
unverified; a client that never pages sees at most one page, as on the real venue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from aiohttp import web
from multidict import MultiMapping

from exchange_sim.coinbase import codec
from exchange_sim.coinbase.auth import AuthFailure, Verifier
from exchange_sim.coinbase.errors import (
    CoinbaseError,
    OrderRejected,
    from_venue_error,
    internal_error,
    invalid_argument,
    not_found,
    permission_denied,
    timestamp_expired,
    unauthorized,
)
from exchange_sim.coinbase.limits import CoinbaseRateLimiter
from exchange_sim.coinbase.markets import (
    CRYPTO,
    FIAT,
    Product,
    currency_name,
    is_fiat,
    product_json,
)
from exchange_sim.coinbase.orders import parse_envelope, plan_order
from exchange_sim.coinbase.state import CoinbaseState
from exchange_sim.core import book
from exchange_sim.core.accounts import Account
from exchange_sim.core.decimals import CTX, ZERO, fmt_plain, is_multiple
from exchange_sim.core.errors import FilterFailure, FilterKind, OrderNotFound, VenueError
from exchange_sim.core.orders import Order, OrderStatus, OrderType, TimeInForce

log = logging.getLogger(__name__)

T = TypeVar("T")
Public = Callable[[web.Request], Awaitable[web.StreamResponse]]
Private = Callable[[web.Request, Account], Awaitable[web.StreamResponse]]

V3 = "/api/v3/brokerage"
ORDERS_PATH = f"{V3}/orders"
DAY_MS = 86_400_000
_RATE_PLACES = Decimal("1e-12")
_GRANULARITY_S = {
    "ONE_MINUTE": 60,
    "FIVE_MINUTE": 300,
    "FIFTEEN_MINUTE": 900,
    "THIRTY_MINUTE": 1800,
    "ONE_HOUR": 3600,
    "TWO_HOUR": 7200,
    "SIX_HOUR": 21600,
    "ONE_DAY": 86400,
}
MAX_CANDLES = 350
_ORDER_STATUSES = {
    "OPEN",
    "FILLED",
    "CANCELLED",
    "EXPIRED",
    "FAILED",
    "PENDING",
    "QUEUED",
    "CANCEL_QUEUED",
    "UNKNOWN_ORDER_STATUS",
}


def coinbase_middleware() -> Callable[..., Awaitable[web.StreamResponse]]:
    """Turn ``CoinbaseError`` (and unexpected failures) into Coinbase replies."""

    @web.middleware
    async def middleware(request: web.Request, handler: Public) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            return await handler(request)
        try:
            return await handler(request)
        except CoinbaseError as exc:
            return exc.response()
        except web.HTTPException:
            raise
        except Exception:
            log.exception("coinbase emulator: %s %s failed", request.method, request.path)
            return internal_error().response()

    return middleware


def _int_param(query: MultiMapping[str], name: str, default: int, maximum: int) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_argument(f"{name}: must be an integer") from None
    if value < 0:
        raise invalid_argument(f"{name}: must not be negative")
    return min(value, maximum) if value else default


def _tape_row(
    product: Product, trade_id: str, price: Decimal, size: Decimal, ms: int, side: str
) -> dict[str, str]:
    """One public trade of the ticker endpoint."""
    return {
        "trade_id": trade_id,
        "product_id": product.product_id,
        "price": codec.d(price),
        "size": codec.d(size),
        "time": codec.iso(ms),
        "side": side,
        "bid": "",
        "ask": "",
    }


def _cursor(query: MultiMapping[str]) -> int:
    raw = query.get("cursor") or "0"
    if not raw.isdigit():
        raise invalid_argument("cursor: not a cursor this venue issued")
    return int(raw)


def _page(
    items: Sequence[T], query: MultiMapping[str], default: int, maximum: int
) -> tuple[list[T], str]:
    start, limit = _cursor(query), _int_param(query, "limit", default, maximum)
    chosen = list(items[start : start + limit])
    return chosen, (str(start + limit) if start + limit < len(items) else "")


def _time_param(query: MultiMapping[str], name: str) -> int | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        return codec.parse_iso(raw, name)
    except ValueError as exc:
        raise invalid_argument(str(exc)) from None


def _edit_decimal(body: dict[str, Any], name: str) -> Decimal | None:
    """An edit's ``price`` / ``size``: a decimal string (or number), absent or empty for none."""
    value = body.get(name)
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise invalid_argument(f"{name}: not a decimal") from None


def _multi(query: MultiMapping[str], *names: str) -> list[str]:
    """Every value of repeated parameters (``product_ids=A&product_ids=B``), comma lists split."""
    values: list[str] = []
    for name in names:
        for raw in query.getall(name, []):
            values += [v for v in raw.split(",") if v]
    return values


class CoinbaseRest:
    """The REST handlers of one emulated Coinbase."""

    def __init__(self, state: CoinbaseState, limiter: CoinbaseRateLimiter) -> None:
        self.state = state
        self.engine = state.engine
        self.limiter = limiter
        self.verifier = Verifier(state.engine.accounts)

    def routes(self) -> list[web.RouteDef]:
        """Every REST route (static paths before the parameterised ones they shadow)."""
        pub, priv = self._public, self._private
        return [
            web.get("/v2/currencies", pub(self.currencies)),
            web.get("/v2/currencies/crypto", pub(self.crypto_currencies)),
            web.get("/v2/exchange-rates", pub(self.exchange_rates)),
            web.get("/v2/time", pub(self.time_v2)),
            web.get("/v2/accounts", priv(self.accounts_v2)),
            web.get(f"{V3}/time", pub(self.time_v3)),
            web.get(f"{V3}/market/products", pub(self.products)),
            web.get(f"{V3}/market/products/{{product_id}}", pub(self.product)),
            web.get(f"{V3}/market/products/{{product_id}}/ticker", pub(self.ticker)),
            web.get(f"{V3}/market/products/{{product_id}}/candles", pub(self.candles)),
            web.get(f"{V3}/market/product_book", pub(self.product_book)),
            web.get(f"{V3}/products", priv(self._as_private(self.products))),
            web.get(f"{V3}/products/{{product_id}}", priv(self._as_private(self.product))),
            web.get(f"{V3}/products/{{product_id}}/ticker", priv(self._as_private(self.ticker))),
            web.get(f"{V3}/products/{{product_id}}/candles", priv(self._as_private(self.candles))),
            web.get(f"{V3}/product_book", priv(self._as_private(self.product_book))),
            web.get(f"{V3}/best_bid_ask", priv(self.best_bid_ask)),
            web.get(f"{V3}/accounts", priv(self.accounts_v3)),
            web.get(f"{V3}/accounts/{{account_uuid}}", priv(self.account_v3)),
            web.get(f"{V3}/transaction_summary", priv(self.transaction_summary)),
            web.get(f"{V3}/key_permissions", priv(self.key_permissions)),
            web.get(f"{V3}/portfolios", priv(self.portfolios)),
            web.post(ORDERS_PATH, priv(self.create_order)),
            web.post(f"{ORDERS_PATH}/batch_cancel", priv(self.batch_cancel)),
            web.post(f"{ORDERS_PATH}/edit", priv(self.edit_order)),
            web.get(f"{ORDERS_PATH}/historical/batch", priv(self.list_orders)),
            web.get(f"{ORDERS_PATH}/historical/fills", priv(self.list_fills)),
            web.get(f"{ORDERS_PATH}/historical/{{order_id}}", priv(self.get_order)),
        ]

    # ------------------------------------------------------------------ wrappers

    def _public(self, handler: Public) -> Public:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            self.limiter.admit_public(request.remote or "unknown")
            return await handler(request)

        return wrapped

    def _private(self, handler: Private) -> Public:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            account = await self._authenticate(request)
            self.limiter.admit_private(
                account.api_key, new_order=request.method == "POST" and request.path == ORDERS_PATH
            )
            return await handler(request, account)

        return wrapped

    @staticmethod
    def _as_private(handler: Public) -> Private:
        async def wrapped(request: web.Request, _: Account) -> web.StreamResponse:
            return await handler(request)

        return wrapped

    async def _authenticate(self, request: web.Request) -> Account:
        v2 = request.path.startswith("/v2/")
        now_s = self.state.clock.now_ms() // 1000
        path = request.rel_url.raw_path
        try:
            authorization = request.headers.get("Authorization", "")
            if authorization.startswith("Bearer "):
                return self.verifier.verify_jwt(
                    authorization[len("Bearer ") :].strip(),
                    now_s,
                    method=request.method,
                    hosts=(request.host,),
                    path=path,
                )
            if "CB-ACCESS-KEY" in request.headers:
                query = request.rel_url.raw_query_string
                signed_path = path + (
                    "?" + query if v2 and request.method == "GET" and query else ""
                )
                body = await request.text() if request.can_read_body else ""
                return self.verifier.verify_hmac(
                    request.headers.get("CB-ACCESS-KEY"),
                    request.headers.get("CB-ACCESS-TIMESTAMP"),
                    request.headers.get("CB-ACCESS-SIGN"),
                    request.method + signed_path + body,
                    now_s,
                )
        except AuthFailure as exc:
            if exc.expired:
                raise timestamp_expired() from None
            raise unauthorized(v2) from None
        raise unauthorized(v2, "authentication required")

    # ------------------------------------------------------------------ helpers

    def _product(self, product_id: str | None) -> Product:
        product = self.state.products.get(product_id or "")
        if product is None:
            raise not_found(f"product {product_id!r} not found")
        return product

    def _products(self, query: MultiMapping[str]) -> list[Product]:
        ids = _multi(query, "product_ids", "product_id")
        for product_id in ids:
            if product_id not in self.state.products:
                raise invalid_argument(f"product_ids: unknown product {product_id!r}")
        return [p for p in self.state.products.values() if not ids or p.product_id in ids]

    def _usd_price(self, asset: str) -> Decimal | None:
        if asset in ("USD", "USDC"):
            return Decimal(1)
        product = self.state.products.get(f"{asset}-USD")
        return self.engine.mark(product.market.symbol) if product is not None else None

    def _assets(self, account: Account) -> list[str]:
        assets = {a for p in self.state.products.values() for a in (p.market.base, p.market.quote)}
        return sorted(assets | set(account.balances))

    def _order_json(self, order: Order) -> dict[str, object]:
        trades = self.engine.trades_of_order(order) if order.trade_ids else []
        return codec.order_json(self.state, order, trades[-1].time_ms if trades else None)

    def _find_order(self, account: Account, wire_id: str) -> Order:
        number = self.state.ids.order_number(wire_id)
        symbol = self.state.bookkeeping.symbols.get(number) if number is not None else None
        if number is None or symbol is None:
            raise not_found("order with this orderID was not found")
        try:
            return self.engine.get_order(account.api_key, symbol, order_id=number)
        except OrderNotFound:
            raise not_found("order with this orderID was not found") from None

    async def _json_body(self, request: web.Request) -> Any:
        try:
            return json.loads(await request.text(), parse_float=Decimal)
        except ValueError:
            raise invalid_argument("body: not valid JSON") from None

    # ------------------------------------------------------------------ v2 (Coinbase App) public

    async def currencies(self, _: web.Request) -> web.Response:
        """``GET /v2/currencies``: fiat currencies."""
        return web.json_response(
            {
                "data": [
                    {"id": code, "name": name, "min_size": "0.01"} for code, name in FIAT.items()
                ]
            }
        )

    async def crypto_currencies(self, _: web.Request) -> web.Response:
        """``GET /v2/currencies/crypto``."""
        return web.json_response(
            {
                "data": [
                    {
                        "asset_id": asset_id,
                        "code": code,
                        "name": name,
                        "color": color,
                        "sort_index": i,
                        "exponent": 8,
                        "type": "crypto",
                        "address_regex": "",
                    }
                    for i, (code, (name, asset_id, color)) in enumerate(CRYPTO.items())
                ]
            }
        )

    async def exchange_rates(self, request: web.Request) -> web.Response:
        """``GET /v2/exchange-rates?currency=USD``: units of each currency per ``currency``."""
        base = (request.query.get("currency") or "USD").upper()
        base_usd = self._usd_price(base)
        if base_usd is None:
            raise CoinbaseError(
                400, {"errors": [{"id": "invalid_request", "message": "Invalid currency"}]}
            )
        rates = {}
        for code in sorted(set(FIAT) | set(CRYPTO)):
            usd = self._usd_price(code)
            if usd:
                rates[code] = fmt_plain(
                    CTX.divide(base_usd, usd).quantize(_RATE_PLACES, context=CTX)
                )
        return web.json_response({"data": {"currency": base, "rates": rates}})

    async def time_v2(self, _: web.Request) -> web.Response:
        """``GET /v2/time``."""
        now = self.state.clock.now_ms()
        return web.json_response({"data": {"iso": codec.iso(now)[:19] + "Z", "epoch": now // 1000}})

    async def accounts_v2(self, request: web.Request, account: Account) -> web.Response:
        """``GET /v2/accounts``: one wallet per asset; ``balance`` is the total (free + on hold)."""
        query = request.query
        wallets = [self._wallet_v2(account, asset) for asset in self._assets(account)]
        after = query.get("starting_after")
        start = 0
        if after:
            ids = [w["id"] for w in wallets]
            if after not in ids:
                raise CoinbaseError(
                    400,
                    {"errors": [{"id": "invalid_request", "message": "Invalid starting_after"}]},
                )
            start = ids.index(after) + 1
        limit = _int_param(query, "limit", 25, 300)
        chosen = wallets[start : start + limit]
        more = start + limit < len(wallets)
        next_after = chosen[-1]["id"] if more and chosen else None
        return web.json_response(
            {
                "pagination": {
                    "ending_before": None,
                    "starting_after": after,
                    "previous_ending_before": None,
                    "next_starting_after": next_after,
                    "limit": limit,
                    "order": "desc",
                    "previous_uri": None,
                    "next_uri": f"/v2/accounts?limit={limit}&starting_after={next_after}"
                    if more
                    else None,
                },
                "data": chosen,
            }
        )

    def _wallet_v2(self, account: Account, asset: str) -> dict[str, Any]:
        balance = account.balance(asset)
        wallet_id = self.state.ids.named("wallet", account.api_key, asset)
        fiat = is_fiat(asset)
        currency: dict[str, Any] = {
            "code": asset,
            "name": currency_name(asset),
            "color": "#0066CF",
            "sort_index": 0,
            "exponent": 2 if fiat else 8,
            "type": "fiat" if fiat else "crypto",
        }
        if not fiat and asset in CRYPTO:
            currency.update(
                {"address_regex": "", "asset_id": CRYPTO[asset][1], "slug": asset.lower()}
            )
        created = codec.iso(account.created_ms)
        return {
            "id": wallet_id,
            "name": f"{asset} Wallet",
            "primary": asset == "BTC",
            "type": "fiat" if fiat else "wallet",
            "currency": currency,
            "balance": {"amount": fmt_plain(balance.total), "currency": asset},
            "created_at": created,
            "updated_at": codec.iso(account.updated_ms),
            "resource": "account",
            "resource_path": f"/v2/accounts/{wallet_id}",
            "allow_deposits": True,
            "allow_withdrawals": account.can_withdraw,
        }

    # ------------------------------------------------------------------ v3 public market data

    async def time_v3(self, _: web.Request) -> web.Response:
        """``GET /api/v3/brokerage/time``."""
        now = self.state.clock.now_ms()
        return web.json_response(
            {"iso": codec.iso(now), "epochSeconds": str(now // 1000), "epochMillis": str(now)}
        )

    def _product_json(self, product: Product) -> dict[str, object]:
        symbol = product.market.symbol
        now = self.state.clock.now_ms()
        mark = self.engine.mark(symbol)
        before = [p for t, p in self.engine.history.prices(symbol) if t <= now - DAY_MS]
        open_ = before[-1] if before else self.engine.history.prices(symbol)[0][1]
        trades = [t for t in self.engine.all_trades(symbol) if t.time_ms > now - DAY_MS]
        change = (
            CTX.divide((mark - open_) * 100, open_).quantize(Decimal("1e-8"), context=CTX)
            if open_
            else ZERO
        )
        return product_json(
            product,
            price=mark,
            change_pct=change,
            volume=sum((t.qty for t in trades), ZERO),
            quote_volume=sum((t.quote_qty for t in trades), ZERO),
        )

    async def products(self, request: web.Request) -> web.Response:
        """``GET .../market/products``: every spot product; ``product_type=FUTURE`` → none."""
        product_type = (request.query.get("product_type") or "SPOT").upper()
        chosen = self._products(request.query) if product_type == "SPOT" else []
        return web.json_response(
            {"products": [self._product_json(p) for p in chosen], "num_products": len(chosen)}
        )

    async def product(self, request: web.Request) -> web.Response:
        """``GET .../market/products/{product_id}``."""
        return web.json_response(
            self._product_json(self._product(request.match_info["product_id"]))
        )

    async def ticker(self, request: web.Request) -> web.Response:
        """``GET .../products/{id}/ticker``: recent trades (newest first) and the best bid / ask.

        The mark price leads the list as a zero-size trade whenever it moved after the last
        fill (or nothing filled yet), so ccxt's ``last`` is the mark.
        """
        product = self._product(request.match_info["product_id"])
        symbol = product.market.symbol
        query = request.query
        limit = _int_param(query, "limit", 100, 1000)
        tape = [
            (
                t.time_ms,
                _tape_row(product, str(t.trade_id), t.price, t.qty, t.time_ms, t.side.value),
            )
            for t in reversed(self.engine.all_trades(symbol))
        ]
        mark_ms, mark = self.engine.history.prices(symbol)[-1]
        if not tape or mark_ms >= tape[0][0]:
            tape.insert(
                0, (mark_ms, _tape_row(product, "0", mark, ZERO, mark_ms, "UNKNOWN_ORDER_SIDE"))
            )
        start, end = query.get("start", ""), query.get("end", "")
        rows = [
            row
            for ms, row in tape
            if (not start.isdigit() or ms >= int(start) * 1000)
            and (not end.isdigit() or ms <= int(end) * 1000)
        ]
        best_bid, best_ask = book.bids(product.market, mark)[0], book.asks(product.market, mark)[0]
        return web.json_response(
            {
                "trades": rows[:limit],
                "best_bid": codec.d(best_bid.price),
                "best_ask": codec.d(best_ask.price),
            }
        )

    async def candles(self, request: web.Request) -> web.Response:
        """``GET .../products/{id}/candles?start&end&granularity`` (unix seconds), newest first."""
        product = self._product(request.match_info["product_id"])
        query = request.query
        granularity = _GRANULARITY_S.get(query.get("granularity", ""))
        if granularity is None:
            raise invalid_argument(f"granularity: one of {', '.join(_GRANULARITY_S)}")
        try:
            start, end = int(query["start"]), int(query["end"])
        except (KeyError, ValueError):
            raise invalid_argument("start, end: required unix times in seconds") from None
        if end < start:
            raise invalid_argument("end: must not be before start")
        if (end - start) // granularity > MAX_CANDLES:
            raise invalid_argument(f"start, end: at most {MAX_CANDLES} candles per request")
        limit = _int_param(query, "limit", MAX_CANDLES, MAX_CANDLES)
        bars = self.engine.history.candles(
            product.market.symbol,
            granularity * 1000,
            now_ms=self.state.clock.now_ms(),
            start_ms=start * 1000,
            end_ms=end * 1000,
            limit=limit,
        )
        return web.json_response(
            {
                "candles": [
                    {
                        "start": str(b.open_ms // 1000),
                        "low": codec.d(b.low),
                        "high": codec.d(b.high),
                        "open": codec.d(b.open),
                        "close": codec.d(b.close),
                        "volume": codec.d(b.volume),
                    }
                    for b in reversed(bars)
                ]
            }
        )

    def _book_json(self, product: Product, depth: int) -> dict[str, object]:
        mark = self.engine.mark(product.market.symbol)
        return {
            "product_id": product.product_id,
            "bids": [
                {"price": codec.d(lv.price), "size": codec.d(lv.qty)}
                for lv in book.bids(product.market, mark)[:depth]
            ],
            "asks": [
                {"price": codec.d(lv.price), "size": codec.d(lv.qty)}
                for lv in book.asks(product.market, mark)[:depth]
            ],
            "time": codec.iso(self.state.clock.now_ms()),
        }

    async def product_book(self, request: web.Request) -> web.Response:
        """``GET .../market/product_book?product_id&limit``: the synthetic book around the mark."""
        product = self._product(request.query.get("product_id"))
        limit = _int_param(request.query, "limit", 1000, 1000)
        mark = self.engine.mark(product.market.symbol)
        best_bid, best_ask = (
            book.bids(product.market, mark)[0].price,
            book.asks(product.market, mark)[0].price,
        )
        spread = best_ask - best_bid
        mid = (best_ask + best_bid) / 2
        return web.json_response(
            {
                "pricebook": self._book_json(product, limit),
                "last": codec.d(mark),
                "mid_market": codec.d(mid),
                "spread_bps": fmt_plain(
                    CTX.divide(spread * 10_000, mid).quantize(Decimal("0.01"), context=CTX)
                ),
                "spread_absolute": codec.d(spread),
            }
        )

    async def best_bid_ask(self, request: web.Request, _: Account) -> web.Response:
        """``GET /api/v3/brokerage/best_bid_ask?product_ids=...``."""
        return web.json_response(
            {"pricebooks": [self._book_json(p, 1) for p in self._products(request.query)]}
        )

    # ------------------------------------------------------------------ v3 account

    def _wallet_v3(self, account: Account, asset: str) -> dict[str, Any]:
        balance = account.balance(asset)
        return {
            "uuid": self.state.ids.named("wallet", account.api_key, asset),
            "name": f"{asset} Wallet",
            "currency": asset,
            "available_balance": {"value": fmt_plain(balance.free), "currency": asset},
            "default": True,
            "active": True,
            "created_at": codec.iso(account.created_ms),
            "updated_at": codec.iso(account.updated_ms),
            "deleted_at": None,
            "type": "ACCOUNT_TYPE_FIAT" if is_fiat(asset) else "ACCOUNT_TYPE_CRYPTO",
            "ready": True,
            "hold": {"value": fmt_plain(balance.locked), "currency": asset},
            "retail_portfolio_id": self.state.ids.named("portfolio", account.api_key),
            "platform": "ACCOUNT_PLATFORM_CONSUMER",
        }

    async def accounts_v3(self, request: web.Request, account: Account) -> web.Response:
        """``GET /api/v3/brokerage/accounts``: ``available_balance`` (free) and ``hold``."""
        wallets = [self._wallet_v3(account, a) for a in self._assets(account)]
        chosen, cursor = _page(wallets, request.query, 49, 250)
        return web.json_response(
            {"accounts": chosen, "has_next": bool(cursor), "cursor": cursor, "size": len(chosen)}
        )

    async def account_v3(self, request: web.Request, account: Account) -> web.Response:
        """``GET /api/v3/brokerage/accounts/{account_uuid}``."""
        for asset in self._assets(account):
            if (
                self.state.ids.named("wallet", account.api_key, asset)
                == request.match_info["account_uuid"]
            ):
                return web.json_response({"account": self._wallet_v3(account, asset)})
        raise not_found("account not found")

    async def transaction_summary(self, _: web.Request, account: Account) -> web.Response:
        """``GET /api/v3/brokerage/transaction_summary``: the static fee tier and volumes."""
        trades = self.engine.trades(account.api_key)
        volume = sum((t.quote_qty for t in trades), ZERO)
        fees = sum((t.fee for t in trades), ZERO)
        rates = self.engine.fees
        return web.json_response(
            {
                "total_volume": fmt_plain(volume),
                "total_fees": fmt_plain(fees),
                "fee_tier": {
                    "pricing_tier": "Advanced 1",
                    "usd_from": "0",
                    "usd_to": "1000",
                    "taker_fee_rate": fmt_plain(rates.taker),
                    "maker_fee_rate": fmt_plain(rates.maker),
                    "aop_from": "",
                    "aop_to": "",
                },
                "margin_rate": None,
                "goods_and_services_tax": None,
                "advanced_trade_only_volume": fmt_plain(volume),
                "advanced_trade_only_fees": fmt_plain(fees),
                "coinbase_pro_volume": "0",
                "coinbase_pro_fees": "0",
                "total_balance": "",
                "has_promo_fee": False,
            }
        )

    async def key_permissions(self, _: web.Request, account: Account) -> web.Response:
        """``GET /api/v3/brokerage/key_permissions`` from the account's permissions."""
        return web.json_response(
            {
                "can_view": True,
                "can_trade": account.can_trade,
                "can_transfer": account.can_withdraw,
                "portfolio_uuid": self.state.ids.named("portfolio", account.api_key),
                "portfolio_type": "DEFAULT",
            }
        )

    async def portfolios(self, _: web.Request, account: Account) -> web.Response:
        """``GET /api/v3/brokerage/portfolios``: the default portfolio."""
        return web.json_response(
            {
                "portfolios": [
                    {
                        "name": "Default",
                        "type": "DEFAULT",
                        "deleted": False,
                        "uuid": self.state.ids.named("portfolio", account.api_key),
                    }
                ]
            }
        )

    # ------------------------------------------------------------------ orders

    def _success(self, order: Order) -> web.Response:
        order_id = self.state.ids.order(order.order_id)
        return web.json_response(
            {
                "success": True,
                "failure_reason": "UNKNOWN_FAILURE_REASON",
                "order_id": order_id,
                "success_response": {
                    "order_id": order_id,
                    "product_id": codec.product_id(order),
                    "side": order.side.value,
                    "client_order_id": order.client_order_id,
                },
                "order_configuration": codec.configuration(
                    order, self.state.bookkeeping.quote_sizes.get(order.order_id)
                ),
            }
        )

    async def create_order(self, request: web.Request, account: Account) -> web.Response:
        """``POST /api/v3/brokerage/orders``.

        A ``client_order_id`` this account already used returns that order (HTTP 200,
        ``success: true``, its ``order_id``) and places nothing, whatever the rest of the request
        says and however long ago it was (doc §3.8: the docs are recalled as "the order with this
        ID will be returned instead"; the dedupe window is unverified, the emulator keeps it
        forever, the safe reading for an idempotent copier). The dedupe runs before any balance
        check, so a retry after the first order spent the funds still finds it.
        """
        envelope = parse_envelope(await self._json_body(request))
        if not account.can_trade:
            raise permission_denied()
        keeping = self.state.bookkeeping
        existing = keeping.by_client.get((account.api_key, envelope.client_order_id))
        if existing is not None:
            return self._success(
                self.engine.get_order(account.api_key, keeping.symbols[existing], order_id=existing)
            )
        direction_up: bool | None = None
        try:
            plan = plan_order(self.state, account, envelope)
            direction_up = plan.direction_up
            order = self.engine.place_order(account.api_key, plan.request)
        except OrderRejected as rejection:
            return web.json_response(rejection.body(envelope.configuration))
        except VenueError as exc:
            return web.json_response(
                from_venue_error(exc, direction_up).body(envelope.configuration)
            )
        keeping.by_client[(account.api_key, envelope.client_order_id)] = order.order_id
        keeping.symbols[order.order_id] = order.symbol
        if plan.quote_size is not None:
            keeping.quote_sizes[order.order_id] = plan.quote_size
        return self._success(order)

    async def batch_cancel(self, request: web.Request, account: Account) -> web.Response:
        """``POST .../orders/batch_cancel`` ``{"order_ids": [...]}`` (1 to 100 ids).

        Failure reasons (unverified): ``UNKNOWN_CANCEL_ORDER`` (not an order of this key),
        ``DUPLICATE_CANCEL_REQUEST`` (already canceled), ``INVALID_CANCEL_REQUEST`` (filled or
        otherwise ended). ccxt raises ``BadRequest`` for any of them.
        """
        body = await self._json_body(request)
        ids = body.get("order_ids") if isinstance(body, dict) else None
        if (
            not isinstance(ids, list)
            or not 1 <= len(ids) <= 100
            or not all(isinstance(i, str) for i in ids)
        ):
            raise invalid_argument("order_ids: a list of 1 to 100 order ids")
        if not account.can_trade:
            raise permission_denied()
        return web.json_response(
            {"results": [self._cancel_one(account, wire_id) for wire_id in ids]}
        )

    async def edit_order(self, request: web.Request, account: Account) -> web.Response:
        """``POST .../orders/edit`` ``{"order_id", "price", "size"}`` (ccxt ``edit_order``).

        The open GTC limit order keeps its ``order_id`` and gets the new limit price and/or total
        base size (a price that now crosses takes from the book). Success ``{"success": true,
        "errors": []}``; a refusal is HTTP 200 ``{"success": false, "errors":
        [{"edit_failure_reason": ..., "preview_failure_reason": ...}]}`` with reasons (names from
        Coinbase's enum, which one Coinbase picks where is unverified) ``ORDER_NOT_FOUND``,
        ``ONLY_OPEN_ORDERS_CAN_BE_EDITED`` (filled, canceled), ``ONLY_LIMIT_ORDER_EDITS_SUPPORTED``,
        ``INVALID_EDITED_PRICE``, ``INVALID_EDITED_SIZE``, ``CANNOT_EDIT_TO_BELOW_FILLED_SIZE``,
        ``EDIT_REQUEST_EQUAL_TO_ORIGINAL_REQUEST``, ``COMMANDER_REJECTED_EDIT_ORDER`` (funds).
        ccxt 4.5.90 raises nothing for these: its caller must read ``info["success"]``.
        """
        body = await self._json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("order_id"), str):
            raise invalid_argument("order_id: required")
        price = _edit_decimal(body, "price")
        size = _edit_decimal(body, "size")
        if price is None and size is None:
            raise invalid_argument("price or size: required")
        if not account.can_trade:
            raise permission_denied()
        return web.json_response(self._edit_one(account, body["order_id"], price, size))

    def _edit_one(
        self, account: Account, wire_id: str, price: Decimal | None, size: Decimal | None
    ) -> dict[str, object]:
        def refused(reason: str) -> dict[str, object]:
            failure = {
                "edit_failure_reason": reason,
                "preview_failure_reason": "UNKNOWN_PREVIEW_FAILURE_REASON",
            }
            return {"success": False, "errors": [failure]}

        try:
            order = self._find_order(account, wire_id)
        except CoinbaseError:
            return refused("ORDER_NOT_FOUND")
        if not order.is_open:
            return refused("ONLY_OPEN_ORDERS_CAN_BE_EDITED")
        if order.type is not OrderType.LIMIT or order.time_in_force is not TimeInForce.GTC:
            return refused("ONLY_LIMIT_ORDER_EDITS_SUPPORTED")
        product = self.state.product_of(order.symbol)
        if price is not None and (price <= ZERO or not is_multiple(price, product.price_increment)):
            return refused("INVALID_EDITED_PRICE")
        if size is not None and (size <= ZERO or not is_multiple(size, product.base_increment)):
            return refused("INVALID_EDITED_SIZE")
        if size is not None and size <= order.executed_qty:
            return refused("CANNOT_EDIT_TO_BELOW_FILLED_SIZE")
        if (price is None or price == order.price) and (size is None or size == order.quantity):
            return refused("EDIT_REQUEST_EQUAL_TO_ORIGINAL_REQUEST")
        try:
            self.engine.amend_order(
                account.api_key, order.symbol, order.order_id, quantity=size, price=price
            )
        except FilterFailure as exc:
            return refused(
                "INVALID_EDITED_PRICE" if exc.kind is FilterKind.PRICE else "INVALID_EDITED_SIZE"
            )
        except VenueError:
            return refused("COMMANDER_REJECTED_EDIT_ORDER")
        return {"success": True, "errors": []}

    def _cancel_one(self, account: Account, wire_id: str) -> dict[str, object]:
        def result(reason: str | None) -> dict[str, object]:
            return {
                "success": reason is None,
                "failure_reason": reason or "UNKNOWN_CANCEL_FAILURE_REASON",
                "order_id": wire_id,
            }

        try:
            order = self._find_order(account, wire_id)
        except CoinbaseError:
            return result("UNKNOWN_CANCEL_ORDER")
        if not order.is_open:
            return result(
                "DUPLICATE_CANCEL_REQUEST"
                if order.status is OrderStatus.CANCELED
                else "INVALID_CANCEL_REQUEST"
            )
        self.engine.cancel_order(account.api_key, order.symbol, order_id=order.order_id)
        return result(None)

    async def get_order(self, request: web.Request, account: Account) -> web.Response:
        """``GET .../orders/historical/{order_id}`` (404 when unknown).

        With the (deprecated, still documented) ``client_order_id`` query parameter the order is
        looked up by client order id and the path id is ignored; Coinbase's exact semantics are
        unverified, so a client should check ``client_order_id`` on the result.
        """
        client_order_id = request.query.get("client_order_id")
        if client_order_id:
            number = self.state.bookkeeping.by_client.get((account.api_key, client_order_id))
            if number is None:
                raise not_found("order with this orderID was not found")
            order = self.engine.get_order(
                account.api_key, self.state.bookkeeping.symbols[number], order_id=number
            )
        else:
            order = self._find_order(account, request.match_info["order_id"])
        return web.json_response({"order": self._order_json(order)})

    async def list_orders(self, request: web.Request, account: Account) -> web.Response:
        """``GET .../orders/historical/batch``: newest first, filtered, paged by ``cursor``."""
        query = request.query
        statuses = set(_multi(query, "order_status"))
        if statuses - _ORDER_STATUSES:
            raise invalid_argument(
                f"order_status: unknown status {sorted(statuses - _ORDER_STATUSES)[0]!r}"
            )
        symbols = (
            {p.market.symbol for p in self._products(query)}
            if _multi(query, "product_ids", "product_id")
            else None
        )
        wanted_ids = set(_multi(query, "order_ids"))
        side = query.get("order_side")
        start, end = _time_param(query, "start_date"), _time_param(query, "end_date")
        product_type = (query.get("product_type") or "SPOT").upper()
        orders = (
            [] if product_type != "SPOT" else list(reversed(self.engine.orders(account.api_key)))
        )
        chosen = [
            o
            for o in orders
            if _order_matches(self.state, o, statuses, symbols, wanted_ids, side, start, end)
        ]
        page, cursor = _page(chosen, query, 100, 1000)
        return web.json_response(
            {
                "orders": [self._order_json(o) for o in page],
                "sequence": "0",
                "has_next": bool(cursor),
                "cursor": cursor,
            }
        )

    async def list_fills(self, request: web.Request, account: Account) -> web.Response:
        """``GET .../orders/historical/fills``: newest first, filtered, paged by ``cursor``."""
        query = request.query
        symbols = (
            {p.market.symbol for p in self._products(query)}
            if _multi(query, "product_ids", "product_id")
            else None
        )
        order_ids = set(_multi(query, "order_ids", "order_id"))
        trade_ids = set(_multi(query, "trade_ids"))
        start = _time_param(query, "start_sequence_timestamp")
        end = _time_param(query, "end_sequence_timestamp")
        ids = self.state.ids
        fills = [
            t
            for t in reversed(self.engine.trades(account.api_key))
            if (symbols is None or t.symbol in symbols)
            and (not order_ids or ids.order(t.order_id) in order_ids)
            and (not trade_ids or ids.trade(t.trade_id) in trade_ids)
            and (start is None or t.time_ms >= start)
            and (end is None or t.time_ms <= end)
        ]
        page, cursor = _page(fills, query, 100, 3000)
        return web.json_response(
            {"fills": [codec.fill_json(self.state, t) for t in page], "cursor": cursor}
        )


def _order_matches(
    state: CoinbaseState,
    order: Order,
    statuses: set[str],
    symbols: set[str] | None,
    wanted_ids: Iterable[str],
    side: str | None,
    start: int | None,
    end: int | None,
) -> bool:
    wanted = set(wanted_ids)
    return (
        (not statuses or codec.status(order) in statuses)
        and (symbols is None or order.symbol in symbols)
        and (not wanted or state.ids.order(order.order_id) in wanted)
        and (not side or order.side.value == side)
        and (start is None or order.created_ms >= start)
        and (end is None or order.created_ms <= end)
    )
