"""Conversions between the engine's protos (and its peers') and domain values.

Request parsing collects every bad field as a violation naming its JSON path, so one
``INVALID_ARGUMENT`` reports them all.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from google.protobuf import timestamp_pb2
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from google.type import decimal_pb2

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2 as sync_pb
from engine_svc.domain import intents as intent_rules
from engine_svc.domain import performance
from engine_svc.domain.leaders import Leader
from engine_svc.domain.model import (
    AssetBalance,
    Candle,
    ConfigSettings,
    CopyConfig,
    CopySettings,
    CopyStatus,
    Holding,
    Intent,
    IntentState,
    MarketInfo,
    OrderStatus,
    OrderType,
    Portfolio,
    PositionEffect,
    RiskLimits,
    Side,
    Signal,
    SignalKind,
    SourceKind,
    SyncSettings,
    TimeInForce,
    VenueOrder,
    VenuePosition,
)
from engine_svc.domain.settings import SECTIONS, Violation
from meshkit import errors
from meshkit.codec import (
    ORDER_STATUS,
    ORDER_TYPE,
    SIDE,
    TIME_IN_FORCE,
    EnumMap,
    decimal_from_proto,
    format_decimal,
    set_decimal,
    timestamp_from_proto,
    timestamp_to_proto,
)

# ---------------------------------------------------------------------------- enums

POSITION_EFFECT = EnumMap(
    sync_pb.PositionEffect,
    {
        PositionEffect.UNSPECIFIED: sync_pb.POSITION_EFFECT_UNSPECIFIED,
        PositionEffect.OPEN: sync_pb.POSITION_EFFECT_OPEN,
        PositionEffect.REDUCE: sync_pb.POSITION_EFFECT_REDUCE,
        PositionEffect.CLOSE: sync_pb.POSITION_EFFECT_CLOSE,
        PositionEffect.REVERSE: sync_pb.POSITION_EFFECT_REVERSE,
    },
)
SIGNAL_KIND = EnumMap(
    sync_pb.SignalKind,
    {
        SignalKind.FILL: sync_pb.SIGNAL_KIND_FILL,
        SignalKind.ORDER_OPEN: sync_pb.SIGNAL_KIND_ORDER_OPEN,
        SignalKind.ORDER_CANCEL: sync_pb.SIGNAL_KIND_ORDER_CANCEL,
        SignalKind.ORDER_AMEND: sync_pb.SIGNAL_KIND_ORDER_AMEND,
    },
)


# The engine's own words on the wire, one table per enum (the shared ones: meshkit.codec).
COPY_STATUS = EnumMap(
    pb.CopyStatus,
    {
        CopyStatus.ACTIVE: pb.COPY_STATUS_ACTIVE,
        CopyStatus.PAUSED: pb.COPY_STATUS_PAUSED,
        CopyStatus.REDUCING: pb.COPY_STATUS_REDUCING,
        CopyStatus.HALTED: pb.COPY_STATUS_HALTED,
        CopyStatus.STOPPED: pb.COPY_STATUS_STOPPED,
    },
)
INTENT_STATE = EnumMap(
    pb.IntentState,
    {
        IntentState.PENDING: pb.INTENT_STATE_PENDING,
        IntentState.SENT: pb.INTENT_STATE_SENT,
        IntentState.ACCEPTED: pb.INTENT_STATE_ACCEPTED,
        IntentState.PARTIALLY_FILLED: pb.INTENT_STATE_PARTIALLY_FILLED,
        IntentState.FILLED: pb.INTENT_STATE_FILLED,
        IntentState.CANCELED: pb.INTENT_STATE_CANCELED,
        IntentState.EXPIRED: pb.INTENT_STATE_EXPIRED,
        IntentState.REJECTED: pb.INTENT_STATE_REJECTED,
        IntentState.UNKNOWN: pb.INTENT_STATE_UNKNOWN,
        IntentState.SKIPPED: pb.INTENT_STATE_SKIPPED,
    },
)
_SIDES = dict(SIDE.table)
_TYPES = dict(ORDER_TYPE.table)
_STATES = dict(INTENT_STATE.table)
"""The wire values of the copied order's enums, as plain dicts (looked up per order)."""
SOURCE_KIND = EnumMap(
    sync_pb.SourceKind,
    {
        SourceKind.EXCHANGE: sync_pb.SOURCE_KIND_EXCHANGE,
        SourceKind.BACKTEST: sync_pb.SOURCE_KIND_BACKTEST,
    },
)


