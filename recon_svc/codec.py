"""Pure conversions between the protos and the reconciliation domain.

Upstream messages (engine, sync, broker) that cannot be read are an upstream error
(``MALFORMED_UPSTREAM_REPLY``), never an INVALID_ARGUMENT blamed on the caller.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from google.protobuf import timestamp_pb2
from google.type import decimal_pb2

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.recon.v1 import recon_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2 as sync_pb
from meshkit import errors
from meshkit.codec import SIDE, EnumMap, set_decimal, timestamp_from_proto, timestamp_to_proto
from recon_svc.domain.model import (
    CopyConfig,
    Intent,
    IntentState,
    Item,
    ItemKind,
    LeaderSignal,
    Outcome,
    Report,
    VenueFill,
    VenueOrder,
    VenuePosition,
    VenueStatus,
)
from recon_svc.domain.reconcile import is_derivative, position_side

# Reconciliation's own words on the wire, one table per enum (the shared ones: meshkit.codec).
INTENT_STATE = EnumMap(
    engine_pb.IntentState,
    {
        IntentState.PENDING: engine_pb.INTENT_STATE_PENDING,
        IntentState.SENT: engine_pb.INTENT_STATE_SENT,
        IntentState.ACCEPTED: engine_pb.INTENT_STATE_ACCEPTED,
        IntentState.PARTIALLY_FILLED: engine_pb.INTENT_STATE_PARTIALLY_FILLED,
        IntentState.FILLED: engine_pb.INTENT_STATE_FILLED,
        IntentState.CANCELED: engine_pb.INTENT_STATE_CANCELED,
        IntentState.EXPIRED: engine_pb.INTENT_STATE_EXPIRED,
        IntentState.REJECTED: engine_pb.INTENT_STATE_REJECTED,
        IntentState.UNKNOWN: engine_pb.INTENT_STATE_UNKNOWN,
        IntentState.SKIPPED: engine_pb.INTENT_STATE_SKIPPED,
    },
)
VENUE_STATUS = EnumMap(
    types_pb2.OrderStatus,
    {
        VenueStatus.OPEN: types_pb2.ORDER_STATUS_OPEN,
        VenueStatus.PARTIALLY_FILLED: types_pb2.ORDER_STATUS_PARTIALLY_FILLED,
        VenueStatus.FILLED: types_pb2.ORDER_STATUS_FILLED,
        VenueStatus.CANCELED: types_pb2.ORDER_STATUS_CANCELED,
        VenueStatus.EXPIRED: types_pb2.ORDER_STATUS_EXPIRED,
        VenueStatus.REJECTED: types_pb2.ORDER_STATUS_REJECTED,
        VenueStatus.UNKNOWN: types_pb2.ORDER_STATUS_UNKNOWN,
    },
)
OUTCOME = EnumMap(
    pb.ItemOutcome,
    {
        Outcome.MATCHED: pb.ITEM_OUTCOME_MATCHED,
        Outcome.MISMATCHED: pb.ITEM_OUTCOME_MISMATCHED,
        Outcome.MISSING: pb.ITEM_OUTCOME_MISSING,
        Outcome.DUPLICATE: pb.ITEM_OUTCOME_DUPLICATE,
        Outcome.ERROR: pb.ITEM_OUTCOME_ERROR,
        Outcome.EXTRA: pb.ITEM_OUTCOME_EXTRA,
    },
)


def _malformed(what: str) -> errors.ServiceError:
    return errors.ServiceError(
        f"malformed upstream reply: {what}",
        reason="MALFORMED_UPSTREAM_REPLY",
    )


def _decimal(message: decimal_pb2.Decimal, what: str) -> Decimal | None:
    raw = message.value.strip()
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise _malformed(f"{what} is not a decimal number") from None
    if not value.is_finite():
        raise _malformed(f"{what} is not finite")
    return value


def _time(message: timestamp_pb2.Timestamp, present: bool) -> datetime | None:
    return timestamp_from_proto(message, present)


def config_from_proto(reply: engine_pb.GetCopyStatusResponse) -> CopyConfig:
    """Return what reconciliation needs of the engine's configuration."""
    return copy_config_from_proto(reply.config)


def copy_config_from_proto(config: engine_pb.CopyConfig) -> CopyConfig:
    """Return what reconciliation needs of one of the engine's configurations."""
    source_id = config.source_backtest_id or config.source_exchange_id
    if not config.config_id or not source_id:
        raise _malformed("the configuration has no id or no source")
    return CopyConfig(
        config_id=config.config_id,
        source_id=source_id,
        target_exchange_ids=tuple(config.target_exchange_ids),
        create_time=_time(config.create_time, config.HasField("create_time")),
    )


def intent_from_proto(message: engine_pb.CopiedOrder) -> Intent:
    """Return the engine's copied order as an intent."""
    filled = _decimal(message.filled_quantity, "copied order filled_quantity")
    return Intent(
        intent_id=message.intent_id,
        source_id=message.source_id,
        sequence=message.sequence,
        signal_id=message.signal_id,
        target_exchange_id=message.target_exchange_id,
        client_order_id=message.client_order_id,
        symbol=message.symbol,
        side=SIDE.from_proto(message.side),
        state=INTENT_STATE.from_proto(message.state),
        reason=message.reason,
        filled_quantity=filled if filled is not None else Decimal(0),
        create_time=_time(message.create_time, message.HasField("create_time")),
        quantity=_decimal(message.quantity, "copied order quantity") or Decimal(0),
        leg=message.leg,
    )


