"""Users and API tokens for the ``copytrade user add`` command and the demo.

``add_user`` is what the command line calls with a database opened on the gateway's
``DATABASE_URL``; it applies the gateway's migrations first (a no-op when the gateway
already did), so it also works on a fresh data directory.
"""

from __future__ import annotations

from gateway.auth import PLANS
from gateway.store import GatewayStore
from meshkit import db

MAX_NAME_LENGTH = 100


async def open_store(database_url: str) -> db.Database:
    """Open the gateway's database at ``database_url`` and apply its migrations."""
    database = await db.connect(database_url)
    try:
        await GatewayStore(database).migrate()
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


async def add_user(database: db.Database, name: str, plan: str = "pro") -> tuple[str, str]:
    """Create a user with a first API token.

    Parameters
    ----------
    database
        The gateway's database (``DATABASE_URL`` of the gateway).
    name
        A display name, 1 to 100 printable characters; names need not be unique.
    plan
        ``"pro"`` (copy trading) or ``"free"``.

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
    store = GatewayStore(database)
    await store.migrate()
    user, token = await store.create_user(name, plan)
    return user.user_id, token


async def revoke_token(database: db.Database, token: str) -> bool:
    """Revoke an API token at once; return whether a live token was revoked."""
    return await GatewayStore(database).revoke_token(token)