def side_to_proto(side: Side) -> types_pb2.OrderSide.ValueType:
    """Return the wire side."""
    return SIDE.to_proto(side)


def side_from_proto(value: int) -> Side | None:
    """Return the domain side, ``None`` when unspecified."""
    return SIDE.from_proto(value)


def type_to_proto(order_type: OrderType) -> types_pb2.OrderType.ValueType:
    """Return the wire order type."""
    return ORDER_TYPE.to_proto(order_type)


def type_from_proto(value: int) -> OrderType:
    """Return the domain order type (market when unspecified)."""
    if value == types_pb2.ORDER_TYPE_UNSPECIFIED:
        return OrderType.MARKET
    return ORDER_TYPE.require(value)


def order_status_from_proto(value: int) -> OrderStatus:
    """Return the domain order status (unknown when unspecified)."""
    if value == types_pb2.ORDER_STATUS_UNSPECIFIED:
        return OrderStatus.UNKNOWN
    return ORDER_STATUS.require(value)


def copy_status_to_proto(status: CopyStatus) -> pb.CopyStatus.ValueType:
    """Return the wire configuration status."""
    return COPY_STATUS.to_proto(status)


def intent_state_to_proto(state: IntentState) -> pb.IntentState.ValueType:
    """Return the wire intent state."""
    return INTENT_STATE.to_proto(state)


def source_kind_from_proto(value: int) -> SourceKind | None:
    """Return the domain source kind, ``None`` when unspecified."""
    return SOURCE_KIND.from_proto(value)


def sync_mode_name(value: sync_pb.SyncMode.ValueType) -> str:
    """Return a sync mode as a lower-case word (``websocket``, ``polling``, ``published``)."""
    if value == sync_pb.SYNC_MODE_UNSPECIFIED:
        return ""
    return sync_pb.SyncMode.Name(value).removeprefix("SYNC_MODE_").lower()


def sync_mode_to_proto(name: str) -> sync_pb.SyncMode.ValueType:
    """Return the wire sync mode of a lower-case word."""
    if not name:
        return sync_pb.SYNC_MODE_UNSPECIFIED
    try:
        return sync_pb.SyncMode.Value(f"SYNC_MODE_{name.upper()}")
    except ValueError:
        return sync_pb.SYNC_MODE_UNSPECIFIED


# ---------------------------------------------------------------------------- small helpers


def optional_decimal(message: decimal_pb2.Decimal) -> Decimal | None:
    """Return a peer's wire decimal, ``None`` when empty or not a finite number."""
    raw = message.value.strip()
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except ArithmeticError:
        return None
    return value if value.is_finite() else None


def _decimal_or_zero(message: decimal_pb2.Decimal) -> Decimal:
    value = optional_decimal(message)
    return Decimal(0) if value is None else value


def _time(message: Any, name: str) -> datetime | None:
    return timestamp_from_proto(getattr(message, name), message.HasField(name))


def _set_time(target: timestamp_pb2.Timestamp, value: datetime | None) -> None:
    stamp = timestamp_to_proto(value)
    if stamp is not None:
        target.CopyFrom(stamp)


# ---------------------------------------------------------------------------- peers' answers


def signal_from_proto(message: sync_pb.Signal) -> Signal:
    """Return the domain signal; unknown sides count as buys only if given, else raise."""
    side = side_from_proto(message.side)
    if side is None:
        raise ValueError(f"signal {message.source_id}/{message.sequence} has no side")
    quantity = optional_decimal(message.quantity)
    if quantity is None:
        raise ValueError(f"signal {message.source_id}/{message.sequence} has no quantity")
    log_time = _time(message, "log_time")
    event_time = _time(message, "event_time") or log_time
    if event_time is None:
        raise ValueError(f"signal {message.source_id}/{message.sequence} has no time")
    return Signal(
        source_id=message.source_id,
        sequence=message.sequence,
        signal_id=message.signal_id,
        symbol=message.symbol,
        side=side,
        quantity=quantity,
        price=optional_decimal(message.price),
        order_type=type_from_proto(message.order_type),
        event_time=event_time,
        log_time=log_time,
        portfolio_fraction=optional_decimal(message.portfolio_fraction),
        leader_equity=optional_decimal(message.leader_equity),
        leader_position=optional_decimal(message.leader_position),
        exchange_name=message.exchange_name,
        traceparent=message.traceparent,
        time_in_force=TIME_IN_FORCE.from_proto(message.time_in_force),
        stop_price=optional_decimal(message.stop_price),
        kind=SIGNAL_KIND.from_proto(message.kind, SignalKind.FILL),
        leader_order_id=message.leader_order_id,
        order_mirrored=message.order_mirrored,
        opened_sequence=message.opened_sequence,
        replaced_order_id=message.replaced_order_id,
        position_effect=POSITION_EFFECT.from_proto(
            message.position_effect, PositionEffect.UNSPECIFIED
        ),
        liquidation=message.liquidation,
        leader_leverage=optional_decimal(message.leader_leverage),
    )


