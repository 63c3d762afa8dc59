"""``POST /api/v3/brokerage/orders``: parse the request, apply Coinbase's product rules, and
turn it into a core ``OrderRequest`` (docs/exchange-protocols.md §3.4, §3.6, §3.7).

Malformed requests (not JSON, unknown fields, a non-decimal size, a missing
``client_order_id``...) are HTTP 400 ``INVALID_ARGUMENT`` naming the field (ccxt: ``BadRequest``).
Requests that are well formed but break a rule are HTTP 200 ``success: false`` (see ``errors``).

Supported ``order_configuration`` keys (what ccxt 4.5.90 sends for spot):

* ``market_market_ioc`` with ``quote_size`` (buy) or ``base_size`` (buy or sell). A quote-sized
  buy spends at most ``quote_size`` *including* the fee, as on Coinbase
  (``size_inclusive_of_fees``): the core gets the budget ``quote_size / (1 + taker fee)``.
  A quote-sized sell is refused as an unsupported configuration (whether Coinbase accepts it
  is unverified; refusing is the safer side).
* ``limit_limit_gtc`` (``post_only`` → a maker-only order), ``sor_limit_ioc``, ``limit_limit_fok``.
* ``stop_limit_stop_limit_gtc`` with ``stop_direction``: ``STOP_UP`` triggers when the last price
  rises to the stop, ``STOP_DOWN`` when it falls to it (a stop already met is refused).

Real configurations the emulator does not implement (GTD variants, brackets, TWAP, ``quote_size``
on limit orders...) get ``UNSUPPORTED_ORDER_CONFIGURATION``.

Checks, in order: product, side, prices (``price_increment``), sizes (``base_increment``,
``base_min_size`` / ``base_max_size``, ``quote_increment``), order value against
``quote_min_size`` / ``quote_max_size`` (limit price times size, or the last price for a base-sized
market order), the stop trigger, then funds (a quote-sized buy needs ``quote_size`` free).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from exchange_sim.coinbase import errors
from exchange_sim.coinbase.errors import invalid_argument
from exchange_sim.coinbase.markets import Product
from exchange_sim.coinbase.state import CoinbaseState
from exchange_sim.core.accounts import Account
from exchange_sim.core.decimals import CTX, EIGHT_PLACES, ZERO, is_multiple, mul
from exchange_sim.core.orders import OrderRequest, OrderType, Side, TimeInForce

_DECIMAL_RE = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
CLIENT_ORDER_ID_MAX = 128
TOP_LEVEL_FIELDS = {
    "client_order_id",
    "product_id",
    "side",
    "order_configuration",
    "self_trade_prevention_id",
    "retail_portfolio_id",
    "preview_id",
    "leverage",
    "margin_type",
}
_FIELDS = {
    "market_market_ioc": {"quote_size", "base_size"},
    "limit_limit_gtc": {"base_size", "limit_price", "post_only"},
    "sor_limit_ioc": {"base_size", "limit_price"},
    "limit_limit_fok": {"base_size", "limit_price"},
    "stop_limit_stop_limit_gtc": {"base_size", "limit_price", "stop_price", "stop_direction"},
}
_NOT_EMULATED = {
    "market_market_fok",
    "limit_limit_gtd",
    "stop_limit_stop_limit_gtd",
    "trigger_bracket_gtc",
    "trigger_bracket_gtd",
    "twap_limit_gtd",
    "scaled_limit_gtc",
    "sor_limit_fok",
}
_DIRECTIONS = {"STOP_DIRECTION_STOP_UP": True, "STOP_DIRECTION_STOP_DOWN": False}


@dataclass(frozen=True)
class Envelope:
    """The parts of a create-order request needed before any rule is applied."""

    client_order_id: str
    configuration: dict[str, Any]
    body: dict[str, Any]


@dataclass(frozen=True)
class PlannedOrder:
    """A request that passed Coinbase's rules, ready for the engine."""

    request: OrderRequest
    quote_size: Decimal | None
    direction_up: bool | None


