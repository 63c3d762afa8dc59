"""Copying a derivatives leader's position changes (pure): entries, exits, leverage.

A futures leader's fill says what it did to the leader's position (``position_effect``: open,
reduce, close, reverse) and whether it was the venue's liquidation. The copy follows the
position, not the order:

- an *entry* (open, or add) is sized like a spot buy, on notional, and opens or adds on the
  leader's side, after the follower's leverage is set to at most ``risk_limits.max_leverage``;
  under ``copy_settings.futures_sizing`` margin it commits the leader's margin scaled by the
  sizing mode instead, at the follower's leverage (:func:`margin_quantity`);
- an *exit* (reduce, close, reverse, liquidation) is a reduce-only order for the same fraction
  of the follower's own position that the leader gave up (a close or a liquidation: all of
  it); it never opens the other side. A reverse is copied as its close and, as a second order
  (leg 1), an entry on the new side sized from what the leader's fill opened there
  (:func:`reverse_entry`).

A spot leader's trade mapped to a derivatives follower (``symbol_map``) reads as a long: a buy
opens or adds, a sell gives up the fraction of its holding it sold.
"""

from __future__ import annotations

import dataclasses
from decimal import ROUND_FLOOR, Decimal, localcontext

from engine_svc.domain.model import PositionEffect, Side, Signal, is_derivative

ZERO = Decimal(0)
ONE = Decimal(1)
_EXITS = frozenset({PositionEffect.REDUCE, PositionEffect.CLOSE, PositionEffect.REVERSE})
_WHOLE = frozenset({PositionEffect.CLOSE, PositionEffect.REVERSE})


def leader_reduces(signal: Signal) -> bool:
    """Return whether the leader's trade gives up (part of) a position rather than adding.

    Spot: a sell. Derivatives: a reduce, close or reverse, or a liquidation; when the venue
    fill's effect is unknown (a strategy's signal), a sell, as on spot.
    """
    if not is_derivative(signal.symbol):
        return signal.side is Side.SELL
    if signal.liquidation or signal.position_effect in _EXITS:
        return True
    if signal.position_effect is PositionEffect.OPEN:
        return False
    return signal.side is Side.SELL


def exit_fraction(signal: Signal) -> Decimal | None:
    """Return the fraction of its position the leader gave up (0 to 1], ``None`` if unknown.

    A liquidation, a close and a reverse give up all of it; a reduce (or a spot sell) gives
    up its quantity over the position before (signed contracts on derivatives), at most 1.
    """
    if signal.liquidation or signal.position_effect in _WHOLE:
        return ONE
    before = signal.leader_position
    if before is None or before == 0:
        return None
    with localcontext() as context:
        context.rounding = ROUND_FLOOR  # never a hair more than the leader's share
        return min(signal.quantity / abs(before), ONE)


def held_against(position: Decimal | None, side: Side) -> Decimal:
    """Return what an order on ``side`` can reduce of a signed ``position`` (0 if none).

    A sell reduces a long, a buy a short: what is held on the other side of the order.
    """
    if position is None:
        return ZERO
    held = position if side is Side.SELL else -position
    return max(held, ZERO)


def held_along(position: Decimal | None, side: Side) -> Decimal:
    """Return what is held on ``side``'s own side of a signed ``position`` (0 if none)."""
    return held_against(position, Side.BUY if side is Side.SELL else Side.SELL)


def exit_quantity(signal: Signal, position: Decimal | None) -> Decimal | None:
    """Return the follower's reduce-only exit for ``signal``, ``None`` when the leader's
    share is unknown (the caller sizes it as an entry and caps it at what is held).

    The same fraction of the follower's own position on the side the leader reduced.
    """
    fraction = exit_fraction(signal)
    if fraction is None:
        return None
    held = held_against(position, signal.side)
    with localcontext() as context:
        context.rounding = ROUND_FLOOR
        return held * fraction


def reverse_entry(signal: Signal) -> Signal | None:
    """Return the entry part of a leader's reverse: what its fill opened on the new side, as
    an opening trade from flat; ``None`` for every other trade (and a liquidation)."""
    before = signal.leader_position
    if signal.position_effect is not PositionEffect.REVERSE or signal.liquidation:
        return None
    if before is None or not is_derivative(signal.symbol):
        return None
    remainder = signal.quantity - abs(before)
    if remainder <= 0:
        return None
    return dataclasses.replace(
        signal,
        quantity=remainder,
        leader_position=ZERO,
        position_effect=PositionEffect.OPEN,
    )


def target_leverage(max_leverage: Decimal | None, leader_leverage: Decimal | None) -> int:
    """Return the leverage to set at the follower: the leader's, at most ``max_leverage``.

    Without the leader's, ``max_leverage``; without a limit, 1. Whole numbers (venues take
    integers), never below 1.
    """
    limit = max_leverage if max_leverage is not None and max_leverage >= 1 else ONE
    wanted = leader_leverage if leader_leverage is not None and leader_leverage > 0 else limit
    return max(int(min(wanted, limit).to_integral_value(rounding=ROUND_FLOOR)), 1)


def margin_leverage(signal: Signal) -> Decimal | None:
    """Return the leverage the leader's trade was margined at, for ``futures_sizing`` margin.

    A derivatives trade: the leader's leverage on the market as sync read it, ``None`` when
    unknown (never guessed: the copy is skipped). A spot trade (mapped to a derivatives
    follower) is paid in full: 1.
    """
    if not is_derivative(signal.symbol):
        return ONE
    leverage = signal.leader_leverage
    return leverage if leverage is not None and leverage > 0 else None


def margin_quantity(
    notional_quantity: Decimal, leader_leverage: Decimal, follower_leverage: int
) -> Decimal:
    """Return a ``futures_sizing`` margin entry: the same share of equity committed as margin.

    ``notional_quantity`` is the leader's trade scaled by the sizing mode (``equity_ratio``:
    the same share of equity as notional). Over the leader's leverage it is the follower's
    margin (the leader's margin scaled alike); times the follower's leverage, its notional.
    Leader at 10x and follower at 3x: 3/10 of the notional-sized entry. Rounded down.
    """
    if leader_leverage <= 0:
        raise ValueError("leader leverage must be positive")
    with localcontext() as context:
        context.rounding = ROUND_FLOOR  # never a hair more margin than the leader's share
        return notional_quantity * Decimal(follower_leverage) / leader_leverage


def market_type_mismatch(leader_symbol: str, follower_symbol: str, mapped: str | None) -> bool:
    """Return whether a spot trade would be copied to a derivatives market (or the reverse)
    without ``symbol_map`` naming the follower's market for it."""
    if is_derivative(leader_symbol) == is_derivative(follower_symbol):
        return False
    return mapped != follower_symbol


def counterpart(symbol: str) -> str:
    """Return the market of the other type a symbol's trade could be confused with:
    ``BTC/USDT:USDT`` ↔ ``BTC/USDT`` (a linear perpetual settles in its quote)."""
    if is_derivative(symbol):
        return symbol.split(":", 1)[0]
    quote = symbol.partition("/")[2]
    return f"{symbol}:{quote}" if quote else symbol
