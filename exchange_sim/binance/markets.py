"""The emulated Binance spot markets and their ``exchangeInfo`` description."""

from __future__ import annotations

from decimal import Decimal

from exchange_sim.core.decimals import fmt8
from exchange_sim.core.markets import Market
from exchange_sim.core.ratelimit import WindowSpec

D = Decimal

DEFAULT_MARKETS: tuple[Market, ...] = (
    Market(
        symbol="BTC/USDT",
        base="BTC",
        quote="USDT",
        tick_size=D("0.01"),
        step_size=D("0.00001"),
        min_qty=D("0.00001"),
        max_qty=D("9000"),
        market_max_qty=D("100"),
        min_notional=D("5"),
        initial_price=D("50000"),
        level_qty=D("0.5"),
    ),
    Market(
        symbol="ETH/USDT",
        base="ETH",
        quote="USDT",
        tick_size=D("0.01"),
        step_size=D("0.0001"),
        min_qty=D("0.0001"),
        max_qty=D("9000"),
        market_max_qty=D("1000"),
        min_notional=D("5"),
        initial_price=D("3000"),
        level_qty=D("5"),
    ),
    Market(
        symbol="BNB/USDT",
        base="BNB",
        quote="USDT",
        tick_size=D("0.1"),
        step_size=D("0.001"),
        min_qty=D("0.001"),
        max_qty=D("90000"),
        market_max_qty=D("5000"),
        min_notional=D("5"),
        initial_price=D("600"),
        level_qty=D("20"),
    ),
)

ORDER_TYPES = [
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]

_INTERVAL_NAMES = {"S": "SECOND", "M": "MINUTE", "H": "HOUR", "D": "DAY"}


def market_id(market: Market) -> str:
    """Binance's id of a market: base and quote concatenated (``BTCUSDT``)."""
    return market.base + market.quote


def rate_limit_json(kind: str, spec: WindowSpec) -> dict[str, object]:
    """One entry of ``exchangeInfo.rateLimits``."""
    return {
        "rateLimitType": kind,
        "interval": _INTERVAL_NAMES[spec.label[-1]],
        "intervalNum": int(spec.label[:-1]),
        "limit": spec.limit,
    }


def symbol_json(market: Market) -> dict[str, object]:
    """One entry of ``exchangeInfo.symbols``."""
    return {
        "symbol": market_id(market),
        "status": "TRADING",
        "baseAsset": market.base,
        "baseAssetPrecision": 8,
        "quoteAsset": market.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ORDER_TYPES,
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": True,  # POST /api/v3/order/cancelReplace
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt8(market.price_floor),
                "maxPrice": fmt8(market.max_price),
                "tickSize": fmt8(market.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt8(market.min_qty),
                "maxQty": fmt8(market.max_qty),
                "stepSize": fmt8(market.step_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fmt8(D(0)),
                "maxQty": fmt8(market.market_qty_cap),
                "stepSize": fmt8(D(0)),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt8(market.min_notional),
                "applyMinToMarket": True,
                "maxNotional": fmt8(market.max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }
