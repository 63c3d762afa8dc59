"""``python -m <service> migrate``: applies the service's migrations with only DATABASE_URL set
(the broker needs no ENCRYPTION_KEY, no service needs TLS), prints one line and exits 0; a second
run finds nothing to do. On SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess
import sys

import pytest

from meshkit import db

ROOT = pathlib.Path(__file__).resolve().parents[3]
SERVICES = {
    "broker_svc": "broker",
    "engine_svc": "engine",
    "sync_svc": "sync",
    "recon_svc": "recon",
    "gateway": "gateway",
}


def migrate(module: str, url: str, cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": url,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "gen"), str(ROOT)]),
    }
    return subprocess.run(
        [sys.executable, "-m", module, "migrate"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def applied_versions(url: str, service: str) -> list[int]:
    database = await db.connect(url)
    try:
        rows = await database.fetchall(
            "SELECT version FROM schema_migrations WHERE service = ? ORDER BY version",
            (service,),
        )
    finally:
        await database.close()
    return [int(row["version"]) for row in rows]


@pytest.mark.parametrize("module", sorted(SERVICES))
async def test_migrate_applies_the_schema_once_and_exits_zero(
    module: str,
    database_url: str,
    tmp_path: pathlib.Path,
) -> None:
    first = await asyncio.to_thread(migrate, module, database_url, tmp_path)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.strip().splitlines()
    assert len(lines) == 1, first.stdout
    said = json.loads(lines[0])["message"]  # every line is JSON (docs/logging.md)
    assert said.startswith(f"{module}: migrated ") and "applied 0001" in said, said
    versions = await applied_versions(database_url, SERVICES[module])
    assert versions and versions[0] == 1

    second = await asyncio.to_thread(migrate, module, database_url, tmp_path)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["message"].endswith("already up to date"), second.stdout
    assert await applied_versions(database_url, SERVICES[module]) == versions


async def test_migrate_with_postgresql_down_exits_unavailable(tmp_path: pathlib.Path) -> None:
    result = await asyncio.to_thread(
        migrate,
        "broker_svc",
        "postgresql://nobody:secret-pw@127.0.0.1:1/x",
        tmp_path,
    )
    assert result.returncode == 1
    assert "127.0.0.1:1" in result.stderr and "secret-pw" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