def parse_envelope(body: Any) -> Envelope:
    """Check the request's shape; 400 ``INVALID_ARGUMENT`` naming the field when malformed.

    ``client_order_id`` is required and non-empty (ccxt always sends one): a request without it
    could not be retried safely, so the emulator refuses it rather than inventing an id.
    """
    if not isinstance(body, dict):
        raise invalid_argument("body: must be a JSON object")
    unknown = sorted(set(body) - TOP_LEVEL_FIELDS)
    if unknown:
        raise invalid_argument(f"{unknown[0]}: unknown field")
    client_order_id = body.get("client_order_id")
    if not isinstance(client_order_id, str) or not client_order_id.strip():
        raise invalid_argument("client_order_id: required, a non-empty string")
    if len(client_order_id) > CLIENT_ORDER_ID_MAX or not client_order_id.isprintable():
        raise invalid_argument(
            f"client_order_id: at most {CLIENT_ORDER_ID_MAX} printable characters"
        )
    for name in ("product_id", "side"):
        if not isinstance(body.get(name), str):
            raise invalid_argument(f"{name}: required, a string")
    configuration = body.get("order_configuration")
    if not isinstance(configuration, dict) or len(configuration) != 1:
        raise invalid_argument("order_configuration: must hold exactly one configuration")
    ((kind, fields),) = configuration.items()
    if kind not in _FIELDS and kind not in _NOT_EMULATED:
        raise invalid_argument(f"order_configuration.{kind}: unknown order configuration")
    if not isinstance(fields, dict):
        raise invalid_argument(f"order_configuration.{kind}: must be a JSON object")
    return Envelope(client_order_id=client_order_id, configuration=configuration, body=body)


def _decimal(fields: dict[str, Any], kind: str, name: str) -> Decimal | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise invalid_argument(f"order_configuration.{kind}.{name}: must be a decimal string")
    text = str(value).strip()
    if not _DECIMAL_RE.match(text):
        raise invalid_argument(f"order_configuration.{kind}.{name}: {value!r} is not a decimal")
    return Decimal(text)


def _required(fields: dict[str, Any], kind: str, name: str) -> Decimal:
    value = _decimal(fields, kind, name)
    if value is None:
        raise invalid_argument(f"order_configuration.{kind}.{name}: required")
    return value


def _check_price(product: Product, price: Decimal) -> None:
    if price <= ZERO or not is_multiple(price, product.price_increment):
        raise errors.price_precision()
    if price > product.market.max_price:
        raise errors.price_too_large()


def _check_base(product: Product, size: Decimal) -> None:
    if not is_multiple(size, product.base_increment):
        raise errors.size_precision()
    if size < product.base_min_size or size <= ZERO:
        raise errors.too_small("BASE")
    if size > product.base_max_size:
        raise errors.too_large("BASE")


def _check_value(product: Product, value: Decimal) -> None:
    if value < product.quote_min_size:
        raise errors.too_small("QUOTE")
    if value > product.quote_max_size:
        raise errors.too_large("QUOTE")


