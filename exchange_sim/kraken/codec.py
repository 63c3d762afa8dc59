"""Kraken JSON shapes of orders, trades, balances and ``executions`` messages, and exact JSON.

Numbers: REST decimals are strings with the pair's precision (``TradesHistory`` docs: prices,
costs, fees and volumes use the pair's decimals): prices ``pair_decimals``, volumes
``lot_decimals``, costs / fees / average prices ``cost_decimals``, truncated as Kraken truncates
them (ccxt recomputes cost from average x filled for that reason). Balances use the asset's
``decimals``. WebSocket v2 sends JSON numbers; ``dumps`` writes Decimals as exact JSON numbers,
so no float ever touches an amount on the way out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

from exchange_sim.core.decimals import CTX, ZERO
from exchange_sim.core.orders import Order, OrderStatus, OrderType, Side, Trade
from exchange_sim.kraken import ids
from exchange_sim.kraken.markets import KrakenPair

_ORDER_TYPES = {
    OrderType.MARKET: "market",
    OrderType.LIMIT: "limit",
    OrderType.LIMIT_MAKER: "limit",
    OrderType.STOP_LOSS: "stop-loss",
    OrderType.STOP_LOSS_LIMIT: "stop-loss-limit",
    OrderType.TAKE_PROFIT: "take-profit",
    OrderType.TAKE_PROFIT_LIMIT: "take-profit-limit",
}
USER_REQUESTED = "User requested"


def dumps(value: object) -> str:
    """JSON text in which Decimals are written as exact numbers (``50025.0``, not a float)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def fixed(value: Decimal, places: int, *, up: bool = False) -> str:
    """``value`` with exactly ``places`` decimals, truncated (or rounded up when ``up``)."""
    quantum = Decimal(1).scaleb(-places)
    return format(
        value.quantize(quantum, rounding=ROUND_CEILING if up else ROUND_DOWN, context=CTX), "f"
    )


def seconds(ms: int) -> Decimal:
    """Unix seconds with millisecond decimals (Kraken's ``opentm``, ``time``)."""
    return Decimal(ms).scaleb(-3)


def rfc3339(ms: int) -> str:
    """``2023-09-22T10:33:05.709000Z`` (WebSocket v2 timestamps)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def price_str(pair: KrakenPair, value: Decimal) -> str:
    """A price with the pair's ``pair_decimals``."""
    return fixed(value, pair.pair_decimals)


def vol_str(pair: KrakenPair, value: Decimal) -> str:
    """A volume with the pair's ``lot_decimals``."""
    return fixed(value, pair.lot_decimals)


def cost_str(pair: KrakenPair, value: Decimal) -> str:
    """A cost, fee or average price with the pair's ``cost_decimals``."""
    return fixed(value, pair.cost_decimals)


# ---------------------------------------------------------------------- orders


def ordertype(order: Order) -> str:
    """Kraken's ``ordertype`` (``stop-loss-limit``...)."""
    return _ORDER_TYPES[order.type]


def status(order: Order) -> str:
    """Kraken's order status. The core's EXPIRED (an IOC or market remainder the book could not
    fill, a stop-market buy the account could not pay when triggered) is reported as ``canceled``:
    [U] Kraken keeps ``expired`` for orders past their ``expiretm``, which the emulator does not
    take."""
    if order.is_open:
        return "open"
    if order.status is OrderStatus.FILLED:
        return "closed"
    return "canceled"


def reason(order: Order) -> str | None:
    """Why a canceled order ended ([U] wording except ``User requested``)."""
    if order.status is OrderStatus.CANCELED:
        return USER_REQUESTED
    if order.status is OrderStatus.EXPIRED:
        unfunded = (
            order.type.has_trigger
            and order.type.is_market_like
            and order.side is Side.BUY
            and order.executed_qty == ZERO
        )
        return "Insufficient funds" if unfunded else "Immediate or cancel"
    return None


def _trigger_and_limit(order: Order) -> tuple[Decimal | None, Decimal | None]:
    """(descr.price, descr.price2): the limit price, or the trigger and then the limit."""
    if order.type.has_trigger:
        return order.stop_price, order.price
    return order.price, None


def _present(price: Decimal | None) -> Decimal:
    """``price``, which the order's type guarantees; a missing one fails as ``fixed`` would."""
    if price is None:
        raise AttributeError("'NoneType' object has no attribute 'quantize'")
    return price


