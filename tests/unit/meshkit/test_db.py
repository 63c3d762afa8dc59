"""The storage layer behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import sqlite3
import sys

import pytest

from meshkit import db


async def test_transaction_commits_on_success_and_rolls_back_on_error(
    database: db.Database,
) -> None:
    await database.execute("CREATE TABLE t (id TEXT PRIMARY KEY, amount TEXT NOT NULL)")
    async with database.transaction() as tx:
        await tx.execute("INSERT INTO t (id, amount) VALUES (?, ?)", ("a", "1.5"))
    with pytest.raises(RuntimeError):
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO t (id, amount) VALUES (?, ?)", ("b", "2"))
            raise RuntimeError("boom")
    rows = await database.fetchall("SELECT id, amount FROM t ORDER BY id")
    assert rows == [{"id": "a", "amount": "1.5"}]


async def test_unique_violation_is_reported_portably(database: db.Database) -> None:
    await database.execute("CREATE TABLE u (id TEXT PRIMARY KEY)")
    await database.execute("INSERT INTO u (id) VALUES (?)", ("x",))
    with pytest.raises(db.UniqueViolation):
        await database.execute("INSERT INTO u (id) VALUES (?)", ("x",))
    inserted = await database.execute(
        "INSERT INTO u (id) VALUES (?) ON CONFLICT DO NOTHING", ("x",)
    )
    assert inserted == 0


async def test_migrations_apply_once_in_order(
    database: db.Database, tmp_path: pathlib.Path
) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "0001_init.sql").write_text("-- first\nCREATE TABLE m (id TEXT PRIMARY KEY);\n")
    (schema / "0002_more.sql").write_text("ALTER TABLE m ADD COLUMN note TEXT;\n")
    assert await db.migrate(database, "svc", schema) == [1, 2]
    assert await db.migrate(database, "svc", schema) == []
    await database.execute("INSERT INTO m (id, note) VALUES (?, ?)", ("1", "ok"))
    assert await database.fetchone("SELECT note FROM m") == {"note": "ok"}


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///.copytrade/broker.db", ".copytrade/broker.db"),
        ("sqlite:////var/lib/copytrade/broker.db", "/var/lib/copytrade/broker.db"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_sqlite_urls_follow_the_three_and_four_slash_convention(url: str, path: str) -> None:
    assert db.sqlite_path(url) == path


async def test_services_migrating_one_database_at_once_do_not_collide(
    database_url: str,
    tmp_path: pathlib.Path,
) -> None:
    import asyncio

    schemas = []
    for name in ("a", "b", "c", "d"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "0001_init.sql").write_text(f"CREATE TABLE table_{name} (id TEXT PRIMARY KEY);\n")
        schemas.append((name, folder))
    databases = [await db.connect(database_url) for _ in schemas]
    try:
        results = await asyncio.gather(
            *(
                db.migrate(database, name, folder)
                for database, (name, folder) in zip(databases, schemas, strict=True)
            ),
        )
    finally:
        for database in databases:
            await database.close()
    assert results == [[1], [1], [1], [1]]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_transaction_cancelled_at_any_point_leaves_the_connection_usable(
    database: db.Database,
) -> None:
    # A gRPC handler is cancelled when its caller goes away, wherever it is: also while its
    # COMMIT is running on the database's helper thread. The statement finishes there anyway;
    # the connection must not stay inside a transaction nobody will end.
    await database.execute("CREATE TABLE c (id INTEGER PRIMARY KEY)")

    async def write(n: int) -> None:
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO c (id) VALUES (?)", (n,))

    for n in range(60):
        task = asyncio.create_task(write(n))
        for _ in range(n % 6):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await write(1000 + n)  # "cannot start a transaction within a transaction" if stuck
    rows = await database.fetchall("SELECT id FROM c WHERE id >= 1000")
    assert len(rows) == 60


def test_the_pool_size_is_read_bounded_and_named_when_bad() -> None:
    from meshkit.settings import ConfigError

    assert db.pool_size({}) == 10
    assert db.pool_size({"DATABASE_POOL_SIZE": "4"}) == 4
    for bad in ("0", "101", "four"):
        with pytest.raises(ConfigError, match="DATABASE_POOL_SIZE"):
            db.pool_size({"DATABASE_POOL_SIZE": bad})


# SQLite runs statements on the event loop and shares one COMMIT among the transactions that
# wait while another commits (group commit, meshkit.db.SqliteDatabase); these prove it keeps
# every guarantee of one transaction at a time.


async def _sqlite(tmp_path: pathlib.Path) -> db.SqliteDatabase:
    database = await db.SqliteDatabase.open(str(tmp_path / "group.db"))
    await database.execute("CREATE TABLE g (id INTEGER PRIMARY KEY, note TEXT)")
    return database


def _committed_ids(tmp_path: pathlib.Path) -> set[int]:
    # What another connection (another process) reads: committed data only.
    with contextlib.closing(sqlite3.connect(tmp_path / "group.db")) as other:
        return {row[0] for row in other.execute("SELECT id FROM g")}


async def test_transactions_sharing_a_commit_roll_back_alone_and_exit_once_durable(
    tmp_path: pathlib.Path,
) -> None:
    database = await _sqlite(tmp_path)
    seen_after_exit: dict[int, bool] = {}

    async def write(n: int) -> None:
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO g (id) VALUES (?)", (n,))
            await asyncio.sleep(0)  # the others queue behind this one: one batch
            if n % 5 == 1:
                raise RuntimeError("boom")
            if n % 5 == 2:
                with pytest.raises(db.UniqueViolation):
                    await tx.execute("INSERT INTO g (id) VALUES (?)", (n,))
                await tx.execute("UPDATE g SET note = ? WHERE id = ?", ("kept", n))
        seen_after_exit[n] = n in _committed_ids(tmp_path)

    try:
        outcomes = await asyncio.gather(*(write(n) for n in range(40)), return_exceptions=True)
        for n, outcome in enumerate(outcomes):
            assert isinstance(outcome, RuntimeError) if n % 5 == 1 else outcome is None
        assert set(seen_after_exit) == {n for n in range(40) if n % 5 != 1}
        assert all(seen_after_exit.values())  # each exit came after its COMMIT
        assert _committed_ids(tmp_path) == set(seen_after_exit)
        rows = await database.fetchall("SELECT id FROM g WHERE note = 'kept'")
        assert {row["id"] for row in rows} == {n for n in range(40) if n % 5 == 2}
    finally:
        await database.close()


async def test_a_batch_that_sqlite_ended_commits_none_of_its_transactions(
    tmp_path: pathlib.Path,
) -> None:
    # SQLite may end a whole transaction on an error (a full disk, an I/O error); here a body
    # ends it itself. The transactions before it in the shared transaction lost their work
    # too: they must raise, never exit as if committed; the one after it starts afresh.
    database = await _sqlite(tmp_path)
    started = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO g (id) VALUES (0)")
            started.set()
            await release.wait()  # the others queue: they join its SQLite transaction

    async def write(n: int) -> None:
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO g (id) VALUES (?)", (n,))
            if n == 2:
                await tx.execute("ROLLBACK")

    try:
        head = asyncio.create_task(first())
        await started.wait()
        tasks = [asyncio.create_task(write(n)) for n in (1, 2, 3)]
        release.set()
        outcomes = await asyncio.gather(head, *tasks, return_exceptions=True)
        assert [isinstance(outcome, sqlite3.Error) for outcome in outcomes] == [
            True,
            True,
            True,
            False,
        ]
        assert outcomes[3] is None
        assert _committed_ids(tmp_path) == {3}
        await database.execute("INSERT INTO g (id) VALUES (4)")  # usable
        assert _committed_ids(tmp_path) == {3, 4}
    finally:
        await database.close()


async def test_a_read_sees_the_transactions_begun_before_it_once_committed_never_before(
    tmp_path: pathlib.Path,
) -> None:
    # A read outside a transaction runs on its own connection, yet, as when it queued behind
    # them for one connection, it sees every transaction asked for before it (a fill looked up
    # while its order is being written) and only once they are committed.
    database = await _sqlite(tmp_path)
    written = asyncio.Event()
    release = asyncio.Event()

    async def write() -> None:
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO g (id) VALUES (1)")
            written.set()
            await release.wait()

    try:
        task = asyncio.create_task(write())
        await written.wait()
        read = asyncio.create_task(database.fetchone("SELECT id FROM g WHERE id = 1"))
        for _ in range(3):
            await asyncio.sleep(0)  # let it try: it must wait, not read around the write
        assert not read.done()
        release.set()
        assert await read == {"id": 1}
        await task
        assert _committed_ids(tmp_path) == {1}
        assert await database.fetchone("SELECT id FROM g WHERE id = 2") is None  # no wait
    finally:
        await database.close()


async def test_a_transaction_waiting_for_another_process_does_not_hold_the_event_loop(
    tmp_path: pathlib.Path,
) -> None:
    # Another process writes the same file (a replica, `copytrade user add`): our BEGIN waits
    # for it (busy_timeout), off the event loop, which goes on running, here this test.
    database = await _sqlite(tmp_path)
    other = sqlite3.connect(tmp_path / "group.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO g (id) VALUES (1)")
        task = asyncio.create_task(database.execute("INSERT INTO g (id) VALUES (2)"))
        for _ in range(3):
            await asyncio.sleep(0)  # let it try: it must wait, not fail nor block the loop
        assert not task.done()
        other.execute("COMMIT")
        assert await task == 1
        assert _committed_ids(tmp_path) == {1, 2}
    finally:
        other.close()
        await database.close()


async def test_many_transactions_cancelled_at_any_point_leave_every_other_one_whole(
    tmp_path: pathlib.Path,
) -> None:
    database = await _sqlite(tmp_path)

    async def write(n: int) -> None:
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO g (id) VALUES (?)", (n,))
            await asyncio.sleep(0)
            await tx.execute("UPDATE g SET note = 'done' WHERE id = ?", (n,))

    try:
        for round_ in range(12):
            tasks = [asyncio.create_task(write(100 * round_ + n)) for n in range(12)]
            for _ in range(round_ % 4):
                await asyncio.sleep(0)
            for task in tasks[round_ % 3 :: 3]:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            ids = _committed_ids(tmp_path)
            for n, outcome in enumerate(outcomes):
                if outcome is None:
                    assert 100 * round_ + n in ids
                else:
                    assert isinstance(outcome, asyncio.CancelledError)
        rows = await database.fetchall("SELECT id FROM g WHERE note IS NULL")
        assert rows == []  # nothing half-written
        await database.execute("INSERT INTO g (id) VALUES (-1)")  # the writer is free
    finally:
        await database.close()


async def test_a_long_read_runs_off_the_event_loop(tmp_path: pathlib.Path) -> None:
    # A read that would hold the event loop (a scan of a big table) is interrupted there and
    # run again on a thread: the loop goes on running other tasks meanwhile.
    database = await _sqlite(tmp_path)
    ticks = 0
    reading = True

    async def ticker() -> None:
        nonlocal ticks
        while reading:
            ticks += 1
            await asyncio.sleep(0)

    try:
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        ticks = 0
        row = await database.fetchone(
            "SELECT (WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n"
            " WHERE x < 1000000) SELECT SUM(x) FROM n) AS total"
        )
        reading = False
        await task
        assert row == {"total": 500000500000}
        assert ticks > 1  # the loop ran while SQLite counted
        assert await database.fetchone("SELECT COUNT(*) AS n FROM g") == {"n": 0}
    finally:
        await database.close()


async def test_an_in_memory_database_reads_what_it_committed() -> None:
    database = await db.connect("sqlite:///:memory:")
    try:
        await database.execute("CREATE TABLE m (id INTEGER PRIMARY KEY)")
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO m (id) VALUES (1)")
        assert await database.fetchall("SELECT id FROM m") == [{"id": 1}]
    finally:
        await database.close()


ROOT = pathlib.Path(__file__).resolve().parents[3]

_WRITER = """
import asyncio, sys
from meshkit import db

