"""Binance spot through ccxt (docs/exchange-protocols.md §2): capability data and key rights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from broker_svc.adapters.ccxt import CcxtExchange, VenueCapabilities
from broker_svc.domain.model import KeyPermissions, OrderType, TimeInForce
from broker_svc.domain.ratelimit import ACCOUNT_SCOPE, VENUE_SCOPE, Budget, ChargeRule


class BinanceExchange(CcxtExchange):
    """Binance spot: client order ids go as ``newClientOrderId``; key rights from the API."""

    trade_permission: ClassVar[str] = "enableSpotAndMarginTrading"
    """The ``apiRestrictions`` flag that lets the key trade on this class's markets."""

    capabilities: ClassVar[VenueCapabilities] = VenueCapabilities(
        ccxt_id="binance",
        options={
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
        },
        # docs/exchange-protocols.md §2.1: every key a spot client can reach.
        url_overrides={
            ("public",): "/api/v3",
            ("private",): "/api/v3",
            ("sapi",): "/sapi/v1",
            ("fapiPublic",): "/fapi/v1",
            ("dapiPublic",): "/dapi/v1",
            ("ws", "ws-api", "spot"): "/ws-api/v3",
        },
        client_order_id_param="newClientOrderId",
        lookup_client_order_id_param="clientOrderId",
        stop_price_param="stopPrice",
        symbol_required_for_lookup=True,
        symbol_required_for_history=True,
        history_window_seconds=86_400,
        history_page_limit=1000,
        # §2.4: MARKET; LIMIT with timeInForce GTC/IOC/FOK, post only as type LIMIT_MAKER;
        # stop-market as STOP_LOSS (no timeInForce) and stop-limit as STOP_LOSS_LIMIT (which
        # takes GTC/IOC/FOK). ccxt refuses a type the symbol's exchangeInfo orderTypes lack.
        order_support=(
            (OrderType.MARKET, ()),
            (
                OrderType.LIMIT,
                (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.POST_ONLY),
            ),
            (OrderType.STOP_MARKET, ()),
            (OrderType.STOP_LIMIT, (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)),
        ),
        order_types_in={
            "market": OrderType.MARKET,
            "limit": OrderType.LIMIT,
            "limit_maker": OrderType.LIMIT,
            "stop_loss": OrderType.STOP_MARKET,
            "stop_loss_limit": OrderType.STOP_LIMIT,
            "take_profit": OrderType.STOP_MARKET,
            "take_profit_limit": OrderType.STOP_LIMIT,
        },
        main_quote="USDT",
        features=(
            "client_order_id_lookup",
            "cancel_by_client_order_id",
            "key_permissions",
            "fills_since",
            "candles",
            "websocket_orders",
            "websocket_fills",
        ),
        # Request weight is counted per IP (every account of the broker shares it), orders per
        # account. ccxt's per-endpoint costs are weight x 0.2 (ccxt assumes 6,000 a minute).
        rate_budgets=(
            Budget("request_weight", 1200, 60, VENUE_SCOPE),
            Budget("orders", 10, 1, ACCOUNT_SCOPE),
            Budget("orders", 100, 10, ACCOUNT_SCOPE),
            Budget("orders", 200_000, 86_400, ACCOUNT_SCOPE),
        ),
        request_charges=(
            ChargeRule("request_weight", cost=None),
            ChargeRule("orders", api="private", method="POST", path="order"),
        ),
        ccxt_cost_scale=5.0,
        ws_connect_charges={"request_weight": 2},
        # A 429/418 says Retry-After; a -1015 without one waits out the 10 s order window.
        rate_limited_pause_seconds=10.0,
        # 418 (-1003 "IP banned until ...") is the automated IP ban for going on after 429s.
        ban_statuses=(418,),
        ban_markers=("IP banned",),
        error_message_keys=("msg",),
        below_min_notional_markers=("NOTIONAL",),
        duplicate_client_order_id_markers=("Duplicate order sent",),
        rejection_fields={"LOT_SIZE": "quantity", "PRICE_FILTER": "price"},
        # ccxt signs with recvWindow=10000: later than that the venue refuses the request as stale.
        resend_safe_after_seconds=30.0,
        # executionReport ``c`` is the order's client id (ccxt leaves it out of the trade).
        trade_client_order_id_keys=("clientOrderId", "c"),
    )

    async def fetch_key_permissions(self) -> KeyPermissions | None:
        """Read the key's rights from ``GET /sapi/v1/account/apiRestrictions``.

        Trading is ``trade_permission`` of the reply (spot's, or futures' in the subclass).
        """
        raw = await self._call(
            "fetch_key_permissions",
            self._client.sapi_get_account_apirestrictions,
        )
        return KeyPermissions(
            can_trade=bool(raw.get(self.trade_permission)),
            can_withdraw=bool(raw.get("enableWithdrawals")),
            can_transfer=bool(
                raw.get("enableInternalTransfer") or raw.get("permitsUniversalTransfer"),
            ),
        )

    def _is_stream_ack(self, message: Mapping[str, Any]) -> bool:
        """The WebSocket API's reply to ``userDataStream.subscribe.signature``."""
        result = message.get("result")
        return (
            message.get("status") == 200
            and isinstance(result, dict)
            and ("subscriptionId" in result)
        )
