"""Pure rules of what a leader fill means: the asset it moves, by how much, and how to copy it.

:mod:`sync_svc.domain.ledger` uses them to place each fill against a portfolio snapshot.
"""

from __future__ import annotations

from decimal import Decimal

from sync_svc.domain.model import LeaderFill, OrderType, PositionEffect, Side

ZERO = Decimal(0)
LIQUIDATION_CLIENT_ORDER_PREFIX = "autoclose-"
"""Binance names its liquidation orders ``autoclose-<ms>`` (USDⓈ-M futures)."""


def is_derivative(symbol: str) -> bool:
    """Return whether a unified symbol names a derivatives market: ``BTC/USDT:USDT`` does."""
    return ":" in symbol


def is_liquidation(client_order_id: str, venue_order_type: str = "") -> bool:
    """Return whether a fill's order was the venue's liquidation of the account."""
    return client_order_id.startswith(LIQUIDATION_CLIENT_ORDER_PREFIX) or (
        venue_order_type.upper() == "LIQUIDATION"
    )


def signed_delta(fill: LeaderFill) -> Decimal:
    """Return how a derivatives fill moved the position: + contracts bought, - sold."""
    return fill.quantity if fill.side is Side.BUY else -fill.quantity


def position_effect(before: Decimal | None, side: Side, quantity: Decimal) -> PositionEffect:
    """Return what a fill of ``quantity`` on ``side`` does to a signed position ``before``.

    Unknown (``UNSPECIFIED``) when the position before is unknown.
    """
    if before is None:
        return PositionEffect.UNSPECIFIED
    delta = quantity if side is Side.BUY else -quantity
    if before == ZERO or (before > ZERO) == (delta > ZERO):
        return PositionEffect.OPEN
    if abs(delta) < abs(before):
        return PositionEffect.REDUCE
    if abs(delta) == abs(before):
        return PositionEffect.CLOSE
    return PositionEffect.REVERSE


def base_asset(symbol: str) -> str:
    """Return the base asset of a unified symbol: ``BTC/USDT`` → ``BTC``."""
    return symbol.split("/", 1)[0]


def base_delta(fill: LeaderFill) -> Decimal:
    """Return how much the fill changed the account's base-asset total.

    A buy adds its quantity, a sell removes it; a fee charged in the base asset is removed too.
    """
    delta = fill.quantity if fill.side is Side.BUY else -fill.quantity
    if fill.fee and fill.fee_currency.upper() == base_asset(fill.symbol).upper():
        delta -= fill.fee
    return delta


def copy_order_type(order_type: OrderType | None) -> OrderType:
    """Return the order type a copy of a fill carries.

    A fill is an execution that already happened: a triggered stop became a market or limit
    order, and a fill whose order type the venue did not report is copied as a market trade.
    """
    if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        return OrderType.LIMIT
    return OrderType.MARKET
