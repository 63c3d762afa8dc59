"""The copy decision (pure): one signal, one configuration, one follower account → order or skip.

Order of checks: status, age, symbol filters, trade kind (``copy_all_trades``), the follower's
market, price, sizing (exits from the follower's own position), the slippage band, then the
risk gate (:mod:`engine_svc.domain.gate`: state, order rate, correlation, position and trade
size, venue step and minimums). The first failing check names the skip reason; a skip is never
an error and never retried.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from engine_svc.domain import futures, gate, sizing
from engine_svc.domain.model import (
    CopySettings,
    CopyStatus,
    FollowerSnapshot,
    MarketInfo,
    OrderType,
    RiskLimits,
    Side,
    Signal,
    SignalKind,
    SkipReason,
    TimeInForce,
    is_derivative,
)

QUOTE_EQUIVALENTS = ("USDT", "USD", "USDC")
_PARAMETER_MODES = ("multiplier", "fixed_notional", "fixed_quantity")


@dataclass(frozen=True)
class Decision:
    """What to do for one follower account: an order of ``quantity`` on ``symbol``, or a skip.

    An order is a market order, or, under ``max_slippage``, a limit IOC order at ``price``; a
    strategy's published limit or stop order is copied as that order (:func:`copied_order`).
    """

    symbol: str
    quantity: Decimal
    reason: str = ""
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    stop_price: Decimal | None = None
    reduce_only: bool = False
    """A derivatives exit: sent reduce-only."""
    leverage: int | None = None
    """A derivatives entry: the leverage to set at the follower's market before sending."""

    @property
    def skipped(self) -> bool:
        """Return whether no order is to be sent."""
        return bool(self.reason)

    @classmethod
    def skip(
        cls, symbol: str, reason: SkipReason | str, quantity: Decimal = Decimal(0)
    ) -> Decision:
        """Return a skip on ``symbol`` for ``reason``."""
        return cls(symbol=symbol, quantity=quantity, reason=str(reason))


def _equivalents(symbol: str) -> list[str]:
    base, _, quote = symbol.partition("/")
    quote, _, settle = quote.partition(":")
    if quote not in QUOTE_EQUIVALENTS or settle:
        return []
    return [f"{base}/{other}" for other in QUOTE_EQUIVALENTS if other != quote]


def follower_symbols(leader_symbol: str, copy: CopySettings) -> list[str]:
    """Return the follower symbols to try for ``leader_symbol``, best first.

    The leader's own market first; a venue without it maps by ``symbol_map``; then, when
    ``allow_quote_equivalence`` is set, the same base against USDT, USD or USDC (of the mapped
    symbol first, then of the leader's).
    """
    mapped = copy.symbol_map.get(leader_symbol, leader_symbol)
    candidates = [leader_symbol, mapped]
    if copy.allow_quote_equivalence:
        candidates += _equivalents(mapped) + _equivalents(leader_symbol)
    return list(dict.fromkeys(candidates))


def symbol_filter(
    leader_symbol: str,
    copy: CopySettings,
    follower_symbol: str | None = None,
) -> SkipReason | None:
    """Return why a trade is filtered out, or ``None``.

    ``include_symbols`` and ``exclude_symbols`` name the leader's symbol or its mapped one.
    Excluding the symbol the follower's venue resolved to (``BTC/USD`` for a ``BTC/USDT``
    trade) excludes the trade as well: an excluded market is never traded.
    """
    names = {leader_symbol, copy.symbol_map.get(leader_symbol, leader_symbol)}
    excluded = set(copy.exclude_symbols)
    if names & excluded or (follower_symbol is not None and follower_symbol in excluded):
        return SkipReason.SYMBOL_EXCLUDED
    if copy.include_symbols and not names & set(copy.include_symbols):
        return SkipReason.SYMBOL_NOT_INCLUDED
    return None


def is_stale(signal: Signal, now: datetime, max_age_seconds: int) -> bool:
    """Return whether the leader's trade is older than ``max_age_seconds`` at ``now``."""
    return (now - signal.event_time).total_seconds() > max_age_seconds


