"""Fixtures of the engine's service tests: fakes of broker and sync, and a running engine."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from engine_fakes import World
from engine_harness import Harness

from engine_svc.store import EngineStore
from meshkit import db
from meshkit.testing import inprocess_server
from tests.fakes.clock import FakeClock


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
async def harness(world: World, database: db.Database) -> AsyncIterator[Harness]:
    store = EngineStore(database)
    await store.migrate()
    async with inprocess_server(world.registrations()) as (fakes, _channel):
        harness = Harness(world, store, FakeClock.real_time(), f"127.0.0.1:{fakes.port}")
        await harness.start()
        try:
            yield harness
        finally:
            await harness.stop()
