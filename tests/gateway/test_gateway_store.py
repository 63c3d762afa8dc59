"""The gateway's users and tokens on SQLite and PostgreSQL: tokens stored only as hashes."""

from __future__ import annotations

import hashlib

import pytest

from gateway.store import GatewayStore
from gateway.users import add_user, open_store, revoke_token
from meshkit import db


async def _all_values(database: db.Database) -> list[str]:
    rows = await database.fetchall("SELECT * FROM users")
    rows += await database.fetchall("SELECT * FROM api_tokens")
    return [str(value) for row in rows for value in row.values()]


async def test_add_user_stores_the_token_hashed_and_never_in_clear(database: db.Database) -> None:
    user_id, token = await add_user(database, "alice", "pro")
    assert token.startswith("ct_") and len(token) >= 40
    row = await database.fetchone("SELECT token_hash, user_id, revoked_at FROM api_tokens")
    assert row == {
        "token_hash": hashlib.sha256(token.encode()).hexdigest(),
        "user_id": user_id,
        "revoked_at": None,
    }
    values = await _all_values(database)
    assert not any(token in value or token[3:] in value for value in values)
    user = await GatewayStore(database).user_for_token(token)
    assert user is not None and (user.user_id, user.name, user.plan) == (user_id, "alice", "pro")


async def test_two_users_get_different_tokens_and_ids(database: db.Database) -> None:
    first = await add_user(database, "alice", "pro")
    second = await add_user(database, "alice", "free")
    assert first[0] != second[0] and first[1] != second[1]
    store = GatewayStore(database)
    assert (await store.user_for_token(second[1])).plan == "free"


@pytest.mark.parametrize(
    "name,plan",
    [
        ("alice", "gold"),
        ("", "pro"),
        ("x" * 101, "pro"),
        ("a\nb", "pro"),
    ],
)
async def test_add_user_with_a_bad_plan_or_name_writes_nothing(
    database: db.Database,
    name: str,
    plan: str,
) -> None:
    with pytest.raises(ValueError):
        await add_user(database, name, plan)
    await GatewayStore(database).migrate()
    assert await database.fetchall("SELECT user_id FROM users") == []


async def test_revoked_token_no_longer_authenticates(database: db.Database) -> None:
    _user_id, token = await add_user(database, "alice", "pro")
    assert await revoke_token(database, token) is True
    assert await revoke_token(database, token) is False
    assert await GatewayStore(database).user_for_token(token) is None
    row = await database.fetchone("SELECT revoked_at FROM api_tokens")
    assert row is not None and row["revoked_at"]


async def test_unknown_token_finds_nobody(database: db.Database) -> None:
    await add_user(database, "alice", "pro")
    assert await GatewayStore(database).user_for_token("ct_guess") is None


async def test_second_token_for_a_user_works_alongside_the_first(database: db.Database) -> None:
    user_id, first = await add_user(database, "alice", "pro")
    store = GatewayStore(database)
    second = await store.issue_token(user_id)
    assert (await store.user_for_token(first)).user_id == user_id
    assert (await store.user_for_token(second)).user_id == user_id


async def test_open_store_migrates_once_and_add_user_works_through_it(database_url: str) -> None:
    database = await open_store(database_url)
    try:
        assert await GatewayStore(database).migrate() == []
        user_id, token = await add_user(database, "alice", "free")
        assert (await GatewayStore(database).get_user(user_id)).plan == "free"
    finally:
        await database.close()
    again = await open_store(database_url)
    try:
        assert (await GatewayStore(again).user_for_token(token)).user_id == user_id
    finally:
        await again.close()


@pytest.mark.parametrize("token", ["ct_caf\udce9", "ct_caf\u00e9", "\u20ac"])
async def test_a_token_that_is_not_ascii_belongs_to_no_user(
    database: db.Database,
    token: str,
) -> None:
    # Header bytes that are not UTF-8 reach the store as surrogates: no user, never an error.
    await add_user(database, "alice", "pro")
    assert await GatewayStore(database).user_for_token(token) is None
