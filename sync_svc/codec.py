"""Pure conversions between the sync and broker protos and the sync service's domain values."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from google.protobuf import timestamp_pb2

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.common.v1 import types_pb2
from copytrade.sync.v1 import sync_service_pb2 as pb
from meshkit import errors
from meshkit.codec import (
    ORDER_STATUS,
    ORDER_TYPE,
    SIDE,
    TIME_IN_FORCE,
    EnumMap,
    decimal_from_proto,
    set_decimal,
    timestamp_from_proto,
)
from meshkit.leases import Lease, Replica
from sync_svc.domain.model import (
    ExchangeAccount,
    LeaderFill,
    LeaderOrder,
    Portfolio,
    PositionEffect,
    Signal,
    SignalKind,
    Source,
    SourceKind,
    SyncMode,
    SyncSettings,
    WatchEvent,
    WatchItem,
    WatchState,
)
from sync_svc.domain.positions import is_liquidation
from sync_svc.domain.validation import RawPublishedSignal, Violation, check_sync_settings
from sync_svc.stream import Ack, StreamRequest, Subscribe

# The sync service's own words on the wire, one table per enum (the shared ones: meshkit.codec).
SOURCE_KIND = EnumMap(
    pb.SourceKind,
    {SourceKind.EXCHANGE: pb.SOURCE_KIND_EXCHANGE, SourceKind.BACKTEST: pb.SOURCE_KIND_BACKTEST},
)
WATCH_STATE = EnumMap(
    broker_pb.WatchState,
    {
        WatchState.CONNECTED: broker_pb.WATCH_STATE_CONNECTED,
        WatchState.DISCONNECTED: broker_pb.WATCH_STATE_DISCONNECTED,
        WatchState.GAP_SUSPECTED: broker_pb.WATCH_STATE_GAP_SUSPECTED,
    },
)
POSITION_EFFECT = EnumMap(
    pb.PositionEffect,
    {
        PositionEffect.UNSPECIFIED: pb.POSITION_EFFECT_UNSPECIFIED,
        PositionEffect.OPEN: pb.POSITION_EFFECT_OPEN,
        PositionEffect.REDUCE: pb.POSITION_EFFECT_REDUCE,
        PositionEffect.CLOSE: pb.POSITION_EFFECT_CLOSE,
        PositionEffect.REVERSE: pb.POSITION_EFFECT_REVERSE,
    },
)
SIGNAL_KIND = EnumMap(
    pb.SignalKind,
    {
        SignalKind.FILL: pb.SIGNAL_KIND_FILL,
        SignalKind.ORDER_OPEN: pb.SIGNAL_KIND_ORDER_OPEN,
        SignalKind.ORDER_CANCEL: pb.SIGNAL_KIND_ORDER_CANCEL,
        SignalKind.ORDER_AMEND: pb.SIGNAL_KIND_ORDER_AMEND,
    },
)
SYNC_MODE = EnumMap(
    pb.SyncMode,
    {
        SyncMode.WEBSOCKET: pb.SYNC_MODE_WEBSOCKET,
        SyncMode.POLLING: pb.SYNC_MODE_POLLING,
        SyncMode.PUBLISHED: pb.SYNC_MODE_PUBLISHED,
    },
)


def _set_time(target: timestamp_pb2.Timestamp, value: datetime | None) -> None:
    if value is not None:
        target.FromDatetime(value)


def source_to_proto(source: Source) -> pb.Source:
    """Return the wire form of a source."""
    message = pb.Source(
        source_id=source.source_id,
        kind=SOURCE_KIND.to_proto(source.kind),
        user_id=source.user_id,
        name=source.name,
        public=source.public,
        exchange_name=source.exchange_name,
        mode=SYNC_MODE.to_proto(source.mode),
        last_sequence=source.last_sequence,
        last_error=source.last_error,
    )
    if source.kind is SourceKind.EXCHANGE:
        message.sync_interval_seconds = source.sync_settings.sync_interval
        message.watched = source.watched
        if source.watched:
            _set_time(message.down_since, source.down_since)
    _set_time(message.last_sync_time, source.last_sync_at)
    _set_time(message.create_time, source.created_at)
    if source.equity is not None:
        set_decimal(message.equity, source.equity)
    return message


def signal_to_proto(signal: Signal) -> pb.Signal:
    """Return the wire form of a logged signal."""
    message = pb.Signal(
        source_id=signal.source_id,
        sequence=signal.sequence,
        signal_id=signal.signal_id,
        symbol=signal.symbol,
        side=SIDE.to_proto(signal.side),
        order_type=ORDER_TYPE.to_proto(signal.order_type),
        exchange_name=signal.exchange_name,
        traceparent=signal.traceparent,
        kind=SIGNAL_KIND.to_proto(signal.kind),
        leader_order_id=signal.leader_order_id,
        order_mirrored=signal.order_mirrored,
        opened_sequence=signal.opened_sequence,
        replaced_order_id=signal.replaced_order_id,
    )
    if signal.time_in_force is not None:
        message.time_in_force = TIME_IN_FORCE.to_proto(signal.time_in_force)
    set_decimal(message.quantity, signal.quantity)
    for field, value in (
        (message.price, signal.price),
        (message.portfolio_fraction, signal.portfolio_fraction),
        (message.leader_equity, signal.leader_equity),
        (message.leader_position, signal.leader_position),
        (message.stop_price, signal.stop_price),
        (message.leader_leverage, signal.leader_leverage),
    ):
        if value is not None:
            set_decimal(field, value)
    message.position_effect = POSITION_EFFECT.to_proto(signal.position_effect)
    message.liquidation = signal.liquidation
    _set_time(message.event_time, signal.event_time)
    _set_time(message.log_time, signal.log_time)
    return message


def raw_published_signal(message: pb.PublishedSignal) -> RawPublishedSignal:
    """Return a published trade as written, for the domain's checks."""
    return RawPublishedSignal(
        signal_id=message.signal_id,
        symbol=message.symbol,
        side=message.side,
        quantity=message.quantity.value,
        price=message.price.value,
        order_type=message.order_type,
        time_in_force=message.time_in_force,
        portfolio_fraction=message.portfolio_fraction.value,
        stop_price=message.stop_price.value,
    )


