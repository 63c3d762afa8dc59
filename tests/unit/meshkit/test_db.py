"""The storage layer behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib

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
    # BEGIN, COMMIT or ROLLBACK is running in aiosqlite's thread. The statement finishes there
    # anyway; the connection must not stay inside a transaction nobody will end.
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