def market_from_proto(response: broker_pb.GetMarketResponse) -> MarketInfo:
    """Return the market and its last price."""
    market = response.market
    return MarketInfo(
        symbol=market.symbol,
        base=market.base,
        quote=market.quote,
        quantity_step=optional_decimal(market.quantity_step),
        min_quantity=optional_decimal(market.min_quantity),
        min_notional=optional_decimal(market.min_notional),
        max_quantity=optional_decimal(market.max_quantity),
        last_price=optional_decimal(response.last_price),
        price_tick=optional_decimal(market.price_tick),
        contract_size=optional_decimal(market.contract_size),
    )


def candles_from_proto(response: broker_pb.ListCandlesResponse) -> list[Candle]:
    """Return the candles with a time and a close, oldest first (malformed ones left out)."""
    candles: list[Candle] = []
    for candle in response.candles:
        close = optional_decimal(candle.close)
        open_time = _time(candle, "open_time")
        if close is not None and open_time is not None:
            candles.append(Candle(open_time=open_time, close=close))
    return sorted(candles, key=lambda c: c.open_time)


def portfolio_from_proto(response: broker_pb.GetPortfolioResponse) -> Portfolio:
    """Return the balances and equity."""
    return Portfolio(
        equity=optional_decimal(response.equity),
        quote_currency=response.quote_currency,
        balances=tuple(
            AssetBalance(
                asset=b.asset,
                free=_decimal_or_zero(b.free),
                total=_decimal_or_zero(b.total),
                value=optional_decimal(b.value),
            )
            for b in response.balances
        ),
        positions=tuple(_venue_position(p) for p in response.positions),
    )


def _venue_position(message: broker_pb.Position) -> VenuePosition:
    return VenuePosition(
        symbol=message.symbol,
        side=message.side,
        contracts=_decimal_or_zero(message.contracts),
        entry_price=optional_decimal(message.entry_price),
        mark_price=optional_decimal(message.mark_price),
        unrealized_pnl=optional_decimal(message.unrealized_pnl),
        liquidation_price=optional_decimal(message.liquidation_price),
        leverage=optional_decimal(message.leverage),
        margin_mode=message.margin_mode,
        contract_size=optional_decimal(message.contract_size),
    )


def order_from_proto(order: types_pb2.Order) -> VenueOrder:
    """Return the order as the broker reports it."""
    return VenueOrder(
        client_order_id=order.client_order_id,
        venue_order_id=order.venue_order_id,
        status=order_status_from_proto(order.status),
        filled_quantity=_decimal_or_zero(order.filled_quantity),
        average_price=optional_decimal(order.average_price),
        symbol=order.symbol,
    )


def time_in_force_to_proto(value: TimeInForce | None) -> types_pb2.TimeInForce.ValueType:
    """Return the wire time in force (unspecified when ``None``)."""
    if value is None:
        return types_pb2.TIME_IN_FORCE_UNSPECIFIED
    return TIME_IN_FORCE.to_proto(value)


def place_order_request(intent: Intent) -> broker_pb.PlaceOrderRequest:
    """Return the broker request that places ``intent`` with its client order id."""
    request = broker_pb.PlaceOrderRequest(
        exchange_id=intent.target_exchange_id,
        client_order_id=intent.client_order_id,
        symbol=intent.symbol,
        side=side_to_proto(intent.side),
        type=type_to_proto(intent.type),
        time_in_force=time_in_force_to_proto(intent.time_in_force),
        reduce_only=intent.reduce_only,
    )
    set_decimal(request.quantity, intent.quantity)
    if intent.price is not None:
        set_decimal(request.price, intent.price)
    if intent.stop_price is not None:
        set_decimal(request.stop_price, intent.stop_price)
    return request


