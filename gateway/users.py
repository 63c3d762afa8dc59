"""Users and API tokens for the ``copytrade user add`` command and the demo.

``add_user`` is what the command line calls with a database opened on the gateway's
``DATABASE_URL``; it applies the gateway's migrations first (a no-op when the gateway
already did), so it also works on a fresh data directory.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from gateway.auth import PLANS
from gateway.model import User, UserSummary
from gateway.ports import UserStore
from gateway.store import GatewayStore
from meshkit import db
from meshkit.audit import OPERATOR_CLI
from meshkit.codec import utcnow

MAX_NAME_LENGTH = 100
_DURATION = re.compile(r"(\d+)([mhdw])\Z")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_EXPIRY = timedelta(days=3660)


def parse_duration(text: str) -> timedelta:
    """Parse a token lifetime such as ``90m``, ``12h``, ``30d`` or ``8w``.

    Raises
    ------
    ValueError
        When ``text`` is not a positive whole number and one of m, h, d, w, or exceeds ten years.
    """
    match = _DURATION.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"a token lifetime looks like 90m, 12h, 30d or 8w (a positive number), got {text!r}"
        )
    lifetime = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if lifetime > MAX_EXPIRY:
        raise ValueError("a token lifetime is at most ten years")
    return lifetime


def _store(database: db.Database) -> UserStore:
    """Return the gateway's user store over ``database``: the one place it is chosen."""
    return GatewayStore(database)


async def open_store(database_url: str) -> db.Database:
    """Open the gateway's database at ``database_url`` and apply its migrations."""
    database = await db.connect(database_url)
    try:
        await _store(database).migrate()
    except BaseException:
        await database.close()
        raise
    return database


def _check(name: str, plan: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise ValueError(f"a user name must be 1 to {MAX_NAME_LENGTH} printable characters")
    if plan not in PLANS:
        raise ValueError(f"plan must be one of {', '.join(PLANS)}, got {plan!r}")
    return name


async def add_user(
    database: db.Database,
    name: str,
    plan: str = "pro",
    *,
    expires_in: timedelta | None = None,
    now: datetime | None = None,
) -> tuple[str, str]:
    """Create a user with a first API token.

    Parameters
    ----------
    database
        The gateway's database (``DATABASE_URL`` of the gateway).
    name
        A display name, 1 to 100 printable characters; names need not be unique.
    plan
        ``"pro"`` (copy trading) or ``"free"``.
    expires_in
        How long the token is valid from ``now`` (the current time unless given); without
        it the token never expires. An expired token is refused with 401 ``TOKEN_EXPIRED``.

    Returns
    -------
    tuple[str, str]
        The new user's id and its token. The token is shown only here: the store keeps
        its SHA-256 hash.

    Raises
    ------
    ValueError
        When the name or the plan is not valid; nothing is written.
    """
    name = _check(name, plan)
    store = _store(database)
    await store.migrate()
    now = now or utcnow()
    expires_at = now + expires_in if expires_in is not None else None
    user, token = await store.create_user(name, plan, expires_at, now, actor=OPERATOR_CLI)
    return user.user_id, token


async def list_users(database: db.Database) -> list[UserSummary]:
    """Return every user, oldest first, with whether its tokens are live, revoked or expired."""
    return await _store(database).list_users()


async def revoke_user(database: db.Database, name_or_id: str) -> tuple[User, int]:
    """Revoke every token of one user, named by id or by a name only one user has.

    Returns the user and how many live tokens were revoked now (0 on a repeat). The gateway
    answers 401 to each of them from the next request on.

    Raises
    ------
    LookupError
        When no user, or more than one, has that id or name; nothing is revoked.
    """
    store = _store(database)
    users = await store.users_named(name_or_id)
    if not users:
        raise LookupError(f"no user has the name or id {name_or_id!r}")
    if len(users) > 1:
        ids = ", ".join(user.user_id for user in users)
        raise LookupError(
            f"{len(users)} users are named {name_or_id!r} ({ids}); give the id of one"
        )
    return users[0], await store.revoke_user_tokens(users[0].user_id, actor=OPERATOR_CLI)


async def revoke_token(database: db.Database, token: str) -> bool:
    """Revoke an API token at once; return whether a live token was revoked."""
    return await _store(database).revoke_token(token, actor=OPERATOR_CLI)
