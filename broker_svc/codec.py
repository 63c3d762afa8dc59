"""Pure translation between the broker's protos and its domain types."""

from __future__ import annotations

from broker_svc.domain.model import (
    Candle,
    ConnectionReport,
    ExchangeAccount,
    Fill,
    Market,
    Order,
    StreamEvent,
    StreamState,
    VenueProfile,
)
from broker_svc.domain.portfolio import Portfolio
from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.common.v1 import types_pb2
from meshkit.codec import (
    ORDER_STATUS,
    ORDER_TYPE,
    SIDE,
    TIME_IN_FORCE,
    EnumMap,
    set_decimal,
    timestamp_to_proto,
)

DOMAIN = "broker.copytrade"
"""The error domain of the broker's statuses (``broker_svc.server.DOMAIN``, the interceptor's),
for the per-account errors GetPortfolios answers with."""

# The broker's own words on the wire, one table per enum (the shared ones: meshkit.codec).
STREAM_STATE = EnumMap(
    pb.WatchState,
    {
        StreamState.CONNECTED: pb.WATCH_STATE_CONNECTED,
        StreamState.DISCONNECTED: pb.WATCH_STATE_DISCONNECTED,
        StreamState.GAP_SUSPECTED: pb.WATCH_STATE_GAP_SUSPECTED,
    },
)


def account_to_proto(account: ExchangeAccount) -> pb.ExchangeAccount:
    """Return the wire form of an account: never any secret."""
    return pb.ExchangeAccount(
        exchange_id=account.exchange_id,
        exchange_name=account.exchange_name,
        label=account.label,
        api_key_hint=account.api_key_hint,
        create_time=timestamp_to_proto(account.created_at),
    )


def order_to_proto(order: Order, exchange_id: str) -> types_pb2.Order:
    """Return the wire form of an order of account ``exchange_id``."""
    message = types_pb2.Order(
        exchange_id=exchange_id,
        venue_order_id=order.venue_order_id,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=SIDE.to_proto(order.side),
        type=ORDER_TYPE.to_proto(order.type),
        time_in_force=TIME_IN_FORCE.to_proto(order.time_in_force)
        if order.time_in_force
        else types_pb2.TIME_IN_FORCE_UNSPECIFIED,
        status=ORDER_STATUS.to_proto(order.status),
        fee_currency=order.fee_currency,
    )
    set_decimal(message.quantity, order.quantity)
    set_decimal(message.filled_quantity, order.filled_quantity)
    if order.price is not None:
        set_decimal(message.price, order.price)
    if order.stop_price is not None:
        set_decimal(message.stop_price, order.stop_price)
    if order.average_price is not None:
        set_decimal(message.average_price, order.average_price)
    if order.fee is not None:
        set_decimal(message.fee, order.fee)
    if order.created_at is not None:
        message.create_time.CopyFrom(timestamp_to_proto(order.created_at))
    if order.updated_at is not None:
        message.update_time.CopyFrom(timestamp_to_proto(order.updated_at))
    return message


def fill_to_proto(fill: Fill, exchange_id: str) -> types_pb2.Fill:
    """Return the wire form of a fill of account ``exchange_id``."""
    message = types_pb2.Fill(
        exchange_id=exchange_id,
        trade_id=fill.trade_id,
        venue_order_id=fill.venue_order_id,
        client_order_id=fill.client_order_id,
        symbol=fill.symbol,
        side=SIDE.to_proto(fill.side),
        fee_currency=fill.fee_currency,
        order_type=ORDER_TYPE.to_proto(fill.order_type)
        if fill.order_type
        else types_pb2.ORDER_TYPE_UNSPECIFIED,
        trade_time=timestamp_to_proto(fill.trade_time),
    )
    set_decimal(message.quantity, fill.quantity)
    set_decimal(message.price, fill.price)
    if fill.fee is not None:
        set_decimal(message.fee, fill.fee)
    return message


def market_to_proto(market: Market) -> pb.Market:
    """Return the wire form of a market."""
    message = pb.Market(symbol=market.symbol, base=market.base, quote=market.quote)
    for name in (
        "quantity_step",
        "price_tick",
        "min_quantity",
        "min_notional",
        "max_quantity",
        "contract_size",
    ):
        value = getattr(market, name)
        if value is not None:
            set_decimal(getattr(message, name), value)
    return message


