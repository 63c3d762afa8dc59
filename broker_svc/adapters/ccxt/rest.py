"""The REST calls of a venue class: markets, orders, history, balances, prices and candles.

Each call goes through :meth:`CcxtTransport._call`, which translates its failure once. A few
small hooks (``_placed``, ``_raw_order_by_client_id``, ``_cancel_by_client_id``,
``_order_arguments``) are where a venue that differs in behaviour overrides.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from broker_svc import metrics
from broker_svc.adapters.ccxt.parse import CcxtParsing, from_millis, to_decimal, to_millis
from broker_svc.adapters.ccxt.transport import CcxtTransport
from broker_svc.domain.model import (
    Balance,
    Candle,
    Fill,
    KeyPermissions,
    Market,
    MarketLeverage,
    Order,
    OrderHint,
    OrderRequest,
    Position,
    TimeInForce,
)
from meshkit import errors

log = logging.getLogger("broker_svc.ccxt")

PageFetch = Callable[
    [str | None, int | None, int | None, dict[str, Any]], Awaitable[list[dict[str, Any]]]
]
"""A ccxt history method: (symbol, since ms, limit, params) to a page of raw entries."""


class CcxtRest(CcxtTransport, CcxtParsing):
    """The REST side of one account at one venue."""

    _markets: dict[str, Market] | None
    _markets_loading: asyncio.Future[dict[str, Market]] | None

    async def load_markets(self) -> Mapping[str, Market]:
        """Return the venue's markets, loaded once per client.

        A load runs to its end even when the read waiting for it is given up (its caller's
        deadline passed, which cancels the broker's handler): the next read finds the markets
        (or waits for the same load) instead of starting the venue call over, so a broker
        slowed by load catches up rather than cutting every first read of an account short.
        """
        if self._markets is not None:
            return self._markets
        loading = self._markets_loading
        if loading is None or loading.done():  # none yet, or the last one failed
            loading = self._markets_loading = asyncio.ensure_future(self._load_markets())
            loading.add_done_callback(_retrieved)
        return await asyncio.shield(loading)

    async def _load_markets(self) -> dict[str, Market]:
        raw = await self._call("load_markets", self._client.load_markets)
        markets = {
            symbol: self._market(entry)
            for symbol, entry in raw.items()
            if self._keeps_market(entry)
        }
        self._markets = markets
        return markets

    @staticmethod
    def _keeps_market(entry: Mapping[str, Any]) -> bool:
        """Whether ccxt's market ``entry`` is one the broker trades here: a spot market."""
        return bool(entry.get("spot", True))

    async def place_order(self, request: OrderRequest) -> Order:
        """Place ``request`` with its client order id passed natively."""
        kind, params = self._order_arguments(request)
        params[self.capabilities.client_order_id_param] = request.client_order_id

        async def action() -> Order:
            raw = await self._client.create_order(
                request.symbol,
                kind,
                request.side.value,
                str(request.quantity),
                None if request.price is None else str(request.price),
                params,
            )
            return await self._placed(request, raw)

        return await self._call("create_order", action, creating=True)

    async def _placed(self, request: OrderRequest, raw: Mapping[str, Any]) -> Order:
        """Turn the venue's answer to a create into the order (venues answering less override)."""
        order = self._order(raw)
        if order.client_order_id and order.client_order_id != request.client_order_id:
            raise ValueError("the venue answered with another order")
        return replace(order, client_order_id=request.client_order_id)

    async def _read_back(self, request: OrderRequest, venue_order_id: str) -> Order:
        """Read an order the venue has just taken (its create answered with the id only).

        The create succeeded: the venue has the order. A venue may not show a new order to
        queries for a while (its not-found lag), so a failed read-back is no verdict on the
        order: it is reported open with nothing filled, and lookups by client order id follow
        it from there. Raising here would turn an order the venue holds into a reject.
        """
        try:
            raw = await self._client.fetch_order(venue_order_id, request.symbol)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning(
                "%s took order %s but could not show it yet (%s); reported open until a lookup"
                " finds it",
                self.venue,
                request.client_order_id,
                type(e).__name__,
            )
            metrics.VENUE_REQUESTS.labels(self.venue, "fetch_order", "read_back_failed").inc()
            return Order.taken(request, venue_order_id)
        return self._order(raw)

    def _order_arguments(self, request: OrderRequest) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {}
        kind = "limit" if request.type.has_limit_price else "market"
        if request.type.has_stop_price and request.stop_price is not None:
            params[self.capabilities.stop_price_param] = str(request.stop_price)
        if request.time_in_force is TimeInForce.POST_ONLY:
            # ccxt's unified post only: Binance type LIMIT_MAKER, Coinbase post_only, Kraken
            # oflags=post; no timeInForce goes with it (Kraken would pass "PO" through).
            params["postOnly"] = True
        elif request.type.has_limit_price:
            tif = request.time_in_force or TimeInForce.GTC
            params["timeInForce"] = tif.value.upper()
        if request.reduce_only:  # only venues whose profile has "reduce_only" get here
            params["reduceOnly"] = True
        return kind, params

    async def fetch_order(
        self,
        client_order_id: str,
        symbol: str,
        hint: OrderHint | None = None,
    ) -> Order:
        """Look an order up by its client order id (``hint`` may make it cheaper)."""

        async def action() -> Order:
            raw = await self._raw_order_by_client_id(client_order_id, symbol, hint)
            return replace(self._order(raw), client_order_id=client_order_id)

        return await self._call("fetch_order", action)

    async def _raw_order_by_client_id(
        self, client_order_id: str, symbol: str, hint: OrderHint | None
    ) -> Any:
        """Return ccxt's order for ``client_order_id`` (venues without such a lookup override)."""
        params = {self.capabilities.lookup_client_order_id_param: client_order_id}
        return await self._client.fetch_order(None, symbol or None, params)

    async def cancel_order(
        self,
        client_order_id: str,
        symbol: str,
        hint: OrderHint | None = None,
    ) -> Order:
        """Cancel an order by its client order id."""

        async def action() -> Order:
            # A cancel answer may carry the cancel request's own id (Binance's clientOrderId);
            # the order is the one looked up by ``client_order_id``.
            raw = await self._cancel_by_client_id(client_order_id, symbol, hint)
            return replace(self._order(raw), client_order_id=client_order_id)

        return await self._call("cancel_order", action)

    async def _cancel_by_client_id(
        self, client_order_id: str, symbol: str, hint: OrderHint | None
    ) -> Any:
        """Cancel at the venue and return ccxt's order (venues answering less override)."""
        params = {self.capabilities.lookup_client_order_id_param: client_order_id}
        return await self._client.cancel_order(None, symbol or None, params)

    async def _history_symbols(self, symbols: Sequence[str]) -> list[str | None]:
        if symbols:
            return list(dict.fromkeys(symbols))
        if not self.capabilities.symbol_required_for_history:
            return [None]
        markets = await self.load_markets()
        return [symbol for symbol, market in sorted(markets.items()) if market.active]

    async def _paged(
        self,
        method: str,
        fetch: PageFetch,
        symbol: str | None,
        start_ms: int | None,
        end_ms: int | None,
    ) -> list[dict[str, Any]]:
        has = self.capabilities
        limit = int(has.history_page_limit)
        if has.history_paging == "offset":
            # Newest first, ``limit`` a page, paged by offset (Kraken's ``ofs``).
            found: dict[str, dict[str, Any]] = {}
            extra = {} if end_ms is None else {"until": end_ms}
            for page in range(int(has.history_max_pages)):
                batch = await self._call(
                    method, partial(fetch, symbol, start_ms, None, {"ofs": page * limit, **extra})
                )
                for entry in batch:
                    found[str(entry.get("id"))] = entry
                if len(batch) < limit:
                    break
            return list(found.values())
        if start_ms is None:
            return await self._call(method, lambda: fetch(symbol, None, limit, {}))
        window = int(has.history_window_seconds) * 1000
        end = end_ms if end_ms is not None else int(time.time() * 1000) + 1
        seen: dict[str, dict[str, Any]] = {}
        window_start = start_ms
        while window_start < end:
            window_end = min(window_start + window, end)
            cursor = window_start
            while True:
                params = {"until": window_end - 1}
                entries = await self._call(method, partial(fetch, symbol, cursor, limit, params))
                for entry in entries:
                    seen[str(entry.get("id"))] = entry
                if len(entries) < limit:
                    break
                last = max(int(entry.get("timestamp") or cursor) for entry in entries)
                if last <= cursor:
                    break
                cursor = last
            window_start = window_end
        return list(seen.values())

    async def fetch_orders(
        self,
        symbols: Sequence[str],
        start: datetime,
        end: datetime,
    ) -> list[Order]:
        """Return the orders created in ``[start, end)``, oldest first."""
        start_ms, end_ms = to_millis(start), to_millis(end)
        orders: list[Order] = []
        for symbol in await self._history_symbols(symbols):
            raw = await self._paged(
                "fetch_orders",
                lambda s, since, limit, params: self._client.fetch_orders(s, since, limit, params),
                symbol,
                start_ms,
                end_ms,
            )
            orders += [self._order(entry) for entry in raw]
        kept = [
            order
            for order in orders
            if (order.created_at is None or start <= order.created_at < end)
            and (not symbols or order.symbol in symbols)
        ]
        return sorted(kept, key=lambda o: (o.created_at or start, o.venue_order_id))

    async def fetch_fills(self, symbols: Sequence[str], since: datetime | None) -> list[Fill]:
        """Return the fills at or after ``since``, oldest first, merged across ``symbols``."""
        since_ms = to_millis(since) if since is not None else None
        fills: dict[tuple[str, str], Fill] = {}
        for symbol in await self._history_symbols(symbols):
            raw = await self._paged(
                "fetch_my_trades",
                lambda s, start, limit, params: self._client.fetch_my_trades(
                    s, start, limit, params
                ),
                symbol,
                since_ms,
                None,
            )
            for entry in raw:
                fill = self._fill(entry)
                if (since is None or fill.trade_time >= since) and (
                    not symbols or fill.symbol in symbols
                ):
                    fills[(fill.symbol, fill.trade_id)] = fill
        return sorted(fills.values(), key=lambda f: (f.trade_time, f.symbol, f.trade_id))

    async def fetch_balances(self) -> list[Balance]:
        """Return every balance of the account."""
        raw = await self._call("fetch_balance", self._fetch_balance)
        balances = []
        for asset, entry in raw.items():
            if asset in ("info", "free", "used", "total", "debt") or not isinstance(entry, dict):
                continue
            free = to_decimal(entry.get("free")) or Decimal(0)
            locked = to_decimal(entry.get("used")) or Decimal(0)
            balances.append(Balance(asset, free, locked))
        return balances

    async def _fetch_balance(self) -> Any:
        return await self._client.fetch_balance()

    async def set_leverage(self, symbol: str, leverage: int, margin_mode: str) -> int:
        """Set the margin mode (ccxt passes over "already set"), then the leverage."""
        if margin_mode:
            await self._call(
                "set_margin_mode", lambda: self._client.set_margin_mode(margin_mode, symbol)
            )
        raw = await self._call("set_leverage", lambda: self._client.set_leverage(leverage, symbol))
        answered = raw.get("leverage") if isinstance(raw, Mapping) else None
        return int(answered) if answered is not None else leverage

    async def fetch_positions(self) -> list[Position]:
        """Return the open positions (venues with the ``positions`` feature)."""
        raw = await self._call("fetch_positions", self._client.fetch_positions)
        positions = []
        for entry in raw:
            contracts = to_decimal(entry.get("contracts")) or Decimal(0)
            if contracts == 0 or entry.get("side") not in ("long", "short"):
                continue
            positions.append(
                Position(
                    symbol=entry["symbol"],
                    side=entry["side"],
                    contracts=abs(contracts),
                    entry_price=to_decimal(entry.get("entryPrice")),
                    mark_price=to_decimal(entry.get("markPrice")),
                    unrealized_pnl=to_decimal(entry.get("unrealizedPnl")),
                    liquidation_price=to_decimal(entry.get("liquidationPrice")),
                    leverage=to_decimal(entry.get("leverage")),
                    margin_mode=str(entry.get("marginMode") or ""),
                    hedged=bool(entry.get("hedged")),
                    contract_size=to_decimal(entry.get("contractSize")),
                )
            )
        return positions

    async def fetch_leverages(self) -> list[MarketLeverage]:
        """Return the leverage setting on every market (binanceusdm: ``/fapi/v1/symbolConfig``);
        a hedge-mode account's long side when its two sides differ."""
        raw = await self._call("fetch_leverages", self._client.fetch_leverages)
        leverages = []
        for symbol, entry in raw.items():
            if not isinstance(entry, Mapping):
                continue
            value = to_decimal(entry.get("longLeverage")) or to_decimal(entry.get("shortLeverage"))
            if value is None or value <= 0:
                continue
            leverages.append(
                MarketLeverage(
                    symbol=str(entry.get("symbol") or symbol),
                    leverage=value,
                    margin_mode=str(entry.get("marginMode") or ""),
                )
            )
        return leverages

    async def fetch_last_price(self, symbol: str) -> Decimal | None:
        """Return the last traded price of ``symbol``."""
        ticker = await self._call("fetch_ticker", lambda: self._client.fetch_ticker(symbol))
        return to_decimal(ticker.get("last")) or to_decimal(ticker.get("close"))

    async def fetch_key_permissions(self) -> KeyPermissions | None:
        """Return what the key may do; the base class knows no endpoint for it."""
        return None

    async def fetch_candles(
        self,
        symbol: str,
        timeframe: str,
        since: datetime | None,
        limit: int,
    ) -> list[Candle]:
        """Return up to ``limit`` candles of ``symbol`` opening at or after ``since``."""
        offered = getattr(self._client, "timeframes", None) or {}
        if timeframe not in offered:
            raise errors.invalid(
                "timeframe",
                f"{timeframe} is not offered at {self.venue} (offered: {', '.join(offered)})",
            )
        since_ms = to_millis(since) if since is not None else None
        raw = await self._call(
            "fetch_ohlcv",
            lambda: self._client.fetch_ohlcv(symbol, timeframe, since_ms, limit),
        )
        candles = []
        for row in raw:
            opened = from_millis(row[0])
            values = [to_decimal(value) for value in row[1:6]]
            present = [value for value in values if value is not None]
            if opened is None or len(present) < len(values):
                continue
            if since is not None and opened < since:
                continue
            candles.append(Candle(opened, *present))
        candles.sort(key=lambda c: c.open_time)
        return candles[-limit:] if since is None else candles[:limit]


def _retrieved(future: asyncio.Future[Any]) -> None:
    # A load whose every reader gave up still fails quietly: the next read loads again.
    if not future.cancelled():
        future.exception()
