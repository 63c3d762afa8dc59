"""The emulated Kraken spot assets and pairs, and their ``Assets`` / ``AssetPairs`` descriptions.

Kraken names assets and pairs its own way (docs/exchange-protocols.md §4.3): ``XXBT`` (altname
``XBT``) is BTC, ``ZUSD`` is USD, and the pair ``XXBTZUSD`` has the altname ``XBTUSD`` and the v1
WebSocket name ``XBT/USD``; WebSocket v2 uses ``BTC/USD``. The core markets keep the unified names
(``BTC/USD``, assets ``BTC`` and ``USD``), which are also what the admin API takes.

Trading rules (unverified snapshot of the real pairs, chosen to be realistic): XBTUSD prices in
0.1 (``pair_decimals`` 1), ETHUSD and LTCUSD in 0.01; volumes in 1e-8 (``lot_decimals`` 8);
``ordermin`` 0.00005 BTC / 0.002 ETH / 0.05 LTC; ``costmin`` 0.5 USD; ``cost_decimals`` 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from exchange_sim.core.markets import Market

D = Decimal

#: Kraken's first fee tier, in percent, as ``AssetPairs`` reports it (``fees`` / ``fees_maker``).
TAKER_TIERS = (
    (0, "0.26"),
    (50000, "0.24"),
    (100000, "0.22"),
    (250000, "0.2"),
    (500000, "0.18"),
    (1000000, "0.16"),
    (2500000, "0.14"),
    (5000000, "0.12"),
    (10000000, "0.1"),
)
MAKER_TIERS = (
    (0, "0.16"),
    (50000, "0.14"),
    (100000, "0.12"),
    (250000, "0.1"),
    (500000, "0.08"),
    (1000000, "0.06"),
    (2500000, "0.04"),
    (5000000, "0.02"),
    (10000000, "0"),
)
TAKER_FEE = D(TAKER_TIERS[0][1]) / 100
MAKER_FEE = D(MAKER_TIERS[0][1]) / 100


@dataclass(frozen=True)
class KrakenAsset:
    """An asset: Kraken id (``XXBT``), altname (``XBT``), core name (``BTC``) and decimals."""

    asset_id: str
    altname: str
    code: str
    decimals: int
    display_decimals: int


@dataclass(frozen=True)
class KrakenPair:
    """A core market with Kraken's names and decimals for it."""

    market: Market
    pair_id: str  # XXBTZUSD
    altname: str  # XBTUSD (what descr.order and descr.pair show)
    wsname: str  # XBT/USD (v1 WebSocket name)
    base: KrakenAsset
    quote: KrakenAsset
    pair_decimals: int
    lot_decimals: int
    cost_decimals: int

    @property
    def symbol(self) -> str:
        """The unified symbol, which is also the WebSocket v2 symbol (``BTC/USD``)."""
        return self.market.symbol


XXBT = KrakenAsset("XXBT", "XBT", "BTC", 10, 5)
XETH = KrakenAsset("XETH", "ETH", "ETH", 10, 5)
XLTC = KrakenAsset("XLTC", "LTC", "LTC", 10, 5)
ZUSD = KrakenAsset("ZUSD", "USD", "USD", 4, 2)
ASSETS: tuple[KrakenAsset, ...] = (XXBT, XETH, XLTC, ZUSD)

_BIG = D("1000000000")


def _market(symbol: str, tick: str, ordermin: str, price: str, level_qty: str) -> Market:
    base, quote = symbol.split("/")
    # No maximum notional, price or market size worth enforcing: Kraken documents none for spot.
    return Market(
        symbol=symbol,
        base=base,
        quote=quote,
        tick_size=D(tick),
        step_size=D("0.00000001"),
        min_qty=D(ordermin),
        max_qty=_BIG,
        min_notional=D("0.5"),
        initial_price=D(price),
        level_qty=D(level_qty),
        max_notional=_BIG * _BIG,
        max_price=_BIG,
    )


DEFAULT_PAIRS: tuple[KrakenPair, ...] = (
    KrakenPair(
        _market("BTC/USD", "0.1", "0.00005", "50000", "0.5"),
        "XXBTZUSD",
        "XBTUSD",
        "XBT/USD",
        XXBT,
        ZUSD,
        pair_decimals=1,
        lot_decimals=8,
        cost_decimals=5,
    ),
    KrakenPair(
        _market("ETH/USD", "0.01", "0.002", "3000", "5"),
        "XETHZUSD",
        "ETHUSD",
        "ETH/USD",
        XETH,
        ZUSD,
        pair_decimals=2,
        lot_decimals=8,
        cost_decimals=5,
    ),
    KrakenPair(
        _market("LTC/USD", "0.01", "0.05", "100", "50"),
        "XLTCZUSD",
        "LTCUSD",
        "LTC/USD",
        XLTC,
        ZUSD,
        pair_decimals=2,
        lot_decimals=8,
        cost_decimals=5,
    ),
)
DEFAULT_MARKETS: tuple[Market, ...] = tuple(p.market for p in DEFAULT_PAIRS)


def asset_json(asset: KrakenAsset) -> dict[str, object]:
    """One entry of ``/0/public/Assets``."""
    return {
        "aclass": "currency",
        "altname": asset.altname,
        "decimals": asset.decimals,
        "display_decimals": asset.display_decimals,
        "status": "enabled",
    }


def pair_json(pair: KrakenPair) -> dict[str, object]:
    """One entry of ``/0/public/AssetPairs`` (``info=info``, the default)."""
    market = pair.market
    return {
        "altname": pair.altname,
        "wsname": pair.wsname,
        "aclass_base": "currency",
        "base": pair.base.asset_id,
        "aclass_quote": "currency",
        "quote": pair.quote.asset_id,
        "lot": "unit",
        "cost_decimals": pair.cost_decimals,
        "pair_decimals": pair.pair_decimals,
        "lot_decimals": pair.lot_decimals,
        "lot_multiplier": 1,
        "leverage_buy": [],
        "leverage_sell": [],
        "fees": [[volume, D(pct)] for volume, pct in TAKER_TIERS],  # JSON numbers, written exactly
        "fees_maker": [[volume, D(pct)] for volume, pct in MAKER_TIERS],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": format(market.min_qty, "f"),
        "costmin": format(market.min_notional, "f"),
        "tick_size": format(market.tick_size, "f"),
        "status": "online",
    }
