"""Signal notices over PostgreSQL ``LISTEN``: one dedicated connection, reconnected with backoff.

The store's append runs ``pg_notify(<channel>, <source id>)`` in the transaction that logs
signals, so the notice is sent at its commit to every replica listening. A notice is a hint,
never the only way a signal is delivered: a notice sent while this connection is down is lost,
which is why :meth:`PostgresSignalNotices.run` calls ``on_connected`` after each (re)connect
(the caller re-reads what it serves), and why the caller also polls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
from psycopg import sql

log = logging.getLogger("sync_svc.adapters.postgres_notices")


class PostgresSignalNotices:
    """The notices of one PostgreSQL channel, on an autocommit connection of their own."""

    def __init__(
        self,
        url: str,
        channel: str,
        *,
        retry_base_seconds: float = 0.2,
        retry_max_seconds: float = 5.0,
        probe_seconds: float = 10.0,
        connect_timeout_seconds: int = 10,
    ) -> None:
        self._url = url
        self._channel = channel
        self._retry_base = retry_base_seconds
        self._retry_max = retry_max_seconds
        self._probe = probe_seconds
        self._connect_timeout = connect_timeout_seconds
        self.connects = 0
        self.backend_pid: int | None = None

    async def run(self, on_notice: Callable[[str], None], on_connected: Callable[[], None]) -> None:
        """Listen until cancelled: each notice's payload (a source id) goes to ``on_notice``."""
        failures = 0
        while True:
            try:
                await self._listen(on_notice, on_connected)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as e:
                failures += 1
                log.warning(
                    "signal notices (LISTEN %s) dropped: %s; reconnecting",
                    self._channel,
                    " ".join(str(e).split()) or type(e).__name__,
                )
            await asyncio.sleep(min(self._retry_base * 2 ** max(failures - 1, 0), self._retry_max))

    async def _listen(
        self, on_notice: Callable[[str], None], on_connected: Callable[[], None]
    ) -> None:
        connection = await psycopg.AsyncConnection.connect(
            self._url,
            autocommit=True,
            connect_timeout=self._connect_timeout,
        )
        async with connection:
            await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self.connects += 1
            self.backend_pid = connection.info.backend_pid
            on_connected()
            while True:
                async for notice in connection.notifies(timeout=self._probe):
                    on_notice(notice.payload)
                # Quiet for a while: make sure the connection is still there (a silent
                # network partition would otherwise leave us listening to nothing).
                await asyncio.wait_for(connection.execute("SELECT 1"), self._probe)
