"""The daily loss limit (pure): start-of-day equity per account and the breach test.

The start-of-day equity of an account is the first equity read in a UTC day (the first signal
that day); a breach moves the configuration to REDUCING, where only exits are copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from engine_svc.domain.model import DailyRisk

DAILY_LOSS = "max_daily_loss"


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
) -> str:
    """Return the status reason of a daily loss breach, naming the worst account and its loss.

    The reason starts with ``max_daily_loss`` so a program can match it, then says it in words:
    ``max_daily_loss: account 1f0c… lost 6.2% since 00:00 UTC (limit 5%); only exits are
    copied until resumed``.
    """
    worst = max(
        breached,
        key=lambda account: loss_fraction(state.start_equity[account], equities[account]),
    )
    lost = loss_fraction(state.start_equity[worst], equities[worst]) * 100
    limit = max_daily_loss * 100
    return (
        f"{DAILY_LOSS}: account {worst} lost {lost:.2f}% since 00:00 UTC"
        f" (limit {limit.normalize():f}%); only exits are copied until resumed"
    )
