"""The risk gate (pure): every copied order passes it before it is written to be sent.

``check(order, snapshot, market, limits, state)`` answers *allow*, *reduce* (to the largest
quantity that fits every limit) or *deny* with a snake_case reason. Nothing else decides the
quantity of an order after sizing, so no order can slip past a limit in force:

1. the configuration's state: paused, halted and stopped send nothing; *reducing* sends only
   orders that reduce exposure (on spot, sells);
2. ``max_orders_per_minute`` per follower account;
3. exits: never more than the free base balance, and no unsellable dust left behind;
4. entries: ``correlation_limit`` for a new position, then ``max_trade_size``, then
   ``max_position_size`` (the position after the order, valued at the order's price, as a
   fraction of equity);
5. the venue: largest quantity, quantity step (always rounded down), minimum quantity and
   notional, and then ``min_trade_size`` for entries.

On a derivatives market an exit is a reduce-only order: never more than the position it
reduces (on the order's other side), and the venue's minimum notional does not apply to it
(Binance takes a reduce-only order below it). An entry is held to ``max_leverage`` as well
(the leverage it sets: the leader's, at most ``max_leverage``): the position on its side after
it, valued at its price, at most :data:`LEVERAGE_HEADROOM` of equity times that leverage;
cut to fit (reason ``max_leverage`` when then too small) or denied as ``max_leverage``.

A quantity reduced by a limit and then too small for the venue is denied with that limit's
reason, so the user sees which limit stopped the copy.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, localcontext

from engine_svc.domain import correlation
from engine_svc.domain.model import (
    DEFAULT_MAX_ORDERS_PER_MINUTE,
    CopySettings,
    CopyStatus,
    FollowerSnapshot,
    MarketInfo,
    RiskLimits,
    Side,
    SkipReason,
)
from engine_svc.domain.sizing import below_venue_minimum, notional_floor, round_down_to_step

LEVERAGE_HEADROOM = Decimal("0.98")
"""The share of equity times ``max_leverage`` a derivatives entry may fill: the rest is left
for the venue's fee and a price move between the decision and the fill (an entry cut to the
exact bound would be refused for insufficient margin)."""


class Verdict(enum.StrEnum):
    """What the gate says about an order."""

    ALLOW = "allow"
    REDUCE = "reduce"
    DENY = "deny"


@dataclass(frozen=True)
class ProposedOrder:
    """An order as sized, before limits and venue rounding.

    ``price`` is the price the order is valued at: its limit price when it has one (the worst
    price it can fill at), otherwise the reference price (the leader's, or the last trade).
    """

    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    derivative: bool = False
    """On a derivatives market (positions, not balances)."""
    reduce_only: bool = False
    """A derivatives exit, sent reduce-only."""

    @property
    def reduces_exposure(self) -> bool:
        """Return whether the order can only reduce the follower's exposure (a spot sell, a
        reduce-only derivatives order)."""
        return self.reduce_only if self.derivative else self.side is Side.SELL


@dataclass(frozen=True)
class GateLimits:
    """The limits the gate enforces, from the risk limits and the copy settings."""

    max_position_size: Decimal | None = None
    correlation_limit: Decimal | None = None
    max_orders_per_minute: int = DEFAULT_MAX_ORDERS_PER_MINUTE
    min_trade_size: Decimal | None = None
    max_trade_size: Decimal | None = None
    max_leverage: Decimal | None = None

    @classmethod
    def of(cls, limits: RiskLimits, copy: CopySettings) -> GateLimits:
        """Return the gate limits of a configuration (0 orders per minute means 60)."""
        return cls(
            max_position_size=limits.max_position_size,
            correlation_limit=limits.correlation_limit,
            max_orders_per_minute=limits.max_orders_per_minute or DEFAULT_MAX_ORDERS_PER_MINUTE,
            min_trade_size=copy.min_trade_size,
            max_trade_size=copy.max_trade_size,
            max_leverage=limits.max_leverage,
        )


@dataclass(frozen=True)
class GateState:
    """What the gate needs to know beyond the order: state, recent orders, correlations.

    ``correlations`` maps each held symbol to its return correlation with the order's symbol;
    ``None`` means they could not be measured (only consulted for a new position under a
    correlation limit).
    """

    status: CopyStatus
    orders_last_minute: int = 0
    correlations: Mapping[str, Decimal] | None = None


@dataclass(frozen=True)
class GateResult:
    """The gate's answer: the approved quantity, or why nothing may be sent."""

    verdict: Verdict
    quantity: Decimal
    reason: str = ""

    @property
    def allowed(self) -> bool:
        """Return whether an order of :attr:`quantity` may be sent."""
        return self.verdict is not Verdict.DENY