def sync_settings_to_proto(sync: SyncSettings) -> sync_pb.SyncSettings:
    """Return the wire sync settings."""
    message = sync_pb.SyncSettings(
        sync_interval=sync.sync_interval,
        max_retries=sync.max_retries,
        timeout=sync.timeout,
    )
    if sync.enable_websocket is not None:
        message.enable_websocket = sync.enable_websocket
    if sync.enable_polling is not None:
        message.enable_polling = sync.enable_polling
    return message


# ---------------------------------------------------------------------------- settings in


_FieldParser = Callable[[Any, str, str, list[Violation]], Any]


def _parse_decimal(message: Any, name: str, path: str, found: list[Violation]) -> Decimal | None:
    try:
        return decimal_from_proto(getattr(message, name), path)
    except errors.InvalidArgument as e:
        found.extend(Violation(v.field, v.description) for v in e.violations)
        return None


def _parse_optional_bool(default: bool | None) -> _FieldParser:
    def parse(message: Any, name: str, path: str, found: list[Violation]) -> bool | None:
        return getattr(message, name) if message.HasField(name) else default

    return parse


def _parse_plain(message: Any, name: str, path: str, found: list[Violation]) -> Any:
    return getattr(message, name)


def _parse_text(message: Any, name: str, path: str, found: list[Violation]) -> str:
    return getattr(message, name).strip()


def _parse_list(message: Any, name: str, path: str, found: list[Violation]) -> tuple[str, ...]:
    return tuple(item.strip() for item in getattr(message, name))


def _parse_map(message: Any, name: str, path: str, found: list[Violation]) -> dict[str, str]:
    return {k.strip(): v.strip() for k, v in getattr(message, name).items()}


_PARSERS: dict[str, dict[str, _FieldParser]] = {
    "risk_limits": {
        "max_position_size": _parse_decimal,
        "max_daily_loss": _parse_decimal,
        "max_slippage": _parse_decimal,
        "correlation_limit": _parse_decimal,
        "max_orders_per_minute": _parse_plain,
        "daily_loss_action": _parse_text,
        "max_leverage": _parse_decimal,
    },
    "copy_settings": {
        "copy_all_trades": _parse_optional_bool(True),
        "min_trade_size": _parse_decimal,
        "max_trade_size": _parse_decimal,
        "exclude_symbols": _parse_list,
        "include_symbols": _parse_list,
        "sizing_mode": _parse_text,
        "multiplier": _parse_decimal,
        "fixed_notional": _parse_decimal,
        "fixed_quantity": _parse_decimal,
        "symbol_map": _parse_map,
        "allow_quote_equivalence": _parse_optional_bool(True),
        "max_signal_age_seconds": _parse_plain,
        "copy_mode": _parse_text,
        "futures_sizing": _parse_text,
    },
    "sync_settings": {
        "sync_interval": _parse_plain,
        "max_retries": _parse_plain,
        "timeout": _parse_plain,
        "enable_websocket": _parse_optional_bool(None),
        "enable_polling": _parse_optional_bool(None),
    },
}


def parse_field(section: str, name: str, message: Any, found: list[Violation]) -> Any:
    """Return the domain value of one settings field of a wire group, collecting violations."""
    return _PARSERS[section][name](message, name, f"{section}.{name}", found)


def parse_section(section: str, message: Any, found: list[Violation]) -> Any:
    """Return a whole settings group (``RiskLimits``, ``CopySettings`` or ``SyncSettings``)."""
    cls = SECTIONS[section]
    return cls(**{name: parse_field(section, name, message, found) for name in _PARSERS[section]})


def parse_settings(request: Any, found: list[Violation]) -> ConfigSettings:
    """Return the settings of a request carrying the three groups; absent groups get defaults."""
    groups = {
        section: parse_section(section, getattr(request, section), found)
        for section in SECTIONS
        if request.HasField(section)
    }
    return ConfigSettings(**groups)


def parse_update(
    request: pb.UpdateConfigRequest,
    found: list[Violation],
) -> dict[str, Any]:
    """Return the changes an update asks for: path to new group or field value.

    An empty mask replaces each group the request carries; otherwise each mask path takes its
    value from the request (an empty decimal clears the limit).
    """
    paths = list(request.update_mask.paths)
    if not paths:
        return {
            section: parse_section(section, getattr(request, section), found)
            for section in SECTIONS
            if request.HasField(section)  # type: ignore[arg-type]  # SECTIONS are its fields
        }
    changes: dict[str, Any] = {}
    for path in paths:
        section, _, name = path.partition(".")
        message = getattr(request, section)
        changes[path] = (
            parse_field(section, name, message, found)
            if name
            else parse_section(
                section,
                message,
                found,
            )
        )
    return changes