def descr_order(pair: KrakenPair, order: Order) -> str:
    """The ``descr.order`` sentence ccxt parses (docs/exchange-protocols.md §4.3)."""
    volume = order.quote_quantity if order.quote_quantity is not None else order.quantity
    head = f"{order.side.value.lower()} {fixed(volume or ZERO, 8)} {pair.altname} @ "
    kind = order.type
    if kind is OrderType.MARKET:
        return head + "market"
    if kind in (OrderType.LIMIT, OrderType.LIMIT_MAKER):
        return head + f"limit {price_str(pair, _present(order.price))}"
    words = (
        "stop loss" if kind in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT) else "take profit"
    )
    text = head + f"{words} {price_str(pair, _present(order.stop_price))}"
    if kind.has_limit_price:
        text += f" -> limit {price_str(pair, _present(order.price))}"
    return text


def oflags(order: Order) -> str:
    """The order flags Kraken echoes (fees are always charged in the quote currency here)."""
    flags = ["fciq"]
    if order.type is OrderType.LIMIT_MAKER:
        flags.append("post")
    if order.quote_quantity is not None:
        flags.append("viqc")
    return ",".join(flags)


def order_info(pair: KrakenPair, order: Order, trade_txids: list[str] | None) -> dict[str, object]:
    """An order as ``QueryOrders``, ``OpenOrders`` and ``ClosedOrders`` describe it."""
    price1, price2 = _trigger_and_limit(order)
    userref = ids.userref_of(order.client_order_id)
    average = CTX.divide(order.cum_quote, order.executed_qty) if order.executed_qty else ZERO
    body: dict[str, object] = {
        "refid": None,
        "userref": userref,
        "status": status(order),
        "reason": reason(order),
        "opentm": seconds(order.created_ms),
    }
    if not order.is_open:
        body["closetm"] = seconds(order.updated_ms)
    body.update(
        {
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": pair.altname,
                "type": order.side.value.lower(),
                "ordertype": ordertype(order),
                "price": price_str(pair, price1) if price1 is not None else "0",
                "price2": price_str(pair, price2) if price2 is not None else "0",
                "leverage": "none",
                "order": descr_order(pair, order),
                "close": "",
            },
            "vol": vol_str(pair, order.quantity if order.quantity is not None else ZERO),
            "vol_exec": vol_str(pair, order.executed_qty),
            "cost": cost_str(pair, order.cum_quote),
            "fee": cost_str(pair, order.fee),
            "price": cost_str(pair, average),
            "stopprice": cost_str(pair, order.stop_price or ZERO),
            "limitprice": cost_str(
                pair, order.price if order.type.has_trigger and order.price else ZERO
            ),
            "misc": "",
            "oflags": oflags(order),
        }
    )
    cl_ord_id = ids.cl_ord_id_of(order.client_order_id)
    if cl_ord_id is not None:
        body["cl_ord_id"] = cl_ord_id
    if trade_txids is not None:
        body["trades"] = trade_txids
    return body


# ---------------------------------------------------------------------- trades


@dataclass(frozen=True)
class Fill:
    """One ``TradesHistory`` record: a single trade, or the taker trades of one order execution
    merged (``consolidate_taker``, Kraken's default), named after the first."""

    trades: tuple[Trade, ...]

    @property
    def first(self) -> Trade:
        """The trade the record is named after."""
        return self.trades[0]

    @property
    def txid(self) -> str:
        """The record's trade txid."""
        return ids.trade_txid(self.first.trade_id)

    @property
    def qty(self) -> Decimal:
        """Total base volume."""
        return sum((t.qty for t in self.trades), ZERO)

    @property
    def quote(self) -> Decimal:
        """Total cost."""
        return sum((t.quote_qty for t in self.trades), ZERO)

    @property
    def fee(self) -> Decimal:
        """Total fee."""
        return sum((t.fee for t in self.trades), ZERO)


def fills(trades: Iterable[Trade], *, consolidate_taker: bool) -> list[Fill]:
    """Trades (oldest first) as ``TradesHistory`` records, oldest first.

    Taker trades merge when they come from the same execution (``Trade.execution_id``), never by
    timestamp: the clock may tick between the level fills of one book walk.
    """
    result: list[list[Trade]] = []
    for trade in trades:
        last = result[-1][-1] if result else None
        if (
            consolidate_taker
            and last is not None
            and not trade.is_maker
            and not last.is_maker
            and last.order_id == trade.order_id
            and last.execution_id == trade.execution_id
        ):
            result[-1].append(trade)
        else:
            result.append([trade])
    return [Fill(tuple(group)) for group in result]


