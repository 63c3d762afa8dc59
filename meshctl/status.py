"""``copytrade status``: each component's health, version and address, the copy configurations
per status, and which replica of each service holds which lease.

The components are asked while they run (:mod:`meshctl.probe`: gRPC health and the server info
service with the operator's certificate, the gateway's ``/readyz`` and ``/version``); one that
does not answer is shown ``DOWN`` with the reason, and the command then exits 1. The copy
configurations per status come from the engine itself. The replicas and leases are read from
the replicas and leases tables (:mod:`meshkit.leases`) of the engine, sync and broker
databases, so that part works whether the mesh runs or not; a service whose database is
missing or not migrated yet says so.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Mapping

from meshctl.launcher import Ports, database_url
from meshctl.probe import Answer, Target, ask_all, targets
from meshkit import db
from meshkit.leases import LeaseTable, Replica
from meshkit.server_info import package_version

Output = Callable[[str], None]

SERVICES = (
    ("engine", "leader sources it copies"),
    ("sync", "leader accounts it watches"),
    ("broker", ""),
)
CONFIG_STATUSES = ("ACTIVE", "PAUSED", "REDUCING", "HALTED", "STOPPED")
"""The copy configuration states (docs/copy-policy.md), in the order they are shown."""
_UNDIALABLE_HOSTS = ("0.0.0.0", "[::]", "::", "")


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f}s" if ms > 0 else "expired"


async def service_status(
    database: db.Database, service: str, what: str, out: Output
) -> list[Replica]:
    """Print one service's replicas and leases; return its replicas (``[]`` when none)."""
    table = LeaseTable(database, service)
    try:
        replicas = await table.replicas()
        leases = await table.leases() if what else []
    except Exception as e:  # the tables are not there (not migrated yet)
        out(f"{service}: no replica has started on this database ({type(e).__name__})")
        return []
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
    return replicas


async def lease_status(
    data_dir: pathlib.Path, shared_url: str | None, out: Output
) -> tuple[int, dict[str, list[Replica]]]:
    """Print every service's replicas and leases; return (0, or 1 when a database is missing,
    and the replicas of each service)."""
    code = 0
    found: dict[str, list[Replica]] = {}
    for service, what in SERVICES:
        url = database_url(data_dir, service, shared_url)
        if url.startswith("sqlite:") and not (data_dir / f"{service}.db").is_file():
            out(f"{service}: no database at {data_dir / f'{service}.db'}")
            code = 1
            continue
        database = await db.connect(url)
        try:
            found[service] = await service_status(database, service, what, out)
        finally:
            await database.close()
    return code, found


def _with_replicas(wanted: list[Target], replicas: Mapping[str, list[Replica]]) -> list[Target]:
    # A live replica the configured addresses do not name (a replica started beside the
    # first, on its own port) is asked too, under its replica id.
    known = {target.address for target in wanted}
    extra = []
    for service, rows in replicas.items():
        for replica in rows:
            host = replica.address.rsplit(":", 1)[0]
            if (
                replica.expires_in_ms > 0
                and replica.address not in known
                and host not in _UNDIALABLE_HOSTS
            ):
                known.add(replica.address)
                extra.append(Target(replica.replica_id or service, replica.address))
    return wanted + extra


def component_lines(answers: list[Answer]) -> list[str]:
    """Return the table of components: name, health, version, address (and why when down)."""
    rows = [("COMPONENT", "HEALTH", "VERSION", "ADDRESS")]
    rows += [(a.target.component, a.health, a.version or "-", a.target.address) for a in answers]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for index, row in enumerate(rows):
        line = "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        line += "  " + row[3]
        detail = answers[index - 1].detail if index else ""
        lines.append(line + (f"  ({detail})" if detail else ""))
    return lines


def configs_line(answers: list[Answer]) -> str:
    """Return the copy configurations per status, as the first engine that answered counts."""
    for answer in answers:
        if answer.target.component.startswith("engine") and answer.copy_configs_by_status:
            counts = answer.copy_configs_by_status
            statuses = [*CONFIG_STATUSES, *sorted(set(counts) - set(CONFIG_STATUSES))]
            shown = ", ".join(f"{status} {counts.get(status, 0)}" for status in statuses)
            return f"copy configurations: {shown} (total {sum(counts.values())})"
    return "copy configurations: unknown (no engine answered with its counts)"


async def status(
    data_dir: pathlib.Path,
    shared_url: str | None,
    out: Output = print,
    *,
    ports: Ports | None = None,
    gateway_url: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> int:
    """Print the components, the configurations per status, the replicas and leases.

    Return 0 when every component serves and every lease database is there, else 1.
    """
    lease_lines: list[str] = []
    code, replicas = await lease_status(data_dir, shared_url, lease_lines.append)
    wanted = _with_replicas(targets(ports or Ports(), environ, gateway_url=gateway_url), replicas)
    answers = await ask_all(data_dir, wanted, environ)
    for line in component_lines(answers):
        out(line)
    out(configs_line(answers))
    out("")
    for line in lease_lines:
        out(line)
    down = [a.target.component for a in answers if not a.up]
    if down:
        out(f"not serving: {', '.join(down)}")
        code = 1
    return code


async def versions(
    data_dir: pathlib.Path,
    out: Output = print,
    *,
    ports: Ports | None = None,
    gateway_url: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> int:
    """Print this command's package version and each running component's; always return 0."""
    out(f"copytrade {package_version()} (this command)")
    wanted = targets(ports or Ports(), environ, gateway_url=gateway_url)
    answers = await ask_all(data_dir, wanted, environ)
    width = max(len(a.target.component) for a in answers)
    for answer in answers:
        said = answer.version or "unreachable"
        why = f"  ({answer.detail})" if not answer.version and answer.detail else ""
        out(f"{answer.target.component.ljust(width)}  {said}  {answer.target.address}{why}")
    return 0