def invalid_argument(found: list[Violation]) -> errors.InvalidArgument:
    """Return the error reporting every violation."""
    return errors.InvalidArgument([errors.FieldViolation(v.field, v.description) for v in found])


# ---------------------------------------------------------------------------- engine out


def _risk_limits_to_proto(limits: RiskLimits, target: pb.RiskLimits) -> None:
    for f in fields(RiskLimits):
        value = getattr(limits, f.name)
        if isinstance(value, int | str):
            setattr(target, f.name, value)
        elif value is not None:
            set_decimal(getattr(target, f.name), value)


def _copy_settings_to_proto(copy: CopySettings, target: pb.CopySettings) -> None:
    target.copy_all_trades = copy.copy_all_trades
    for name in (
        "min_trade_size",
        "max_trade_size",
        "multiplier",
        "fixed_notional",
        "fixed_quantity",
    ):
        value = getattr(copy, name)
        if value is not None:
            set_decimal(getattr(target, name), value)
    target.exclude_symbols.extend(copy.exclude_symbols)
    target.include_symbols.extend(copy.include_symbols)
    target.sizing_mode = copy.sizing_mode
    target.symbol_map.update(copy.symbol_map)
    target.allow_quote_equivalence = copy.allow_quote_equivalence
    target.max_signal_age_seconds = copy.max_signal_age_seconds
    target.copy_mode = copy.copy_mode
    target.futures_sizing = copy.futures_sizing


def config_to_proto(config: CopyConfig, *, reveal_source: bool = False) -> pb.CopyConfig:
    """Return the wire configuration.

    A follower of a published leader sees the leader, not its account; ``reveal_source`` (a
    service that proves the copies, never a user) sees the account too.
    """
    message = pb.CopyConfig(
        config_id=config.config_id,
        target_exchange_ids=list(config.target_exchange_ids),
        status=copy_status_to_proto(config.status),
        status_reason=config.status_reason,
        is_active=config.is_active,
        last_sequence=config.last_sequence,
    )
    if config.source_kind is SourceKind.BACKTEST:
        message.source_backtest_id = config.source_id
    elif config.leader_id:
        # Another user's published account: the follower sees the leader, not the account.
        message.source_leader_id = config.leader_id
        if reveal_source:
            message.source_exchange_id = config.source_id
    else:
        message.source_exchange_id = config.source_id
    _risk_limits_to_proto(config.settings.risk_limits, message.risk_limits)
    _copy_settings_to_proto(config.settings.copy_settings, message.copy_settings)
    message.sync_settings.CopyFrom(sync_settings_to_proto(config.settings.sync_settings))
    _set_time(message.create_time, config.created_at)
    _set_time(message.update_time, config.updated_at)
    return message


def intent_to_proto(intent: Intent) -> pb.CopiedOrder:
    """Return the wire copied order."""
    return pb.CopiedOrder.FromString(copied_order_bytes(intent))


def add_copied_orders(
    target: RepeatedCompositeFieldContainer[pb.CopiedOrder],
    intents: Iterable[Intent],
    source_id: str = "",
) -> None:
    """Append the wire copied orders of ``intents`` to ``target``.

    ``source_id``, when given, replaces each order's (the published leader, not its account).
    Each order is parsed from its cached encoding (:func:`copied_order_bytes`), in C.
    """
    for intent in intents:
        order = target.add()
        order.MergeFromString(copied_order_bytes(intent))
        if source_id:
            order.source_id = source_id


_ENCODED_ORDERS = 4096
"""How many intents' encodings :func:`copied_order_bytes` keeps (each a few hundred bytes)."""
_encoded: OrderedDict[int, tuple[Intent, bytes]] = OrderedDict()


def copied_order_bytes(intent: Intent) -> bytes:
    """Return the encoded wire copied order of ``intent`` (what :func:`build_copied_order` gives).

    Kept per intent object (the store parses a row version into one shared, frozen intent,
    :func:`engine_svc.store.rows._intent`), so the read endpoints encode a copy once, not on
    every read. An entry holds its intent, so its id cannot be reused while it is kept.
    """
    key = id(intent)
    entry = _encoded.get(key)
    if entry is not None and entry[0] is intent:
        _encoded.move_to_end(key)
        return entry[1]
    encoded = build_copied_order(intent).SerializeToString()
    _encoded[key] = (intent, encoded)
    if len(_encoded) > _ENCODED_ORDERS:
        _encoded.popitem(last=False)
    return encoded


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _set_stamp(target: timestamp_pb2.Timestamp, value: datetime) -> None:
    # Timestamp.FromDatetime's seconds and nanos, from a timedelta (4x cheaper); a naive
    # time (never stored) goes the common way.
    if value.tzinfo is None:
        _set_time(target, value)
        return
    delta = value - _EPOCH
    target.seconds = delta.days * 86400 + delta.seconds
    target.nanos = delta.microseconds * 1000