def pre_check(
    signal: Signal,
    status: CopyStatus,
    copy: CopySettings,
    now: datetime,
) -> SkipReason | None:
    """Return the skip reason decided without any venue data, or ``None`` to go on.

    This is what tells the engine whether to read the follower's account and market at all.
    A trade that gives up a position (spot: a sell; derivatives: a reduce, close, reverse or
    liquidation) passes a reducing configuration; a leader's liquidation is copied even when
    ``copy_all_trades`` is off (its position is gone: the copy closes the follower's).
    """
    reduces = futures.leader_reduces(signal)
    blocked = gate.status_block(Side.SELL if reduces else Side.BUY, status)
    if blocked is not None and blocked is not SkipReason.REDUCING:
        return blocked
    if is_stale(signal, now, copy.max_signal_age_seconds):
        return SkipReason.STALE
    filtered = symbol_filter(signal.symbol, copy)
    if filtered is not None:
        return filtered
    if reduces and not copy.copy_all_trades and not signal.liquidation:
        return SkipReason.REDUCING_TRADE_NOT_COPIED
    return blocked


def is_exit(signal: Signal) -> bool:
    """Return whether the leader reduced a position it held (its position before is known)."""
    return (
        signal.side is Side.SELL
        and signal.leader_position is not None
        and signal.leader_position > 0
    )


def _raw_quantity(
    signal: Signal,
    copy: CopySettings,
    follower: FollowerSnapshot,
    price: Decimal,
) -> Decimal | SkipReason:
    if is_exit(signal):
        assert signal.leader_position is not None
        return sizing.proportional_exit(
            signal.quantity, signal.leader_position, follower.base_total
        )
    return _entry_quantity(signal, copy, follower, price)


def _entry_quantity(
    signal: Signal,
    copy: CopySettings,
    follower: FollowerSnapshot,
    price: Decimal,
) -> Decimal | SkipReason:
    # The sizing modes, on notional: equity_ratio (on a derivatives follower, its futures
    # wallet's equity), multiplier, fixed_notional, fixed_quantity, portfolio_fraction.
    mode = copy.sizing_mode
    if mode == "equity_ratio":
        if signal.leader_equity is None or signal.leader_equity <= 0:
            return SkipReason.LEADER_EQUITY_UNKNOWN
        if follower.equity is None:
            return SkipReason.PORTFOLIO_UNAVAILABLE
        return sizing.equity_ratio(signal.quantity, follower.equity, signal.leader_equity)
    if mode == "portfolio_fraction":
        if signal.portfolio_fraction is None or signal.portfolio_fraction <= 0:
            return SkipReason.PORTFOLIO_FRACTION_UNKNOWN
        if follower.equity is None:
            return SkipReason.PORTFOLIO_UNAVAILABLE
        return sizing.portfolio_fraction(follower.equity, signal.portfolio_fraction, price)
    parameter = getattr(copy, mode, None) if mode in _PARAMETER_MODES else None
    if parameter is None:
        raise ValueError(f"sizing mode {mode!r} is unknown or lacks its parameter")
    if mode == "multiplier":
        return sizing.multiplier(signal.quantity, parameter)
    if mode == "fixed_notional":
        return sizing.fixed_notional(parameter, price)
    return sizing.fixed_quantity(parameter)


