"""Reading ccxt's unified structures (markets, orders, trades) into the broker's model.

ccxt numbers arrive as strings (the client is built with ``number = str``), so every price and
quantity becomes a ``Decimal`` without passing through a float.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from ccxt.base.decimal_to_precision import TICK_SIZE

from broker_svc.adapters.ccxt.capabilities import VenueCapabilities
from broker_svc.domain.model import (
    Fill,
    Market,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

_CCXT_STATUS = {
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}
_TIME_IN_FORCE = {
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
    "PO": TimeInForce.POST_ONLY,
}


def to_decimal(value: Any) -> Decimal | None:
    """Convert a ccxt number (a string when ``number = str``, else float or int) to ``Decimal``."""
    if value is None or value == "":
        return None
    try:
        result = Decimal(value if isinstance(value, str) else repr(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return result if result.is_finite() else None


def from_millis(value: Any) -> datetime | None:
    """Convert epoch milliseconds to an aware UTC datetime; none or a non-positive one is ``None``.

    Binance reports ``workingTime: -1`` for a stop order that has not triggered yet.
    """
    try:
        millis = int(value)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(millis / 1000, UTC) if millis > 0 else None


def to_millis(value: datetime) -> int:
    """Convert an aware datetime to epoch milliseconds."""
    return int(value.timestamp() * 1000)


def parse_step(value: Any, precision_mode: Any) -> Decimal | None:
    """Return a ccxt precision as a step: as is in ``TICK_SIZE`` mode, else from decimal places."""
    number = to_decimal(value)
    if number is None:
        return None
    if precision_mode == TICK_SIZE:
        return number
    return Decimal(1).scaleb(-int(number))


def parse_market(raw: Mapping[str, Any], precision_mode: Any) -> Market:
    """Return the market of a ccxt market structure."""
    precision = raw.get("precision") or {}
    limits = raw.get("limits") or {}
    amount_limits = limits.get("amount") or {}
    cost_limits = limits.get("cost") or {}
    return Market(
        symbol=raw["symbol"],
        base=raw["base"],
        quote=raw["quote"],
        quantity_step=parse_step(precision.get("amount"), precision_mode),
        price_tick=parse_step(precision.get("price"), precision_mode),
        min_quantity=to_decimal(amount_limits.get("min")),
        min_notional=to_decimal(cost_limits.get("min")),
        max_quantity=to_decimal(amount_limits.get("max")),
        active=raw.get("active") is not False,
        contract_size=to_decimal(raw.get("contractSize")) if raw.get("contract") else None,
    )


def parse_order(raw: Mapping[str, Any], order_types_in: Mapping[str, OrderType]) -> Order:
    """Return the order of a ccxt order structure; ``ValueError`` when it holds none."""
    if not isinstance(raw, Mapping) or not raw.get("id"):
        raise ValueError("the venue's answer holds no order")
    filled = to_decimal(raw.get("filled")) or Decimal(0)
    status_text = raw.get("status")
    if status_text == "open" or status_text is None:
        status = OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.OPEN
    else:
        status = _CCXT_STATUS.get(status_text, OrderStatus.UNKNOWN)
    stop_price = to_decimal(raw.get("triggerPrice") or raw.get("stopPrice"))
    kind = order_types_in.get(str(raw.get("type") or "").lower())
    if kind is None:
        kind = OrderType.LIMIT if raw.get("price") else OrderType.MARKET
    if stop_price and not kind.has_stop_price:
        # ccxt unifies a stop-limit as "limit" and a stop-market as "market" plus a trigger.
        kind = OrderType.STOP_LIMIT if kind.has_limit_price else OrderType.STOP_MARKET
    fee = raw.get("fee") or {}
    created = from_millis(raw.get("timestamp"))
    updated = from_millis(raw.get("lastUpdateTimestamp")) or created
    tif = _TIME_IN_FORCE.get(str(raw.get("timeInForce") or "").upper())
    if raw.get("postOnly") is True:
        tif = TimeInForce.POST_ONLY
    quantity = to_decimal(raw.get("amount"))
    if quantity is None:
        raise ValueError("the venue's answer holds no quantity")
    return Order(
        client_order_id=str(raw.get("clientOrderId") or ""),
        venue_order_id=str(raw["id"]),
        symbol=str(raw["symbol"]),
        side=Side(str(raw["side"]).lower()),
        type=kind,
        quantity=quantity,
        status=status,
        filled_quantity=filled,
        price=to_decimal(raw.get("price")) if kind.has_limit_price else None,
        stop_price=stop_price if kind.has_stop_price else None,
        average_price=to_decimal(raw.get("average")) if filled > 0 else None,
        time_in_force=tif if kind.has_limit_price else None,
        created_at=created or updated,
        updated_at=updated,
        fee=to_decimal(fee.get("cost")),
        fee_currency=str(fee.get("currency") or ""),
    )


def parse_fill(
    raw: Mapping[str, Any],
    order_types_in: Mapping[str, OrderType],
    client_order_id_keys: Sequence[str],
) -> Fill:
    """Return the fill of a ccxt trade structure; ``ValueError`` when it is incomplete.

    A trade without ccxt's ``clientOrderId`` takes it from the first of ``client_order_id_keys``
    found in the venue's raw ``info``.
    """
    fee = raw.get("fee") or {}
    kind = order_types_in.get(str(raw.get("type") or "").lower())
    quantity, price = to_decimal(raw.get("amount")), to_decimal(raw.get("price"))
    trade_time = from_millis(raw.get("timestamp"))
    if quantity is None or price is None or trade_time is None:
        raise ValueError("the venue's trade is incomplete")
    info = raw.get("info") or {}
    client_order_id = str(raw.get("clientOrderId") or "")
    for key in client_order_id_keys:
        if client_order_id:
            break
        value = info.get(key) if isinstance(info, Mapping) else None
        client_order_id = str(value) if isinstance(value, str) else ""
    return Fill(
        trade_id=str(raw["id"]),
        venue_order_id=str(raw.get("order") or ""),
        symbol=str(raw["symbol"]),
        side=Side(str(raw["side"]).lower()),
        quantity=quantity,
        price=price,
        trade_time=trade_time,
        client_order_id=client_order_id,
        fee=to_decimal(fee.get("cost")),
        fee_currency=str(fee.get("currency") or ""),
        order_type=kind,
    )


class CcxtParsing:
    """The parsing a venue class applies to ccxt's answers (venues whose answers differ override).

    Reads the class's capability data and the client's precision mode.
    """

    capabilities: ClassVar[VenueCapabilities]
    _client: Any

    def _market(self, raw: Mapping[str, Any]) -> Market:
        return parse_market(raw, getattr(self._client, "precisionMode", TICK_SIZE))

    def _order(self, raw: Mapping[str, Any]) -> Order:
        return parse_order(raw, self.capabilities.order_types_in)

    def _fill(self, raw: Mapping[str, Any]) -> Fill:
        return parse_fill(
            raw,
            self.capabilities.order_types_in,
            self.capabilities.trade_client_order_id_keys,
        )