def sync_settings_from_proto(message: pb.SyncSettings) -> tuple[SyncSettings, list[Violation]]:
    """Return the checked sync settings (defaults for zeros) and any violations."""
    return check_sync_settings(
        message.sync_interval,
        message.max_retries,
        message.timeout,
        message.enable_websocket if message.HasField("enable_websocket") else None,
        message.enable_polling if message.HasField("enable_polling") else None,
    )


def stream_request_from_proto(message: pb.StreamSignalsRequest) -> StreamRequest:
    """Return the stream request a message carries; an empty message is INVALID_ARGUMENT."""
    which = message.WhichOneof("message")
    if which == "subscribe":
        return Subscribe(message.subscribe.source_id, message.subscribe.after_sequence)
    if which == "ack":
        return Ack(message.ack.source_id, message.ack.sequence)
    raise errors.invalid("message", "must hold subscribe or ack")


def time_from_proto(
    message: pb.ListSignalsRequest, field: Literal["start_time", "end_time"]
) -> datetime | None:
    """Return an optional timestamp field of a request as an aware datetime."""
    return timestamp_from_proto(getattr(message, field), message.HasField(field))


# The broker's messages.


def fill_from_proto(message: types_pb2.Fill) -> LeaderFill:
    """Return a leader fill reported by the broker; a malformed one is an upstream error."""
    side = SIDE.from_proto(message.side)
    if side is None or not message.trade_id or not message.symbol:
        raise errors.ServiceError(
            "the broker reported a fill without trade id, symbol or side",
            reason="MALFORMED_UPSTREAM_FILL",
        )
    if not message.HasField("trade_time"):
        raise errors.ServiceError(
            "the broker reported a fill without trade time",
            reason="MALFORMED_UPSTREAM_FILL",
        )
    quantity = decimal_from_proto(message.quantity, "fills.quantity", required=True)
    price = decimal_from_proto(message.price, "fills.price", required=True)
    assert quantity is not None and price is not None
    return LeaderFill(
        trade_id=message.trade_id,
        symbol=message.symbol,
        side=side,
        quantity=quantity,
        price=price,
        fee=decimal_from_proto(message.fee, "fills.fee"),
        fee_currency=message.fee_currency,
        order_type=ORDER_TYPE.from_proto(message.order_type),
        trade_time=message.trade_time.ToDatetime(tzinfo=UTC),
        order_id=message.venue_order_id,
        liquidation=is_liquidation(message.client_order_id),
    )