def _deny(reason: SkipReason, quantity: Decimal = Decimal(0)) -> GateResult:
    return GateResult(Verdict.DENY, quantity, reason.value)


def status_block(side: Side, status: CopyStatus) -> SkipReason | None:
    """Return why a configuration in ``status`` may not send an order on ``side``, or ``None``."""
    if status is CopyStatus.PAUSED:
        return SkipReason.PAUSED
    if status is CopyStatus.HALTED:
        return SkipReason.HALTED
    if status is CopyStatus.STOPPED:
        return SkipReason.STOPPED
    if status is CopyStatus.REDUCING and side is not Side.SELL:
        return SkipReason.REDUCING
    return None


def opens_position(snapshot: FollowerSnapshot, market: MarketInfo, price: Decimal) -> bool:
    """Return whether buying opens a new position: what is held now is dust.

    A holding worth less than the venue's minimum notional (or nothing, without a minimum)
    is dust: it could not even be sold on its own.
    """
    if snapshot.base_total <= 0:
        return True
    if market.min_notional is None:
        return False
    return snapshot.base_total * price < market.min_notional


def _floor_division(numerator: Decimal, denominator: Decimal) -> Decimal:
    with localcontext() as context:
        context.rounding = ROUND_FLOOR
        return numerator / denominator


def _exit(order: ProposedOrder, snapshot: FollowerSnapshot, market: MarketInfo) -> GateResult:
    free = snapshot.base_free
    if free <= 0:
        return _deny(SkipReason.NO_POSITION_TO_REDUCE)
    cap = free
    if market.max_quantity is not None and market.max_quantity > 0:
        cap = min(cap, market.max_quantity)
    quantity = round_down_to_step(min(order.quantity, cap), market.quantity_step)
    left = round_down_to_step(free - quantity, market.quantity_step)
    if left > 0 and below_venue_minimum(
        left, order.price, market.min_notional, market.min_quantity
    ):
        # What would be left could never be sold on its own: sell it now.
        quantity = round_down_to_step(cap, market.quantity_step)
    if below_venue_minimum(quantity, order.price, market.min_notional, market.min_quantity):
        return _deny(SkipReason.BELOW_MIN_NOTIONAL, quantity)
    cut = min(order.quantity, cap) < order.quantity
    return GateResult(Verdict.REDUCE if cut else Verdict.ALLOW, quantity)


def _reduce_only_exit(
    order: ProposedOrder, snapshot: FollowerSnapshot, market: MarketInfo
) -> GateResult:
    held = snapshot.position if snapshot.position is not None else Decimal(0)
    held = held if order.side is Side.SELL else -held
    if held <= 0:
        return _deny(SkipReason.NO_POSITION_TO_REDUCE)
    cap = held
    if market.max_quantity is not None and market.max_quantity > 0:
        cap = min(cap, market.max_quantity)
    quantity = round_down_to_step(min(order.quantity, cap), market.quantity_step)
    left = round_down_to_step(held - quantity, market.quantity_step)
    minimum = market.min_quantity
    if left > 0 and minimum is not None and left < minimum:
        # What would be left could never be closed on its own: close it now.
        quantity = round_down_to_step(cap, market.quantity_step)
    if quantity <= 0 or (minimum is not None and quantity < minimum):
        return _deny(SkipReason.BELOW_MIN_NOTIONAL, quantity)
    cut = min(order.quantity, cap) < order.quantity
    return GateResult(Verdict.REDUCE if cut else Verdict.ALLOW, quantity)


def _held_along(order: ProposedOrder, snapshot: FollowerSnapshot) -> Decimal:
    # What the follower holds on the order's own side: the base total on spot, the long (a
    # buy) or the short (a sell) on a derivatives market.
    if not order.derivative:
        return snapshot.base_total
    position = snapshot.position if snapshot.position is not None else Decimal(0)
    return max(position if order.side is Side.BUY else -position, Decimal(0))


