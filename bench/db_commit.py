"""SQLite commit path: transactions and reads a second, and CPU per transaction, old vs new.

Each run opens a fresh SQLite file (WAL, synchronous=FULL, on the disk of ``--dir``) and runs
``--transactions`` small transactions from ``--concurrency`` concurrent tasks, each shaped like
a copy on the mesh (read a row, insert a row, update a counter: three statements), then
``--reads`` plain reads (one row by key) from the same tasks. Two implementations, interleaved
``--rounds`` times in this process:

* ``aiosqlite``: the SQLite database of meshkit.db before issue 14 (every statement, BEGIN and
  COMMIT through aiosqlite's thread behind one asyncio.Lock), kept here as it was;
* ``new``: ``meshkit.db.SqliteDatabase`` as it is now.

    .venv/bin/python bench/db_commit.py --transactions 2000 --concurrency 50 --no-record

CPU is the process's own (every thread), from ``time.process_time``: exact whatever else the
machine does. Prints the figures and appends one row to bench/RESULTS.md (``--no-record``: none).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pathlib
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiosqlite

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "gen"), str(ROOT)]

from bench.benchlib import append_row, percentile  # noqa: E402 - after the sys.path setup
from meshkit import db  # noqa: E402 - after the sys.path setup

SCHEMA = (
    "CREATE TABLE intents (id TEXT PRIMARY KEY, config_id TEXT NOT NULL, quantity TEXT NOT NULL)",
    "CREATE TABLE counters (config_id TEXT PRIMARY KEY, copies INTEGER NOT NULL)",
)
CONFIGS = 100


class AiosqliteDatabase:
    """meshkit.db.SqliteDatabase as it was before issue 14 (aiosqlite, one lock)."""

    dialect = "sqlite"

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str) -> AiosqliteDatabase:
        connection = await aiosqlite.connect(path, isolation_level=None)
        connection.row_factory = aiosqlite.Row
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=5000",
        ):
            await connection.execute(pragma)
        return cls(connection)

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        try:
            cursor = await self._connection.execute(sql, tuple(params))
        except sqlite3.IntegrityError as e:
            if "UNIQUE" in str(e) or "PRIMARY KEY" in str(e):
                raise db.UniqueViolation(str(e)) from None
            raise
        count = cursor.rowcount
        await cursor.close()
        return count

    async def _fetchall(self, sql: str, params: Sequence[Any]) -> list[db.Row]:
        try:
            cursor = await self._connection.execute(sql, tuple(params))
        except sqlite3.IntegrityError as e:
            raise db.UniqueViolation(str(e)) from None
        rows = await cursor.fetchall()
        await cursor.close()
        return [dict(row) for row in rows]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._lock:
            return await self._execute(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> db.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[db.Row]:
        async with self._lock:
            return await self._fetchall(sql, params)

    async def _control(self, statement: str) -> None:
        running = asyncio.ensure_future(self._connection.execute(statement))
        try:
            await asyncio.shield(running)
        except asyncio.CancelledError:
            await running
            raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self._lock:
            try:
                await self._control("BEGIN IMMEDIATE")
            except asyncio.CancelledError:
                await self._control("ROLLBACK")
                raise
            try:
                yield _OldTransaction(self)
            except BaseException:
                await self._control("ROLLBACK")
                raise
            else:
                try:
                    await self._control("COMMIT")
                except sqlite3.Error:
                    with contextlib.suppress(sqlite3.Error):
                        await self._control("ROLLBACK")
                    raise

    async def close(self) -> None:
        await self._connection.close()


class _OldTransaction:
    def __init__(self, database: AiosqliteDatabase) -> None:
        self._database = database

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._database._execute(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> db.Row | None:
        rows = await self._database._fetchall(sql, params)
        return rows[0] if rows else None


async def _open(impl: str, path: str) -> Any:
    if impl == "aiosqlite":
        return await AiosqliteDatabase.open(path)
    return await db.SqliteDatabase.open(path)


async def _copy(database: Any, n: int) -> None:
    config_id = f"config-{n % CONFIGS}"
    async with database.transaction() as tx:
        await tx.fetchone("SELECT copies FROM counters WHERE config_id = ?", (config_id,))
        await tx.execute(
            "INSERT INTO intents (id, config_id, quantity) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (str(uuid.uuid4()), config_id, "0.015"),
        )
        await tx.execute(
            "UPDATE counters SET copies = copies + 1 WHERE config_id = ?", (config_id,)
        )


async def _read(database: Any, n: int) -> None:
    row = await database.fetchone(
        "SELECT copies FROM counters WHERE config_id = ?", (f"config-{n % CONFIGS}",)
    )
    assert row is not None


async def _phase(
    database: Any, action: Any, count: int, concurrency: int
) -> tuple[float, float, list[float]]:
    latencies: list[float] = []
    queue = iter(range(count))

    async def worker() -> None:
        for n in queue:
            began = time.perf_counter()
            await action(database, n)
            latencies.append(time.perf_counter() - began)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - wall, time.process_time() - cpu, latencies


async def run(impl: str, folder: pathlib.Path, args: argparse.Namespace) -> dict[str, float]:
    path = str(folder / f"{impl}-{uuid.uuid4().hex[:8]}.db")
    database = await _open(impl, path)
    try:
        for statement in SCHEMA:
            await database.execute(statement)
        for n in range(CONFIGS):
            await database.execute(
                "INSERT INTO counters (config_id, copies) VALUES (?, 0)", (f"config-{n}",)
            )
        wall, cpu, latencies = await _phase(database, _copy, args.transactions, args.concurrency)
        read_wall, read_cpu, read_latencies = await _phase(
            database, _read, args.reads, args.concurrency
        )
        total = await database.fetchone("SELECT SUM(copies) AS n FROM counters")
        assert total is not None and total["n"] == args.transactions, total
    finally:
        await database.close()
    return {
        "tx_per_s": args.transactions / wall,
        "tx_cpu_us": 1e6 * cpu / args.transactions,
        "tx_p50_ms": 1e3 * percentile(latencies, 0.5),
        "tx_p99_ms": 1e3 * percentile(latencies, 0.99),
        "reads_per_s": args.reads / read_wall,
        "read_cpu_us": 1e6 * read_cpu / args.reads,
        "read_p99_ms": 1e3 * percentile(read_latencies, 0.99),
    }


def _summary(impl: str, runs: list[dict[str, float]]) -> str:
    def best(key: str, low: bool = False) -> float:
        values = [r[key] for r in runs]
        return min(values) if low else max(values)

    return (
        f"{impl}: {best('tx_per_s'):.0f} tx/s, CPU {best('tx_cpu_us', True):.0f} us/tx,"
        f" p50 {best('tx_p50_ms', True):.2f} ms, p99 {best('tx_p99_ms', True):.2f} ms;"
        f" reads {best('reads_per_s'):.0f}/s, CPU {best('read_cpu_us', True):.0f} us/read,"
        f" p99 {best('read_p99_ms', True):.2f} ms"
    )


async def main(args: argparse.Namespace) -> str:
    impls = ["aiosqlite", "new"] if args.impl == "both" else [args.impl]
    results: dict[str, list[dict[str, float]]] = {impl: [] for impl in impls}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for _ in range(args.rounds):
            for impl in impls:
                figures = await run(impl, pathlib.Path(tmp), args)
                results[impl].append(figures)
                print(impl, {k: round(v, 2) for k, v in figures.items()}, flush=True)
    return "; ".join(_summary(impl, runs) for impl, runs in results.items())


def parse() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=("aiosqlite", "new", "both"), default="both")
    parser.add_argument("--transactions", type=int, default=5000)
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of each impl")
    parser.add_argument(
        "--dir", default=None, help="where the temp files go (a real disk: fsync is measured)"
    )
    parser.add_argument(
        "--no-record", action="store_true", help="print the figures, add no row to RESULTS.md"
    )
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    summary = asyncio.run(main(arguments))
    line = (
        f"db_commit {arguments.transactions} transactions (3 statements each) and"
        f" {arguments.reads} reads from {arguments.concurrency} tasks on a SQLite file"
        f" (WAL, synchronous=FULL), best of {arguments.rounds}: {summary}"
    )
    print(line)
    if not arguments.no_record:
        append_row(line)
