"""Judging an API key: what makes credentials fit for copying (pure)."""

from __future__ import annotations

from broker_svc.domain.model import ConnectionReport, KeyPermissions


def judge_credentials(
    *,
    reachable: bool,
    authenticated: bool,
    permissions: KeyPermissions | None,
    latency_ms: int,
    venue_message: str = "",
) -> ConnectionReport:
    """Build the report of a credentials test and say, in words, why a key is not fit.

    A key is fit only when the venue answered, accepted it, lets it trade, and does not let it
    withdraw or transfer funds out. Unknown permissions are not fit: a key is never assumed safe.
    """
    can_trade = bool(permissions and permissions.can_trade)
    can_withdraw = bool(permissions and (permissions.can_withdraw or permissions.can_transfer))
    if not reachable:
        reason = "the venue could not be reached"
    elif not authenticated:
        reason = "the venue rejected the credentials"
    elif permissions is None:
        reason = "the venue did not report the key's permissions"
    elif permissions.can_withdraw:
        reason = "the key can withdraw funds; create a key with trading permission only"
    elif permissions.can_transfer:
        reason = "the key can transfer funds out; create a key with trading permission only"
    elif not permissions.can_trade:
        reason = "the key cannot trade; enable spot trading for it"
    else:
        reason = ""
    if reason and venue_message and not authenticated:
        reason = f"{reason}: {venue_message}"
    return ConnectionReport(
        reachable=reachable,
        authenticated=reachable and authenticated,
        can_trade=can_trade,
        can_withdraw=can_withdraw,
        reason=reason,
        latency_ms=latency_ms,
    )