def _entry(
    order: ProposedOrder,
    snapshot: FollowerSnapshot,
    market: MarketInfo,
    limits: GateLimits,
    state: GateState,
) -> GateResult:
    price = order.price
    quantity = order.quantity
    limited_by: SkipReason | None = None
    cut = False
    if limits.correlation_limit is not None and opens_position(snapshot, market, price):
        if state.correlations is None:
            return _deny(SkipReason.CORRELATION_UNKNOWN)
        if correlation.breaches(state.correlations, limits.correlation_limit):
            return _deny(SkipReason.CORRELATION_LIMIT)
    if limits.max_trade_size is not None:
        largest = _floor_division(limits.max_trade_size, price)
        if quantity > largest:
            quantity, cut = largest, True
    if limits.max_position_size is not None:
        if snapshot.equity is None or snapshot.equity <= 0:
            return _deny(SkipReason.PORTFOLIO_UNAVAILABLE)
        with localcontext() as context:
            context.rounding = ROUND_FLOOR
            room = limits.max_position_size * snapshot.equity / price - _held_along(order, snapshot)
        if room <= 0:
            return _deny(SkipReason.MAX_POSITION_SIZE)
        if quantity > room:
            quantity, limited_by, cut = room, SkipReason.MAX_POSITION_SIZE, True
    if order.derivative:
        if snapshot.equity is None or snapshot.equity <= 0:
            return _deny(SkipReason.PORTFOLIO_UNAVAILABLE)
        leverage = limits.max_leverage if limits.max_leverage is not None else Decimal(1)
        with localcontext() as context:
            context.rounding = ROUND_FLOOR
            room = LEVERAGE_HEADROOM * leverage * snapshot.equity / price - _held_along(
                order, snapshot
            )
        if room <= 0:
            return _deny(SkipReason.MAX_LEVERAGE)
        if quantity > room:
            quantity, limited_by, cut = room, SkipReason.MAX_LEVERAGE, True
    if market.max_quantity is not None and 0 < market.max_quantity < quantity:
        quantity, cut = market.max_quantity, True
    quantity = round_down_to_step(quantity, market.quantity_step)
    if below_venue_minimum(quantity, price, market.min_notional, market.min_quantity):
        return _deny(limited_by or SkipReason.BELOW_MIN_NOTIONAL, quantity)
    minimum = limits.min_trade_size
    if minimum is not None and notional_floor(quantity, price) < minimum:
        return _deny(limited_by or SkipReason.BELOW_MIN_TRADE_SIZE, quantity)
    if limited_by is not None:
        return GateResult(Verdict.REDUCE, quantity, limited_by.value)
    return GateResult(Verdict.REDUCE if cut else Verdict.ALLOW, quantity)


def check(
    order: ProposedOrder,
    snapshot: FollowerSnapshot,
    market: MarketInfo,
    limits: GateLimits,
    state: GateState,
) -> GateResult:
    """Return whether ``order`` may be sent, and with which quantity.

    Parameters
    ----------
    order
        The order as sized (quantity before rounding), valued at its worst price.
    snapshot
        The follower account now: equity and the base asset's free and total balance.
    market
        The follower venue's market: step, minimums, largest quantity.
    limits
        The configuration's limits.
    state
        Its status, the orders written for the account in the last minute, and the
        correlations of the order's symbol with held ones.

    Returns
    -------
    GateResult
        ``ALLOW`` with the quantity rounded down to the step; ``REDUCE`` when a limit cut it
        to fit (``reason`` names ``max_position_size`` when that limit did; the trade size,
        the free balance and the venue's largest quantity are clamps); or ``DENY`` with the
        skip reason (and the quantity that was too small, when that is why).
    """
    blocked = status_block(Side.SELL if order.reduces_exposure else Side.BUY, state.status)
    if blocked is not None:
        return _deny(blocked)
    if state.orders_last_minute >= limits.max_orders_per_minute:
        return _deny(SkipReason.ORDER_RATE_LIMIT)
    if order.price <= 0:
        return _deny(SkipReason.PRICE_UNKNOWN)
    if order.quantity <= 0:
        return _deny(SkipReason.ZERO_QUANTITY)
    if order.reduces_exposure:
        if order.derivative:
            return _reduce_only_exit(order, snapshot, market)
        return _exit(order, snapshot, market)
    return _entry(order, snapshot, market, limits, state)
