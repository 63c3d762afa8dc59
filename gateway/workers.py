"""Several gateway processes on one port (``GATEWAY_WORKERS``).

One Python process answers about 1,300 cheap reads a second on one core (aiohttp and the gRPC
client are most of it). With ``GATEWAY_WORKERS=N`` (N > 1) ``python -m gateway`` becomes a
supervisor:

1. it migrates the store once, then reserves the port: a socket bound with ``SO_REUSEPORT``
   and never listening (``GATEWAY_PORT=0`` picks the port here, so every worker gets the same);
2. it starts N workers, each ``python -m gateway`` with the same environment plus the
   internal ``GATEWAY_WORKER`` (``index/count/supervisor pid/shared directory``); each binds
   the port with ``SO_REUSEPORT`` (the kernel spreads new connections over them) and skips the
   migrations;
3. worker 0 alone runs the singleton background work (the webhook dispatcher:
   :mod:`gateway.webhooks.dispatcher`), so no event is delivered twice on SQLite, where it
   has no lease;
4. the per-user and per-address rate limits, and the dashboard tickets already spent, live
   in small tables in shared memory (:class:`SharedTable`, a file under ``/dev/shm`` locked
   with ``flock``), so a user sees the configured limit whichever worker its connections
   reach, and a ticket is spent once for all workers;
5. a worker dies with its supervisor: ``PR_SET_PDEATHSIG`` (SIGTERM when the supervisor dies,
   even by SIGKILL), and a worker that finds its supervisor gone at start exits. SIGTERM or
   SIGINT to the supervisor stops every worker gracefully (requests in flight finish) and
   waits for them; a worker that exits on its own stops the others and the supervisor exits
   with its code (the orchestrator restarts the whole gateway).

``GATEWAY_WORKERS=1`` (the default) serves in the one process, as before: in the mesh and in
Kubernetes the services share the machine's cores with the gateway, and a replica is the unit
of scale there; ``auto`` starts one worker per CPU this process may run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import hashlib
import logging
import mmap
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.config import Settings

log = logging.getLogger("gateway.workers")

WORKER_VARIABLE = "GATEWAY_WORKER"
"""Internal: set by the supervisor for its workers (``index/count/supervisor pid/directory``)."""
STOP_GRACE_SECONDS = 10.0
"""How long the supervisor waits for its workers after SIGTERM before SIGKILL."""
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerRole:
    """Which worker this process is, of how many, under which supervisor."""

    index: int
    count: int
    supervisor_pid: int
    shared_dir: str

    @property
    def singleton(self) -> bool:
        """Return whether this worker runs the gateway's singleton background work."""
        return self.index == 0

    def encode(self) -> str:
        """Return the value of ``GATEWAY_WORKER`` that names this role."""
        return f"{self.index}/{self.count}/{self.supervisor_pid}/{self.shared_dir}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> WorkerRole | None:
        """Return the role the supervisor gave this process, or ``None`` for no supervisor."""
        raw = environ.get(WORKER_VARIABLE, "")
        if not raw:
            return None
        index, count, pid, directory = raw.split("/", 3)
        return cls(int(index), int(count), int(pid), directory)


