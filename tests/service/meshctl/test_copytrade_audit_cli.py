"""``copytrade audit verify``: every chain ok on an untouched mesh; an edited, a deleted and an
inserted row are each named, and the command exits 1."""

from __future__ import annotations

import asyncio
import pathlib
from datetime import UTC, datetime

import pytest

from broker_svc.store import BrokerStore
from engine_svc.store import EngineStore
from gateway.store import GatewayStore
from meshctl.__main__ import main
from meshctl.audit import verify
from meshkit import db
from meshkit.audit import AuditEvent, AuditLog, entry_hash, read_chain
from recon_svc.store import ReconStore

NOW = datetime(2026, 3, 1, tzinfo=UTC)
COLUMNS = (
    "seq, time, actor, request_id, owner_user_id, object_type, object_id, action, before,"
    " after, prev_hash, hash"
)


async def _migrate_all(database: db.Database) -> None:
    await BrokerStore(database).migrate()
    await EngineStore(database).migrate()
    await ReconStore(database).migrate()
    await GatewayStore(database).migrate()


async def _fill(database: db.Database, chain: str, count: int = 4) -> None:
    log = AuditLog(database, f"{chain}_audit_log", default_actor=f"service:{chain}")
    for index in range(count):
        await log.record(
            AuditEvent(
                "alice", "thing", f"{chain}-{index}", "change", {"n": index}, {"n": index + 1}
            ),
            NOW,
        )


async def _edit(database: db.Database, chain: str, seq: int) -> None:
    await database.execute(
        f"UPDATE {chain}_audit_log SET after = ? WHERE seq = ?", ('{"n":0}', seq)
    )


async def _delete(database: db.Database, chain: str, seq: int) -> None:
    await database.execute(f"DELETE FROM {chain}_audit_log WHERE seq = ?", (seq,))


async def _insert(database: db.Database, chain: str, seq: int) -> None:
    # A forged entry with a correct hash, linked to its predecessor; the later rows move up.
    table = f"{chain}_audit_log"
    entries = await read_chain(database, table)
    for entry in reversed(entries[seq - 1 :]):
        await database.execute(
            f"UPDATE {table} SET seq = ? WHERE seq = ?", (entry.seq + 1, entry.seq)
        )
    template = entries[seq - 1]
    forged = template.__class__(
        **{
            **template.__dict__,
            "action": "forged",
            "prev_hash": entries[seq - 2].hash,
            "hash": "",
        }
    )
    forged = forged.__class__(**{**forged.__dict__, "hash": entry_hash(forged)})
    await database.execute(
        f"INSERT INTO {table} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            forged.seq,
            forged.time,
            forged.actor,
            forged.request_id,
            forged.owner_user_id,
            forged.object_type,
            forged.object_id,
            forged.action,
            forged.before,
            forged.after,
            forged.prev_hash,
            forged.hash,
        ),
    )


async def _local_mesh(data_dir: pathlib.Path) -> None:
    for chain in ("broker", "engine", "recon", "gateway"):
        database = await db.connect(f"sqlite:///{data_dir}/{chain}.db")
        try:
            await _migrate_all(database)
            await _fill(database, chain)
        finally:
            await database.close()


async def _tamper(data_dir: pathlib.Path) -> None:
    for chain, change, seq in (("broker", _delete, 2), ("engine", _edit, 3), ("recon", _insert, 2)):
        database = await db.connect(f"sqlite:///{data_dir}/{chain}.db")
        try:
            await change(database, chain, seq)
        finally:
            await database.close()


def test_verify_says_ok_for_every_untouched_chain(
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    asyncio.run(_local_mesh(tmp_path))
    assert main(["audit", "verify", "--data-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["broker", "engine", "recon", "gateway"]
    assert all("ok (4 entries" in line for line in lines)


def test_verify_names_the_edited_deleted_and_inserted_entries(
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    asyncio.run(_local_mesh(tmp_path))
    asyncio.run(_tamper(tmp_path))
    assert main(["audit", "verify", "--data-dir", str(tmp_path)]) == 1
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["broker"].startswith("entry 2 deleted")
    assert lines["engine"].startswith("entry 3 edited")
    assert lines["recon"].startswith("entry 2 inserted")
    assert lines["gateway"].startswith("ok (4 entries")


def test_a_missing_chain_fails_the_check(
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    asyncio.run(_local_mesh(tmp_path))
    (tmp_path / "recon.db").unlink()
    assert main(["audit", "verify", "--data-dir", str(tmp_path)]) == 1
    assert "recon: no database" in capsys.readouterr().out


async def test_verify_reads_every_chain_from_one_database_url(
    database_url: str,
    tmp_path: pathlib.Path,
) -> None:
    shared = await db.connect(database_url)
    try:
        await _migrate_all(shared)
        for chain in ("broker", "engine", "recon", "gateway"):
            await _fill(shared, chain)
        lines: list[str] = []
        assert await verify(tmp_path, database_url, lines.append) == 0
        assert len(lines) == 4 and all("ok (4 entries" in line for line in lines)

        await _edit(shared, "engine", 1)
        await _delete(shared, "gateway", 4 - 1)
        await _insert(shared, "broker", 3)
        lines.clear()
        assert await verify(tmp_path, database_url, lines.append) == 1
        found = dict(line.split(": ", 1) for line in lines)
        assert found["engine"].startswith("entry 1 edited")
        assert found["gateway"].startswith("entry 3 deleted")
        assert found["broker"].startswith("entry 3 inserted")
        assert found["recon"].startswith("ok")
    finally:
        await shared.close()