def decide(
    signal: Signal,
    status: CopyStatus,
    limits: RiskLimits,
    copy: CopySettings,
    follower: FollowerSnapshot | None,
    market: MarketInfo | None,
    now: datetime,
    *,
    market_problem: SkipReason = SkipReason.MARKET_UNAVAILABLE,
    orders_last_minute: int = 0,
    correlations: Mapping[str, Decimal] | None = None,
) -> Decision:
    """Decide the copy of ``signal`` for one follower account.

    Parameters
    ----------
    signal
        The leader's trade.
    status
        The configuration's status when the signal is recorded.
    limits, copy
        The configuration's risk limits and copy settings (normalized and valid).
    follower
        The follower account's equity and base balances, ``None`` when they could not be read.
    market
        The follower venue's market for the trade (after symbol mapping), ``None`` when there
        is none; ``market_problem`` then says why (``symbol_not_on_venue`` when the venue
        has no such market, ``market_unavailable`` when it could not be read).
    now
        When the signal arrived.
    orders_last_minute
        The orders already written for this follower account in the last 60 seconds.
    correlations
        The return correlation of the market with each symbol the follower holds; ``None``
        when unknown (read only for a new position under a correlation limit).

    Returns
    -------
    Decision
        The follower symbol, the quantity (rounded down to the venue step), the order type
        and limit price, or a skip reason.
    """
    mapped = copy.symbol_map.get(signal.symbol, signal.symbol)
    early = pre_check(signal, status, copy, now)
    if early is not None:
        return Decision.skip(mapped, early)
    if market is None:
        return Decision.skip(mapped, market_problem)
    symbol = market.symbol
    filtered = symbol_filter(signal.symbol, copy, symbol)
    if filtered is not None:
        return Decision.skip(symbol, filtered)
    if futures.market_type_mismatch(signal.symbol, symbol, copy.symbol_map.get(signal.symbol)):
        return Decision.skip(symbol, SkipReason.MARKET_TYPE_MISMATCH)
    reference = signal.price if signal.price is not None and signal.price > 0 else market.last_price
    if is_order_change(signal) and signal.price is None and signal.stop_price is not None:
        reference = signal.stop_price  # a stop-market order: it trades around its stop
    if reference is None or reference <= 0:
        return Decision.skip(symbol, SkipReason.PRICE_UNKNOWN)
    if follower is None:
        return Decision.skip(symbol, SkipReason.PORTFOLIO_UNAVAILABLE)
    if market.derivative:
        state = gate.GateState(status, orders_last_minute, correlations)
        return _decide_position(signal, limits, copy, follower, market, reference, state)
    if is_derivative(signal.symbol) and futures.leader_reduces(signal) != (
        signal.side is Side.SELL
    ):
        # A leader's short (opened, or closed by a buy) has no copy on a spot market.
        return Decision.skip(symbol, SkipReason.NO_POSITION_TO_REDUCE)
    if signal.side is Side.SELL and follower.base_free <= 0:
        return Decision.skip(symbol, SkipReason.NO_POSITION_TO_REDUCE)

    raw = _raw_quantity(signal, copy, follower, reference)
    if isinstance(raw, SkipReason):
        return Decision.skip(symbol, raw)
    if raw <= 0:
        return Decision.skip(symbol, SkipReason.ZERO_QUANTITY)

    kept = mirrored_order(signal, market) or copied_order(signal, market)
    if kept is None:
        kept = at_market(reference, signal.side, limits.max_slippage, market.price_tick)
        if kept is None:
            return Decision.skip(symbol, SkipReason.PRICE_UNKNOWN)
    order_type, limit_price, time_in_force = kept

    verdict = gate.check(
        gate.ProposedOrder(symbol, signal.side, raw, limit_price or reference),
        follower,
        market,
        gate.GateLimits.of(limits, copy),
        gate.GateState(status, orders_last_minute, correlations),
    )
    if not verdict.allowed:
        return Decision.skip(symbol, verdict.reason, verdict.quantity)
    return Decision(
        symbol=symbol,
        quantity=verdict.quantity,
        order_type=order_type,
        price=limit_price,
        time_in_force=time_in_force,
        stop_price=_stop_price(signal, market) if order_type.has_stop_price else None,
    )


