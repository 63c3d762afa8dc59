"""Kraken spot through ccxt (docs/exchange-protocols.md §4).

Where Kraken differs in behaviour, not only in data:

* Requests are signed with a nonce that must rise strictly per key: the key's requests are sent
  one at a time, with a millisecond nonce above every earlier one (one signer per key).
* ``cl_ord_id`` is unique among open orders only and no endpoint looks it up (§4.8, §5): an
  order is found by its txid when the broker knows it, else among the open orders, else among
  the closed ones since it was sent, always filtered here by ``cl_ord_id``.
* A create answers the txid only: the order is read back with ``QueryOrders``.
* There is no order history endpoint: orders over a window are the open plus the closed ones.
* The ``executions`` stream gives the client id as ``order_userref``; ``cl_ord_id`` is read from
  the message instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from ccxt.base import errors as ccxt_errors

from broker_svc.adapters.ccxt import (
    DEFAULT_REQUIRED_CCXT_HAS,
    CcxtExchange,
    VenueCapabilities,
    to_millis,
)
from broker_svc.domain.model import (
    KeyPermissions,
    Order,
    OrderHint,
    OrderRequest,
    OrderType,
    TimeInForce,
)
from broker_svc.domain.ratelimit import ACCOUNT_SCOPE, VENUE_SCOPE, Budget, ChargeRule
from meshkit import errors

_CLOSED_PAGE = 50
_CLOSED_PAGES = 20
_SENT_MARGIN = timedelta(seconds=60)


class KrakenExchange(CcxtExchange):
    """Kraken spot: ``cl_ord_id`` client ids, one signer per key, rights from ``GetApiKeyInfo``."""

    capabilities: ClassVar[VenueCapabilities] = VenueCapabilities(
        ccxt_id="kraken",
        required_ccxt_has=(
            *(name for name in DEFAULT_REQUIRED_CCXT_HAS if name != "fetchOrders"),
            "fetchOpenOrders",
            "fetchClosedOrders",
            "watchMyTrades",
        ),
        # §4.1: REST public and private are the host; ccxt appends /0/public|private/<Method>.
        url_overrides={
            ("public",): "",
            ("private",): "",
            ("ws", "public"): "/ws",
            ("ws", "beta"): "/ws",
            ("ws", "publicV2"): "/ws/v2",
            ("ws", "private"): "/ws-auth",
            ("ws", "beta-private"): "/ws-auth",
            ("ws", "privateV2"): "/ws-auth/v2",
        },
        client_order_id_param="clientOrderId",
        lookup_client_order_id_param="clientOrderId",
        stop_price_param="stopLossPrice",
        symbol_required_for_lookup=False,
        symbol_required_for_history=False,
        history_window_seconds=86_400 * 30,
        history_page_limit=50,
        history_paging="offset",
        # §4.4: market; limit with timeinforce GTC/IOC (no FOK on spot), post only as
        # oflags=post; stop-loss (stop-market) and stop-loss-limit, good till cancelled.
        order_support=(
            (OrderType.MARKET, ()),
            (OrderType.LIMIT, (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.POST_ONLY)),
            (OrderType.STOP_MARKET, ()),
            (OrderType.STOP_LIMIT, (TimeInForce.GTC,)),
        ),
        order_types_in={
            "market": OrderType.MARKET,
            "limit": OrderType.LIMIT,
            "stop-loss": OrderType.STOP_MARKET,
            "stop-loss-limit": OrderType.STOP_LIMIT,
            "take-profit": OrderType.STOP_MARKET,
            "take-profit-limit": OrderType.STOP_LIMIT,
        },
        main_quote="USD",
        features=(
            "client_order_id_lookup",
            "cancel_by_client_order_id",
            "key_permissions",
            "fills_since",
            "candles",
            "websocket_orders",
            "websocket_fills",
        ),
        # 60 private calls a minute per key (orders and cancels are metered apart), 1 order a
        # second per key, 60 public calls a minute per IP.
        rate_budgets=(
            Budget("requests", 60, 60, ACCOUNT_SCOPE),
            Budget("orders", 1, 1, ACCOUNT_SCOPE),
            Budget("public_requests", 60, 60, VENUE_SCOPE),
        ),
        request_charges=(
            ChargeRule("requests", api="private", path="AddOrder", cost=0),
            ChargeRule("requests", api="private", path="CancelOrder", cost=0),
            ChargeRule("requests", api="private"),
            ChargeRule("orders", api="private", path="AddOrder"),
            ChargeRule("public_requests", api="public"),
        ),
        # Kraken sends no Retry-After; a call made while limited locks the key out, so a
        # request limit waits out its whole minute. An order limit is a one-second window.
        rate_limited_pause_seconds=60.0,
        rate_limited_pauses=(("EOrder:Rate limit exceeded", 1.0),),
        ban_markers=("EGeneral:Temporary lockout",),
        serialise_requests=True,
        monotonic_nonce=True,
        error_message_keys=("error", "message"),
        below_min_notional_markers=("Cost minimum not met",),
        duplicate_client_order_id_markers=("EOrder:Duplicate order",),
        credentials_markers=("EAPI:Invalid signature", "EAPI:Invalid key"),
        symbol_markers=("EQuery:Unknown asset pair", "EQuery:Invalid asset pair"),
        rejection_markers=("EOrder:", "EGeneral:Invalid arguments"),
        rejection_fields={
            "Order minimum": "quantity",
            "volume": "quantity",
            "Invalid price": "price",
            "price2": "price",
            "timeinforce": "time_in_force",
        },
        # A request signed with an old nonce is refused once a newer one has been seen; 60 s
        # also covers the lookup of closed orders since the send.
        resend_safe_after_seconds=60.0,
        trade_client_order_id_keys=("cl_ord_id",),
    )

    # Orders -----------------------------------------------------------------------------------

    def _order_arguments(self, request: OrderRequest) -> tuple[str, dict[str, Any]]:
        kind, params = super()._order_arguments(request)
        if request.type is OrderType.STOP_LIMIT and request.time_in_force not in (
            None,
            TimeInForce.GTC,
        ):
            raise errors.invalid(
                "time_in_force", "stop-limit orders at kraken are good till cancelled"
            )
        if request.type is OrderType.STOP_LIMIT:
            params.pop("timeInForce", None)
        return kind, params

    async def _placed(self, request: OrderRequest, raw: Mapping[str, Any]) -> Order:
        # AddOrder answers the txid only; QueryOrders has the state.
        if not isinstance(raw, Mapping) or not raw.get("id"):
            raise ValueError("the venue's answer holds no order")
        order = await self._read_back(request, str(raw["id"]))
        if order.client_order_id and order.client_order_id != request.client_order_id:
            raise ValueError("the venue answered with another order")
        return replace(order, client_order_id=request.client_order_id)

    async def _raw_order_by_client_id(
        self, client_order_id: str, symbol: str, hint: OrderHint | None
    ) -> Any:
        wanted = symbol or None
        if hint is not None and hint.venue_order_id:
            try:
                raw = await self._client.fetch_order(hint.venue_order_id, wanted)
            except ccxt_errors.InvalidOrder:
                # OrderNotFound, or "EOrder:Invalid order" for a txid QueryOrders does not
                # show (yet): the listings below search by cl_ord_id instead.
                raw = None
            if raw and raw.get("clientOrderId") == client_order_id:
                return raw
        opened = await self._client.fetch_open_orders(
            wanted, None, None, {"cl_ord_id": client_order_id}
        )
        found = _newest(opened, client_order_id)
        if found is not None:
            return found
        since = None
        if hint is not None and hint.sent_at is not None:
            since = to_millis(hint.sent_at - _SENT_MARGIN)
        for page in range(_CLOSED_PAGES):
            closed = await self._client.fetch_closed_orders(
                wanted, since, None, {"ofs": page * _CLOSED_PAGE}
            )
            found = _newest(closed, client_order_id)
            if found is not None:
                return found
            if len(closed) < _CLOSED_PAGE:
                break
        raise ccxt_errors.OrderNotFound("kraken: no order with this cl_ord_id")

    async def _cancel_by_client_id(
        self, client_order_id: str, symbol: str, hint: OrderHint | None
    ) -> Any:
        # CancelOrder takes cl_ord_id (open orders only); its answer is a count.
        await self._client.cancel_order(None, symbol or None, {"clientOrderId": client_order_id})
        return await self._raw_order_by_client_id(client_order_id, symbol, hint)

    async def fetch_orders(
        self,
        symbols: Sequence[str],
        start: datetime,
        end: datetime,
    ) -> list[Order]:
        """Return the orders created in ``[start, end)``: the open and the closed ones."""

        async def action() -> list[Any]:
            raw = list(await self._client.fetch_open_orders(None))
            for page in range(_CLOSED_PAGES):
                closed = await self._client.fetch_closed_orders(
                    None, to_millis(start) - 1000, None, {"ofs": page * _CLOSED_PAGE}
                )
                raw += closed
                if len(closed) < _CLOSED_PAGE:
                    break
            return raw

        raw = await self._call("fetch_orders", action)
        orders = {order.venue_order_id: order for order in map(self._order, raw)}
        kept = [
            order
            for order in orders.values()
            if order.created_at is not None
            and start <= order.created_at < end
            and (not symbols or order.symbol in symbols)
        ]
        return sorted(kept, key=lambda o: (o.created_at or start, o.venue_order_id))

    # Key rights -------------------------------------------------------------------------------

    async def fetch_key_permissions(self) -> KeyPermissions | None:
        """Read the key's rights from ``GetApiKeyInfo`` (``withdraw-funds``, ``modify-trades``)."""
        raw = await self._call(
            "fetch_key_permissions",
            self._client.privatePostGetApiKeyInfo,
        )
        result = raw.get("result") if isinstance(raw, Mapping) else None
        permissions = (result or {}).get("permissions")
        if not isinstance(permissions, list):
            return None
        return KeyPermissions(
            can_trade="modify-trades" in permissions,
            can_withdraw="withdraw-funds" in permissions,
        )

    # Streams ----------------------------------------------------------------------------------

    def _is_stream_ack(self, message: Mapping[str, Any]) -> bool:
        """The reply to the ``executions`` subscribe."""
        result = message.get("result")
        return (
            message.get("method") == "subscribe"
            and message.get("success") is True
            and isinstance(result, dict)
            and result.get("channel") == "executions"
        )

    def _stream_sequence(self, message: Mapping[str, Any]) -> int | None:
        value = message.get("sequence")
        return value if message.get("channel") == "executions" and isinstance(value, int) else None

    def _stream_order(self, raw: Mapping[str, Any]) -> Order:
        order = self._order(raw)
        info = raw.get("info") or {}
        client_order_id = info.get("cl_ord_id") if isinstance(info, Mapping) else None
        return replace(order, client_order_id=str(client_order_id or ""))


def _newest(orders: Sequence[Any], client_order_id: str) -> Any | None:
    matching = [o for o in orders if o.get("clientOrderId") == client_order_id]
    if not matching:
        return None
    return max(matching, key=lambda o: int(o.get("timestamp") or 0))
