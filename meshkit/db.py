"""One small database interface over SQLite (aiosqlite) and PostgreSQL (psycopg 3 + pool).

``DATABASE_URL`` picks the backend: ``sqlite:///path/to/file.db`` (or
``sqlite:///:memory:``) or ``postgresql://...``. SQL is written once with ``?``
placeholders and portable types (TEXT, INTEGER, BIGINT); ``INSERT ... ON
CONFLICT DO NOTHING`` and ``RETURNING`` work on both. Every write that must be
atomic runs inside ``async with db.transaction() as tx``.

Durability: SQLite runs in WAL mode with ``synchronous=FULL``, so a committed
transaction survives a power loss, not only a process crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import re
import sqlite3
import urllib.parse
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

import aiosqlite

from meshkit.settings import ConfigError, integer

# How long opening a PostgreSQL database waits for its server before giving up.
CONNECT_TIMEOUT_SECONDS = 10

Row = dict[str, Any]


class UniqueViolation(Exception):
    """An insert or update broke a unique constraint."""


class DatabaseUnavailable(Exception):
    """The database server cannot be reached or refuses us; the message names where and why.

    It never holds a password: the URL in it is redacted (:func:`redact_url`).
    """


def redact_url(url: str) -> str:
    """Return ``url`` fit for a message: userinfo and any ``password`` parameter become ``***``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url.split(":", 1)[0] + "://***"
    shown = url
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        shown = shown.replace(f"//{userinfo}@", "//***@", 1)
    if parts.query:
        query = "&".join(
            "password=***" if item.split("=", 1)[0].lower() == "password" else item
            for item in parts.query.split("&")
        )
        shown = shown.replace(f"?{parts.query}", f"?{query}", 1)
    return shown


def _server_of(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return redact_url(url)
    return f"{host or 'localhost'}:{port or 5432}"


def _one_line(error: BaseException, url: str) -> str:
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    try:
        password = urllib.parse.urlsplit(url).password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, "***")
    return text or type(error).__name__


class Executor(Protocol):
    """What a transaction and a database both offer."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; return the number of rows it changed."""
        ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """Run a query; return its first row or ``None``."""
        ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a query; return every row."""
        ...


class Database(Executor, Protocol):
    """A connection (or pool) to one service's database."""

    dialect: str

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Executor]:
        """Open a transaction: committed on normal exit, rolled back on an exception."""
        ...

    async def close(self) -> None:
        """Close every connection."""
        ...


