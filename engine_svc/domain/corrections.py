"""Correction orders (pure): the key of one, and the order the risk gate allows.

A reconciliation that found a follower's position in a symbol off what the copies should have
left asks for a correction: a buy of what is missing or a sell of what is in excess. It is an
intent like a copy (written before any broker call, sent by the same queues, looked up by the
same resolver) whose client order id is derived from (configuration, account, symbol,
reconciliation id), and whose quantity the risk gate decides as for a copy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from engine_svc.domain import gate
from engine_svc.domain.decision import Decision, at_market
from engine_svc.domain.ids import COPYTRADE_NAMESPACE
from engine_svc.domain.model import (
    CopyConfig,
    FollowerSnapshot,
    Intent,
    IntentState,
    MarketInfo,
    Side,
    SkipReason,
)

SIGNAL_PREFIX = "correction:"
"""A correction intent's ``signal_id`` is this prefix and the reconciliation's id."""


def correction_key(
    config_id: str, target_exchange_id: str, symbol: str, reconciliation_id: str
) -> tuple[str, int]:
    """Return the client order id and leg of the correction a reconciliation asked for.

    The same configuration, account, symbol and reconciliation always give the same id, so a
    repeated request writes (and the venue sees) one order. The leg is a negative 31-bit
    number of the same name (signals' legs are 0 and up), so the intent's unique key
    (configuration, source, sequence 0, account, leg) is the correction's own.
    """
    name = f"{config_id}/correction/{target_exchange_id}/{symbol}/{reconciliation_id}"
    key = uuid.uuid5(COPYTRADE_NAMESPACE, name)
    return str(key), -(key.int % (2**31 - 1) + 1)


def is_correction(intent: Intent) -> bool:
    """Return whether ``intent`` is a correction (not the copy of a signal)."""
    return intent.signal_id.startswith(SIGNAL_PREFIX)


@dataclass(frozen=True)
class Correction:
    """What a reconciliation asks for: move one account's position in one symbol."""

    config_id: str
    target_exchange_id: str
    symbol: str
    side: Side
    quantity: Decimal
    reconciliation_id: str


def decide(
    correction: Correction,
    config: CopyConfig,
    snapshot: FollowerSnapshot | None,
    market: MarketInfo | None,
    orders_last_minute: int,
) -> Decision:
    """Return the correction order the configuration's limits allow, or the skip and why.

    The order is valued at the market's last price: a market order, or, under
    ``max_slippage``, a limit IOC order at the slippage band around that price, as a copy.
    The risk gate then decides its quantity with the configuration's state, rate, position,
    trade size and venue limits. Correlations are not measured for a correction: under a
    ``correlation_limit`` a buy that opens a new position is skipped as
    ``correlation_unknown``.
    """
    symbol = correction.symbol
    if market is None:
        return Decision.skip(symbol, SkipReason.MARKET_UNAVAILABLE)
    if snapshot is None:
        return Decision.skip(symbol, SkipReason.PORTFOLIO_UNAVAILABLE)
    reference = market.last_price
    if reference is None or reference <= 0:
        return Decision.skip(symbol, SkipReason.PRICE_UNKNOWN)
    limits = config.settings.risk_limits
    order = at_market(reference, correction.side, limits.max_slippage, market.price_tick)
    if order is None:
        return Decision.skip(symbol, SkipReason.PRICE_UNKNOWN)
    order_type, price, time_in_force = order
    verdict = gate.check(
        gate.ProposedOrder(symbol, correction.side, correction.quantity, price or reference),
        snapshot,
        market,
        gate.GateLimits.of(limits, config.settings.copy_settings),
        gate.GateState(config.status, orders_last_minute, None),
    )
    if not verdict.allowed:
        return Decision.skip(symbol, verdict.reason, verdict.quantity)
    return Decision(
        symbol=symbol,
        quantity=verdict.quantity,
        order_type=order_type,
        price=price,
        time_in_force=time_in_force,
    )


def new_intent(
    intent_id: str,
    correction: Correction,
    config: CopyConfig,
    decision: Decision,
    now: datetime,
) -> Intent:
    """Return the correction intent recording ``decision``: PENDING, or SKIPPED with its reason."""
    client_order_id, leg = correction_key(
        config.config_id,
        correction.target_exchange_id,
        correction.symbol,
        correction.reconciliation_id,
    )
    return Intent(
        intent_id=intent_id,
        config_id=config.config_id,
        source_id=config.source_id,
        sequence=0,
        signal_id=f"{SIGNAL_PREFIX}{correction.reconciliation_id}",
        target_exchange_id=correction.target_exchange_id,
        leg=leg,
        client_order_id=client_order_id,
        symbol=correction.symbol,
        side=correction.side,
        type=decision.order_type,
        quantity=decision.quantity,
        price=decision.price,
        state=IntentState.SKIPPED if decision.skipped else IntentState.PENDING,
        reason=decision.reason,
        leader_quantity=correction.quantity,
        leader_price=None,
        leader_event_time=now,
        created_at=now,
        updated_at=now,
        time_in_force=decision.time_in_force,
    )
