"""Test helpers: in-process gRPC servers, polling waits, a fake clock, per-test databases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from meshkit import db
from meshkit.server import Registration, RunningServer, start_server


@contextlib.asynccontextmanager
async def inprocess_server(
    registrations: Sequence[Registration], *, domain: str = "test.copytrade",
) -> AsyncIterator[tuple[RunningServer, grpc.aio.Channel]]:
    """Start a real server on a free loopback port and yield it with a channel to it."""
    running = await start_server(registrations, domain=domain)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield running, channel
    finally:
        await channel.close()
        await running.server.stop(grace=None)


async def eventually(
    predicate: Callable[[], Awaitable[Any] | Any], *, timeout: float = 10.0, interval: float = 0.02,
) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if asyncio.iscoroutine(last) or isinstance(last, Awaitable):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
        await asyncio.sleep(interval)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        """Return the current fake time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self._now += timedelta(seconds=seconds)


POSTGRES_ENV = "COPYTRADE_TEST_POSTGRES_URL"


def database_urls() -> list[str]:
    """Return the backends storage tests run on: SQLite always, PostgreSQL when configured."""
    urls = ["sqlite"]
    if os.environ.get(POSTGRES_ENV):
        urls.append("postgresql")
    return urls


@contextlib.asynccontextmanager
async def fresh_database(kind: str, tmp_path: Any) -> AsyncIterator[tuple[db.Database, str]]:
    """Yield an empty database of ``kind`` and its URL: a temp SQLite file, or a new PG schema."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/test-{uuid.uuid4().hex[:8]}.db"
        database = await db.connect(url)
        try:
            yield database, url
        finally:
            await database.close()
        return
    base = os.environ[POSTGRES_ENV]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = await db.connect(base)
    await admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}options=-csearch_path%3D{schema}"
    database = await db.connect(url)
    try:
        yield database, url
    finally:
        await database.close()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()