def _decide_position(
    signal: Signal,
    limits: RiskLimits,
    copy: CopySettings,
    follower: FollowerSnapshot,
    market: MarketInfo,
    reference: Decimal,
    state: gate.GateState,
) -> Decision:
    """Decide the copy of a trade on a derivatives follower market (:mod:`futures`).

    An exit is reduce-only, the leader's share of the follower's own position on the side
    the leader reduced (all of it for a close, a reverse or a liquidation), never the other
    side; a liquidation is sent at market. An entry is sized on notional (or, under
    ``futures_sizing`` margin, on the leader's margin at the follower's leverage: skipped as
    ``leader_leverage_unknown`` without the leader's) and carries the leverage to set first
    (the leader's, at most ``max_leverage``); the gate cuts it to equity times that leverage
    or skips it as ``max_leverage``.
    """
    symbol = market.symbol
    exit_ = futures.leader_reduces(signal)
    margin = copy.futures_sizing == "margin"
    leader_leverage = futures.margin_leverage(signal) if margin else signal.leader_leverage
    if exit_:
        held = futures.held_against(follower.position, signal.side)
        if held <= 0:
            return Decision.skip(symbol, SkipReason.NO_POSITION_TO_REDUCE)
        quantity = futures.exit_quantity(signal, follower.position)
        if quantity is None:  # the leader's share is unknown: size it, at most what is held
            sized = _entry_quantity(signal, copy, follower, reference)
            if isinstance(sized, SkipReason):
                return Decision.skip(symbol, sized)
            if margin and leader_leverage is not None:  # as its entries were (never above held)
                sized = futures.margin_quantity(
                    sized,
                    leader_leverage,
                    futures.target_leverage(limits.max_leverage, leader_leverage),
                )
            quantity = min(sized, held)
    else:
        sized = _entry_quantity(signal, copy, follower, reference)
        if isinstance(sized, SkipReason):
            return Decision.skip(symbol, sized)
        quantity = sized
        if margin:
            if leader_leverage is None:  # its margin is unknown: never guessed
                return Decision.skip(symbol, SkipReason.LEADER_LEVERAGE_UNKNOWN)
            quantity = futures.margin_quantity(
                sized,
                leader_leverage,
                futures.target_leverage(limits.max_leverage, leader_leverage),
            )
    if quantity <= 0:
        return Decision.skip(symbol, SkipReason.ZERO_QUANTITY)

    kept = mirrored_order(signal, market) or copied_order(signal, market)
    if signal.liquidation:  # the leader's position is gone: get out at market
        kept = OrderType.MARKET, None, None
    elif kept is None:
        kept = at_market(reference, signal.side, limits.max_slippage, market.price_tick)
        if kept is None:
            return Decision.skip(symbol, SkipReason.PRICE_UNKNOWN)
    order_type, limit_price, time_in_force = kept

    leverage = None if exit_ else futures.target_leverage(limits.max_leverage, leader_leverage)
    gate_limits = gate.GateLimits.of(limits, copy)
    if leverage is not None:  # the entry is margined at the leverage it sets, not above
        gate_limits = dataclasses.replace(gate_limits, max_leverage=Decimal(leverage))
    verdict = gate.check(
        gate.ProposedOrder(
            symbol,
            signal.side,
            quantity,
            limit_price or reference,
            derivative=True,
            reduce_only=exit_,
        ),
        follower,
        market,
        gate_limits,
        state,
    )
    if not verdict.allowed:
        return Decision.skip(symbol, verdict.reason, verdict.quantity)
    return Decision(
        symbol=symbol,
        quantity=verdict.quantity,
        order_type=order_type,
        price=limit_price,
        time_in_force=time_in_force,
        stop_price=_stop_price(signal, market) if order_type.has_stop_price else None,
        reduce_only=exit_,
        leverage=leverage,
    )


class SignalAction(enum.StrEnum):
    """What a configuration does with a signal, by its kind and ``copy_settings.copy_mode``."""

    COPY = "copy"
    """Decide a copy (a fill in ``fills`` mode; a leader order opened in ``orders`` mode)."""
    SKIP_MIRRORED = "skip_mirrored"
    """Record a skip ``order_mirrored`` where the fill's order was mirrored (the opening
    signal wrote this configuration's copy for the account); elsewhere copy the fill."""
    IGNORE = "ignore"
    """Nothing: a leader order opened, in ``fills`` mode (no intent, nothing counted)."""
    CANCEL = "cancel"
    """Cancel the copies of the leader order (``opened_sequence``); nothing new."""
    REPLACE = "replace"
    """Cancel the copies of the amended order, then decide a copy of it as it is now."""


