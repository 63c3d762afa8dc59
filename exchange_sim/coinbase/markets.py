"""The emulated Coinbase Advanced Trade spot products, their trading rules and JSON shapes.

Rules are Coinbase's product fields (docs/exchange-protocols.md §3.6): ``base_increment`` (size
step), ``price_increment`` (tick), ``quote_increment`` (step of a quote-sized order),
``base_min_size`` / ``base_max_size`` and ``quote_min_size`` / ``quote_max_size`` (order value).
The values are the live BTC-USD / ETH-USD / LTC-USD ones (recorded in ccxt's source comments and
the official SDK samples); they are enforced by the Coinbase adapter (``coinbase.orders``), so the
core ``Market`` carries a zero ``min_notional`` and only backs the adapter up.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from exchange_sim.core.decimals import fmt_plain
from exchange_sim.core.markets import Market

D = Decimal

#: Currencies Coinbase lists as fiat (``ACCOUNT_TYPE_FIAT`` / v2 ``fiat`` accounts).
FIAT = {"USD": "US Dollar"}
#: Crypto assets: (name, asset_id as on Coinbase, display colour).
CRYPTO = {
    "BTC": ("Bitcoin", "5b71fc48-3dd3-540c-809b-f8c94d0e68b5", "#F7931A"),
    "ETH": ("Ethereum", "d85dce9b-5b73-5c3c-8978-522ce1d1c1b4", "#627EEA"),
    "LTC": ("Litecoin", "c9c24c6e-c045-5fde-98a2-00ea7f520437", "#A6A9AA"),
    "USDC": ("USDC", "2b92315d-eab7-5bef-84fa-089a131333f5", "#2775CA"),
}


@dataclass(frozen=True)
class Product:
    """A Coinbase spot product: the core market plus Coinbase's sizing rules."""

    market: Market
    base_increment: Decimal
    quote_increment: Decimal
    price_increment: Decimal
    base_min_size: Decimal
    base_max_size: Decimal
    quote_min_size: Decimal
    quote_max_size: Decimal

    @property
    def product_id(self) -> str:
        """Coinbase's id: ``BASE-QUOTE``."""
        return f"{self.market.base}-{self.market.quote}"


def _product(
    base: str,
    quote: str,
    *,
    price: str,
    level_qty: str,
    base_max: str,
    base_increment: str = "0.00000001",
    price_increment: str = "0.01",
    quote_increment: str = "0.01",
    quote_min: str = "1",
    quote_max: str = "150000000",
) -> Product:
    market = Market(
        symbol=f"{base}/{quote}",
        base=base,
        quote=quote,
        tick_size=D(price_increment),
        step_size=D(base_increment),
        min_qty=D(base_increment),
        max_qty=D(base_max),
        min_notional=D(0),
        max_notional=D(quote_max),
        max_price=D("100000000"),
        initial_price=D(price),
        level_qty=D(level_qty),
    )
    return Product(
        market=market,
        base_increment=D(base_increment),
        quote_increment=D(quote_increment),
        price_increment=D(price_increment),
        base_min_size=D(base_increment),
        base_max_size=D(base_max),
        quote_min_size=D(quote_min),
        quote_max_size=D(quote_max),
    )


DEFAULT_PRODUCTS: tuple[Product, ...] = (
    _product("BTC", "USD", price="50000", level_qty="0.5", base_max="3400"),
    _product("ETH", "USD", price="3000", level_qty="5", base_max="42000"),
    _product("LTC", "USD", price="100", level_qty="50", base_max="100000"),
)


def currency_name(code: str) -> str:
    """A human name for an asset code."""
    if code in FIAT:
        return FIAT[code]
    return CRYPTO[code][0] if code in CRYPTO else code


def is_fiat(code: str) -> bool:
    """Whether Coinbase treats ``code`` as a fiat currency."""
    return code in FIAT


def product_json(
    product: Product, *, price: Decimal, change_pct: Decimal, volume: Decimal, quote_volume: Decimal
) -> dict[str, object]:
    """One entry of ``GET /api/v3/brokerage/market/products`` (SDK ``Product`` fields)."""
    market = product.market
    return {
        "product_id": product.product_id,
        "price": fmt_plain(price),
        "price_percentage_change_24h": fmt_plain(change_pct),
        "volume_24h": fmt_plain(volume),
        "volume_percentage_change_24h": "0",
        "base_increment": fmt_plain(product.base_increment),
        "quote_increment": fmt_plain(product.quote_increment),
        "quote_min_size": fmt_plain(product.quote_min_size),
        "quote_max_size": fmt_plain(product.quote_max_size),
        "base_min_size": fmt_plain(product.base_min_size),
        "base_max_size": fmt_plain(product.base_max_size),
        "base_name": currency_name(market.base),
        "quote_name": currency_name(market.quote),
        "watched": False,
        "is_disabled": False,
        "new": False,
        "status": "online",
        "cancel_only": False,
        "limit_only": False,
        "post_only": False,
        "trading_disabled": False,
        "auction_mode": False,
        "product_type": "SPOT",
        "quote_currency_id": market.quote,
        "base_currency_id": market.base,
        "fcm_trading_session_details": None,
        "mid_market_price": "",
        "alias": "",
        "alias_to": [],
        "base_display_symbol": market.base,
        "quote_display_symbol": market.quote,
        "view_only": False,
        "price_increment": fmt_plain(product.price_increment),
        "display_name": product.product_id,
        "product_venue": "CBE",
        "approximate_quote_24h_volume": fmt_plain(quote_volume),
    }
