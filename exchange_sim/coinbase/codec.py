"""Coinbase JSON shapes: orders (REST and WebSocket), fills, wallets, times and decimals.

Field sets follow the SDK types and the payloads recorded in ccxt's source
(docs/exchange-protocols.md §3.3, §3.5). Decimals are plain strings (``"0.1"``, ``"50025"``).

Status choices (Coinbase's exact status for these cases is unverified; ccxt maps both
CANCELLED and EXPIRED to ``canceled``):

* open orders, including a stop-limit waiting for its trigger, are ``OPEN`` (``trigger_status``
  tells ``STOP_PENDING`` from ``STOP_TRIGGERED``);
* the unfilled rest of a market / IOC order and an unfillable FOK order end ``CANCELLED``, as
  does a canceled order; filled orders are ``FILLED``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from exchange_sim.coinbase.state import CoinbaseState
from exchange_sim.core.decimals import CTX, ZERO, fmt_plain
from exchange_sim.core.orders import Order, OrderStatus, OrderType, Side, TimeInForce, Trade

_AVG_PLACES = Decimal("1e-16")
_PCT_PLACES = Decimal("0.01")
_STOP_TYPES = (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)


def iso(ms: int) -> str:
    """RFC 3339 in UTC with microseconds (``2023-01-16T23:37:23.947000Z``)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str, field: str) -> int:
    """RFC 3339 → epoch ms; ``ValueError`` naming ``field`` when malformed."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field}: {value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def d(value: Decimal | None) -> str:
    """A decimal as Coinbase writes it ("0" for none)."""
    return fmt_plain(value if value is not None else ZERO)


def average_price(order: Order) -> Decimal:
    """Volume-weighted fill price (0 before any fill)."""
    if order.executed_qty <= ZERO:
        return ZERO
    return CTX.divide(order.cum_quote, order.executed_qty).quantize(
        _AVG_PLACES, ROUND_HALF_EVEN, CTX
    )


def stop_direction(order_type: OrderType, side: Side) -> str:
    """STOP_UP triggers on a rise: stop-loss buys and take-profit sells."""
    rising = (side is Side.BUY) == (order_type is OrderType.STOP_LOSS_LIMIT)
    return "STOP_DIRECTION_STOP_UP" if rising else "STOP_DIRECTION_STOP_DOWN"


def configuration(order: Order, quote_size: Decimal | None) -> dict[str, dict[str, object]]:
    """The ``order_configuration`` the order was placed with."""
    if order.type is OrderType.MARKET:
        if order.quote_quantity is not None:
            return {
                "market_market_ioc": {
                    "quote_size": d(quote_size if quote_size is not None else order.quote_quantity)
                }
            }
        return {"market_market_ioc": {"base_size": d(order.quantity)}}
    sized: dict[str, object] = {"base_size": d(order.quantity), "limit_price": d(order.price)}
    if order.type is OrderType.LIMIT_MAKER:
        return {"limit_limit_gtc": {**sized, "post_only": True}}
    if order.type in _STOP_TYPES:
        return {
            "stop_limit_stop_limit_gtc": {
                **sized,
                "stop_price": d(order.stop_price),
                "stop_direction": stop_direction(order.type, order.side),
            }
        }
    if order.time_in_force is TimeInForce.IOC:
        return {"sor_limit_ioc": sized}
    if order.time_in_force is TimeInForce.FOK:
        return {"limit_limit_fok": sized}
    return {"limit_limit_gtc": {**sized, "post_only": False}}


def status(order: Order) -> str:
    """OPEN, FILLED or CANCELLED (see the module docstring)."""
    if order.is_open:
        return "OPEN"
    return "FILLED" if order.status is OrderStatus.FILLED else "CANCELLED"


def time_in_force(order: Order) -> str:
    """Coinbase's time-in-force name."""
    if order.type is OrderType.MARKET or order.time_in_force is TimeInForce.IOC:
        return "IMMEDIATE_OR_CANCEL"
    if order.time_in_force is TimeInForce.FOK:
        return "FILL_OR_KILL"
    return "GOOD_UNTIL_CANCELLED"


def order_type(order: Order) -> str:
    """MARKET, LIMIT or STOP_LIMIT."""
    if order.type is OrderType.MARKET:
        return "MARKET"
    return "STOP_LIMIT" if order.type in _STOP_TYPES else "LIMIT"


def trigger_status(order: Order) -> str:
    """INVALID_ORDER_TYPE for non-stops; STOP_PENDING / STOP_TRIGGERED for stop-limits."""
    if order.type not in _STOP_TYPES:
        return "INVALID_ORDER_TYPE"
    return "STOP_TRIGGERED" if order.is_working else "STOP_PENDING"


def _after_fees(order: Order) -> Decimal:
    return order.cum_quote + order.fee if order.side is Side.BUY else order.cum_quote - order.fee


def _completion(order: Order) -> str:
    if order.status is OrderStatus.FILLED:
        return "100"
    if not order.quantity:
        return "0"
    pct = CTX.divide(order.executed_qty * 100, order.quantity).quantize(
        _PCT_PLACES, ROUND_HALF_EVEN, CTX
    )
    return fmt_plain(pct)


