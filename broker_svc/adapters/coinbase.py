"""Coinbase Advanced Trade spot through ccxt (docs/exchange-protocols.md §3).

Where Coinbase differs in behaviour, not only in data:

* ccxt drops the unified ``clientOrderId``: the id goes natively as ``client_order_id``, and a
  repeat of it returns the first order (Coinbase deduplicates; §3.8).
* A create answers the order id only: the order is read back (``orders/historical/{id}``).
* A lookup by client order id uses ``client_order_id`` on that endpoint (ignored path id); a
  cancel needs the venue's id, so it looks the order up first.
* Market orders are sized in the base asset both ways (``market_market_ioc.base_size``): ccxt
  would send a quote-sized buy, which buys a different quantity than the caller asked for.
* Rejections come back as HTTP 200 ``success: false``; they are definitive (nothing placed) and
  are read from the answer itself, not from ccxt's partial mapping (§3.7).
* ccxt has no ``watch_my_trades`` here: fills are read (REST) for each order the ``user``
  channel reports as more filled than before.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from functools import partial
from typing import Any, ClassVar

from ccxt.base import errors as ccxt_errors

from broker_svc.adapters.ccxt import CcxtExchange, Seen, VenueCapabilities, to_decimal
from broker_svc.domain.model import (
    Fill,
    KeyPermissions,
    Order,
    OrderHint,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
    WatchChannel,
)
from broker_svc.domain.ratelimit import ACCOUNT_SCOPE, VENUE_SCOPE, Budget, ChargeRule
from meshkit import errors

_REJECTIONS: dict[str, type[ccxt_errors.BaseError]] = {
    "INSUFFICIENT_FUND": ccxt_errors.InsufficientFunds,
    "INVALID_PRODUCT_ID": ccxt_errors.BadSymbol,
}
_LOOKUP_PATH = "brokerage/orders/historical/{order_id}"
_SEEN_ORDERS = 2048


class CoinbaseExchange(CcxtExchange):
    """Coinbase Advanced Trade: native ``client_order_id``, key rights from ``key_permissions``."""

    capabilities: ClassVar[VenueCapabilities] = VenueCapabilities(
        ccxt_id="coinbase",
        options={
            # v3 accounts say what is on hold; v2 (ccxt's default) reports totals only.
            "fetchBalance": "v3PrivateGetBrokerageAccounts",
            "createMarketBuyOrderRequiresPrice": False,
        },
        # §3.1: REST is one key (ccxt appends /v2 and /api/v3), the WebSocket a plain string.
        url_overrides={("rest",): "", ("ws",): "/ws"},
        client_order_id_param="client_order_id",
        lookup_client_order_id_param="client_order_id",
        stop_price_param="stop_price",
        symbol_required_for_lookup=False,
        symbol_required_for_history=False,
        history_window_seconds=86_400,
        history_page_limit=100,
        # §3.4: market_market_ioc; limit_limit_gtc (post_only), sor_limit_ioc, limit_limit_fok;
        # stop_limit_stop_limit_gtc only: no stop-market (ccxt raises NotSupported).
        order_support=(
            (OrderType.MARKET, ()),
            (
                OrderType.LIMIT,
                (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.POST_ONLY),
            ),
            (OrderType.STOP_LIMIT, (TimeInForce.GTC,)),
        ),
        order_types_in={
            "market": OrderType.MARKET,
            "limit": OrderType.LIMIT,
            "stop_limit": OrderType.STOP_LIMIT,
        },
        main_quote="USD",
        features=(
            "client_order_id_lookup",
            "cancel_by_client_order_id",
            "client_order_id_dedupe",
            "key_permissions",
            "fills_since",
            "candles",
            "websocket_orders",
            "websocket_fills",
        ),
        # 300 signed requests a minute and 3 orders a second per key; 10 public a second per IP.
        rate_budgets=(
            Budget("requests", 300, 60, ACCOUNT_SCOPE),
            Budget("orders", 3, 1, ACCOUNT_SCOPE),
            Budget("public_requests", 10, 1, VENUE_SCOPE),
        ),
        request_charges=(
            ChargeRule("requests", api="private"),
            ChargeRule("orders", api="private", method="POST", path="brokerage/orders"),
            ChargeRule("public_requests", api="public"),
        ),
        # Coinbase sends no Retry-After and bans nobody: its windows are a minute at most.
        rate_limited_pause_seconds=1.0,
        error_message_keys=("message", "error_details", "error"),
        below_min_notional_markers=("QUOTE_SIZE_TOO_SMALL",),
        rejection_fields={
            "BASE_SIZE": "quantity",
            "SIZE_PRECISION": "quantity",
            "PRICE_PRECISION": "price",
            "LIMIT_PRICE": "price",
            "STOP_PRICE": "stop_price",
        },
        # Coinbase returns the first order for a repeated client_order_id: a resend is safe.
        resend_safe_after_seconds=0.0,
        watch_methods={WatchChannel.ORDERS: "watch_orders", WatchChannel.FILLS: "watch_orders"},
        trade_client_order_id_keys=("client_order_id",),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._filled: OrderedDict[str, Decimal] = OrderedDict()
        self._sent_trades: OrderedDict[str, None] = OrderedDict()
        self._sizes: OrderedDict[str, Decimal] = OrderedDict()

    # Orders -----------------------------------------------------------------------------------

    def _order_arguments(self, request: OrderRequest) -> tuple[str, dict[str, Any]]:
        kind, params = super()._order_arguments(request)
        if request.type is OrderType.MARKET:
            params["order_configuration"] = {
                "market_market_ioc": {"base_size": str(request.quantity)},
            }
        if request.type is OrderType.STOP_LIMIT:
            if request.time_in_force not in (None, TimeInForce.GTC):
                raise errors.invalid(
                    "time_in_force", "stop-limit orders at coinbase are good till cancelled"
                )
            params.pop("timeInForce", None)
            # A stop-loss sell triggers when the price falls to the stop, a buy when it rises.
            params["stop_direction"] = (
                "STOP_DIRECTION_STOP_DOWN"
                if request.side is Side.SELL
                else "STOP_DIRECTION_STOP_UP"
            )
        return kind, params

    async def _placed(self, request: OrderRequest, raw: Mapping[str, Any]) -> Order:
        # The create answers the id only; the order is read back for its state.
        if not isinstance(raw, Mapping) or not raw.get("id"):
            raise ValueError("the venue's answer holds no order")
        answered = str(raw.get("clientOrderId") or "")
        if answered and answered != request.client_order_id:
            raise ValueError("the venue answered with another order")
        order = await self._read_back(request, str(raw["id"]))
        return self._checked(order, request.client_order_id)

    def _checked(self, order: Order, client_order_id: str) -> Order:
        if order.client_order_id and order.client_order_id != client_order_id:
            raise ccxt_errors.OrderNotFound("no order with this client order id")
        return order

    async def _raw_order_by_client_id(
        self, client_order_id: str, symbol: str, hint: OrderHint | None
    ) -> Any:
        if hint is not None and hint.venue_order_id:
            raw = await self._client.fetch_order(hint.venue_order_id, symbol or None)
        else:
            # The path id is ignored when client_order_id is given (deprecated, documented).
            raw = await self._client.fetch_order(
                client_order_id, symbol or None, {"client_order_id": client_order_id}
            )
        self._checked(self._order(raw), client_order_id)
        return raw

    async def _cancel_by_client_id(
        self, client_order_id: str, symbol: str, hint: OrderHint | None
    ) -> Any:
        found = self._order(await self._raw_order_by_client_id(client_order_id, symbol, hint))
        if found.status.is_terminal:
            raise ccxt_errors.OrderNotFound("the order is not open")
        try:
            await self._client.cancel_order(found.venue_order_id, symbol or None)
        except ccxt_errors.BadRequest:
            # batch_cancel says success: false (already cancelled, filled, unknown).
            raise ccxt_errors.OrderNotFound("the order is not open") from None
        return await self._client.fetch_order(found.venue_order_id, symbol or None)

    def _order(self, raw: Mapping[str, Any]) -> Order:
        info = raw.get("info") if isinstance(raw, Mapping) else None
        configuration = info.get("order_configuration") if isinstance(info, Mapping) else None
        name, entry = "", None
        if isinstance(configuration, Mapping):
            for key, value in configuration.items():
                if isinstance(value, Mapping):
                    name, entry = key, value
        if entry is not None and (raw.get("amount") is None or raw.get("price") is None):
            # ccxt 4.5.90 reads no size or price from limit_limit_fok (nor a few others).
            raw = dict(raw)
            if raw.get("amount") is None:
                raw["amount"] = entry.get("base_size")
            if raw.get("price") is None:
                raw["price"] = entry.get("limit_price")
        order = super()._order(raw)
        if name.startswith("stop_limit") and entry is not None:
            # ccxt reads STOP_LIMIT as a limit; the configuration says it is a stop.
            return replace(
                order, type=OrderType.STOP_LIMIT, stop_price=to_decimal(entry.get("stop_price"))
            )
        return order

    # Key rights -------------------------------------------------------------------------------

    async def fetch_key_permissions(self) -> KeyPermissions | None:
        """Read the key's rights from ``GET /api/v3/brokerage/key_permissions``."""
        raw = await self._call(
            "fetch_key_permissions",
            self._client.v3PrivateGetBrokerageKeyPermissions,
        )
        # can_transfer moves funds out of the portfolio: as good as a withdrawal right.
        return KeyPermissions(
            can_trade=bool(raw.get("can_trade")),
            can_withdraw=bool(raw.get("can_transfer")),
            can_transfer=bool(raw.get("can_transfer")),
        )

    # Errors -----------------------------------------------------------------------------------

    def _reinterpret(self, error: ccxt_errors.BaseError, seen: Seen) -> ccxt_errors.BaseError:
        if seen.status == 404 and seen.path == _LOOKUP_PATH:
            return ccxt_errors.OrderNotFound("coinbase " + json.dumps({"message": "not found"}))
        if seen.status != 200 or not seen.body:
            return error
        try:
            body = json.loads(seen.body)
        except ValueError:
            return error
        if not isinstance(body, dict) or body.get("success") is not False:
            return error
        answer = body.get("error_response") or {}
        code = str(answer.get("error") or "")
        preview = str(answer.get("preview_failure_reason") or "")
        message = str(answer.get("message") or "the venue rejected the order")
        text = f"{message} ({preview or code})" if preview or code else message
        kind = _REJECTIONS.get(code) or _REJECTIONS.get(preview.removeprefix("PREVIEW_"))
        return (kind or ccxt_errors.InvalidOrder)("coinbase " + json.dumps({"message": text}))

    # Streams ----------------------------------------------------------------------------------

    def _is_stream_ack(self, message: Mapping[str, Any]) -> bool:
        """The ``subscriptions`` message, or the ``user`` channel's first snapshot."""
        if message.get("channel") == "subscriptions":
            return True
        events = message.get("events")
        return (
            message.get("channel") == "user"
            and isinstance(events, list)
            and any(isinstance(e, dict) and e.get("type") == "snapshot" for e in events)
        )

    def _stream_sequence(self, message: Mapping[str, Any]) -> int | None:
        value = message.get("sequence_num")
        return value if isinstance(value, int) else None

    async def _stream_order_of(self, raw: Mapping[str, Any]) -> Order:
        # ccxt reads a user-channel order's amount as its filled quantity (§3.5). While the order
        # is open its size is filled plus what is left; once it ended nothing is left, so the
        # size is the one seen before, or read back once.
        order = self._order(raw)
        info = raw.get("info") or {}
        filled = to_decimal(info.get("cumulative_quantity")) or Decimal(0)
        leaves = to_decimal(info.get("leaves_quantity")) or Decimal(0)
        size = self._sizes.get(order.venue_order_id)
        if leaves > 0 or not order.status.is_terminal:
            size = filled + leaves
        elif size is None:
            size = self._order(await self._client.fetch_order(order.venue_order_id)).quantity
        self._sizes[order.venue_order_id] = size
        self._sizes.move_to_end(order.venue_order_id)
        while len(self._sizes) > _SEEN_ORDERS:
            self._sizes.popitem(last=False)
        return replace(order, quantity=size, filled_quantity=filled)

    async def _stream_items(self, channel: WatchChannel, batch: list[Any]) -> list[Order | Fill]:
        if channel is WatchChannel.ORDERS:
            orders: list[Order | Fill] = []
            for raw in batch:
                try:
                    orders.append(
                        await self._call("watch_orders", partial(self._stream_order_of, raw))
                    )
                except (errors.ServiceError, KeyError, TypeError, ValueError):
                    continue
            return orders
        fills: list[Fill] = []
        for raw in batch:
            info = raw.get("info") or {}
            order_id = str(raw.get("id") or "")
            filled = to_decimal(info.get("cumulative_quantity")) or Decimal(0)
            if not order_id or filled <= self._filled.get(order_id, Decimal(0)):
                continue
            self._filled[order_id] = filled
            self._filled.move_to_end(order_id)
            while len(self._filled) > _SEEN_ORDERS:
                self._filled.popitem(last=False)
            trades = await self._call(
                "fetch_my_trades",
                partial(self._client.fetch_my_trades, None, None, None, {"order_id": order_id}),
            )
            for trade in trades:
                try:
                    fill = self._fill(trade)
                except (KeyError, TypeError, ValueError):
                    continue
                if fill.trade_id in self._sent_trades:
                    continue
                self._sent_trades[fill.trade_id] = None
                while len(self._sent_trades) > _SEEN_ORDERS * 4:
                    self._sent_trades.popitem(last=False)
                fills.append(fill)
        fills.sort(key=lambda f: (f.trade_time, f.trade_id))
        return list(fills)  # a list[Order | Fill], as the override returns
