"""The chaos suite's meshes (one per backend, shared by every fault).

Environment:

* ``COPYTRADE_TEST_POSTGRES_URL``: also run every fault on a mesh over PostgreSQL (one fresh
  schema for that mesh, dropped at the end).
* ``CHAOS_SEEDS=11,42``: run exactly these seeds (replay a failure); ``CHAOS_SEED_COUNT``
  (default 5) seeds per fault otherwise, drawn from ``CHAOS_BASE_SEED`` (default fixed, so CI
  runs the same schedule every time; set it to explore new ones).
* ``CHAOS_SOAK=1``: the soak tier: 25 seeds per fault, 50 followers across ``CHAOS_VENUES``
  (default ``binance,coinbase,kraken``), 6 trades per run. Not for CI.
* ``CHAOS_VENUES=binance``: the follower venues (the leader is always on simulated Binance).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from chaos_mesh import ChaosMesh, create_schema, drop_schema, postgres_base_url


def pytest_configure(config: pytest.Config) -> None:
    """Register the chaos marker (the summary table is gathered by tests/conftest.py)."""
    config.addinivalue_line("markers", "chaos: a fault-injection run against a live mesh")


# Module scope: the meshes (a dozen processes that keep polling their leaders) stop when the
# exactly-once module ends instead of running on beside every later test of the session.
@pytest.fixture(scope="module")
def chaos_meshes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ChaosMesh]]:
    """One running mesh per backend (SQLite files; PostgreSQL when configured)."""
    base = postgres_base_url()
    meshes: dict[str, ChaosMesh] = {}
    schema = None
    try:
        meshes["sqlite"] = ChaosMesh(
            tmp_path_factory.mktemp("chaos-sqlite"), backend="sqlite", shared_database_url=None
        )
        if base:
            schema, url = asyncio.run(create_schema(base))
            meshes["postgresql"] = ChaosMesh(
                tmp_path_factory.mktemp("chaos-postgresql"),
                backend="postgresql",
                shared_database_url=url,
            )
        for mesh in meshes.values():
            mesh.start()

        async def ready() -> None:
            await asyncio.gather(*(mesh.wait_ready(timeout=90) for mesh in meshes.values()))

        asyncio.run(ready())
        yield meshes
    finally:
        for mesh in meshes.values():
            mesh.stop(grace=5)
        if base and schema:
            asyncio.run(drop_schema(base, schema))
