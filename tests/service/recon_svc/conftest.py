"""Fixtures of the reconciliation service tests: a scripted world, fakes, a running service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from recon_fakes import Mesh, World, registrations

from copytrade.recon.v1 import recon_service_pb2_grpc as pb_grpc
from meshkit import db
from meshkit.testing import AuthorizedStub, inprocess_server, mesh_trust
from recon_svc.access import RULES
from recon_svc.config import Settings
from recon_svc.server import Dependencies, build_server
from recon_svc.store import ReconStore


@pytest.fixture
def world(request: pytest.FixtureRequest) -> World:
    """A fresh world for each test; ``parametrize("world", [seconds], indirect=True)`` sets the
    reconciliation's time budget (a World built at import would be shared, and mutated, by the
    test's SQLite and PostgreSQL runs)."""
    budget = getattr(request, "param", None)
    return World() if budget is None else World(budget_seconds=budget)


@pytest.fixture
async def mesh(world: World, database: db.Database) -> AsyncIterator[Mesh]:
    async with inprocess_server(registrations(world)) as (fakes, _channel):
        address = f"127.0.0.1:{fakes.port}"
        settings = Settings(
            grpc_port=0,
            metrics_port=0,
            engine_svc_addr=address,
            sync_svc_addr=address,
            broker_svc_addr=address,
            rpc_timeout_seconds=5,
            reconcile_budget_seconds=world.budget_seconds,
            **mesh_trust("recon"),
        )
        store = ReconStore(database)
        running, release = await build_server(
            settings,
            Dependencies(store=store, clock=world.clock),
        )
        stub = AuthorizedStub(pb_grpc.ReconServiceStub, f"127.0.0.1:{running.port}", RULES)
        try:
            yield Mesh(stub, store, world)
        finally:
            await stub.close()
            await running.server.stop(grace=None)
            await release()
