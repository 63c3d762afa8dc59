"""The emulated USDⓈ-M perpetuals and their ``/fapi/v1/exchangeInfo`` description."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from exchange_sim.binance.markets import market_id
from exchange_sim.core.decimals import fmt_plain
from exchange_sim.core.markets import Market

D = Decimal


@dataclass(frozen=True)
class Perpetual:
    """A linear perpetual: the trading rules of ``market`` plus its margin parameters.

    ``market.symbol`` is the unified ``BASE/QUOTE:SETTLE`` name ccxt shows; ``id`` the
    venue's (``BTCUSDT``).
    """

    market: Market
    maint_margin_rate: Decimal
    max_leverage: int = 125
    default_leverage: int = 20
    funding_rate: Decimal = Decimal("0.0001")

    @property
    def symbol(self) -> str:
        """The unified symbol (``BTC/USDT:USDT``)."""
        return self.market.symbol

    @property
    def id(self) -> str:
        """The venue's market id (``BTCUSDT``), as spot's."""
        return market_id(self.market)

    @property
    def settle(self) -> str:
        """The margin asset (USDT)."""
        return self.market.quote


DEFAULT_PERPETUALS: tuple[Perpetual, ...] = (
    Perpetual(
        Market(
            symbol="BTC/USDT:USDT",
            base="BTC",
            quote="USDT",
            tick_size=D("0.10"),
            step_size=D("0.001"),
            min_qty=D("0.001"),
            max_qty=D("1000"),
            market_max_qty=D("120"),
            min_notional=D("100"),
            max_notional=D("100000000"),
            max_price=D("4529764"),
            min_price=D("556.80"),
            initial_price=D("50000"),
            level_qty=D("2"),
        ),
        maint_margin_rate=D("0.004"),
    ),
    Perpetual(
        Market(
            symbol="ETH/USDT:USDT",
            base="ETH",
            quote="USDT",
            tick_size=D("0.01"),
            step_size=D("0.001"),
            min_qty=D("0.001"),
            max_qty=D("10000"),
            market_max_qty=D("2000"),
            min_notional=D("20"),
            max_notional=D("100000000"),
            max_price=D("306177"),
            min_price=D("39.86"),
            initial_price=D("3000"),
            level_qty=D("20"),
        ),
        maint_margin_rate=D("0.005"),
    ),
)

ORDER_TYPES = [
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
]


def _precision(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def symbol_json(perp: Perpetual) -> dict[str, object]:
    """One entry of ``exchangeInfo.symbols`` (the fields and filters of Binance's reply)."""
    m = perp.market
    return {
        "symbol": perp.id,
        "pair": perp.id,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": m.base,
        "quoteAsset": m.quote,
        "marginAsset": perp.settle,
        "pricePrecision": _precision(m.tick_size),
        "quantityPrecision": _precision(m.step_size),
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": ["PoW"],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt_plain(m.price_floor),
                "maxPrice": fmt_plain(m.max_price),
                "tickSize": fmt_plain(m.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt_plain(m.min_qty),
                "maxQty": fmt_plain(m.max_qty),
                "stepSize": fmt_plain(m.step_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fmt_plain(m.min_qty),
                "maxQty": fmt_plain(m.market_qty_cap),
                "stepSize": fmt_plain(m.step_size),
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": fmt_plain(m.min_notional)},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": ORDER_TYPES,
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        "permissionSets": ["GRID", "COPY"],
    }