def signal_action(signal: Signal, copy_mode: str) -> SignalAction:
    """Return what a configuration in ``copy_mode`` does with ``signal``.

    In ``fills`` mode (the default) only fills are copied, each as it comes; a leader order
    opened is ignored. In ``orders`` mode a leader order opened is mirrored, its cancel cancels the
    copy, its amend cancels and replaces it, and a fill is copied only when its order was not
    mirrored (a limit that traded before any listing saw it rest, or a market order): a
    mirrored order fills at the follower's venue by itself, so its leader fill is skipped as
    ``order_mirrored``. Exactly one copy per leader order, whichever way it comes.

    A fill of a mirrored order is SKIP_MIRRORED in either mode: the recorder skips it only
    where the configuration has a copy of that order (it copied orders when the order opened,
    even if it copies fills now), and copies it where it has none.

    A leader's cancel cancels this configuration's copies of the order in either mode too (in
    ``fills`` mode there are some only if it mirrored orders before), and an amend in
    ``fills`` mode cancels them without placing a new one.
    """
    orders = copy_mode == "orders"
    if signal.kind is SignalKind.FILL:
        return SignalAction.SKIP_MIRRORED if signal.order_mirrored else SignalAction.COPY
    if signal.kind is SignalKind.ORDER_OPEN:
        return SignalAction.COPY if orders else SignalAction.IGNORE
    if signal.kind is SignalKind.ORDER_AMEND and orders:
        return SignalAction.REPLACE
    return SignalAction.CANCEL


def is_order_change(signal: Signal) -> bool:
    """Return whether ``signal`` reports a leader order opened, cancelled or amended."""
    return signal.kind is not SignalKind.FILL


def at_market(
    reference: Decimal, side: Side, max_slippage: Decimal | None, tick: Decimal | None
) -> tuple[OrderType, Decimal | None, TimeInForce | None] | None:
    """Return the order type, limit price and time in force of an order taken at the market.

    A market order; under ``max_slippage`` a limit IOC at the slippage band around
    ``reference`` (:func:`sizing.slippage_band_price`). ``None`` when the band rounds to no
    price: the caller skips the order as ``price_unknown``.
    """
    if max_slippage is None:
        return OrderType.MARKET, None, None
    price = sizing.slippage_band_price(reference, side, max_slippage, tick)
    if price <= 0:
        return None
    return OrderType.LIMIT, price, TimeInForce.IOC


def mirrored_order(
    signal: Signal, market: MarketInfo
) -> tuple[OrderType, Decimal | None, TimeInForce | None] | None:
    """Return the order type, limit price and time in force a mirrored leader order keeps.

    A leader order opened or amended (``orders`` mode) is copied as the same order: its type,
    its limit price rounded inwards to the follower's tick (a buy never pays more, a sell never
    takes less), its time in force. No slippage band applies: the leader's limit is the band.
    A venue that cannot take the type or time in force refuses it (the broker's
    ``ORDER_TYPE_UNSUPPORTED``): it is never turned into another order. ``None`` for a fill.
    """
    if signal.kind not in (SignalKind.ORDER_OPEN, SignalKind.ORDER_AMEND):
        return None
    price = None
    if signal.order_type.has_limit_price and signal.price is not None:
        price = sizing.round_price_to_tick(
            signal.price, market.price_tick, up=signal.side is Side.SELL
        )
    return signal.order_type, price, signal.time_in_force


def _stop_price(signal: Signal, market: MarketInfo) -> Decimal | None:
    # A mirrored stop keeps the leader's trigger on the follower's tick grid, rounded as its
    # limit is (a buy's down, a sell's up); a strategy's stop is passed as published.
    if signal.stop_price is None or not is_order_change(signal):
        return signal.stop_price
    return sizing.round_price_to_tick(
        signal.stop_price, market.price_tick, up=signal.side is Side.SELL
    )


def copied_order(
    signal: Signal, market: MarketInfo
) -> tuple[OrderType, Decimal | None, TimeInForce | None] | None:
    """Return the order type, limit price and time in force a strategy's order is copied with.

    A strategy (a signal without a leader venue) that publishes a limit or stop order is
    copied as that order: same type, its limit price (rounded inwards to the follower's tick:
    a buy never pays more, a sell never takes less), its stop price and its time in force. A
    follower venue that cannot place it refuses the copy naming the type (the broker's
    ``ORDER_TYPE_UNSUPPORTED``): it is never turned into a market order. ``None`` for every
    other signal: a leader venue's fills are copied as market orders (or slippage-banded).
    """
    if signal.exchange_name or signal.order_type is OrderType.MARKET:
        return None
    price = None
    if signal.order_type.has_limit_price and signal.price is not None:
        price = sizing.round_price_to_tick(
            signal.price, market.price_tick, up=signal.side is Side.SELL
        )
    return signal.order_type, price, signal.time_in_force
