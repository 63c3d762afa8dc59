"""Binance JSON shapes of orders, trades and user-data events (decimals as 8-place strings)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from exchange_sim.binance.markets import market_id
from exchange_sim.core.decimals import ZERO, fmt8
from exchange_sim.core.engine import BalanceUpdate, MatchingEngine, OrderUpdate
from exchange_sim.core.orders import ExecutionType, Order, Side, Trade

STP_MODE = "NONE"


def _symbol(engine: MatchingEngine, order: Order | Trade) -> str:
    return market_id(engine.markets[order.symbol])


def _d(value: Decimal | None) -> str:
    return fmt8(value if value is not None else ZERO)


def _time_in_force(order: Order) -> str:
    # Binance reports GTC for order types that take no timeInForce (MARKET, LIMIT_MAKER, stops).
    return order.time_in_force.value if order.time_in_force is not None else "GTC"


def order_json(engine: MatchingEngine, order: Order) -> dict[str, object]:
    """An order as ``GET /api/v3/order``, ``openOrders`` and ``allOrders`` return it."""
    return {
        "symbol": _symbol(engine, order),
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": _d(order.price),
        "origQty": _d(order.quantity),
        "executedQty": _d(order.executed_qty),
        "cummulativeQuoteQty": _d(order.cum_quote),
        "status": order.status.value,
        "timeInForce": _time_in_force(order),
        "type": order.type.value,
        "side": order.side.value,
        "stopPrice": _d(order.stop_price),
        "icebergQty": _d(ZERO),
        "time": order.created_ms,
        "updateTime": order.updated_ms,
        "isWorking": order.is_working,
        "workingTime": order.working_ms if order.working_ms is not None else -1,
        "origQuoteOrderQty": _d(order.quote_quantity),
        "selfTradePreventionMode": STP_MODE,
    }


def new_order_json(engine: MatchingEngine, order: Order, resp_type: str) -> dict[str, object]:
    """The ``POST /api/v3/order`` reply in the ACK, RESULT or FULL shape."""
    body: dict[str, object] = {
        "symbol": _symbol(engine, order),
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": order.created_ms,
    }
    if resp_type == "ACK":
        return body
    body.update(
        {
            "price": _d(order.price),
            "origQty": _d(order.quantity),
            "executedQty": _d(order.executed_qty),
            "origQuoteOrderQty": _d(order.quote_quantity),
            "cummulativeQuoteQty": _d(order.cum_quote),
            "status": order.status.value,
            "timeInForce": _time_in_force(order),
            "type": order.type.value,
            "side": order.side.value,
        }
    )
    if order.stop_price is not None:
        body["stopPrice"] = _d(order.stop_price)
    body["workingTime"] = order.working_ms if order.working_ms is not None else -1
    body["selfTradePreventionMode"] = STP_MODE
    if resp_type == "FULL":
        body["fills"] = [fill_json(t) for t in engine.trades_of_order(order)]
    return body


def cancel_json(engine: MatchingEngine, order: Order) -> dict[str, object]:
    """The ``DELETE /api/v3/order`` reply: ``clientOrderId`` is the cancel's own id (as Binance)."""
    body: dict[str, object] = {
        "symbol": _symbol(engine, order),
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.cancel_client_order_id or order.client_order_id,
        "transactTime": order.updated_ms,
        "price": _d(order.price),
        "origQty": _d(order.quantity),
        "executedQty": _d(order.executed_qty),
        "origQuoteOrderQty": _d(order.quote_quantity),
        "cummulativeQuoteQty": _d(order.cum_quote),
        "status": order.status.value,
        "timeInForce": _time_in_force(order),
        "type": order.type.value,
        "side": order.side.value,
    }
    if order.stop_price is not None:
        body["stopPrice"] = _d(order.stop_price)
    body["selfTradePreventionMode"] = STP_MODE
    return body


def fill_json(trade: Trade) -> dict[str, object]:
    """One entry of ``fills`` in a FULL order reply."""
    return {
        "price": fmt8(trade.price),
        "qty": fmt8(trade.qty),
        "commission": fmt8(trade.fee),
        "commissionAsset": trade.fee_asset,
        "tradeId": trade.trade_id,
    }


def trade_json(engine: MatchingEngine, trade: Trade) -> dict[str, object]:
    """One entry of ``GET /api/v3/myTrades``."""
    return {
        "symbol": _symbol(engine, trade),
        "id": trade.trade_id,
        "orderId": trade.order_id,
        "orderListId": -1,
        "price": fmt8(trade.price),
        "qty": fmt8(trade.qty),
        "quoteQty": fmt8(trade.quote_qty),
        "commission": fmt8(trade.fee),
        "commissionAsset": trade.fee_asset,
        "time": trade.time_ms,
        "isBuyer": trade.side is Side.BUY,
        "isMaker": trade.is_maker,
        "isBestMatch": True,
    }


def execution_report(
    engine: MatchingEngine, update: OrderUpdate, event_id: int
) -> dict[str, object]:
    """The ``executionReport`` event for an order update (docs/exchange-protocols.md §2.5)."""
    order, trade = update.order, update.trade
    canceled = (
        update.execution is ExecutionType.CANCELED and order.cancel_client_order_id is not None
    )
    event: dict[str, object] = {
        "e": "executionReport",
        "E": update.time_ms,
        "s": _symbol(engine, order),
        "c": order.cancel_client_order_id if canceled else order.client_order_id,
        "S": order.side.value,
        "o": order.type.value,
        "f": _time_in_force(order),
        "q": _d(order.quantity),
        "p": _d(order.price),
        "P": _d(order.stop_price),
        "F": _d(ZERO),
        "g": -1,
        "C": order.client_order_id if canceled else "",
        "x": update.execution.value,
        "X": order.status.value,
        "r": "NONE",
        "i": order.order_id,
        "l": _d(trade.qty if trade else None),
        "z": _d(order.executed_qty),
        "L": _d(trade.price if trade else None),
        "n": fmt8(trade.fee) if trade else "0",
        "N": trade.fee_asset if trade else None,
        "T": trade.time_ms if trade else update.time_ms,
        "t": trade.trade_id if trade else -1,
        "I": event_id,
        "w": order.is_open and order.is_working,
        "m": trade.is_maker if trade else False,
        "M": False,
        "O": order.created_ms,
        "Z": _d(order.cum_quote),
        "Y": _d(trade.quote_qty if trade else None),
        "Q": _d(order.quote_quantity),
        "V": STP_MODE,
    }
    if order.working_ms is not None:
        event["W"] = order.working_ms
    return event


def account_position(update: BalanceUpdate) -> dict[str, object]:
    """The ``outboundAccountPosition`` user-data event."""
    return {
        "e": "outboundAccountPosition",
        "E": update.time_ms,
        "u": update.time_ms,
        "B": [{"a": a, "f": fmt8(free), "l": fmt8(locked)} for a, free, locked in update.balances],
    }


def balances_json(assets: Iterable[tuple[str, Decimal, Decimal]]) -> list[dict[str, str]]:
    """``balances`` of ``GET /api/v3/account``."""
    return [{"asset": a, "free": fmt8(free), "locked": fmt8(locked)} for a, free, locked in assets]