def supported_exchange_to_proto(
    profile: VenueProfile,
    markets: list[Market],
) -> pb.SupportedExchange:
    """Return the wire form of a venue's description and its markets."""
    return pb.SupportedExchange(
        exchange_name=profile.name,
        order_types=[ORDER_TYPE.to_proto(kind) for kind in profile.order_types],
        time_in_forces=[TIME_IN_FORCE.to_proto(tif) for tif in profile.time_in_forces],
        features=list(profile.features),
        rate_limits=[
            pb.RateLimit(name=r.name, limit=r.limit, interval_seconds=r.interval_seconds)
            for r in profile.rate_limits
        ],
        markets=[market_to_proto(market) for market in markets],
        order_capabilities=[
            pb.OrderCapability(
                order_type=ORDER_TYPE.to_proto(kind),
                time_in_forces=[TIME_IN_FORCE.to_proto(tif) for tif in tifs],
            )
            for kind, tifs in profile.order_support
        ],
    )


def report_to_proto(report: ConnectionReport) -> pb.TestBrokerResponse:
    """Return the wire form of a credentials test."""
    return pb.TestBrokerResponse(
        ok=report.ok,
        reachable=report.reachable,
        authenticated=report.authenticated,
        can_trade=report.can_trade,
        can_withdraw=report.can_withdraw,
        reason=report.reason,
        latency_ms=report.latency_ms,
    )


def portfolio_to_proto(portfolio: Portfolio) -> pb.GetPortfolioResponse:
    """Return the wire form of a valued portfolio."""
    response = pb.GetPortfolioResponse(
        quote_currency=portfolio.quote_currency,
        read_time=timestamp_to_proto(portfolio.read_at),
    )
    if portfolio.positions_requested_at is not None:
        response.positions_request_time.CopyFrom(
            timestamp_to_proto(portfolio.positions_requested_at)
        )
    for valued in portfolio.balances:
        balance = response.balances.add(asset=valued.balance.asset)
        set_decimal(balance.free, valued.balance.free)
        set_decimal(balance.locked, valued.balance.locked)
        set_decimal(balance.total, valued.balance.total)
        if valued.value is not None:
            set_decimal(balance.value, valued.value)
    set_decimal(response.equity, portfolio.equity)
    for position in portfolio.positions:
        wire = response.positions.add(
            symbol=position.symbol,
            side=position.side,
            margin_mode=position.margin_mode,
            hedged=position.hedged,
        )
        set_decimal(wire.contracts, position.contracts)
        for name in (
            "entry_price",
            "mark_price",
            "unrealized_pnl",
            "liquidation_price",
            "leverage",
            "contract_size",
        ):
            value = getattr(position, name)
            if value is not None:
                set_decimal(getattr(wire, name), value)
    for setting in portfolio.leverages:
        wire_leverage = response.leverages.add(
            symbol=setting.symbol, margin_mode=setting.margin_mode
        )
        set_decimal(wire_leverage.leverage, setting.leverage)
    return response


def candle_to_proto(candle: Candle) -> pb.Candle:
    """Return the wire form of a candle."""
    message = pb.Candle(open_time=timestamp_to_proto(candle.open_time))
    for name in ("open", "high", "low", "close", "volume"):
        set_decimal(getattr(message, name), getattr(candle, name))
    return message


def watch_event_to_proto(event: StreamEvent) -> pb.WatchEvent:
    """Return the wire form of a venue stream's change of state."""
    return pb.WatchEvent(
        state=STREAM_STATE.to_proto(event.state),
        detail=event.detail,
        event_time=timestamp_to_proto(event.at),
    )


def watch_fills_response(item: Fill | StreamEvent, exchange_id: str) -> pb.WatchFillsResponse:
    """Return one message of a fills watch."""
    if isinstance(item, StreamEvent):
        return pb.WatchFillsResponse(event=watch_event_to_proto(item))
    return pb.WatchFillsResponse(fill=fill_to_proto(item, exchange_id))


def watch_orders_response(item: Order | StreamEvent, exchange_id: str) -> pb.WatchOrdersResponse:
    """Return one message of an orders watch."""
    if isinstance(item, StreamEvent):
        return pb.WatchOrdersResponse(event=watch_event_to_proto(item))
    return pb.WatchOrdersResponse(order=order_to_proto(item, exchange_id))
