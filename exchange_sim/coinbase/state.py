"""The state of one emulated Coinbase: the venue core plus Coinbase's ids and product rules.

Coinbase identifies orders, fills, accounts and users by UUID. The core numbers orders and
trades; ``WireIds`` turns those numbers into UUID-shaped ids and back without any table (the
last 12 hex digits carry the number, the rest is random per venue instance, so ids from another
emulator run are simply unknown here).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from exchange_sim.coinbase.markets import Product
from exchange_sim.core.markets import Market
from exchange_sim.core.state import VenueState

_MAX_SERIAL = 16**12


def _random_prefix() -> str:
    raw = uuid.UUID(bytes=secrets.token_bytes(16), version=4).hex
    return raw[:20]


@dataclass(frozen=True)
class WireIds:
    """UUID-shaped ids for core order and trade numbers, and the way back."""

    order_prefix: str = field(default_factory=_random_prefix)
    trade_prefix: str = field(default_factory=_random_prefix)
    namespace: uuid.UUID = field(default_factory=uuid.uuid4)

    @staticmethod
    def _format(prefix: str, serial: int) -> str:
        if not 0 < serial < _MAX_SERIAL:
            raise ValueError(f"serial {serial} out of range")
        raw = prefix + f"{serial:012x}"
        return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"

    @staticmethod
    def _parse(prefix: str, wire_id: str) -> int | None:
        raw = wire_id.replace("-", "").lower()
        if len(raw) != 32 or not raw.startswith(prefix):
            return None
        try:
            serial = int(raw[20:], 16)
        except ValueError:
            return None
        return serial if serial > 0 else None

    def order(self, order_id: int) -> str:
        """The wire id of a core order."""
        return self._format(self.order_prefix, order_id)

    def order_number(self, wire_id: str) -> int | None:
        """The core order number behind a wire id (None when it is not one of ours)."""
        return self._parse(self.order_prefix, wire_id)

    def trade(self, trade_id: int) -> str:
        """The wire id of a core trade."""
        return self._format(self.trade_prefix, trade_id)

    def named(self, *parts: str) -> str:
        """A stable UUID for a named thing (an account's user id, a wallet, a portfolio)."""
        return str(uuid.uuid5(self.namespace, "/".join(parts)))


@dataclass
class OrderBookkeeping:
    """What the Coinbase adapter remembers about the orders it placed.

    ``by_client`` maps (api key, client_order_id) to the core order number: the duplicate rule
    (docs/exchange-protocols.md §3.8) returns that order instead of placing a new one.
    ``quote_sizes`` keeps the ``quote_size`` a market buy was submitted with (the core holds the
    fee-exclusive budget). ``symbols`` finds an order's market from its number alone.
    """

    by_client: dict[tuple[str, str], int] = field(default_factory=dict)
    quote_sizes: dict[int, Decimal] = field(default_factory=dict)
    symbols: dict[int, str] = field(default_factory=dict)


@dataclass
class CoinbaseState(VenueState):
    """A ``VenueState`` with Coinbase's products, wire ids and WebSocket timing.

    ``ws_heartbeat_s`` is the period of the ``heartbeats`` channel (Coinbase: one a second);
    ``ws_idle_close_s`` closes a socket that was sent nothing for that long (Coinbase closes
    idle channels within 60-90 s unless ``heartbeats`` is subscribed); None keeps it open.
    """

    products: dict[str, Product] = field(default_factory=dict)  # by product id (BTC-USD)
    ids: WireIds = field(default_factory=WireIds)
    bookkeeping: OrderBookkeeping = field(default_factory=OrderBookkeeping)
    ws_heartbeat_s: float = 1.0
    ws_idle_close_s: float | None = 90.0

    def market_by_name(self, name: str) -> Market | None:
        """A market by unified symbol (``BTC/USD``), product id (``BTC-USD``) or ``BTCUSD``."""
        product = self.products.get(name.upper())
        return product.market if product is not None else super().market_by_name(name)

    def product_of(self, symbol: str) -> Product:
        """The product of a core market symbol (``BTC/USD``)."""
        return self.products[symbol.replace("/", "-")]
