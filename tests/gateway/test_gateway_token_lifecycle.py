"""Token expiry and revoking a user: in the store (SQLite and PostgreSQL) and at the gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.store import GatewayStore, TokenStatus
from gateway.users import add_user, list_users, parse_duration, revoke_user
from meshkit import db
from tests.gateway.conftest import API, Harness

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _reason(body: dict) -> str:
    info = next(d for d in body["details"] if d["@type"].endswith("ErrorInfo"))
    return info["reason"]


@pytest.mark.parametrize(
    ("text", "lifetime"),
    [
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("8w", timedelta(weeks=8)),
        (" 30D ", timedelta(days=30)),
    ],
)
def test_parse_duration_reads_minutes_hours_days_and_weeks(text: str, lifetime: timedelta) -> None:
    assert parse_duration(text) == lifetime


@pytest.mark.parametrize("text", ["", "30", "0d", "-1d", "1.5d", "30x", "d", "99999w"])
def test_parse_duration_refuses_what_is_not_a_positive_lifetime(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


async def test_a_token_with_an_expiry_is_live_until_then_and_expired_after(
    database: db.Database,
) -> None:
    now = datetime.now(UTC)
    user_id, token = await add_user(database, "alice", "pro", expires_in=timedelta(days=30))
    store = GatewayStore(database)
    status, user = await store.token_status(token)
    assert status is TokenStatus.LIVE and user is not None and user.user_id == user_id
    row = await database.fetchone("SELECT expires_at FROM api_tokens")
    assert row is not None and row["expires_at"].startswith(
        (now + timedelta(days=30)).strftime("%Y-%m-%dT%H")
    )
    later = now + timedelta(days=30, minutes=1)
    assert await store.token_status(token, later) == (TokenStatus.EXPIRED, None)


async def test_a_token_without_an_expiry_never_expires(database: db.Database) -> None:
    _, token = await add_user(database, "alice", "pro")
    far = datetime.now(UTC) + timedelta(days=3650)
    status, _ = await GatewayStore(database).token_status(token, far)
    assert status is TokenStatus.LIVE


async def test_revoke_user_revokes_every_token_of_that_user_only(database: db.Database) -> None:
    alice_id, first = await add_user(database, "alice", "pro")
    store = GatewayStore(database)
    second = await store.issue_token(alice_id)
    _, bob_token = await add_user(database, "bob", "free")
    user, revoked = await revoke_user(database, "alice")
    assert (user.user_id, revoked) == (alice_id, 2)
    assert (await store.token_status(first))[0] is TokenStatus.REVOKED
    assert (await store.token_status(second))[0] is TokenStatus.REVOKED
    assert (await store.token_status(bob_token))[0] is TokenStatus.LIVE
    assert (await revoke_user(database, alice_id))[1] == 0  # a repeat, by id, revokes nothing


async def test_revoke_user_refuses_an_unknown_or_ambiguous_name(database: db.Database) -> None:
    first_id, first = await add_user(database, "sam", "pro")
    _, second = await add_user(database, "sam", "free")
    with pytest.raises(LookupError, match="no user"):
        await revoke_user(database, "nobody")
    with pytest.raises(LookupError, match="2 users are named 'sam'"):
        await revoke_user(database, "sam")
    store = GatewayStore(database)
    assert (await store.token_status(first))[0] is TokenStatus.LIVE
    assert (await revoke_user(database, first_id))[1] == 1
    assert (await store.token_status(first))[0] is TokenStatus.REVOKED
    assert (await store.token_status(second))[0] is TokenStatus.LIVE


async def test_list_users_says_whether_each_user_is_active_revoked_or_expired(
    database: db.Database,
) -> None:
    active_id, _ = await add_user(database, "active", "pro", expires_in=timedelta(days=7))
    await add_user(database, "forever", "free")
    await add_user(database, "expired", "pro", expires_in=timedelta(days=1), now=LONG_AGO)
    revoked_id, _ = await add_user(database, "revoked", "pro")
    await GatewayStore(database).revoke_user_tokens(revoked_id)
    summaries = {summary.user.name: summary for summary in await list_users(database)}
    assert {name: s.status for name, s in summaries.items()} == {
        "active": "active",
        "forever": "active",
        "expired": "expired",
        "revoked": "revoked",
    }
    assert summaries["active"].user.user_id == active_id
    assert summaries["active"].expires_at is not None and summaries["forever"].expires_at is None
    assert (summaries["revoked"].revoked_tokens, summaries["revoked"].live_tokens) == (1, 0)
    assert summaries["expired"].expired_tokens == 1


async def test_an_expired_token_is_401_token_expired(harness: Harness) -> None:
    _, token = await add_user(
        harness.database,
        "carol",
        "pro",
        expires_in=timedelta(days=1),
        now=LONG_AGO,
    )
    status, body, headers = await harness.call("GET", f"{API}/configs", token=f"Bearer {token}")
    assert status == 401
    assert body["code"] == 16 and _reason(body) == "TOKEN_EXPIRED"
    assert "expired" in body["message"]
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert harness.recorder.calls == []


async def test_a_token_not_expired_yet_passes(harness: Harness) -> None:
    _, token = await add_user(harness.database, "dave", "pro", expires_in=timedelta(hours=1))
    status, _, _ = await harness.call("GET", f"{API}/configs", token=f"Bearer {token}")
    assert status == 200


async def test_a_revoked_user_gets_401_while_others_go_on(harness: Harness) -> None:
    assert (await harness.call("GET", f"{API}/configs"))[0] == 200
    user, revoked = await revoke_user(harness.database, harness.pro_user_id)
    assert (user.name, revoked) == ("alice", 1)
    status, body, _ = await harness.call("GET", f"{API}/configs")
    assert status == 401 and _reason(body) == "TOKEN_INVALID"
    free_status, _, _ = await harness.call("GET", f"{API}/supported-exchanges", token="free")
    assert free_status == 200
