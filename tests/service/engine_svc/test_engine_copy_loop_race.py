"""Two engines closing one copy loop at the same moment: exactly one of them writes.

Alice follows Bob's published leader into her published account while Bob, on another engine
replica, follows Alice's leader into his: each start alone is fine, both together would copy
each other's trades back forever. Each engine's in-process lock serialises only its own
starts; the store runs the loop check again inside the write, under the copy graph's lock
(PostgreSQL: an advisory lock; SQLite: the write transaction), so the second write sees the
first. The two engines here use two connections (pools) to one database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from engine_fakes import USER
from engine_harness import Harness

from copytrade.engine.v1 import engine_service_pb2 as pb
from engine_svc.configs import ConfigService, StartCopy
from engine_svc.domain.model import ConfigSettings, CopyConfig, CopyStatus
from engine_svc.server import EngineDeps, build_engine
from engine_svc.store import EngineStore
from meshkit import db, errors
from meshkit.testing import database_urls, fresh_database

BOB = "user-bob"
ROUNDS = 4


@pytest.fixture(params=database_urls())
async def database_and_url(
    request: pytest.FixtureRequest, tmp_path: object
) -> AsyncIterator[tuple[db.Database, str]]:
    async with fresh_database(request.param, tmp_path) as pair:
        yield pair


@pytest.fixture
def database(database_and_url: tuple[db.Database, str]) -> db.Database:
    # The first engine's database (the harness's); the second opens its own on the same URL.
    return database_and_url[0]


@pytest.fixture
async def second_store(database_and_url: tuple[db.Database, str]) -> AsyncIterator[EngineStore]:
    store = EngineStore(await db.connect(database_and_url[1]))
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def engines(
    harness: Harness, second_store: EngineStore
) -> AsyncIterator[tuple[ConfigService, ConfigService]]:
    """The running engine's configuration use cases, and a second engine's on its own store."""
    second = await build_engine(
        harness.settings(), EngineDeps(store=second_store, clock=harness.clock)
    )
    try:
        assert harness.engine is not None
        yield harness.engine.configs, second.configs
    finally:
        await second.stop()


async def _published(harness: Harness, user: str) -> tuple[str, str]:
    """Publish a new account of ``user``; return the leader id and the account id."""
    account = harness.world.broker.add_account(user)
    reply = await harness.call(
        "PublishLeader",
        pb.PublishLeaderRequest(exchange_id=account.exchange_id, display_name=user),
        user=user,
    )
    return reply.leader.leader_id, account.exchange_id


def _follow(leader_id: str, target: str) -> StartCopy:
    return StartCopy("", "", [target], ConfigSettings(), source_leader_id=leader_id)


def _one_refused(outcomes: list[object]) -> object:
    """Assert that one outcome is a refusal naming the loop's target; return the other."""
    refused = [o for o in outcomes if isinstance(o, errors.InvalidArgument)]
    assert len(refused) == 1, outcomes
    assert [(v.field, v.description) for v in refused[0].violations] == [
        ("target_exchange_ids[0]", "copying into this account would copy its own trades back")
    ]
    (other,) = [o for o in outcomes if o is not refused[0]]
    return other


async def _copying(harness: Harness, *targets: str) -> list[CopyConfig]:
    configs = await harness.store.configs_in_states([CopyStatus.ACTIVE])
    return [c for c in configs if set(c.target_exchange_ids) & set(targets)]


async def test_two_replicas_starting_the_halves_of_a_loop_at_once_start_one(
    harness: Harness, engines: tuple[ConfigService, ConfigService]
) -> None:
    first, second = engines
    for _ in range(ROUNDS):
        alice_leader, alice_account = await _published(harness, USER)
        bob_leader, bob_account = await _published(harness, BOB)
        outcomes = await asyncio.gather(
            first.start(USER, _follow(bob_leader, alice_account)),
            second.start(BOB, _follow(alice_leader, bob_account)),
            return_exceptions=True,
        )
        started = _one_refused(list(outcomes))
        assert isinstance(started, CopyConfig)
        assert [c.config_id for c in await _copying(harness, alice_account, bob_account)] == [
            started.config_id
        ]


async def test_a_resume_and_a_start_closing_a_loop_at_once_let_one_through(
    harness: Harness, engines: tuple[ConfigService, ConfigService]
) -> None:
    # Alice's halted configuration copies nothing; resuming it on one replica while Bob starts
    # the other half on another closes the loop unless one of them is refused.
    first, second = engines
    for _ in range(ROUNDS):
        alice_leader, alice_account = await _published(harness, USER)
        bob_leader, bob_account = await _published(harness, BOB)
        alice = await first.start(USER, _follow(bob_leader, alice_account))
        await first.kill_switch(USER, alice.config_id)
        outcomes = await asyncio.gather(
            first.resume(USER, alice.config_id),
            second.start(BOB, _follow(alice_leader, bob_account)),
            return_exceptions=True,
        )
        through = _one_refused(list(outcomes))
        assert isinstance(through, CopyConfig)
        assert through.status is CopyStatus.ACTIVE
        assert [c.config_id for c in await _copying(harness, alice_account, bob_account)] == [
            through.config_id
        ]


async def test_a_start_refused_at_the_write_unwatches_the_own_account_it_watched(
    harness: Harness,
    engines: tuple[ConfigService, ConfigService],
    second_store: EngineStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Bob follows his own leader X into his account B on one replica; on the other, his start
    # copying B into X read the graph before that commit (the early check sees nothing), so
    # it watches B and is refused only at the write: B is not left watched for nothing.
    first, second = engines
    leader, x = await _published(harness, BOB)
    b = harness.world.broker.add_account(BOB).exchange_id
    await first.start(BOB, _follow(leader, b))

    async def before_that_commit(statuses: object) -> list[CopyConfig]:
        return []

    monkeypatch.setattr(second_store, "copy_graph", before_that_commit)
    with pytest.raises(errors.InvalidArgument) as refused:
        await second.start(BOB, StartCopy("", b, [x], ConfigSettings()))
    assert [v.field for v in refused.value.violations] == ["target_exchange_ids[0]"]
    assert [w.exchange_id for w in harness.world.sync.watch_calls][-1] == b
    assert harness.world.sync.unwatch_calls == [b]
    assert [c.source_id for c in await harness.store.configs_of_source(b)] == []
