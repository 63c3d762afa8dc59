"""Markets (trading rules and synthetic liquidity) and the order filters they impose."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from exchange_sim.core.decimals import ZERO, is_multiple, mul
from exchange_sim.core.errors import FilterFailure, FilterKind


@dataclass(frozen=True)
class Market:
    """A spot market and its rules.

    ``symbol`` is the unified ``BASE/QUOTE`` name; each venue derives its own market id.
    The synthetic book has ``book_levels`` levels per side, level k at
    ``mark * (1 ± k * level_spacing)``, each with ``level_qty`` of base asset.
    """

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    initial_price: Decimal
    level_qty: Decimal
    max_notional: Decimal = Decimal("9000000")
    min_price: Decimal | None = None  # defaults to tick_size
    max_price: Decimal = Decimal("1000000")
    market_max_qty: Decimal | None = None  # defaults to max_qty
    book_levels: int = 10
    level_spacing: Decimal = Decimal("0.0005")

    @property
    def price_floor(self) -> Decimal:
        """The lowest valid price."""
        return self.tick_size if self.min_price is None else self.min_price

    @property
    def market_qty_cap(self) -> Decimal:
        """The largest quantity of one market order."""
        return self.max_qty if self.market_max_qty is None else self.market_max_qty

    def check_price(self, price: Decimal) -> None:
        """Apply the price rules (also used for stop prices)."""
        floor = self.price_floor
        if price < floor or price > self.max_price or not is_multiple(price, self.tick_size, floor):
            raise FilterFailure(FilterKind.PRICE, f"{price}")

    def check_quantity(self, qty: Decimal) -> None:
        """Apply the lot-size rules."""
        if (
            qty < self.min_qty
            or qty > self.max_qty
            or not is_multiple(qty, self.step_size, self.min_qty)
        ):
            raise FilterFailure(FilterKind.QUANTITY, f"{qty}")

    def check_market_quantity(self, qty: Decimal) -> None:
        """Apply the market-order quantity cap (the market lot size has no step and no minimum)."""
        if qty <= ZERO or qty > self.market_qty_cap:
            raise FilterFailure(FilterKind.MARKET_QUANTITY, f"{qty}")

    def check_notional(self, price: Decimal, qty: Decimal, *, apply_max: bool) -> None:
        """Apply the minimum notional (and the maximum when ``apply_max``)."""
        self.check_notional_value(mul(price, qty), apply_max=apply_max)

    def check_notional_value(self, notional: Decimal, *, apply_max: bool) -> None:
        """Apply the notional rule to an already computed quote amount."""
        if notional < self.min_notional or (apply_max and notional > self.max_notional):
            raise FilterFailure(FilterKind.NOTIONAL, f"{notional}")
