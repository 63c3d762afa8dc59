"""The gateway's users and what their API tokens are worth: values and the rules over them.

Pure: no storage, no I/O. Times are fixed-width ISO UTC text (:func:`meshkit.codec.to_iso`),
so they compare as text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    """A gateway user."""

    user_id: str
    name: str
    plan: str
    created_at: str


class TokenStatus(enum.Enum):
    """What a presented token is worth."""

    LIVE = "live"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True)
class UserSummary:
    """A user and the state of its tokens (never a token: the store has only their hashes).

    ``status`` is ``active`` while a token is live, otherwise ``expired`` when a token
    expired without being revoked, ``revoked`` when every token was revoked, or ``no tokens``.
    ``expires_at`` is when the last live token expires; ``None`` while one never expires.
    """

    user: User
    status: str
    live_tokens: int
    revoked_tokens: int
    expired_tokens: int
    expires_at: str | None


def token_status(revoked_at: str | None, expires_at: str | None, now: str) -> TokenStatus:
    """Return what an issued token is worth at ``now``: revoked, expired or live."""
    # Times are fixed-width ISO UTC text, so they compare as text.
    if revoked_at is not None:
        return TokenStatus.REVOKED
    if expires_at is not None and expires_at <= now:
        return TokenStatus.EXPIRED
    return TokenStatus.LIVE


def summarize(user: User, tokens: list[tuple[TokenStatus, str | None]]) -> UserSummary:
    """Return ``user``'s summary from the status and expiry of each of its tokens."""
    live = [expiry for status, expiry in tokens if status is TokenStatus.LIVE]
    revoked = sum(status is TokenStatus.REVOKED for status, _ in tokens)
    expired = sum(status is TokenStatus.EXPIRED for status, _ in tokens)
    if live:
        status = "active"
    elif expired:
        status = "expired"
    elif revoked:
        status = "revoked"
    else:
        status = "no tokens"
    expiries = [expiry for expiry in live if expiry is not None]
    expires_at = max(expiries) if live and len(expiries) == len(live) else None
    return UserSummary(user, status, len(live), revoked, expired, expires_at)