def build_copied_order(intent: Intent) -> pb.CopiedOrder:
    """Build the wire copied order of ``intent`` (uncached: :func:`copied_order_bytes` keeps it)."""
    message = pb.CopiedOrder(
        intent_id=intent.intent_id,
        config_id=intent.config_id,
        source_id=intent.source_id,
        sequence=intent.sequence,
        signal_id=intent.signal_id,
        target_exchange_id=intent.target_exchange_id,
        client_order_id=intent.client_order_id,
        symbol=intent.symbol,
        side=_SIDES[intent.side],
        type=_TYPES[intent.type],
        state=_STATES[intent.state],
        reason=intent.reason,
        venue_order_id=intent.venue_order_id,
        latency_ms=intent.latency_ms,
        attempts=intent.attempts,
        reduce_only=intent.reduce_only,
        leg=intent.leg,
        time_in_force=time_in_force_to_proto(intent.time_in_force),
        leverage=intent.leverage or 0,
    )
    message.quantity.value = format_decimal(intent.quantity)
    if intent.price is not None:
        message.price.value = format_decimal(intent.price)
    if intent.stop_price is not None:
        message.stop_price.value = format_decimal(intent.stop_price)
    message.filled_quantity.value = format_decimal(intent.filled_quantity)
    if intent.average_price is not None:
        message.average_price.value = format_decimal(intent.average_price)
    message.leader_quantity.value = format_decimal(intent.leader_quantity)
    if intent.leader_price is not None:
        message.leader_price.value = format_decimal(intent.leader_price)
    slippage = performance.slippage(intent)
    if slippage is not None:
        message.slippage.value = format_decimal(slippage)
    _set_stamp(message.create_time, intent.created_at)
    _set_stamp(message.update_time, intent.updated_at)
    return message


def counters_to_proto(counters: intent_rules.Counters) -> pb.CopyCounters:
    """Return the wire counters."""
    return pb.CopyCounters(**{f.name: getattr(counters, f.name) for f in fields(counters)})


def position_to_proto(position: Holding) -> pb.Position:
    """Return the wire position."""
    message = pb.Position(exchange_id=position.exchange_id, asset=position.balance.asset)
    set_decimal(message.quantity, position.balance.total)
    if position.balance.value is not None:
        set_decimal(message.value, position.balance.value)
    held = position.position
    if held is not None:
        message.symbol, message.side, message.margin_mode = held.symbol, held.side, held.margin_mode
        set_decimal(message.contracts, held.contracts)
        for name in (
            "entry_price",
            "mark_price",
            "unrealized_pnl",
            "leverage",
            "liquidation_price",
        ):
            value = getattr(held, name)
            if value is not None:
                set_decimal(getattr(message, name), value)
    return message


def account_to_proto(account: performance.AccountPnl) -> pb.FollowerAccount:
    """Return the wire follower account with its profit and loss."""
    message = pb.FollowerAccount(
        exchange_id=account.exchange_id, quote_currency=account.quote_currency
    )
    set_decimal(message.equity, account.equity)
    set_decimal(message.realized_pnl, account.realized)
    set_decimal(message.unrealized_pnl, account.unrealized)
    for position in account.positions:
        item = message.positions.add(symbol=position.symbol, side=position.side)
        set_decimal(item.quantity, position.quantity)
        set_decimal(item.average_cost, position.average_cost)
        set_decimal(item.mark_price, position.mark_price)
        set_decimal(item.realized_pnl, position.realized)
        set_decimal(item.unrealized_pnl, position.unrealized)
    return message


def leader_to_proto(leader: Leader, trade_count: int, mine: bool) -> pb.Leader:
    """Return the wire leader: public stats, and its account only to its publisher."""
    message = pb.Leader(
        leader_id=leader.leader_id,
        display_name=leader.display_name,
        exchange_name=leader.exchange_name,
        trade_count=trade_count,
        mine=mine,
        exchange_id=leader.exchange_id if mine else "",
    )
    _set_time(message.publish_time, leader.published_at)
    return message