def die_with_supervisor(role: WorkerRole) -> None:
    """Ask the kernel for SIGTERM when the supervisor dies; exit now if it is already gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != role.supervisor_pid:  # it died before the prctl above
        os._exit(1)


# ---------------------------------------------------------------------- shared tables

_SLOT = struct.Struct("<Qdd")  # key hash (0: free), then two numbers the user of the table owns
_PROBES = 16


class SharedTable:
    """A fixed table of ``(key, a, b)`` slots in a file mapped by every worker, under ``flock``.

    A key is found by open addressing from its hash over at most 16 slots. :meth:`update`
    runs a function on a key's numbers under the lock; a slot the function calls reusable
    (``reusable(a, b)``: an idle bucket, an expired ticket) is taken by a new key.
    """

    def __init__(self, path: str, slots: int) -> None:
        self.path = path
        self.slots = slots
        size = slots * _SLOT.size
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._lock_fd = os.open(path, os.O_RDWR)

    @staticmethod
    def key_hash(key: str) -> int:
        """Return the table's 64-bit hash of ``key`` (never 0, the free mark)."""
        value = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
        return value or 1

    def update(
        self,
        key: str,
        fresh: tuple[float, float],
        reusable: Callable[[float, float], bool],
        change: Callable[[float, float], tuple[tuple[float, float], Any]],
    ) -> tuple[bool, Any]:
        """Apply ``change`` to the numbers of ``key`` (``fresh`` for a new key) and store them.

        Returns ``(True, what change returned)``, or ``(False, None)`` when no slot is free.
        """
        wanted = self.key_hash(key)
        start = wanted % self.slots
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            spare = -1
            for step in range(_PROBES):
                slot = (start + step) % self.slots
                offset = slot * _SLOT.size
                held, a, b = _SLOT.unpack_from(self._map, offset)
                if held == wanted:
                    (a, b), result = change(a, b)
                    _SLOT.pack_into(self._map, offset, wanted, a, b)
                    return True, result
                if spare < 0 and (held == 0 or reusable(a, b)):
                    spare = slot
            if spare < 0:
                return False, None
            (a, b), result = change(*fresh)
            _SLOT.pack_into(self._map, spare * _SLOT.size, wanted, a, b)
            return True, result
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Unmap the table and close its lock."""
        self._map.close()
        os.close(self._lock_fd)


class SharedBuckets:
    """Token buckets shared by the workers: ``rate`` a second, ``burst`` at once, per key.

    When the table has no room for a key (more than 16 busy keys on its probe path), ``local``
    (this worker's own bucket with ``rate / workers``) decides.
    """

    def __init__(
        self,
        table: SharedTable,
        rate: float,
        burst: int,
        local: Callable[[str], float],
    ) -> None:
        self.table = table
        self.rate = rate
        self.burst = float(burst)
        self.local = local

    def acquire(self, key: str, now: float) -> float:
        """Take one token for ``key``; return 0 when allowed, else the seconds to wait."""
        rate, burst = self.rate, self.burst

        def change(tokens: float, last: float) -> tuple[tuple[float, float], float]:
            tokens = min(burst, tokens + max(0.0, now - last) * rate)
            if tokens >= 1.0:
                return (tokens - 1.0, now), 0.0
            return (tokens, now), (1.0 - tokens) / rate

        def idle(tokens: float, last: float) -> bool:  # refilled: the same as a new bucket
            return tokens + (now - last) * rate >= burst

        stored, wait = self.table.update(key, (burst, now), idle, change)
        return float(wait) if stored else self.local(key)


class SharedSpent:
    """Ids spent once for all workers (the dashboard's tickets), each until its expiry."""

    def __init__(self, table: SharedTable) -> None:
        self.table = table

    def spend(self, key: str, expires_at: float, now: float) -> bool | None:
        """Mark ``key`` spent; ``True`` the first time, ``False`` after, ``None``: no room."""

        def change(expiry: float, _unused: float) -> tuple[tuple[float, float], bool]:
            first = expiry <= 0.0
            return (max(expiry, expires_at), 0.0), first

        def expired(expiry: float, _unused: float) -> bool:
            return expiry < now

        stored, first = self.table.update(key, (0.0, 0.0), expired, change)
        return bool(first) if stored else None


SHARED_SLOTS = 16_384
"""Slots per shared table: more users (addresses, live tickets) active at once than that
only fall back to each worker's own share."""


def shared_table(role: WorkerRole, name: str) -> SharedTable:
    """Open (creating when first) the shared table ``name`` of this gateway's workers."""
    return SharedTable(os.path.join(role.shared_dir, name), SHARED_SLOTS)


# ---------------------------------------------------------------------- the supervisor


def worker_count(settings: Settings) -> int:
    """Return how many workers to run: ``GATEWAY_WORKERS``, 0 meaning one per usable CPU."""
    if settings.workers > 0:
        return settings.workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind ``host:port`` with ``SO_REUSEPORT`` without listening; the workers bind it too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _shared_dir() -> str:
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return tempfile.mkdtemp(prefix="copytrade-gateway-", dir=base)


async def supervise(
    settings: Settings,
    count: int,
    migrate: Callable[[], Any],
    environ: Mapping[str, str] = os.environ,
) -> int:
    """Migrate, reserve the port, run ``count`` workers until signalled; return the exit code.

    Raises
    ------
    OSError
        When the port cannot be bound (``EADDRINUSE``).
    """
    await migrate()
    reservation = reserve_port(settings.bind_host, settings.port)
    port = reservation.getsockname()[1]
    directory = _shared_dir()
    workers: list[asyncio.subprocess.Process] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        for index in range(count):
            role = WorkerRole(index, count, os.getpid(), directory)
            env = {**environ, "GATEWAY_PORT": str(port), WORKER_VARIABLE: role.encode()}
            workers.append(
                await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", env=env)
            )
        log.info("gateway: %d workers on %s:%s", count, settings.bind_host, port)
        ended = [asyncio.ensure_future(w.wait()) for w in workers]
        stopping = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([stopping, *ended], return_when=asyncio.FIRST_COMPLETED)
        if stopping not in done:
            failed = next(w for w, e in zip(workers, ended, strict=True) if e in done)
            code = failed.returncode or 1
            log.error("a gateway worker exited with %s: stopping the others", failed.returncode)
        stopping.cancel()
        await _stop_all(workers)
        for task in ended:
            task.cancel()
    finally:
        for w in workers:
            if w.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    w.kill()
                await w.wait()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        reservation.close()
        shutil.rmtree(directory, ignore_errors=True)
    return code


async def _stop_all(workers: list[asyncio.subprocess.Process]) -> None:
    for w in workers:
        if w.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                w.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for w in workers:
        try:
            await asyncio.wait_for(w.wait(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                w.kill()
            await w.wait()


def address_in_use(error: OSError) -> bool:
    """Return whether ``error`` says the port is taken."""
    return error.errno == errno.EADDRINUSE