async def main():
    database = await db.SqliteDatabase.open(sys.argv[1])

    async def write(worker):
        for n in range(worker, 10**9, 20):
            async with database.transaction() as tx:
                await tx.execute("INSERT INTO g (id) VALUES (?)", (n,))
                await tx.execute("UPDATE g SET note = 'done' WHERE id = ?", (n,))
            print(n, flush=True)  # acknowledged: the caller acts on it

    await asyncio.gather(*(write(worker) for worker in range(20)))

asyncio.run(main())
"""


async def test_every_transaction_acknowledged_before_a_kill_is_there_after_it(
    tmp_path: pathlib.Path,
) -> None:
    database = await _sqlite(tmp_path)
    await database.close()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WRITER,
        str(tmp_path / "group.db"),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'gen'}{os.pathsep}{ROOT}"},
    )
    assert process.stdout is not None
    acknowledged = set()
    try:
        while len(acknowledged) < 400:
            line = await process.stdout.readline()
            assert line, "the writer died"
            acknowledged.add(int(line))
    finally:
        process.kill()  # mid-write: batches in flight, one maybe mid-COMMIT
        await process.wait()
    with contextlib.closing(sqlite3.connect(tmp_path / "group.db")) as other:
        assert other.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = dict(other.execute("SELECT id, note FROM g").fetchall())
    assert acknowledged <= set(rows)
    assert set(rows.values()) == {"done"}  # nothing half-written