def plan_order(state: CoinbaseState, account: Account, envelope: Envelope) -> PlannedOrder:
    """Apply Coinbase's rules; raise ``OrderRejected`` (HTTP 200 failure) or a 400."""
    body = envelope.body
    product = state.products.get(body["product_id"])
    if product is None:
        raise errors.invalid_product()
    if body["side"] not in ("BUY", "SELL"):
        raise errors.invalid_side()
    side = Side(body["side"])
    ((kind, fields),) = envelope.configuration.items()
    if kind in _NOT_EMULATED:
        raise errors.unsupported_configuration(kind)
    if "quote_size" in fields and kind != "market_market_ioc":
        raise errors.unsupported_configuration(f"{kind}.quote_size")
    unknown = sorted(set(fields) - _FIELDS[kind])
    if unknown:
        raise invalid_argument(f"order_configuration.{kind}.{unknown[0]}: unknown field")
    market = product.market
    mark = state.engine.mark(market.symbol)
    if kind == "market_market_ioc":
        return _plan_market(state, account, product, side, fields, mark, envelope.client_order_id)
    size = _required(fields, kind, "base_size")
    price = _required(fields, kind, "limit_price")
    _check_price(product, price)
    stop = direction_up = None
    if kind == "stop_limit_stop_limit_gtc":
        stop = _required(fields, kind, "stop_price")
        direction = fields.get("stop_direction")
        if direction not in _DIRECTIONS:
            raise invalid_argument(
                f"order_configuration.{kind}.stop_direction: STOP_DIRECTION_STOP_UP "
                "or STOP_DIRECTION_STOP_DOWN"
            )
        direction_up = _DIRECTIONS[direction]
        _check_price(product, stop)
    _check_base(product, size)
    _check_value(product, mul(size, price))
    if stop is not None:
        if (mark >= stop) if direction_up else (mark <= stop):
            raise errors.stop_already_met(bool(direction_up))
        rising_type = OrderType.STOP_LOSS_LIMIT if side is Side.BUY else OrderType.TAKE_PROFIT_LIMIT
        falling_type = (
            OrderType.TAKE_PROFIT_LIMIT if side is Side.BUY else OrderType.STOP_LOSS_LIMIT
        )
        request = OrderRequest(
            symbol=market.symbol,
            side=side,
            type=rising_type if direction_up else falling_type,
            client_order_id=envelope.client_order_id,
            quantity=size,
            price=price,
            stop_price=stop,
            time_in_force=TimeInForce.GTC,
        )
        return PlannedOrder(request, None, direction_up)
    post_only = fields.get("post_only", False)
    if not isinstance(post_only, bool):
        raise invalid_argument(f"order_configuration.{kind}.post_only: must be true or false")
    if kind == "limit_limit_gtc" and post_only:
        order_type, tif = OrderType.LIMIT_MAKER, None
    else:
        order_type = OrderType.LIMIT
        tif = {
            "limit_limit_gtc": TimeInForce.GTC,
            "sor_limit_ioc": TimeInForce.IOC,
            "limit_limit_fok": TimeInForce.FOK,
        }[kind]
    request = OrderRequest(
        symbol=market.symbol,
        side=side,
        type=order_type,
        client_order_id=envelope.client_order_id,
        quantity=size,
        price=price,
        time_in_force=tif,
    )
    return PlannedOrder(request, None, None)


def _plan_market(
    state: CoinbaseState,
    account: Account,
    product: Product,
    side: Side,
    fields: dict[str, Any],
    mark: Decimal,
    client_order_id: str,
) -> PlannedOrder:
    kind = "market_market_ioc"
    quote, base = _decimal(fields, kind, "quote_size"), _decimal(fields, kind, "base_size")
    if (quote is None) == (base is None):
        raise invalid_argument(
            f"order_configuration.{kind}: exactly one of base_size and quote_size"
        )
    market = product.market
    if base is not None:
        _check_base(product, base)
        _check_value(product, mul(base, mark))
        request = OrderRequest(
            symbol=market.symbol,
            side=side,
            type=OrderType.MARKET,
            client_order_id=client_order_id,
            quantity=base,
        )
        return PlannedOrder(request, None, None)
    assert quote is not None
    if side is Side.SELL:
        raise errors.unsupported_configuration(f"{kind}.quote_size on a sell")
    if not is_multiple(quote, product.quote_increment):
        raise errors.quote_precision()
    _check_value(product, quote)
    if account.balance(market.quote).free < quote:
        raise errors.insufficient_fund()
    budget = CTX.divide(quote, Decimal(1) + state.engine.fees.taker).quantize(
        EIGHT_PLACES, ROUND_DOWN, CTX
    )
    request = OrderRequest(
        symbol=market.symbol,
        side=side,
        type=OrderType.MARKET,
        client_order_id=client_order_id,
        quote_quantity=budget,
    )
    return PlannedOrder(request, quote, None)
