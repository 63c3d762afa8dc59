"""One small database interface over SQLite (sqlite3) and PostgreSQL (psycopg 3 + pool).

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
import collections
import concurrent.futures
import contextlib
import os
import pathlib
import re
import sqlite3
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from typing import Any, Protocol

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


BUSY_TIMEOUT_MS = 5000
"""How long a BEGIN waits for another process that writes the same SQLite file."""

BATCH_LIMIT = 64
"""At most this many transactions share one SQLite transaction (one COMMIT, one fsync)."""

SLOW_READ_SECONDS = 0.005
"""A read outside a transaction that holds the event loop this long starts again on a thread."""

FETCH_CHUNK = 256
YIELD_AFTER_SECONDS = 0.002
"""A transaction body that has held the event loop this long lets it run before going on."""

_READ = re.compile(r"\s*SELECT\b", re.IGNORECASE)


def _connect(path: str) -> sqlite3.Connection:
    # Used on the event loop's thread and, for COMMIT and a waiting BEGIN, on the database's
    # one helper thread; never on both at once (SqliteDatabase hands it over).
    return sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, cached_statements=256
    )


def _configure_writer(connection: sqlite3.Connection) -> None:
    for pragma in (
        f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON",
        # Statements run on the event loop: none may wait there (a BEGIN that would wait for
        # another process runs again on the helper thread, with BUSY_TIMEOUT_MS).
        "PRAGMA busy_timeout=0",
    ):
        connection.execute(pragma)


def _configure_reader(connection: sqlite3.Connection) -> None:
    # A reader of a WAL database waits for no writer; query_only makes a write sent here fail.
    for pragma in (f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}", "PRAGMA query_only=ON"):
        connection.execute(pragma)


def _begin_waiting(connection: sqlite3.Connection) -> None:
    connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        connection.execute("BEGIN IMMEDIATE")
    finally:
        connection.execute("PRAGMA busy_timeout=0")


def _commit(connection: sqlite3.Connection) -> None:
    try:
        connection.execute("COMMIT")
    except sqlite3.Error:
        # A failed COMMIT (a full disk) may leave the transaction open: end it.
        with contextlib.suppress(sqlite3.Error):
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        raise


def _rollback(connection: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        if connection.in_transaction:
            connection.execute("ROLLBACK")


def _is_busy(error: sqlite3.Error) -> bool:
    return getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


def _copy_of(error: BaseException) -> BaseException:
    # One batch's failure is raised in each of its callers' tasks: each gets its own instance.
    try:
        return type(error)(*error.args)
    except Exception:  # an exception class whose constructor wants other arguments
        return sqlite3.OperationalError(str(error))


def _run(
    connection: sqlite3.Connection, sql: str, params: Sequence[Any], *, fetch: bool
) -> sqlite3.Cursor:
    try:
        return connection.execute(
            sql, params if isinstance(params, tuple | list) else tuple(params)
        )
    except sqlite3.IntegrityError as e:
        if fetch or "UNIQUE" in str(e) or "PRIMARY KEY" in str(e):
            raise UniqueViolation(str(e)) from None
        raise


class _Pacer:
    """Lets the event loop run when a body has held it for YIELD_AFTER_SECONDS."""

    __slots__ = ("since",)

    def __init__(self) -> None:
        self.since = time.perf_counter()

    async def pause(self) -> None:
        if time.perf_counter() - self.since > YIELD_AFTER_SECONDS:
            await asyncio.sleep(0)
            self.since = time.perf_counter()


def _next_rows(cursor: sqlite3.Cursor, one: bool, size: int | None) -> tuple[list[Row], bool]:
    # The query's next rows as dicts (only its first with ``one``; at most ``size``, all when
    # None) and whether more may follow.
    if cursor.description is None:
        return [], False
    names = [column[0] for column in cursor.description]
    if one:
        first = cursor.fetchone()
        return ([] if first is None else [dict(zip(names, first, strict=True))]), False
    rows = cursor.fetchall() if size is None else cursor.fetchmany(size)
    more = size is not None and len(rows) == size
    return [dict(zip(names, row, strict=True)) for row in rows], more


def _rows_now(
    connection: sqlite3.Connection, sql: str, params: Sequence[Any], one: bool
) -> list[Row]:
    cursor = _run(connection, sql, params, fetch=True)
    try:
        return _next_rows(cursor, one, None)[0]
    finally:
        cursor.close()


async def _fetchall(
    connection: sqlite3.Connection,
    sql: str,
    params: Sequence[Any],
    pacer: _Pacer,
    *,
    one: bool = False,
) -> list[Row]:
    cursor = _run(connection, sql, params, fetch=True)
    try:
        found, more = _next_rows(cursor, one, FETCH_CHUNK)
        while more:
            await pacer.pause()
            rows, more = _next_rows(cursor, False, FETCH_CHUNK)
            found.extend(rows)
        return found
    finally:
        cursor.close()


class _Batch:
    """One SQLite transaction that several callers' transactions share (group commit)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[None] = loop.create_future()
        self.members = 0  # transactions in it whose body ended normally
        self.error: BaseException | None = None  # why it does not commit
        self.last = 0  # the number of the last transaction that joined it


