"""Operator commands on the stores of a local (or shared PostgreSQL) mesh: users and keys.

Each opens the database of the service it changes (the gateway's for users, the broker's
for keys), applies that service's migrations, and works whether the mesh runs or not.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

from meshctl import keys
from meshctl.launcher import database_url

Output = Callable[[str], None]


def gateway_database_url(data_dir: pathlib.Path, shared_url: str | None) -> str:
    """Return the gateway's DATABASE_URL for a data dir, or the shared PostgreSQL URL."""
    return database_url(data_dir, "gateway", shared_url)


def broker_database_url(data_dir: pathlib.Path, shared_url: str | None) -> str:
    """Return the broker's DATABASE_URL for a data dir, or the shared PostgreSQL URL."""
    return database_url(data_dir, "broker", shared_url)


async def list_users(data_dir: pathlib.Path, shared_url: str | None, out: Output = print) -> int:
    """Print every user: name, id, plan, created, token state. Never a token."""
    from gateway.users import list_users as stored_users
    from gateway.users import open_store

    database = await open_store(gateway_database_url(data_dir, shared_url))
    try:
        summaries = await stored_users(database)
    finally:
        await database.close()
    if not summaries:
        out("no users; add one with: copytrade user add NAME")
        return 0
    rows = [("NAME", "ID", "PLAN", "CREATED", "TOKENS")]
    for summary in summaries:
        if summary.status == "active":
            until = f"until {summary.expires_at}" if summary.expires_at else "no expiry"
            state = f"active ({summary.live_tokens} live, {until})"
        else:
            state = summary.status
        user = summary.user
        rows.append((user.name, user.user_id, user.plan, user.created_at, state))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        # The first four cells are padded; the fifth (the state) ends the line as it is.
        padded = "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        out(padded + "  " + row[4])
    return 0


async def revoke_user(
    data_dir: pathlib.Path,
    shared_url: str | None,
    name_or_id: str,
    out: Output = print,
) -> int:
    """Revoke every token of the user named (or with the id) ``name_or_id``."""
    from gateway.users import open_store
    from gateway.users import revoke_user as revoke

    database = await open_store(gateway_database_url(data_dir, shared_url))
    try:
        user, revoked = await revoke(database, name_or_id)
    except LookupError as e:
        out(f"user revoke: {e}")
        return 1
    finally:
        await database.close()
    out(
        f"user {user.name} id {user.user_id}: {revoked} token(s) revoked now;"
        " the gateway refuses them (401) from the next request on"
    )
    return 0


async def rotate_keys(
    data_dir: pathlib.Path,
    shared_url: str | None,
    *,
    finish: bool,
    out: Output = print,
) -> int:
    """Rotate the mesh's credential key (or drop the previous keys with ``finish``)."""
    url = broker_database_url(data_dir, shared_url)
    if finish:
        return await keys.finish(data_dir, url, out)
    return await keys.rotate(data_dir, url, out)
