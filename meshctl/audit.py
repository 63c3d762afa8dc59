"""``copytrade audit verify``: check every service's audit chain and name the first bad entry.

The local mesh keeps each service's chain in its own SQLite file (``<data dir>/<service>.db``);
with ``--database-url`` one PostgreSQL database holds every table. A file or table that is
missing is a problem too: a chain that was dropped proves nothing.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

from meshkit import db
from meshkit.audit import CHAINS, ChainReport, table_of, verify_table

Output = Callable[[str], None]


async def _table_exists(database: db.Database, table: str) -> bool:
    if database.dialect == "postgresql":
        row = await database.fetchone(
            "SELECT COUNT(*) > 0 AS found FROM information_schema.tables"
            " WHERE table_name = ? AND table_schema = current_schema()",
            (table,),
        )
    else:
        row = await database.fetchone(
            "SELECT COUNT(*) > 0 AS found FROM sqlite_master WHERE type = 'table' AND name = ?",
            (table,),
        )
    return bool(row and row["found"])


async def _verify(database: db.Database, chain: str, out: Output) -> bool:
    if not await _table_exists(database, table_of(chain)):
        out(f"{chain}: no table {table_of(chain)} (never migrated, or dropped)")
        return False
    report: ChainReport = await verify_table(database, chain)
    out(str(report))
    return report.ok


async def verify(
    data_dir: pathlib.Path,
    database_url: str | None = None,
    out: Output = print,
) -> int:
    """Check every chain; print one line per chain; return 0 when all are intact, else 1."""
    ok = True
    if database_url:
        database = await db.connect(database_url)
        try:
            for chain in CHAINS:
                ok = await _verify(database, chain, out) and ok
        finally:
            await database.close()
        return 0 if ok else 1
    for chain in CHAINS:
        path = data_dir / f"{chain}.db"
        if not path.is_file():
            out(f"{chain}: no database at {path}")
            ok = False
            continue
        database = await db.connect(f"sqlite:///{path.resolve()}")
        try:
            ok = await _verify(database, chain, out) and ok
        finally:
            await database.close()
    return 0 if ok else 1
