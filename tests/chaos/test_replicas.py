"""Several replicas of every stateful service share the work: a replica killed or paused
leaves every leader fill copied exactly once, and its leaders are taken over.

One mesh on PostgreSQL with 3 engine, 2 sync and 2 broker replicas (``LEASE_TTL_MS`` 2000),
3 leaders and 50 followers over Binance, Coinbase and Kraken (``replica_harness``). Each
scenario hits one replica while a fan-out is under way and checks the window's fills with the
chaos invariants (0 duplicates, 0 missing, 0 unresolved). The takeover time (the fault to the
first copy of a fill made after it, on a leader the replica held) is printed and put in the
chaos summary, never asserted: ``bench/takeover.py`` reports it.

On SQLite a second replica refuses to start (SQLite serves one replica).

Seeds: one per scenario (``CHAOS_REPLICA_SEED_COUNT``; five with ``CHAOS_SOAK=1``;
``CHAOS_SEEDS`` replays). The module keeps to one pytest-xdist group (its mesh starts once).
"""

from __future__ import annotations

import asyncio
import os
import pathlib
from collections.abc import Iterator

import aiohttp
import pytest
from chaos_mesh import ChaosMesh, create_schema, drop_schema, postgres_base_url
from chaos_summary import ROWS_PROPERTY
from replica_harness import (
    REPLICAS,
    Book,
    Leader,
    ScenarioResult,
    as_rows,
    drive,
    replica_env,
    seeds_for,
    takeover_properties,
    takeover_summary,
)

from meshkit.testing import database_urls

# PostgreSQL only: SQLite serves one replica (the last test shows the refusal).
POSTGRES = [backend for backend in database_urls() if backend == "postgresql"]
SETUP_SEED = 7


@pytest.fixture(scope="module")
def replica_world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ChaosMesh, str, list[Leader]]]:
    """The replica mesh on a fresh PostgreSQL schema, with its user, leaders and followers."""
    base = postgres_base_url()
    assert base, "the replica tier needs COPYTRADE_TEST_POSTGRES_URL"
    schema, url = asyncio.run(create_schema(base))
    mesh = ChaosMesh(
        tmp_path_factory.mktemp("chaos-replicas"),
        backend="postgresql",
        shared_database_url=url,
        extra_env=replica_env(),
        replicas=REPLICAS,
    )
    try:
        mesh.start()

        async def ready() -> tuple[str, list[Leader]]:
            await mesh.wait_ready(timeout=120)
            async with aiohttp.ClientSession() as session:
                book = Book(mesh, session)
                await book.setup(SETUP_SEED)
                # Every leader has an engine and a sync owner before the first fault.
                for _ in range(100):
                    engines, syncs = await book.holders("engine"), await book.holders("sync")
                    if len(engines) == len(book.leaders) and len(syncs) == len(book.leaders):
                        break
                    await asyncio.sleep(0.2)
                return book.token, book.leaders

        token, leaders = asyncio.run(ready())
        yield mesh, token, leaders
    finally:
        mesh.stop(grace=5)
        asyncio.run(drop_schema(base, schema))


async def _run(
    world: tuple[ChaosMesh, str, list[Leader]],
    request: pytest.FixtureRequest,
    scenario: str,
    service: str,
    fault: str,
) -> list[ScenarioResult]:
    mesh, token, leaders = world
    results = []
    async with aiohttp.ClientSession() as session:
        book = Book(mesh, session, token, leaders)
        for seed in seeds_for(scenario):
            results.append(await drive(book, scenario, service, fault, seed))
    request.node.user_properties.append((ROWS_PROPERTY, as_rows(results, scenario)))
    request.node.user_properties.append(("replica_takeover", takeover_properties(results)))
    logs = str(mesh.data_dir / "logs")
    print(f"\n{scenario}: takeover {takeover_summary(r.takeover_s for r in results)}")
    if os.environ.get("CHAOS_VERBOSE"):
        print("\n\n".join(r.report(logs) for r in results))
    failed = [r.report(logs) for r in results if not r.ok]
    assert not failed, "\n\n".join(failed)
    assert all(r.findings.expected > 0 for r in results), "a run made no leader fill to copy"
    assert all(r.settled for r in results), "\n\n".join(r.report(logs) for r in results)
    return results


@pytest.mark.parametrize("backend", POSTGRES)
async def test_an_engine_replica_killed_mid_fanout_leaves_its_leaders_copied_exactly_once(
    backend: str, replica_world: tuple[ChaosMesh, str, list[Leader]], request: pytest.FixtureRequest
) -> None:
    await _run(replica_world, request, "replicas: kill -9 engine replica", "engine", "kill")


@pytest.mark.parametrize("backend", POSTGRES)
async def test_a_sync_replica_killed_leaves_the_leaders_it_watched_copied_exactly_once(
    backend: str, replica_world: tuple[ChaosMesh, str, list[Leader]], request: pytest.FixtureRequest
) -> None:
    await _run(replica_world, request, "replicas: kill -9 sync replica", "sync", "kill")


@pytest.mark.parametrize("backend", POSTGRES)
async def test_a_broker_replica_killed_leaves_every_copy_placed_exactly_once(
    backend: str, replica_world: tuple[ChaosMesh, str, list[Leader]], request: pytest.FixtureRequest
) -> None:
    await _run(replica_world, request, "replicas: kill -9 broker replica", "broker", "kill")


@pytest.mark.parametrize("backend", POSTGRES)
async def test_an_engine_replica_paused_past_its_lease_neither_writes_nor_sends_when_it_wakes(
    backend: str, replica_world: tuple[ChaosMesh, str, list[Leader]], request: pytest.FixtureRequest
) -> None:
    # The others take its leaders over while it sleeps (3x its lease); when it wakes, what it
    # still had in hand is refused under its old token (copytrade_fenced_writes_total), it
    # counts its leases lost, and no copy is doubled.
    results = await _run(
        replica_world, request, "replicas: SIGSTOP engine replica 3x lease", "engine", "pause"
    )
    for result in results:
        print(
            f"  {result.target}: fenced writes after waking {result.fenced_writes},"
            f" leases lost as expired {result.leases_lost_expired}, orders the brokers"
            f" refused as fenced {result.broker_fenced}"
        )


async def test_a_second_engine_replica_on_one_sqlite_file_refuses_to_start(
    tmp_path: pathlib.Path,
) -> None:
    mesh = ChaosMesh(tmp_path, backend="sqlite", shared_database_url=None, replicas={"engine": 2})
    mesh.ensure_credentials()
    (tmp_path / "logs").mkdir(parents=True, exist_ok=True)
    mesh.components = mesh._plan()
    try:
        mesh.spawn(mesh.component("engine-1"))
        await mesh.wait_component_ready("engine-1", timeout=60)
        mesh.spawn(mesh.component("engine-2"))
        assert await mesh.wait_exit("engine-2", timeout=30), "a second SQLite replica ran"
        assert mesh.component("engine-2").process.returncode != 0
        assert "SQLite serves one replica" in mesh.log_tail("engine-2")
        assert mesh.alive("engine-1")
    finally:
        for name in ("engine-2", "engine-1"):
            mesh.terminate(name)
