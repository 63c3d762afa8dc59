"""The audit log on every storage backend: appends chain, roll back with their change, never
fork under concurrency, and tampering with rows is named by the check."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from gateway.store import GatewayStore
from meshkit import db
from meshkit.audit import (
    GENESIS_HASH,
    AuditEvent,
    AuditLog,
    Tampering,
    entry_hash,
    verify_table,
)
from meshkit.interceptors import request_id_var

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def _log(database: db.Database) -> AuditLog:
    await GatewayStore(database).migrate()  # creates gateway_audit_log
    return AuditLog(database, "gateway_audit_log", default_actor="service:gateway")


def _event(owner: str = "alice", action: str = "pause") -> AuditEvent:
    return AuditEvent(
        owner, "copy_config", "c1", action, {"status": "active"}, {"status": "paused"}
    )


async def test_appends_chain_and_fill_in_actor_and_request_id(database: db.Database) -> None:
    log = await _log(database)
    token = request_id_var.set("req-1")
    try:
        first = await log.record(_event(), NOW)
    finally:
        request_id_var.reset(token)
    second = await log.record(_event("bob", "resume"), NOW, actor="operator:cli")
    assert (first.seq, first.prev_hash, first.request_id) == (1, GENESIS_HASH, "req-1")
    assert first.actor == "service:gateway"
    assert (second.seq, second.prev_hash, second.actor) == (2, first.hash, "operator:cli")
    stored = await log.all_entries()
    assert stored == [first, second]
    assert all(entry_hash(e) == e.hash for e in stored)
    assert json.loads(stored[0].after) == {"status": "paused"}
    report = await verify_table(database, "gateway")
    assert report.ok and report.count == 2 and report.head_hash == second.hash


async def test_entries_of_pages_one_owner_newest_first(database: db.Database) -> None:
    log = await _log(database)
    for index in range(5):
        await log.record(_event("alice" if index % 2 == 0 else "bob"), NOW)
    alice = await log.entries_of("alice", limit=2)
    assert [e.seq for e in alice] == [5, 3]
    assert [e.seq for e in await log.entries_of("alice", before_seq=3, limit=2)] == [1]
    assert {e.owner_user_id for e in await log.entries_of("bob", limit=10)} == {"bob"}


async def test_an_entry_rolls_back_with_its_change(database: db.Database) -> None:
    log = await _log(database)
    with pytest.raises(RuntimeError):
        async with database.transaction() as tx:
            await log.append(tx, _event(), NOW)
            raise RuntimeError("the change failed")
    assert await log.all_entries() == []


async def test_concurrent_appends_never_fork_the_chain(database: db.Database) -> None:
    log = await _log(database)

    async def change(index: int) -> None:
        async with database.transaction() as tx:
            await asyncio.sleep(0)
            await log.append(tx, _event(action=f"a{index}"), NOW)

    await asyncio.gather(*(change(i) for i in range(40)))
    entries = await log.all_entries()
    assert [e.seq for e in entries] == list(range(1, 41))
    assert len({e.prev_hash for e in entries}) == 40
    assert (await verify_table(database, "gateway")).ok


async def test_secrets_are_never_written(database: db.Database) -> None:
    log = await _log(database)
    with pytest.raises(ValueError):
        await log.record(
            AuditEvent(
                "alice", "exchange_account", "x", "register", None, {"api_secret": "canary-secret"}
            ),
            NOW,
        )
    assert await log.all_entries() == []


async def _three(database: db.Database) -> AuditLog:
    log = await _log(database)
    for action in ("start", "pause", "resume", "stop"):
        await log.record(_event(action=action), NOW)
    return log


async def test_an_edited_row_is_named(database: db.Database) -> None:
    await _three(database)
    await database.execute(
        "UPDATE gateway_audit_log SET after = ? WHERE seq = ?",
        ('{"status":"active"}', 2),
    )
    problem = (await verify_table(database, "gateway")).problem
    assert problem is not None and (problem.kind, problem.seq) == (Tampering.EDITED, 2)


async def test_a_deleted_row_is_named(database: db.Database) -> None:
    await _three(database)
    await database.execute("DELETE FROM gateway_audit_log WHERE seq = ?", (3,))
    problem = (await verify_table(database, "gateway")).problem
    assert problem is not None and (problem.kind, problem.seq) == (Tampering.DELETED, 3)


async def test_an_inserted_row_is_named(database: db.Database) -> None:
    log = await _three(database)
    entries = await log.all_entries()
    for seq in (4, 3):  # make room after entry 2, from the top (seq is unique)
        await database.execute("UPDATE gateway_audit_log SET seq = ? WHERE seq = ?", (seq + 1, seq))
    forged = entries[2].__class__(**{**entries[2].__dict__, "action": "forged", "hash": ""})
    forged = forged.__class__(**{**forged.__dict__, "hash": entry_hash(forged)})
    await database.execute(
        "INSERT INTO gateway_audit_log (seq, time, actor, request_id, owner_user_id, object_type,"
        " object_id, action, before, after, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            3,
            forged.time,
            forged.actor,
            forged.request_id,
            forged.owner_user_id,
            forged.object_type,
            forged.object_id,
            forged.action,
            forged.before,
            forged.after,
            entries[1].hash,
            forged.hash,
        ),
    )
    problem = (await verify_table(database, "gateway")).problem
    assert problem is not None and (problem.kind, problem.seq) == (Tampering.INSERTED, 3)
