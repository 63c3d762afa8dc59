"""Binance USDⓈ-M futures through ccxt ``binanceusdm`` (docs/exchange-protocols.md §2.9).

A futures account is registered as its own exchange account (venue ``binanceusdm``) with the
same Binance API key as spot; its markets are the linear perpetuals (``BTC/USDT:USDT``) and its
balance the USDT futures wallet. Orders are MARKET and LIMIT (conditional orders go through
Binance's algo-order endpoints, which need ``trigger`` lookups this class does not make yet).
``reduce_only`` on a request is sent as ``reduceOnly``. Against an emulator, a ``binanceusdm``
account uses the ``binance`` entry of ``VENUE_URLS`` when it has none of its own (one port
serves both, as ``exchange_sim`` does). The private stream (``WatchOrders``, ``WatchFills``:
``ORDER_TRADE_UPDATE``) is Binance's futures
listen-key socket without a subscribe confirmation: the stream counts as subscribed once the
socket opened on a listen key ccxt obtained (``POST /fapi/v1/listenKey``), since Binance pushes
every later event on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from broker_svc.adapters.binance import BinanceExchange
from broker_svc.adapters.ccxt import VenueCapabilities
from broker_svc.domain.model import OrderType, TimeInForce
from broker_svc.domain.ratelimit import ACCOUNT_SCOPE, VENUE_SCOPE, Budget, ChargeRule


class BinanceUsdmExchange(BinanceExchange):
    """Binance USDⓈ-M perpetuals: swap markets only, orders on ``/fapi/v1/order``."""

    shares_url_with: ClassVar[str | None] = "binance"
    trade_permission: ClassVar[str] = "enableFutures"

    capabilities: ClassVar[VenueCapabilities] = VenueCapabilities(
        ccxt_id="binanceusdm",
        required_ccxt_has=(
            "fetchMarkets",
            "fetchBalance",
            "createOrder",
            "fetchOrder",
            "cancelOrder",
            "fetchMyTrades",
            "fetchOrders",
            "fetchTicker",
            "fetchPositions",
            "fetchLeverages",
            "setLeverage",
            "setMarginMode",
            "watchOrders",
            "watchMyTrades",
        ),
        # No sapi currency or margin calls in load_markets: only /fapi/v1/exchangeInfo. A margin
        # mode already set (-4046) is success, not an error (ccxt's default raises it).
        options={
            "fetchCurrencies": False,
            "fetchMargins": False,
            "setMarginMode": {"throwMarginModeAlreadySet": False},
        },
        url_overrides={
            ("public",): "/api/v3",
            ("private",): "/api/v3",
            ("sapi",): "/sapi/v1",
            ("fapiPublic",): "/fapi/v1",
            ("fapiPrivate",): "/fapi/v1",
            ("fapiPublicV2",): "/fapi/v2",
            ("fapiPrivateV2",): "/fapi/v2",
            ("fapiPublicV3",): "/fapi/v3",
            ("fapiPrivateV3",): "/fapi/v3",
            ("fapiData",): "/futures/data",
            ("ws", "linear"): "/ws",
        },
        client_order_id_param="newClientOrderId",
        lookup_client_order_id_param="clientOrderId",
        stop_price_param="triggerPrice",
        symbol_required_for_lookup=True,
        symbol_required_for_history=True,
        history_window_seconds=7 * 86_400,
        history_page_limit=1000,
        # §2.9: MARKET; LIMIT with GTC/IOC/FOK, post only as timeInForce GTX.
        order_support=(
            (OrderType.MARKET, ()),
            (
                OrderType.LIMIT,
                (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.POST_ONLY),
            ),
        ),
        order_types_in={"market": OrderType.MARKET, "limit": OrderType.LIMIT},
        main_quote="USDT",
        features=(
            "client_order_id_lookup",
            "cancel_by_client_order_id",
            "key_permissions",
            "fills_since",
            "reduce_only",
            "positions",
            "leverage",
            "websocket_orders",
            "websocket_fills",
        ),
        rate_budgets=(
            Budget("request_weight", 2400, 60, VENUE_SCOPE),
            Budget("orders", 300, 10, ACCOUNT_SCOPE),
            Budget("orders", 1200, 60, ACCOUNT_SCOPE),
        ),
        request_charges=(
            ChargeRule("request_weight", cost=None),
            ChargeRule("orders", api="fapiPrivate", method="POST", path="order"),
        ),
        ccxt_cost_scale=1.0,
        rate_limited_pause_seconds=10.0,
        ban_statuses=(418,),
        ban_markers=("IP banned",),
        error_message_keys=("msg",),
        below_min_notional_markers=("notional must be no smaller",),
        duplicate_client_order_id_markers=("ClientOrderId is duplicated",),
        rejection_markers=("Margin is insufficient", "ReduceOnly Order is rejected"),
        rejection_fields={"LOT_SIZE": "quantity", "tick size": "price"},
        resend_safe_after_seconds=30.0,
        trade_client_order_id_keys=("clientOrderId", "c"),
    )

    @staticmethod
    def _keeps_market(entry: Mapping[str, Any]) -> bool:
        """The linear perpetuals (the spot class keeps spot markets only)."""
        return bool(entry.get("swap") and entry.get("linear"))

    def _is_stream_ack(self, message: Mapping[str, Any]) -> bool:
        return False  # a listen-key socket confirms nothing: see _await_subscribed

    async def _await_subscribed(self, call: asyncio.Future[Any]) -> None:
        """Subscribed once ccxt's socket on the listen key is open (or the watch failed)."""
        deadline = time.monotonic() + float(self.capabilities.stream_ack_timeout_seconds)
        while time.monotonic() < deadline and not call.done():
            if any(
                "listenKey=" in url
                and client.connected.done()
                and client.connected.exception() is None
                for url, client in list(self._client.clients.items())
            ):
                self._stream_ready.set()
                return
            await asyncio.sleep(0.02)
        if call.done() and call.exception() is not None:
            call.result()  # raises the failure
