"""Fixtures of the sync service tests: a fake broker, a store on each backend, a running service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sync_helpers import FAST

from copytrade.sync.v1 import sync_service_pb2_grpc as pb_grpc
from meshkit import db
from meshkit.testing import AuthorizedStub, mesh_trust
from sync_svc.access import RULES
from sync_svc.config import Settings
from sync_svc.exchange_sync import SyncTiming
from sync_svc.server import Deps, SyncService, build_service
from sync_svc.store import SyncStore
from tests.fakes.broker import FakeBrokerPort
from tests.fakes.clock import FakeClock


@pytest.fixture
def broker() -> FakeBrokerPort:
    return FakeBrokerPort()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock.real_time()


@pytest.fixture
async def store(database: db.Database) -> SyncStore:
    sync_store = SyncStore(database)
    await sync_store.migrate()
    return sync_store


@pytest.fixture
def timing() -> SyncTiming:
    return FAST


@pytest.fixture
async def service(
    store: SyncStore, broker: FakeBrokerPort, clock: FakeClock, timing: SyncTiming
) -> AsyncIterator[SyncService]:
    settings = Settings(grpc_port=0, metrics_port=0, heartbeat_seconds=0.2, **mesh_trust("sync"))
    svc, close = await build_service(
        settings,
        Deps(store=store, broker=broker, clock=clock, timing=timing),
    )
    try:
        yield svc
    finally:
        await svc.running.stop(None)
        await close()


@pytest.fixture
async def stub(service: SyncService) -> AsyncIterator[pb_grpc.SyncServiceStub]:
    authorized = AuthorizedStub(pb_grpc.SyncServiceStub, f"127.0.0.1:{service.running.port}", RULES)
    try:
        yield authorized
    finally:
        await authorized.close()