def fill_json(pair: KrakenPair, fill: Fill, order: Order) -> dict[str, object]:
    """A ``TradesHistory`` / ``QueryTrades`` entry."""
    first = fill.first
    return {
        "ordertxid": ids.order_txid(first.order_id),
        "postxid": ids.position_txid(first.trade_id),
        "pair": pair.pair_id,
        "time": seconds(first.time_ms),
        "type": first.side.value.lower(),
        "ordertype": "market" if order.type.is_market_like else "limit",
        "price": cost_str(pair, CTX.divide(fill.quote, fill.qty)),
        "cost": cost_str(pair, fill.quote),
        "fee": cost_str(pair, fill.fee),
        "vol": vol_str(pair, fill.qty),
        "margin": cost_str(pair, ZERO),
        "leverage": "0",
        "misc": "",
        "trade_id": first.trade_id,
        "maker": first.is_maker,
    }


# ---------------------------------------------------------------------- WebSocket v2 executions


def ws_order(
    pair: KrakenPair, order: Order, exec_type: str, order_status: str, time_ms: int
) -> dict[str, object]:
    """An ``executions`` entry about an order (everything ccxt's ``parse_ws_order`` reads)."""
    userref = ids.userref_of(order.client_order_id)
    entry: dict[str, object] = {
        "order_id": ids.order_txid(order.order_id),
        "order_userref": userref or 0,
        "symbol": pair.symbol,
        "exec_type": exec_type,
        "order_status": order_status,
        "side": order.side.value.lower(),
        "order_type": ordertype(order),
        "time_in_force": order.time_in_force.value if order.time_in_force is not None else "GTC",
        "order_qty": order.quantity if order.quantity is not None else ZERO,
        "cum_qty": order.executed_qty,
        "cum_cost": order.cum_quote,
        "fee_usd_equiv": order.fee,  # every emulated pair is quoted in USD
        "fee_ccy_pref": "fciq",
        "timestamp": rfc3339(time_ms),
    }
    if order.executed_qty:
        average = CTX.divide(order.cum_quote, order.executed_qty)
        entry["avg_price"] = average.quantize(
            Decimal(1).scaleb(-8), rounding=ROUND_DOWN, context=CTX
        )
    if order.type.has_limit_price:
        entry["limit_price_type"] = "static"
        entry["limit_price"] = order.price
    if order.type.has_trigger:
        entry["stop_price"] = order.stop_price
        entry["triggers"] = {
            "reference": "last",
            "price": order.stop_price,
            "price_type": "static",
            "status": "triggered" if order.is_working else "untriggered",
        }
    if order.type is OrderType.LIMIT_MAKER:
        entry["post_only"] = True
    cl_ord_id = ids.cl_ord_id_of(order.client_order_id)
    if cl_ord_id is not None:
        entry["cl_ord_id"] = cl_ord_id
    if exec_type == "canceled":
        entry["reason"] = entry["cancel_reason"] = reason(order)
    return entry


def ws_trade(pair: KrakenPair, order: Order, trade: Trade) -> dict[str, object]:
    """An ``executions`` entry with ``exec_type: trade`` (everything ``parse_ws_trade`` reads).

    ``order_status`` is ``partially_filled`` even on the fill that completes the order, which
    Kraken documents it may do; completion comes in a separate ``filled`` message.
    """
    entry: dict[str, object] = {
        "order_id": ids.order_txid(order.order_id),
        "exec_id": ids.trade_txid(trade.trade_id),
        "exec_type": "trade",
        "trade_id": trade.trade_id,
        "symbol": pair.symbol,
        "side": trade.side.value.lower(),
        "last_qty": trade.qty,
        "last_price": trade.price,
        "liquidity_ind": "m" if trade.is_maker else "t",
        "cost": trade.quote_qty,
        "order_userref": ids.userref_of(order.client_order_id) or 0,
        "order_status": "partially_filled",
        "order_type": ordertype(order),
        "fee_usd_equiv": trade.fee,
        "fees": [{"asset": pair.quote.altname, "qty": trade.fee}],
        "fee_ccy_pref": "fciq",
        "cum_qty": order.executed_qty,
        "cum_cost": order.cum_quote,
        "timestamp": rfc3339(trade.time_ms),
    }
    cl_ord_id = ids.cl_ord_id_of(order.client_order_id)
    if cl_ord_id is not None:
        entry["cl_ord_id"] = cl_ord_id
    return entry