class SqliteDatabase:
    """SQLite through one aiosqlite connection; writers are serialised by a lock."""

    dialect = "sqlite"

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str) -> SqliteDatabase:
        """Open (and create) the database file at ``path``.

        Raises
        ------
        ConfigError
            When the file cannot be created or opened (naming ``DATABASE_URL``, the file, why).
        """
        try:
            if path != ":memory:":
                pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
            connection = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise ConfigError(f"DATABASE_URL: cannot open the SQLite file {path}: {why}") from None
        connection.row_factory = aiosqlite.Row
        try:
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=FULL",
                "PRAGMA foreign_keys=ON",
                "PRAGMA busy_timeout=5000",
            ):
                await connection.execute(pragma)
        except sqlite3.Error as e:
            await connection.close()
            raise ConfigError(f"DATABASE_URL: cannot use the SQLite file {path}: {e}") from None
        return cls(connection)

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        try:
            cursor = await self._connection.execute(sql, tuple(params))
        except sqlite3.IntegrityError as e:
            if "UNIQUE" in str(e) or "PRIMARY KEY" in str(e):
                raise UniqueViolation(str(e)) from None
            raise
        count = cursor.rowcount
        await cursor.close()
        return count

    async def _fetchall(self, sql: str, params: Sequence[Any]) -> list[Row]:
        try:
            cursor = await self._connection.execute(sql, tuple(params))
        except sqlite3.IntegrityError as e:
            raise UniqueViolation(str(e)) from None
        rows = await cursor.fetchall()
        await cursor.close()
        return [dict(row) for row in rows]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._lock:
            return await self._execute(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._lock:
            return await self._fetchall(sql, params)

    async def _control(self, statement: str) -> None:
        # BEGIN, COMMIT and ROLLBACK run in aiosqlite's thread, which finishes a statement even
        # when the task awaiting it is cancelled (a gRPC handler whose caller went away). Wait
        # for it to finish, then let the cancellation go on: the transaction's state is known.
        running = asyncio.ensure_future(self._connection.execute(statement))
        try:
            await asyncio.shield(running)
        except asyncio.CancelledError:
            await running
            raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with self._lock:
            try:
                await self._control("BEGIN IMMEDIATE")
            except asyncio.CancelledError:
                # BEGIN ran: end the transaction it opened before giving up.
                await self._control("ROLLBACK")
                raise
            try:
                yield _SqliteTransaction(self)
            except BaseException:
                await self._control("ROLLBACK")
                raise
            else:
                try:
                    await self._control("COMMIT")
                except sqlite3.Error:
                    # A failed COMMIT (a full disk) may leave the transaction open: end it.
                    with contextlib.suppress(sqlite3.Error):
                        await self._control("ROLLBACK")
                    raise

    async def close(self) -> None:
        await self._connection.close()


class _SqliteTransaction:
    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._database._execute(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self._database._fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._database._fetchall(sql, params)


_PLACEHOLDER = re.compile(r"\?")


def _to_pyformat(sql: str) -> str:
    # Our SQL never holds a literal '?' or '%', so a plain rewrite is exact.
    return _PLACEHOLDER.sub("%s", sql)


class PostgresDatabase:
    """PostgreSQL through a psycopg 3 async connection pool."""

    dialect = "postgresql"

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str, *, max_size: int = 10) -> PostgresDatabase:
        """Open a pool to ``url`` and check that it answers.

        Raises
        ------
        ConfigError
            When ``url`` is malformed.
        DatabaseUnavailable
            When the server cannot be reached or refuses the connection (naming the server
            and the cause; never the password).
        """
        import psycopg
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool, PoolTimeout

        server = _server_of(url)
        try:
            _ = urllib.parse.urlsplit(url).port  # a port that is no number
        except ValueError as e:
            raise ConfigError(f"DATABASE_URL {redact_url(url)} is malformed: {e}") from None
        # One direct connection first: it fails at once with the server's own reason, where
        # the pool would retry quietly and end in a timeout that names neither.
        try:
            probe = await psycopg.AsyncConnection.connect(
                url, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
        except psycopg.ProgrammingError as e:
            raise ConfigError(
                f"DATABASE_URL {redact_url(url)} is malformed: {_one_line(e, url)}",
            ) from None
        except psycopg.Error as e:
            raise DatabaseUnavailable(
                f"database {server} (DATABASE_URL {redact_url(url)}) is unavailable:"
                f" {_one_line(e, url)}",
            ) from None
        await probe.close()
        pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            open=False,
            kwargs={"row_factory": dict_row, "autocommit": True},
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except PoolTimeout:
            await pool.close()
            raise DatabaseUnavailable(
                f"database {server} (DATABASE_URL {redact_url(url)}) answered once, then no"
                f" connection opened within {CONNECT_TIMEOUT_SECONDS} s",
            ) from None
        return cls(pool)

    @staticmethod
    async def _run(connection: Any, sql: str, params: Sequence[Any], fetch: bool) -> Any:
        import psycopg

        try:
            cursor = await connection.execute(_to_pyformat(sql), tuple(params))
        except psycopg.errors.UniqueViolation as e:
            raise UniqueViolation(str(e)) from None
        if fetch:
            return await cursor.fetchall() if cursor.description else []
        return cursor.rowcount

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._pool.connection() as connection:
            return await self._run(connection, sql, params, False)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._pool.connection() as connection:
            return list(await self._run(connection, sql, params, True))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with self._pool.connection() as connection, connection.transaction():
            yield _PostgresTransaction(connection)

    async def close(self) -> None:
        await self._pool.close()


class _PostgresTransaction:
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await PostgresDatabase._run(self._connection, sql, params, False)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await PostgresDatabase._run(self._connection, sql, params, True)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await PostgresDatabase._run(self._connection, sql, params, True))


def sqlite_path(url: str) -> str:
    """Return the file of a SQLite URL: ``sqlite:///rel/x.db`` is relative, ``sqlite:////abs/x.db``
    absolute (the SQLAlchemy convention), ``sqlite:///:memory:`` in memory."""
    if not url.startswith("sqlite:///"):
        raise ValueError(
            "a SQLite DATABASE_URL looks like sqlite:///relative.db or sqlite:////absolute.db"
        )
    return url.removeprefix("sqlite:///") or ":memory:"


POOL_SIZE_ENV = "DATABASE_POOL_SIZE"
"""At most this many PostgreSQL connections per process (default 10). Replicas multiply it:
keep ``replicas x pool size`` of every service under the server's ``max_connections``."""


def pool_size(environ: Mapping[str, str] = os.environ) -> int:
    """Return ``DATABASE_POOL_SIZE`` (1 to 100, default 10), naming it when it is bad."""
    return integer(environ, POOL_SIZE_ENV, 10, minimum=1, maximum=100)


async def connect(url: str) -> Database:
    """Open the database ``url`` names: ``sqlite:///path`` or ``postgresql://...``.

    A PostgreSQL pool holds at most :func:`pool_size` connections.
    """
    if url.startswith("sqlite:"):
        try:
            path = sqlite_path(url)
        except ValueError as e:
            raise ConfigError(f"DATABASE_URL {url}: {e}") from None
        return await SqliteDatabase.open(path)
    if url.startswith(("postgresql:", "postgres:")):
        return await PostgresDatabase.open(url, max_size=pool_size())
    raise ConfigError("DATABASE_URL must start with sqlite: or postgresql:")


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


async def _lock_migrations(database: Database, tx: Executor) -> None:
    # Services sharing one PostgreSQL database start together; CREATE TABLE IF NOT EXISTS is
    # not safe against a concurrent creator there, so every migration step takes one lock.
    if database.dialect == "postgresql":
        await tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", ("copytrade:migrate",))


async def migrate(database: Database, service: str, schema_dir: pathlib.Path) -> list[int]:
    """Apply the service's numbered ``NNNN_name.sql`` files not applied yet, one transaction each.

    Returns the versions applied now. Safe to run from several processes at once on
    PostgreSQL, also for services sharing one database (an advisory lock serialises them).
    """
    async with database.transaction() as tx:
        await _lock_migrations(database, tx)
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " service TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL, PRIMARY KEY (service, version))",
        )
    applied: list[int] = []
    # Lists the few schema files of the package once, before the service serves anything.
    files = sorted(schema_dir.glob("[0-9][0-9][0-9][0-9]_*.sql"))  # noqa: ASYNC240 - once, at startup
    for path in files:
        version = int(path.name[:4])
        async with database.transaction() as tx:
            await _lock_migrations(database, tx)
            done = await tx.fetchone(
                "SELECT 1 AS done FROM schema_migrations WHERE service = ? AND version = ?",
                (service, version),
            )
            if done:
                continue
            for statement in _statements(path.read_text()):
                await tx.execute(statement)
            from meshkit.codec import to_iso, utcnow

            await tx.execute(
                "INSERT INTO schema_migrations (service, version, name, applied_at)"
                " VALUES (?, ?, ?, ?)",
                (service, version, path.name, to_iso(utcnow())),
            )
            applied.append(version)
    return applied
