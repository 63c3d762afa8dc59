"""``copytrade status``: which replica of each service runs, and which holds which lease.

It reads the replicas and leases tables (:mod:`meshkit.leases`) of the engine, sync and
broker databases, as the operator's other commands read the stores, and works whether the
mesh runs or not. A service whose database is missing or not migrated yet says so.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

from meshctl.launcher import database_url
from meshkit import db
from meshkit.leases import LeaseTable

Output = Callable[[str], None]

SERVICES = (
    ("engine", "leader sources it copies"),
    ("sync", "leader accounts it watches"),
    ("broker", ""),
)


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f}s" if ms > 0 else "expired"


async def service_status(database: db.Database, service: str, what: str, out: Output) -> None:
    table = LeaseTable(database, service)
    try:
        replicas = await table.replicas()
        leases = await table.leases() if what else []
    except Exception as e:  # the tables are not there (not migrated yet)
        out(f"{service}: no replica has started on this database ({type(e).__name__})")
        return
    live = [r for r in replicas if r.expires_in_ms > 0]
    out(f"{service}: {len(live)} live replica(s)")
    for replica in replicas:
        state = "live" if replica.expires_in_ms > 0 else "gone"
        held = sum(1 for lease in leases if lease.owner == replica.replica_id and lease.live)
        counted = f", holds {held}" if what else ""
        out(
            f"  {replica.replica_id}  {replica.address or '-'}  pid {replica.pid} on"
            f" {replica.host}  {state} ({_seconds(replica.expires_in_ms)} left{counted})"
        )
    if what:
        out(f"  leases ({what}):")
        if not leases:
            out("    none")
        for lease in leases:
            holder = lease.owner if lease.live else "nobody (free)"
            out(f"    {lease.resource}  {holder}  token {lease.token}")


async def status(data_dir: pathlib.Path, shared_url: str | None, out: Output = print) -> int:
    """Print every service's replicas and leases; return 0, or 1 when a database is missing."""
    code = 0
    for service, what in SERVICES:
        url = database_url(data_dir, service, shared_url)
        if url.startswith("sqlite:") and not (data_dir / f"{service}.db").is_file():
            out(f"{service}: no database at {data_dir / f'{service}.db'}")
            code = 1
            continue
        database = await db.connect(url)
        try:
            await service_status(database, service, what, out)
        finally:
            await database.close()
    return code
