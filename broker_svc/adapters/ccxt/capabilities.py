"""What the broker knows of a venue reached through ccxt, as typed data.

Per-venue differences are data (in the spirit of freqtrade's ``_ft_has``) or a tiny subclass per
venue; the shared code never branches on a venue's name. A venue profile builds
:class:`VenueCapabilities` with keyword arguments, so a misspelt field is a ``TypeError`` at
import instead of a setting silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from broker_svc.domain.model import OrderSupport, OrderType, TimeInForce, WatchChannel
from broker_svc.domain.ratelimit import Budget, ChargeRule

DEFAULT_REQUIRED_CCXT_HAS: tuple[str, ...] = (
    "fetchMarkets",
    "fetchBalance",
    "createOrder",
    "fetchOrder",
    "cancelOrder",
    "fetchMyTrades",
    "fetchOrders",
    "fetchTicker",
    "fetchOHLCV",
    "watchOrders",
)
"""The ccxt ``has`` entries the broker needs at a venue unless its profile says otherwise."""


def _default_order_types_in() -> dict[str, OrderType]:
    return {"market": OrderType.MARKET, "limit": OrderType.LIMIT}


def _default_watch_methods() -> dict[WatchChannel, str]:
    return {WatchChannel.ORDERS: "watch_orders", WatchChannel.FILLS: "watch_my_trades"}


@dataclass(frozen=True, kw_only=True)
class VenueCapabilities:
    """One venue's capability data; every field but ``ccxt_id`` has the common default.

    Attributes
    ----------
    ccxt_id
        The ccxt (and ccxt.pro) class name of the venue, also the broker's venue name.
    required_ccxt_has
        The ccxt ``has`` entries the pinned ccxt must offer (checked at startup).
    options
        ccxt client options (copied into each client).
    url_overrides
        Where each ccxt URL key points under an emulator's base URL (``("ws",)`` is one string).
    client_order_id_param, lookup_client_order_id_param, stop_price_param
        The names ccxt or the venue takes the client order id (on create, on lookup and cancel)
        and the stop price under.
    symbol_required_for_lookup, symbol_required_for_history
        Whether a lookup by client order id, or a history read, needs the symbol.
    history_window_seconds, history_page_limit, history_paging, history_max_pages
        How orders and trades are paged: by time cursor within windows, or by offset.
    order_support
        The venue's order table: each order type the broker can place there and the
        time-in-force values (post only among them) it can send with it, as the real venue
        and ccxt take them (docs/exchange-protocols.md). ``ListSupportedExchanges`` lists it
        and ``PlaceOrder`` refuses, before any venue call, what it does not hold.
    order_types_in, main_quote, features
        How ccxt's order type names read, the main quote and the venue's features.
    error_message_keys
        Where the venue's JSON error body keeps its message.
    below_min_notional_markers, duplicate_client_order_id_markers, credentials_markers,
    symbol_markers, rejection_markers
        Texts in a venue error that name what went wrong when ccxt's class does not.
    rejection_fields
        A text in a rejection and the request field it names.
    resend_safe_after_seconds
        How long after a send the venue would have refused it as stale (resend is then safe).
    rate_budgets, request_charges, ccxt_cost_scale
        The venue's documented request budgets and what each request costs against them.
    rate_limited_pauses, rate_limited_pause_seconds
        How long to pause after a rate limit without Retry-After (by text, else the default).
    ban_statuses, ban_markers
        The HTTP statuses and error texts by which a venue says the broker is banned or locked
        out (beyond a rate limit); counted in ``copytrade_broker_venue_bans_total``.
    serialise_requests, monotonic_nonce
        Whether a key's requests go one at a time, signed with a strictly rising nonce.
    watch_methods, ws_connect_charges, ws_backoff_seconds, stream_ack_timeout_seconds
        The ccxt watch method per channel, what a (re)connection costs, the reconnect backoff
        (first, longest) and how long to wait for the venue's subscribe confirmation.
    trade_client_order_id_keys
        Where in a trade's raw ``info`` the order's client id may be.
    """

    ccxt_id: str
    required_ccxt_has: tuple[str, ...] = DEFAULT_REQUIRED_CCXT_HAS
    options: Mapping[str, Any] = field(default_factory=dict)
    url_overrides: Mapping[tuple[str, ...], str] = field(default_factory=dict)
    client_order_id_param: str = "clientOrderId"
    lookup_client_order_id_param: str = "clientOrderId"
    stop_price_param: str = "stopPrice"
    symbol_required_for_lookup: bool = True
    symbol_required_for_history: bool = True
    history_window_seconds: int = 86_400
    history_page_limit: int = 1000
    history_paging: Literal["cursor", "offset"] = "cursor"
    history_max_pages: int = 20
    order_support: OrderSupport = (
        (OrderType.MARKET, ()),
        (OrderType.LIMIT, (TimeInForce.GTC,)),
    )
    order_types_in: Mapping[str, OrderType] = field(default_factory=_default_order_types_in)
    main_quote: str = "USD"
    features: tuple[str, ...] = ()
    error_message_keys: tuple[str, ...] = ("msg", "message")
    below_min_notional_markers: tuple[str, ...] = ()
    duplicate_client_order_id_markers: tuple[str, ...] = ()
    credentials_markers: tuple[str, ...] = ()
    symbol_markers: tuple[str, ...] = ()
    rejection_markers: tuple[str, ...] = ()
    rejection_fields: Mapping[str, str] = field(default_factory=dict)
    resend_safe_after_seconds: float = 60.0
    # Rate limits (docs/exchange-protocols.md; the venue's own documented budgets).
    rate_budgets: tuple[Budget, ...] = ()
    request_charges: tuple[ChargeRule, ...] = ()
    ccxt_cost_scale: float = 1.0
    rate_limited_pauses: tuple[tuple[str, float], ...] = ()
    rate_limited_pause_seconds: float = 1.0
    ban_statuses: tuple[int, ...] = ()
    ban_markers: tuple[str, ...] = ()
    serialise_requests: bool = False
    monotonic_nonce: bool = False
    # Streams.
    watch_methods: Mapping[WatchChannel, str] = field(default_factory=_default_watch_methods)
    ws_connect_charges: Mapping[str, int] = field(default_factory=dict)
    ws_backoff_seconds: tuple[float, float] = (0.5, 30.0)
    stream_ack_timeout_seconds: float = 10.0
    trade_client_order_id_keys: tuple[str, ...] = ("clientOrderId",)
