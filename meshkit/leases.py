"""Leases with fencing tokens in a service's own database, and the loop that keeps them.

Replicas of a service find each other through two tables of that service's database, created
by its own migration (:data:`SCHEMA_SQL` with the service's prefix):

- ``<prefix>_replicas``: one row per live replica, renewed every round; a replica whose row
  expired is gone.
- ``<prefix>_leases``: one row per unit of work (a *resource*: a leader source, a source's
  signal stream) with its owner, an expiry and a **fencing token** that grows by one at every
  acquisition. Work done under a lease carries its token; a store refuses a write whose token
  is no longer the resource's current one (:class:`Fenced`), so a replica that was paused or
  cut off past its lease and wakes up cannot act on work another replica has taken over.

Every time is the database's clock (milliseconds since the epoch), never a replica's own, so
replicas on machines whose clocks disagree still agree on who holds what.

:class:`LeaseKeeper` runs the rounds: heartbeat, renew what it holds, let go of what is no
longer wanted, then take its share (``ceil(work / live replicas)``) of what is free or expired,
releasing what it holds above that share so a replica that joins takes its part. A replica
that stops gracefully releases everything at once; one killed with -9 loses its leases when
they expire (``ttl``). On SQLite only one replica may run: :meth:`LeaseKeeper.start` refuses a
second with a message that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from meshkit import db
from meshkit.metrics import zero_series
from meshkit.settings import ConfigError
from meshkit.tasks import cancel_and_wait

log = logging.getLogger("meshkit.leases")

LEASES_HELD = Gauge(
    "copytrade_leases_held",
    "Leases this replica holds now.",
    ["service"],
)
LEASE_ACQUISITIONS = Counter(
    "copytrade_lease_acquisitions_total",
    "Leases this replica acquired: a free one (how=free) or one whose holder let it expire"
    " (how=takeover).",
    ["service", "how"],
)
LEASES_LOST = Counter(
    "copytrade_leases_lost_total",
    "Leases this replica held and lost: released on purpose (why=released) or taken while it"
    " could not renew them (why=expired).",
    ["service", "why"],
)
FENCED_WRITES = Counter(
    "copytrade_fenced_writes_total",
    "Writes and sends refused because the lease token they carried was no longer current.",
    ["service", "what"],
)
ACQUIRED_HOW = ("free", "takeover")
"""The ``how`` values of ``copytrade_lease_acquisitions_total``."""
LOST_WHY = ("released", "expired")
"""The ``why`` values of ``copytrade_leases_lost_total``."""
FENCED_WHAT = {
    "engine": ("mark_sent", "place_order", "record"),
    "sync": ("append",),
    "broker": ("fence", "place_order"),
}
"""The ``what`` values of ``copytrade_fenced_writes_total``, by the service that refuses them."""


def preinitialize(service: str) -> None:
    """Create ``service``'s lease and fencing series at 0 (every replica keeper does at start)."""
    zero_series(LEASES_HELD, service=[service])
    zero_series(LEASE_ACQUISITIONS, service=[service], how=ACQUIRED_HOW)
    zero_series(LEASES_LOST, service=[service], why=LOST_WHY)
    zero_series(FENCED_WRITES, service=[service], what=FENCED_WHAT.get(service, ()))


SCHEMA_SQL = """
CREATE TABLE {prefix}_replicas (
    replica_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    address TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE {prefix}_leases (
    resource TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    token BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
)
"""
"""The two tables, with ``{prefix}`` to fill in (a service's migration holds the result)."""

_NOW_MS = {
    "postgresql": "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    "sqlite": "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
}


class Fenced(Exception):
    """A write or send carried a lease token that is no longer the resource's current one."""

    def __init__(self, resource: str, token: int) -> None:
        super().__init__(f"lease on {resource} with token {token} is no longer current")
        self.resource = resource
        self.token = token


@dataclass(frozen=True)
class Lease:
    """A lease as stored: who holds ``resource``, under which token, for how much longer."""

    resource: str
    owner: str
    token: int
    expires_in_ms: int

    @property
    def live(self) -> bool:
        """Whether a replica holds it now."""
        return bool(self.owner) and self.expires_in_ms > 0