def leader_order_from_proto(message: types_pb2.Order) -> LeaderOrder | None:
    """Return a leader order the broker listed; None when it lacks what mirroring needs."""
    side = SIDE.from_proto(message.side)
    kind = ORDER_TYPE.from_proto(message.type)
    status = ORDER_STATUS.from_proto(message.status)
    quantity = decimal_from_proto(message.quantity, "orders.quantity")
    if not message.venue_order_id or side is None or kind is None or status is None:
        return None
    if quantity is None:
        return None
    return LeaderOrder(
        order_id=message.venue_order_id,
        symbol=message.symbol,
        side=side,
        type=kind,
        status=status,
        quantity=quantity,
        filled_quantity=decimal_from_proto(message.filled_quantity, "orders.filled_quantity")
        or Decimal(0),
        price=decimal_from_proto(message.price, "orders.price"),
        stop_price=decimal_from_proto(message.stop_price, "orders.stop_price"),
        time_in_force=TIME_IN_FORCE.from_proto(message.time_in_force),
        created_at=message.create_time.ToDatetime(tzinfo=UTC)
        if message.HasField("create_time")
        else None,
    )


def portfolio_from_proto(message: broker_pb.GetPortfolioResponse) -> Portfolio:
    """Return a leader's equity and asset totals as the broker reported them."""
    totals = {}
    for balance in message.balances:
        total = decimal_from_proto(balance.total, "balances.total")
        if total is not None:
            totals[balance.asset] = total
    read_time = message.read_time.ToDatetime(tzinfo=UTC) if message.HasField("read_time") else None
    positions_since = (
        message.positions_request_time.ToDatetime(tzinfo=UTC)
        if message.HasField("positions_request_time")
        else None
    )
    positions: dict[str, Decimal] = {}
    leverages: dict[str, Decimal] = {}
    for setting in message.leverages:  # every market's setting, a position open or not
        leverage = decimal_from_proto(setting.leverage, "leverages.leverage")
        if leverage is not None and leverage > 0:
            leverages[setting.symbol] = leverage
    for position in message.positions:
        contracts = decimal_from_proto(position.contracts, "positions.contracts") or Decimal(0)
        signed = -contracts if position.side == "short" else contracts
        positions[position.symbol] = positions.get(position.symbol, Decimal(0)) + signed
        leverage = decimal_from_proto(position.leverage, "positions.leverage")
        if leverage is not None:
            leverages[position.symbol] = leverage
    return Portfolio(
        equity=decimal_from_proto(message.equity, "equity"),
        totals=totals,
        read_time=read_time,
        positions=positions,
        leverages=leverages,
        positions_since=positions_since,
    )


def watch_item_from_proto(message: broker_pb.WatchFillsResponse) -> WatchItem | None:
    """Return the fill or stream event a watch message carries (None for an unknown one)."""
    which = message.WhichOneof("message")
    if which == "fill":
        return fill_from_proto(message.fill)
    if which == "event":
        state = WATCH_STATE.from_proto(message.event.state)
        if state is None:
            return None
        return WatchEvent(state=state, detail=message.event.detail[:200])
    return None


def exchange_from_proto(message: broker_pb.ExchangeAccount) -> ExchangeAccount:
    """Return what the sync service keeps of an exchange account."""
    return ExchangeAccount(exchange_id=message.exchange_id, exchange_name=message.exchange_name)


def lease_to_proto(lease: Lease) -> pb.LeaseHolder:
    """Return a lease as the wire shows it."""
    return pb.LeaseHolder(
        resource=lease.resource,
        owner=lease.owner,
        token=lease.token,
        live=lease.live,
    )


def replica_to_proto(replica: Replica) -> pb.Replica:
    """Return a replica as the wire shows it (live while its heartbeat holds)."""
    return pb.Replica(
        replica_id=replica.replica_id,
        address=replica.address,
        live=replica.expires_in_ms > 0,
    )