def product_id(order: Order | Trade) -> str:
    """``BTC/USD`` → ``BTC-USD``."""
    return order.symbol.replace("/", "-")


def order_json(state: CoinbaseState, order: Order, last_fill_ms: int | None) -> dict[str, object]:
    """An order as ``GET /api/v3/brokerage/orders/historical/{id}`` and ``.../batch`` return it."""
    quote_size = state.bookkeeping.quote_sizes.get(order.order_id)
    sized_in_quote = order.quote_quantity is not None
    return {
        "order_id": state.ids.order(order.order_id),
        "product_id": product_id(order),
        "user_id": state.ids.named("user", order.account_key),
        "order_configuration": configuration(order, quote_size),
        "side": order.side.value,
        "client_order_id": order.client_order_id,
        "status": status(order),
        "time_in_force": time_in_force(order),
        "created_time": iso(order.created_ms),
        "completion_percentage": _completion(order),
        "filled_size": d(order.executed_qty),
        "average_filled_price": d(average_price(order)),
        "fee": "",
        "number_of_fills": str(len(order.trade_ids)),
        "filled_value": d(order.cum_quote),
        "pending_cancel": False,
        "size_in_quote": sized_in_quote,
        "total_fees": d(order.fee),
        "size_inclusive_of_fees": sized_in_quote,
        "total_value_after_fees": d(_after_fees(order)),
        "trigger_status": trigger_status(order),
        "order_type": order_type(order),
        "reject_reason": "REJECT_REASON_UNSPECIFIED",
        "settled": not order.is_open,
        "product_type": "SPOT",
        "reject_message": "",
        "cancel_message": "",
        "order_placement_source": "RETAIL_ADVANCED",
        "outstanding_hold_amount": d(order.locked_amount),
        "is_liquidation": False,
        "last_fill_time": iso(last_fill_ms) if last_fill_ms is not None else None,
        "edit_history": [],
        "leverage": "",
        "margin_type": "UNKNOWN_MARGIN_TYPE",
        "retail_portfolio_id": state.ids.named("portfolio", order.account_key),
    }


_WS_TYPES = {"MARKET": "Market", "LIMIT": "Limit", "STOP_LIMIT": "StopLimit"}


def ws_order_json(state: CoinbaseState, order: Order) -> dict[str, object]:
    """An order inside a ``user`` channel event (fields as in ccxt's recorded sample).

    ``order_type`` is written ``Limit`` / ``Market`` as in the recorded payloads; ``StopLimit``
    for stop-limits is unverified. Absent prices are left out rather than sent empty.
    """
    body: dict[str, object] = {
        "order_id": state.ids.order(order.order_id),
        "client_order_id": order.client_order_id,
        "cumulative_quantity": d(order.executed_qty),
        "leaves_quantity": d(order.remaining if order.is_open else ZERO),
        "avg_price": d(average_price(order)),
        "total_fees": d(order.fee),
        "status": status(order),
        "product_id": product_id(order),
        "product_type": "SPOT",
        "creation_time": iso(order.created_ms),
        "order_side": order.side.value,
        "order_type": _WS_TYPES[order_type(order)],
        "time_in_force": time_in_force(order),
        "trigger_status": trigger_status(order),
        "filled_value": d(order.cum_quote),
        "number_of_fills": str(len(order.trade_ids)),
        "total_value_after_fees": d(_after_fees(order)),
        "outstanding_hold_amount": d(order.locked_amount),
        "post_only": order.type is OrderType.LIMIT_MAKER,
        "cancel_reason": "",
        "reject_reason": "",
        "completion_percentage": _completion(order),
        "contract_expiry_type": "UNKNOWN_CONTRACT_EXPIRY_TYPE",
        "risk_managed_by": "UNKNOWN_RISK_MANAGEMENT_TYPE",
        "retail_portfolio_id": state.ids.named("portfolio", order.account_key),
    }
    if order.price is not None:
        body["limit_price"] = d(order.price)
    if order.stop_price is not None:
        body["stop_price"] = d(order.stop_price)
    return body


def fill_json(state: CoinbaseState, trade: Trade) -> dict[str, object]:
    """One entry of ``GET /api/v3/brokerage/orders/historical/fills``."""
    trade_id = state.ids.trade(trade.trade_id)
    return {
        "entry_id": hashlib.sha256(trade_id.encode()).hexdigest(),
        "trade_id": trade_id,
        "order_id": state.ids.order(trade.order_id),
        "trade_time": iso(trade.time_ms),
        "trade_type": "FILL",
        "price": d(trade.price),
        "size": d(trade.qty),
        "commission": d(trade.fee),
        "product_id": product_id(trade),
        "sequence_timestamp": iso(trade.time_ms),
        "liquidity_indicator": "MAKER" if trade.is_maker else "TAKER",
        "size_in_quote": False,
        "user_id": state.ids.named("user", trade.account_key),
        "side": trade.side.value,
        "retail_portfolio_id": state.ids.named("portfolio", trade.account_key),
    }
