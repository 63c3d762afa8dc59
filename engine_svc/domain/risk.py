"""The daily loss limit (pure): start-of-day equity per account, the breach test and the action.

The start-of-day equity of an account is the first equity read in a UTC day (by the risk
monitor, or the first signal that day); a breach takes the configuration's
``daily_loss_action``: REDUCING (only exits are copied), REDUCING with its copied positions
sold (``close_all``), or PAUSED (``disable``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from engine_svc.domain.ids import COPYTRADE_NAMESPACE
from engine_svc.domain.model import (
    DAILY_LOSS_ACTIONS,
    CopyStatus,
    DailyLossAction,
    DailyRisk,
    FollowerSnapshot,
    MarketInfo,
    Portfolio,
    RiskLimits,
    Side,
    is_derivative,
)

DAILY_LOSS = "max_daily_loss"
REDUCE_ONLY = DailyLossAction.REDUCE_ONLY
CLOSE_ALL = DailyLossAction.CLOSE_ALL
DISABLE = DailyLossAction.DISABLE
AUDIT_ACTION = "risk.daily_loss_action"
"""The audit action of a daily loss action taken (the engine's audit trail)."""
CLOSE_ALL_REASON = "daily_loss_close_all"
"""The reason of the sell orders a ``close_all`` action writes."""
CLOSE_SIGNAL_PREFIX = "daily_loss:"
"""The start of a close order's ``signal_id`` (``daily_loss:<UTC day>``): no leader signal."""
_CONSEQUENCE = {
    REDUCE_ONLY: "only exits are copied until resumed",
    CLOSE_ALL: "copied positions are closed and only exits are copied until resumed",
    DISABLE: "copying is disabled until resumed",
}


def utc_day(moment: datetime) -> str:
    """Return the UTC day of ``moment`` as ``YYYY-MM-DD``."""
    return moment.strftime("%Y-%m-%d")


def roll(state: DailyRisk, day: str, equities: Mapping[str, Decimal]) -> DailyRisk:
    """Return ``state`` for ``day``, recording the equity of accounts seen first today.

    A new day forgets yesterday's start equities.
    """
    start = dict(state.start_equity) if state.day == day else {}
    for account, equity in equities.items():
        if account not in start and equity > 0:
            start[account] = equity
    return DailyRisk(day=day, start_equity=start)


def loss_breached(start_equity: Decimal, equity: Decimal, max_daily_loss: Decimal) -> bool:
    """Return whether ``equity`` fell more than ``max_daily_loss`` (a fraction) below the start."""
    if start_equity <= 0:
        return False
    return equity < start_equity * (Decimal(1) - max_daily_loss)


def breached_accounts(
    state: DailyRisk,
    equities: Mapping[str, Decimal],
    max_daily_loss: Decimal | None,
) -> list[str]:
    """Return the accounts whose equity breaches the daily loss limit (none without a limit)."""
    if max_daily_loss is None:
        return []
    return sorted(
        account
        for account, equity in equities.items()
        if account in state.start_equity
        and loss_breached(state.start_equity[account], equity, max_daily_loss)
    )


def loss_fraction(start_equity: Decimal, equity: Decimal) -> Decimal:
    """Return the loss since the start of the day as a fraction of the start equity (≥ 0)."""
    if start_equity <= 0:
        return Decimal(0)
    return max(Decimal(0), (start_equity - equity) / start_equity)


def breach_reason(
    state: DailyRisk,
    equities: Mapping[str, Decimal],
    max_daily_loss: Decimal,
    breached: list[str],
    action: DailyLossAction = REDUCE_ONLY,
) -> str:
    """Return the status reason of a daily loss breach, naming the worst account and its loss.

    The reason starts with ``max_daily_loss`` so a program can match it, then says it in words:
    ``max_daily_loss: account 1f0c… lost 6.2% since 00:00 UTC (limit 5%); only exits are
    copied until resumed`` (the end says what ``action`` does).
    """
    worst = worst_account(state, equities, breached)
    lost = loss_fraction(state.start_equity[worst], equities[worst]) * 100
    limit = max_daily_loss * 100
    return (
        f"{DAILY_LOSS}: account {worst} lost {lost:.2f}% since 00:00 UTC"
        f" (limit {limit.normalize():f}%); {_CONSEQUENCE[action]}"
    )


def worst_account(state: DailyRisk, equities: Mapping[str, Decimal], breached: list[str]) -> str:
    """Return the breached account that lost the largest fraction of its start equity."""
    return max(
        breached,
        key=lambda account: loss_fraction(state.start_equity[account], equities[account]),
    )


def is_daily_loss_reason(reason: str) -> bool:
    """Return whether a status reason is a daily loss breach's (its state ends with a resume)."""
    return reason.startswith(f"{DAILY_LOSS}:")


@dataclass(frozen=True)
class DailyLossVerdict:
    """What a configuration's daily loss limit calls for, given its accounts' equities now.

    ``action`` is ``None`` without a breach; otherwise the configured action, with the worst
    account, its loss and the limit (fractions). ``close_positions`` asks for the sell orders
    of ``close_all`` (idempotent: their client order ids are keyed by the UTC day).
    """

    status: CopyStatus
    reason: str
    daily: DailyRisk
    action: DailyLossAction | None = None
    account: str = ""
    loss: Decimal = Decimal(0)
    limit: Decimal = Decimal(0)
    close_positions: bool = False
    breached: tuple[str, ...] = field(default=())

    def status_changes(self, current: CopyStatus) -> bool:
        """Return whether the verdict moves a configuration that is ``current`` now."""
        return self.status is not current


def evaluate_daily_loss(
    status: CopyStatus,
    reason: str,
    daily: DailyRisk,
    limits: RiskLimits,
    equities: Mapping[str, Decimal],
    day: str,
) -> DailyLossVerdict:
    """Return the daily loss verdict of a configuration (pure: the caller writes it).

    Only a configuration that copies (active or reducing) with ``max_daily_loss`` set and an
    equity read is judged; the day's start equity is recorded for accounts first seen today.
    On a breach, ``daily_loss_action`` decides: ``reduce_only`` moves an active configuration
    to REDUCING; ``close_all`` does too and asks for its copied positions to be sold (again
    while it stays breached: the orders are idempotent per day); ``disable`` moves it to
    PAUSED. The reason names the worst account and its loss.
    """
    limit = limits.max_daily_loss
    if limit is None or not status.copies or not equities:
        return DailyLossVerdict(status, reason, daily)
    daily = roll(daily, day, equities)
    breached = breached_accounts(daily, equities, limit)
    if not breached:
        return DailyLossVerdict(status, reason, daily)
    action = (
        DailyLossAction(limits.daily_loss_action)
        if limits.daily_loss_action in DAILY_LOSS_ACTIONS
        else REDUCE_ONLY
    )
    worst = worst_account(daily, equities, breached)
    loss = loss_fraction(daily.start_equity[worst], equities[worst])
    new_status, new_reason = status, reason
    if action == DISABLE:
        new_status = CopyStatus.PAUSED
        new_reason = breach_reason(daily, equities, limit, breached, DISABLE)
    elif status is CopyStatus.ACTIVE:
        new_status = CopyStatus.REDUCING
        new_reason = breach_reason(daily, equities, limit, breached, action)
    return DailyLossVerdict(
        new_status,
        new_reason,
        daily,
        action=action,
        account=worst,
        loss=loss,
        limit=limit,
        close_positions=action == CLOSE_ALL,
        breached=tuple(breached),
    )


@dataclass(frozen=True)
class CloseOrder:
    """One market sell of a ``close_all`` action: a copied position at one account."""

    target_exchange_id: str
    symbol: str
    quantity: Decimal
    client_order_id: str
    leg: int
    signal_id: str


def copied_positions(fills: Iterable[tuple[str, Side, Decimal]]) -> dict[str, Decimal]:
    """Return the net quantity a configuration copied into each symbol at one account.

    ``fills`` are ``(symbol, side, filled quantity)`` of its orders there; only positive nets
    are positions on spot, and on a derivatives market negative ones too (copied shorts).
    """
    net: dict[str, Decimal] = {}
    for symbol, side, quantity in fills:
        net[symbol] = net.get(symbol, Decimal(0)) + (quantity if side is Side.BUY else -quantity)
    return {
        symbol: quantity
        for symbol, quantity in net.items()
        if quantity > 0 or (quantity < 0 and is_derivative(symbol))
    }


def close_key(config_id: str, target_exchange_id: str, symbol: str, day: str) -> tuple[str, int]:
    """Return the client order id and leg of a ``close_all`` sell, keyed by its UTC day.

    The same configuration, account, symbol and day always give the same id, so a restart
    or a second round writes (and the venue sees) one order, never two.
    """
    name = f"{config_id}/{DAILY_LOSS}/{target_exchange_id}/{symbol}/{day}"
    key = uuid.uuid5(COPYTRADE_NAMESPACE, name)
    # The intent's unique key takes the leg: a 31-bit number of the same name, never 0
    # (leg 0 and up are the legs of signals; these are negative).
    return str(key), -(key.int % (2**31 - 1) + 1)


def close_quantity(
    copied: Decimal, portfolio: Portfolio | None, market: MarketInfo | None
) -> Decimal:
    """Return what to sell to close a copied position: the copied quantity, at most what is free.

    Rounded down to the market's step; zero below the venue's minimum quantity or notional
    (nothing that could be sold), or when the account or market could not be read. On a
    derivatives market (a reduce-only order: buy back a copied short, sell a copied long) it is
    at most the position held on the copy's side, and the minimum notional does not apply.
    """
    if portfolio is None or market is None or copied == 0:
        return Decimal(0)
    if market.derivative:
        position = FollowerSnapshot.of(portfolio, market.base, market.symbol).position or Decimal(0)
        quantity = min(abs(copied), position if copied > 0 else -position)
        step = market.quantity_step
        if step is not None and step > 0:
            quantity = (quantity // step) * step
        if quantity <= 0 or (market.min_quantity is not None and quantity < market.min_quantity):
            return Decimal(0)
        return quantity
    if copied < 0:
        return Decimal(0)
    held = portfolio.balance(market.base)
    quantity = min(copied, held.free if held is not None else Decimal(0))
    step = market.quantity_step
    if step is not None and step > 0:
        quantity = (quantity // step) * step
    if quantity <= 0:
        return Decimal(0)
    if market.min_quantity is not None and quantity < market.min_quantity:
        return Decimal(0)
    price = market.last_price
    if (
        market.min_notional is not None
        and price is not None
        and quantity * price < market.min_notional
    ):
        return Decimal(0)
    return quantity


def revalued_equity(portfolio: Portfolio, prices: Mapping[str, Decimal]) -> Decimal | None:
    """Return the portfolio's equity with its assets revalued at ``prices`` (asset to price).

    The portfolio was valued at the broker when its balances were read; an asset with a new
    price moves the equity by its total times the price change. Assets without a new price
    (or a value) keep their value.
    """
    if portfolio.equity is None:
        return None
    equity = portfolio.equity
    for item in portfolio.balances:
        price = prices.get(item.asset)
        if price is None or item.value is None or item.total <= 0:
            continue
        equity += item.total * price - item.value
    return equity