def signal_from_proto(message: sync_pb.Signal) -> LeaderSignal:
    """Return a signal of the leader's log."""
    if message.sequence <= 0 or not message.source_id:
        raise _malformed("a signal without source or sequence")
    return LeaderSignal(
        source_id=message.source_id,
        sequence=message.sequence,
        signal_id=message.signal_id,
        symbol=message.symbol,
        side=SIDE.from_proto(message.side),
        quantity=_decimal(message.quantity, "signal quantity"),
        event_time=_time(message.event_time, message.HasField("event_time")),
        is_fill=message.kind in (sync_pb.SIGNAL_KIND_UNSPECIFIED, sync_pb.SIGNAL_KIND_FILL),
        leader_position=_decimal(message.leader_position, "signal leader_position"),
        order_mirrored=message.order_mirrored,
        opened_sequence=message.opened_sequence,
    )


def order_from_proto(message: types_pb2.Order, exchange_id: str) -> VenueOrder:
    """Return an order as the venue reports it."""
    filled = _decimal(message.filled_quantity, "order filled_quantity")
    return VenueOrder(
        exchange_id=message.exchange_id or exchange_id,
        client_order_id=message.client_order_id,
        venue_order_id=message.venue_order_id,
        symbol=message.symbol,
        side=SIDE.from_proto(message.side),
        status=VENUE_STATUS.from_proto(message.status, VenueStatus.UNKNOWN),
        filled_quantity=filled if filled is not None else Decimal(0),
        create_time=_time(message.create_time, message.HasField("create_time")),
    )


def fill_from_proto(message: types_pb2.Fill) -> VenueFill:
    """Return a trade as the venue reports it."""
    quantity = _decimal(message.quantity, "fill quantity")
    return VenueFill(
        venue_order_id=message.venue_order_id,
        client_order_id=message.client_order_id,
        symbol=message.symbol,
        side=SIDE.from_proto(message.side),
        quantity=quantity if quantity is not None else Decimal(0),
        trade_time=_time(message.trade_time, message.HasField("trade_time")),
    )


def balances_from_proto(reply: broker_pb.GetPortfolioResponse) -> dict[str, Decimal]:
    """Return each asset's total of a portfolio (an asset listed twice is summed)."""
    totals: dict[str, Decimal] = {}
    for balance in reply.balances:
        if not balance.asset:
            raise _malformed("a balance without an asset")
        total = _decimal(balance.total, f"balance total of {balance.asset}")
        totals[balance.asset] = totals.get(balance.asset, Decimal(0)) + (total or Decimal(0))
    return totals


def positions_from_proto(reply: broker_pb.GetPortfolioResponse) -> tuple[VenuePosition, ...]:
    """Return a portfolio's open derivatives positions, sized in the base asset."""
    found = []
    for position in reply.positions:
        if not position.symbol or position.side not in ("long", "short"):
            raise _malformed("a position without a symbol or a side")
        contracts = _decimal(position.contracts, f"contracts of {position.symbol}") or Decimal(0)
        size = _decimal(position.contract_size, f"contract size of {position.symbol}")
        found.append(
            VenuePosition(
                symbol=position.symbol,
                side=position.side,
                quantity=contracts * (size or Decimal(1)),
                entry_price=_decimal(position.entry_price, f"entry price of {position.symbol}"),
            )
        )
    return tuple(found)


def item_to_proto(item: Item) -> pb.ReconciliationItem:
    """Return the wire form of one item."""
    message = pb.ReconciliationItem(
        sequence=item.sequence,
        signal_id=item.signal_id,
        target_exchange_id=item.target_exchange_id,
        client_order_id=item.client_order_id,
        outcome=OUTCOME.to_proto(item.outcome),
        detail=item.detail,
        intent_state=item.intent_state,
        kind=item.kind.value,
        symbol=item.symbol,
        correction_client_order_id=item.correction_client_order_id,
    )
    if item.venue_filled_quantity is not None:
        set_decimal(message.venue_filled_quantity, item.venue_filled_quantity)
    if item.expected_position is not None:
        set_decimal(message.expected_position, item.expected_position)
    if item.venue_position is not None:
        set_decimal(message.venue_position, item.venue_position)
    if item.drift is not None:
        set_decimal(message.drift, item.drift)
    if item.kind is ItemKind.POSITION and is_derivative(item.symbol):
        if item.venue_position is not None:
            message.venue_side = position_side(item.venue_position)
        if item.expected_position is not None:
            message.expected_side = position_side(item.expected_position)
    return message


def report_to_proto(report: Report, *, with_items: bool = True) -> pb.Reconciliation:
    """Return the wire form of a report, with or without its items."""
    message = pb.Reconciliation(
        reconciliation_id=report.reconciliation_id,
        config_id=report.config_id,
        total_count=report.counts.total,
        matched_count=report.counts.matched,
        mismatched_count=report.counts.mismatched,
        missing_count=report.counts.missing,
        duplicate_count=report.counts.duplicate,
        error_count=report.counts.error,
        extra_count=report.counts.extra,
        items_paged=report.items_paged,
    )
    message.start_time.CopyFrom(timestamp_to_proto(report.start_time))
    message.end_time.CopyFrom(timestamp_to_proto(report.end_time))
    message.create_time.CopyFrom(timestamp_to_proto(report.created_at))
    if with_items:
        message.items.extend(item_to_proto(item) for item in report.items)
    return message