class SqliteDatabase:
    """SQLite through the standard ``sqlite3`` module, on the event loop's thread.

    Statements on these small databases take microseconds, so they run on the event loop
    itself, without a thread hop each; what may wait runs on the database's one helper
    thread: COMMIT (the fsync of ``synchronous=FULL``) and a BEGIN that finds another process
    writing the file (it waits up to BUSY_TIMEOUT_MS there). A read outside a transaction
    that is still running after SLOW_READ_SECONDS is interrupted and runs again on a thread of
    its own; a transaction body that holds the loop longer than YIELD_AFTER_SECONDS lets it
    run between statements or rows, but one statement in it that is itself slow (a scan of a
    large table without an index) holds the loop while it runs.

    Writes go through one connection in group commit: the transactions that arrive while a
    COMMIT runs share the next SQLite transaction, one after the other (never interleaved),
    each inside its own SAVEPOINT, at most BATCH_LIMIT of them. A body that raises rolls back
    to its savepoint only. Each ``async with`` exits normally only once the shared COMMIT has
    made it durable; when SQLite ends the shared transaction early (a full disk) or its
    COMMIT fails, every transaction in it raises and none is committed. Reads outside a
    transaction use a second, read-only connection and see only committed (durable) data;
    each first waits for the transactions asked for before it to end, so that it sees them,
    as when it queued behind them for one connection. An in-memory database has no second
    connection and reads through a transaction.

    A body sees the writes of the transactions before it in its batch before they are
    durable; what it writes from them commits with them or not at all. A body never acts
    outside the database (sends, calls) on what it read: that waits for the exit.
    """

    dialect = "sqlite"

    def __init__(
        self, writer: sqlite3.Connection, reader: sqlite3.Connection | None, path: str
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._path = path
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        # A read that would hold the event loop past its deadline is interrupted (SQLite's
        # progress handler) and run again on its own thread, with its own connection.
        self._read_deadline = 0.0
        if reader is not None:
            reader.set_progress_handler(self._past_read_deadline, 1000)
        self._slow_thread = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="sqlite-read"
        )
        self._slow_reader: sqlite3.Connection | None = None  # opened on its thread, if needed
        self._busy = False  # a transaction holds the writer, or a BEGIN or COMMIT runs
        # Transactions are numbered as they ask for the writer; every one up to _ended has
        # ended (committed or not). A read waits for those asked for before it (below).
        self._asked = 0
        self._ended = 0
        self._reads: list[tuple[int, asyncio.Future[None]]] = []
        self._batch: _Batch | None = None  # the open SQLite transaction
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

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
            writer = await asyncio.to_thread(_connect, path)
        except (OSError, sqlite3.Error) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise ConfigError(f"DATABASE_URL: cannot open the SQLite file {path}: {why}") from None
        reader = None
        try:
            await asyncio.to_thread(_configure_writer, writer)
            if path != ":memory:":
                reader = await asyncio.to_thread(_connect, path)
                await asyncio.to_thread(_configure_reader, reader)
        except sqlite3.Error as e:
            writer.close()
            if reader is not None:
                reader.close()
            raise ConfigError(f"DATABASE_URL: cannot use the SQLite file {path}: {e}") from None
        return cls(writer, reader, path)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self.transaction() as tx:
            return await tx.execute(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self._read(sql, params, one=True)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._read(sql, params, one=False)

    async def _read(self, sql: str, params: Sequence[Any], *, one: bool) -> list[Row]:
        if self._reader is not None and _READ.match(sql):
            await self._after_transactions_asked()
            self._read_deadline = time.perf_counter() + SLOW_READ_SECONDS
            try:
                rows = _rows_now(self._reader, sql, params, one)
            except sqlite3.OperationalError as e:
                if getattr(e, "sqlite_errorcode", 0) != sqlite3.SQLITE_INTERRUPT:
                    raise
                rows = await asyncio.get_running_loop().run_in_executor(
                    self._slow_thread, self._read_slowly, sql, params, one
                )
            # Callers count on a read being a point where other tasks run (a loop of reads
            # must not hold the event loop), as it was when each ran on a thread.
            await asyncio.sleep(0)
            return rows
        async with self.transaction() as tx:
            if one:
                row = await tx.fetchone(sql, params)
                return [] if row is None else [row]
            return await tx.fetchall(sql, params)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        batch = await self._turn()
        writer = self._writer
        try:
            writer.execute("SAVEPOINT tx")
        except BaseException:
            self._end_turn(batch)
            raise
        try:
            yield _SqliteTransaction(writer)
        except BaseException:
            self._undo(batch)
            self._end_turn(batch)
            raise
        try:
            writer.execute("RELEASE tx")
            if not writer.in_transaction:
                raise sqlite3.OperationalError("the transaction was rolled back")
        except sqlite3.Error as e:
            # SQLite ended the whole transaction (a full disk, an I/O error) with the work of
            # the transactions before this one in the batch: none of them commits.
            batch.error = batch.error or e
            self._end_turn(batch)
            raise
        batch.members += 1
        self._end_turn(batch)
        await self._committed(batch)

    def _idle(self) -> None:
        # Nobody holds or waits for the writer: every transaction asked for so far has ended.
        self._busy = False
        self._ended = self._asked
        self._wake_reads()

    def _wake_reads(self) -> None:
        if self._reads:
            for after, read in self._reads:
                if after <= self._ended and not read.done():
                    read.set_result(None)
            self._reads = [(after, read) for after, read in self._reads if not read.done()]

    async def _after_transactions_asked(self) -> None:
        # A read sees every transaction asked for before it, as when a read queued behind them
        # for the one connection: it waits while they run and commit (never reads their
        # uncommitted data), e.g. a fill read while the order it belongs to is being written.
        if self._ended >= self._asked:
            return
        read = asyncio.get_running_loop().create_future()
        self._reads.append((self._asked, read))
        await read

    def _past_read_deadline(self) -> bool:
        return time.perf_counter() > self._read_deadline

    def _read_slowly(self, sql: str, params: Sequence[Any], one: bool) -> list[Row]:
        if self._slow_reader is None:
            self._slow_reader = _connect(self._path)
            _configure_reader(self._slow_reader)
        return _rows_now(self._slow_reader, sql, params, one)

    def _close_slow_reader(self) -> None:
        if self._slow_reader is not None:
            self._slow_reader.close()

    def _undo(self, batch: _Batch) -> None:
        try:
            self._writer.execute("ROLLBACK TO tx")
            self._writer.execute("RELEASE tx")
        except sqlite3.Error as e:
            batch.error = batch.error or e

    async def _turn(self) -> _Batch:
        """Wait until this task holds the writer, inside the open batch; return the batch."""
        loop = asyncio.get_running_loop()
        self._asked += 1
        ticket = self._asked
        if not self._busy:
            self._busy = True
            try:
                began = self._begin_now()
            except BaseException:
                self._idle()
                raise
            if began:
                assert self._batch is not None
                self._batch.last = ticket
                return self._batch
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiting.append(waiter)
            self._spawn(self._begin_in_thread())
        else:
            waiter = loop.create_future()
            self._waiting.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Handed the writer as it was cancelled: pass it on, adding nothing.
                assert self._batch is not None
                self._end_turn(self._batch)
            else:
                with contextlib.suppress(ValueError):
                    self._waiting.remove(waiter)
            raise
        assert self._batch is not None
        self._batch.last = ticket
        return self._batch

    def _begin_now(self) -> bool:
        """BEGIN IMMEDIATE on this thread; False when another process is writing the file."""
        try:
            self._writer.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if _is_busy(e):
                return False
            raise
        self._batch = _Batch(asyncio.get_running_loop())
        return True

    async def _in_thread(self, work: Callable[[sqlite3.Connection], None]) -> None:
        # The helper thread finishes what it started even when this task is cancelled (the
        # loop closing): wait for it, so the writer's state is known, then go on cancelling.
        running = asyncio.get_running_loop().run_in_executor(self._thread, work, self._writer)
        try:
            await asyncio.shield(running)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await running
            raise

    async def _begin_in_thread(self) -> None:
        try:
            await self._in_thread(_begin_waiting)
        except asyncio.CancelledError:
            _rollback(self._writer)
            self._idle()
            raise
        except sqlite3.Error as e:
            self._idle()
            self._fail_waiting(e)
            return
        self._batch = _Batch(asyncio.get_running_loop())
        if not self._hand_on():
            await self._finish(self._batch)

    def _end_turn(self, batch: _Batch) -> None:
        """The transaction holding the writer is done: hand it to the next one, or commit."""
        if batch.error is None and not self._writer.in_transaction:
            batch.error = sqlite3.OperationalError("the transaction was rolled back")
        if batch.error is None and batch.members < BATCH_LIMIT and self._hand_on():
            return
        self._spawn(self._finish(batch))

    def _hand_on(self) -> bool:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return True
        return False

    async def _finish(self, batch: _Batch) -> None:
        """COMMIT the batch (or roll it back), release its callers, begin the next one."""
        try:
            if batch.error is None and batch.members:
                try:
                    await self._in_thread(_commit)
                except sqlite3.Error as e:
                    batch.error = e
            else:
                _rollback(self._writer)  # nothing to keep: no fsync
        finally:
            batch.done.set_result(None)
            self._batch = None
            self._ended = max(self._ended, batch.last)
            self._wake_reads()
        if not any(not waiter.done() for waiter in self._waiting):
            self._idle()
            return
        try:
            began = self._begin_now()
        except sqlite3.Error as e:
            self._idle()
            self._fail_waiting(e)
            return
        if not began:
            await self._begin_in_thread()
        else:
            self._hand_on()

    def _fail_waiting(self, error: BaseException) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(_copy_of(error))

    async def _committed(self, batch: _Batch) -> None:
        try:
            await asyncio.shield(batch.done)
        except asyncio.CancelledError:
            # Cancelled while the COMMIT runs: it ends anyway. Wait for it, then go on
            # cancelling (the caller cannot tell whether it committed, as with any cancel).
            await batch.done
            raise
        if batch.error is not None:
            raise _copy_of(batch.error) from batch.error

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(self._slow_thread, self._close_slow_reader)
        self._slow_thread.shutdown(wait=True)
        if self._reader is not None:
            self._reader.close()
        # The last connection to close checkpoints the WAL into the file: off the event loop.
        await asyncio.get_running_loop().run_in_executor(self._thread, self._writer.close)
        self._thread.shutdown(wait=True)


class _SqliteTransaction:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._pacer = _Pacer()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        count = _run(self._connection, sql, params, fetch=False).rowcount
        await self._pacer.pause()
        return count

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await _fetchall(self._connection, sql, params, self._pacer, one=True)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await _fetchall(self._connection, sql, params, self._pacer)


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