@dataclass(frozen=True)
class Replica:
    """A replica as stored: where it runs, and how long its last heartbeat holds."""

    replica_id: str
    host: str
    pid: int
    address: str
    expires_in_ms: int


def replica_host() -> str:
    """Return the host this replica declares: ``$REPLICA_HOST``, else the host name.

    Replicas that declare one host trust each other's process ids: a row naming a process of
    this host that no longer exists is a dead replica (:class:`LeaseKeeper` frees its leases
    at once). Distinct values make replicas of one machine behave as if on several (benches).
    """
    return os.environ.get("REPLICA_HOST", "").strip() or socket.gethostname()


def new_replica_id() -> str:
    """Return this process's replica id: ``$REPLICA_ID`` (the pod name), else host, pid, nonce."""
    given = os.environ.get("REPLICA_ID", "").strip()
    if given:
        return given
    return f"{socket.gethostname()}-{os.getpid()}-{random.randrange(16**4):04x}"


class LeaseTable:
    """The replicas and leases tables of one service (``prefix``: ``engine``, ``sync``...)."""

    def __init__(self, database: db.Database, prefix: str) -> None:
        if not prefix.isidentifier():
            raise ValueError(f"lease table prefix {prefix!r} is not an identifier")
        self.database = database
        self.prefix = prefix
        self._now = _NOW_MS[database.dialect]
        self._replicas = f"{prefix}_replicas"
        self._leases = f"{prefix}_leases"

    @property
    def now_sql(self) -> str:
        """The SQL expression of the database's clock in milliseconds since the epoch."""
        return self._now

    def current_sql(self) -> str:
        """Return a condition true when the lease ``(resource, token)`` (two ``?``) is current.

        Stores add it to a write so that a replica whose lease was taken over cannot write.
        """
        return f"EXISTS (SELECT 1 FROM {self._leases} WHERE resource = ? AND token = ?)"

    async def check_current(self, tx: db.Executor, resource: str, token: int) -> None:
        """Inside a write transaction: raise :class:`Fenced` unless ``token`` is current.

        On PostgreSQL the lease row is share-locked until the transaction ends, so a
        takeover (which updates the row) waits for this write, and a write that starts after
        the takeover sees the new token.
        """
        lock = " FOR SHARE" if self.database.dialect == "postgresql" else ""
        row = await tx.fetchone(
            f"SELECT token FROM {self._leases} WHERE resource = ?{lock}",
            (resource,),
        )
        if row is None or int(row["token"]) != token:
            raise Fenced(resource, token)

    async def heartbeat(self, replica_id: str, address: str, ttl_ms: int) -> None:
        """Say this replica is alive for ``ttl_ms`` more."""
        changed = await self.database.execute(
            f"UPDATE {self._replicas} SET expires_at = {self._now} + ?, address = ?"
            " WHERE replica_id = ?",
            (ttl_ms, address, replica_id),
        )
        if changed:
            return
        await self.database.execute(
            f"INSERT INTO {self._replicas} (replica_id, host, pid, address, started_at,"
            f" expires_at) VALUES (?, ?, ?, ?, {self._now}, {self._now} + ?)"
            " ON CONFLICT (replica_id) DO UPDATE SET expires_at = excluded.expires_at",
            (replica_id, replica_host(), os.getpid(), address, ttl_ms),
        )

    async def leave(self, replica_id: str) -> None:
        """Remove this replica's row (a graceful stop)."""
        await self.database.execute(
            f"DELETE FROM {self._replicas} WHERE replica_id = ?",
            (replica_id,),
        )

    async def replicas(self) -> list[Replica]:
        """Return every replica row, live or not, by id."""
        rows = await self.database.fetchall(
            f"SELECT replica_id, host, pid, address, expires_at - {self._now} AS left_ms"
            f" FROM {self._replicas} ORDER BY replica_id",
        )
        return [
            Replica(
                replica_id=row["replica_id"],
                host=row["host"],
                pid=int(row["pid"]),
                address=row["address"],
                expires_in_ms=int(row["left_ms"]),
            )
            for row in rows
        ]

    async def live_replicas(self) -> list[str]:
        """Return the ids of the replicas whose heartbeat has not expired."""
        return [r.replica_id for r in await self.replicas() if r.expires_in_ms > 0]

    async def leases(self) -> list[Lease]:
        """Return every lease row by resource."""
        rows = await self.database.fetchall(
            f"SELECT resource, owner, token, expires_at - {self._now} AS left_ms"
            f" FROM {self._leases} ORDER BY resource",
        )
        return [
            Lease(row["resource"], row["owner"], int(row["token"]), int(row["left_ms"]))
            for row in rows
        ]

    async def acquire(self, resource: str, replica_id: str, ttl_ms: int) -> tuple[int, bool] | None:
        """Take ``resource`` if it is free or expired.

        Returns the new token and whether the lease was taken over from a holder that let it
        expire (rather than found free), or ``None`` when another replica holds it.
        """
        await self.database.execute(
            f"INSERT INTO {self._leases} (resource, owner, token, acquired_at, expires_at)"
            " VALUES (?, '', 0, 0, 0) ON CONFLICT (resource) DO NOTHING",
            (resource,),
        )
        async with self.database.transaction() as tx:
            lock = " FOR UPDATE" if self.database.dialect == "postgresql" else ""
            row = await tx.fetchone(
                f"SELECT owner, expires_at - {self._now} AS left_ms FROM {self._leases}"
                f" WHERE resource = ?{lock}",
                (resource,),
            )
            if row is None or (row["owner"] and int(row["left_ms"]) > 0):
                return None
            taken_over = bool(row["owner"])
            updated = await tx.fetchone(
                f"UPDATE {self._leases} SET owner = ?, token = token + 1,"
                f" acquired_at = {self._now}, expires_at = {self._now} + ?"
                " WHERE resource = ? RETURNING token",
                (replica_id, ttl_ms, resource),
            )
        if updated is None:
            return None
        return int(updated["token"]), taken_over

    async def renew(self, replica_id: str, held: dict[str, int], ttl_ms: int) -> set[str]:
        """Extend the leases in ``held`` (resource to token) still ours; return those renewed."""
        if not held:
            return set()
        renewed: set[str] = set()
        for resource, token in held.items():
            changed = await self.database.execute(
                f"UPDATE {self._leases} SET expires_at = {self._now} + ?"
                " WHERE resource = ? AND owner = ? AND token = ?",
                (ttl_ms, resource, replica_id, token),
            )
            if changed:
                renewed.add(resource)
        return renewed

    async def expire_replica(self, replica_id: str) -> int:
        """Mark a replica known dead gone: its row removed, its leases free to take at once.

        Returns how many leases it held. The tokens stay, so each next holder's is higher.
        """
        freed = await self.database.execute(
            f"UPDATE {self._leases} SET expires_at = 0 WHERE owner = ?",
            (replica_id,),
        )
        await self.database.execute(
            f"DELETE FROM {self._replicas} WHERE replica_id = ?",
            (replica_id,),
        )
        return freed

    async def advance(self, resource: str, replica_id: str, token: int, above: int) -> int | None:
        """Move a lease this replica holds under ``token`` to a token above ``above``.

        For a holder whose token is behind a fence kept elsewhere (a restored database): the
        token only grows. Returns the new token, ``None`` when the lease is no longer ours.
        """
        row = await self.database.fetchone(
            f"UPDATE {self._leases} SET token = ? WHERE resource = ? AND owner = ? AND token = ?"
            " RETURNING token",
            (above + 1, resource, replica_id, token),
        )
        return int(row["token"]) if row else None

    async def release(self, resource: str, replica_id: str, token: int) -> None:
        """Give ``resource`` up at once (its token stays: the next holder's is higher)."""
        await self.database.execute(
            f"UPDATE {self._leases} SET owner = '', expires_at = 0"
            " WHERE resource = ? AND owner = ? AND token = ?",
            (resource, replica_id, token),
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed process its parent has not waited for yet (a zombie) still answers signal 0.
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")


Callback = Callable[[str, int], Awaitable[None]]


class LeaseKeeper:
    """Keeps this replica's fair share of a service's leases, round after round.

    ``wanted`` returns every resource that needs an owner now. ``on_acquired(resource,
    token)`` runs (as its own task) when a lease is taken; ``on_lost(resource, token)`` when
    one is released or could not be renewed: by then the token is no longer ours, and the
    stores refuse what is still done under it.
    """

    def __init__(
        self,
        table: LeaseTable,
        *,
        service: str,
        wanted: Callable[[], Awaitable[set[str]]],
        on_acquired: Callback,
        on_lost: Callback,
        replica_id: str | None = None,
        address: str = "",
        ttl_seconds: float = 3.0,
        interval_seconds: float | None = None,
    ) -> None:
        self.table = table
        self.service = service
        self.replica_id = replica_id or new_replica_id()
        self.address = address
        self.ttl_ms = max(int(ttl_seconds * 1000), 100)
        self.interval = interval_seconds if interval_seconds is not None else ttl_seconds / 3
        self._wanted = wanted
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._held: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._woken = asyncio.Event()
        self.rounds = 0
        preinitialize(service)
        LEASES_HELD.labels(service).set(0)

    @property
    def held(self) -> dict[str, int]:
        """The leases held now: resource to token."""
        return dict(self._held)

    async def advance(self, resource: str, token: int, above: int) -> int | None:
        """Move the lease held under ``token`` past ``above``; return its new token (or None)."""
        if self._held.get(resource) != token or above < token:
            return None
        new = await self.table.advance(resource, self.replica_id, token, above)
        if new is not None and self._held.get(resource) == token:
            self._held[resource] = new
        return new

    def holds(self, resource: str, token: int) -> bool:
        """Return whether this replica still holds ``resource`` under ``token``."""
        return self._held.get(resource) == token

    def token(self, resource: str) -> int | None:
        """Return the token under which this replica holds ``resource``, ``None`` if it does not."""
        return self._held.get(resource)

    async def start(self, *, sqlite_wait_seconds: float | None = None) -> None:
        """Join (on SQLite: refuse if another replica uses the database) and run the rounds."""
        if self.table.database.dialect == "sqlite":
            await self._refuse_second_sqlite_replica(
                self.ttl_ms / 1000 + 1 if sqlite_wait_seconds is None else sqlite_wait_seconds
            )
        # Leases under this very id are a previous run's (a container restarted in its pod
        # keeps the pod's name): this process holds none yet, so free them for the taking.
        freed = await self.table.expire_replica(self.replica_id)
        if freed:
            log.info("%s: freed %d leases of this replica's previous run", self.service, freed)
        await self.round()
        self._loop = asyncio.create_task(self._run(), name=f"{self.service}-leases")

    async def _refuse_second_sqlite_replica(self, wait_seconds: float) -> None:
        # A crashed replica's row lingers until it expires: wait that long, or skip the wait
        # when the row names a process of this host that no longer exists.
        deadline = asyncio.get_running_loop().time() + wait_seconds
        host = replica_host()
        while True:
            others = [
                r
                for r in await self.table.replicas()
                if r.replica_id != self.replica_id
                and r.expires_in_ms > 0
                and not (r.host == host and not _pid_alive(r.pid))
            ]
            if not others:
                return
            if asyncio.get_running_loop().time() >= deadline:
                other = others[0]
                raise ConfigError(
                    f"DATABASE_URL is SQLite and another {self.service} replica uses it"
                    f" ({other.replica_id}, pid {other.pid} on {other.host}): SQLite serves one"
                    " replica; run more replicas on PostgreSQL (DATABASE_URL=postgresql://...)"
                )
            await asyncio.sleep(0.2)

    def wake(self) -> None:
        """Run the next round now (work was added: a new source to own)."""
        self._woken.set()

    async def _run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
            # arrives as its timeout fires, and this loop would then outlive stop().
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._woken.wait()
            self._woken.clear()
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s lease round failed (its database?)", self.service)

    async def round(self) -> None:
        """Heartbeat, renew, drop what is not wanted, then take or hand over to the fair share."""
        self.rounds += 1
        await self.table.heartbeat(self.replica_id, self.address, self.ttl_ms)
        renewed = await self.table.renew(self.replica_id, self._held, self.ttl_ms)
        for resource in set(self._held) - renewed:
            self._lose(resource, "expired")
        wanted = await self._wanted()
        for resource in sorted(set(self._held) - wanted):
            await self._release(resource)
        live = await self._live_reaping_the_dead()
        share = math.ceil(len(wanted) / max(len(live), 1))
        extra = len(self._held) - share
        if extra > 0 and len(live) > 1:
            for resource in sorted(self._held, reverse=True)[:extra]:
                await self._release(resource)
        if len(self._held) < share:
            stored = await self.table.leases()
            free = [
                lease.resource for lease in stored if lease.resource in wanted and not lease.live
            ]
            free += sorted(wanted - {lease.resource for lease in stored})
            random.shuffle(free)
            for resource in free:
                if len(self._held) >= share:
                    break
                if resource in self._held:
                    continue
                taken = await self.table.acquire(resource, self.replica_id, self.ttl_ms)
                if taken is None:
                    continue
                token, taken_over = taken
                self._held[resource] = token
                LEASE_ACQUISITIONS.labels(self.service, "takeover" if taken_over else "free").inc()
                log.info(
                    "%s %s lease on %s (token %d)",
                    self.replica_id,
                    "took over the" if taken_over else "acquired the",
                    resource,
                    token,
                )
                self._spawn(self._on_acquired(resource, token))
        LEASES_HELD.labels(self.service).set(len(self._held))

    async def _live_reaping_the_dead(self) -> list[str]:
        # A replica of this host whose process is gone (killed with -9, restarted by its
        # supervisor) holds its leases until they expire; free them now so that the restart,
        # or a neighbour, takes over without waiting out the TTL. Fencing keeps this safe even
        # if a host name were shared: a replica wrongly reaped is refused, never duplicated.
        host = replica_host()
        live: list[str] = []
        for replica in await self.table.replicas():
            dead = (
                replica.replica_id != self.replica_id
                and replica.host == host
                and replica.pid != os.getpid()
                and not _pid_alive(replica.pid)
            )
            if dead:
                freed = await self.table.expire_replica(replica.replica_id)
                log.info(
                    "%s: replica %s (pid %d) is gone; freed its %d leases",
                    self.service,
                    replica.replica_id,
                    replica.pid,
                    freed,
                )
            elif replica.expires_in_ms > 0:
                live.append(replica.replica_id)
        return live

    async def _release(self, resource: str) -> None:
        token = self._held.get(resource)
        if token is None:
            return
        await self.table.release(resource, self.replica_id, token)
        self._lose(resource, "released")

    def _lose(self, resource: str, why: str) -> None:
        token = self._held.pop(resource)
        LEASES_LOST.labels(self.service, why).inc()
        LEASES_HELD.labels(self.service).set(len(self._held))
        if why == "expired":
            log.warning("%s lost its lease on %s (token %d)", self.replica_id, resource, token)
        self._spawn(self._on_lost(resource, token))

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await coroutine
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s lease callback failed", self.service)

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, *, release: bool = True) -> None:
        """Stop the rounds; with ``release``, hand every lease over at once and leave."""
        if self._loop is not None:
            await cancel_and_wait([self._loop])
            self._loop = None
        await cancel_and_wait(list(self._tasks))
        if release:
            with contextlib.suppress(Exception):
                for resource in sorted(self._held):
                    await self.table.release(resource, self.replica_id, self._held[resource])
                self._held.clear()
                await self.table.leave(self.replica_id)
        LEASES_HELD.labels(self.service).set(len(self._held))
