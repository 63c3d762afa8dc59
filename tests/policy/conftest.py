"""Fixtures of the policy tests: the real engine and the real gateway, fakes behind them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from engine_svc.config import Settings as EngineSettings
from engine_svc.server import EngineDeps, build_engine
from engine_svc.store import EngineStore
from gateway.config import Settings as GatewaySettings
from gateway.server import GatewayDeps, build_app
from gateway.users import add_user
from meshkit import db
from meshkit.testing import TEST_SIGNER, inprocess_server, mesh_trust, secure_channel
from tests.fakes.clock import FakeClock
from tests.policy.policy_support import PolicyHarness
from tests.service.engine_svc.engine_fakes import World

ENGINE_SERVICE = engine_pb.DESCRIPTOR.services_by_name["EngineService"]


@pytest.fixture
async def policy(database: db.Database) -> AsyncIterator[PolicyHarness]:
    """A pro user calling the real gateway, in front of the real engine on ``database``."""
    world = World()
    store = EngineStore(database)
    await store.migrate()
    clock = FakeClock.real_time()
    async with inprocess_server(world.registrations()) as (fakes, _channel):
        address = f"127.0.0.1:{fakes.port}"
        engine = await build_engine(
            EngineSettings(
                grpc_port=0,
                metrics_port=0,
                broker_svc_addr=address,
                sync_svc_addr=address,
                resolver_interval_ms=50,
                place_timeout_ms=3000,
                read_timeout_ms=3000,
                **mesh_trust("engine"),
            ),
            EngineDeps(store=store, clock=clock),
        )
        running = await engine.start()
        channel = secure_channel(f"127.0.0.1:{running.port}", "gateway")
        users = await db.connect("sqlite:///:memory:")
        app = build_app(
            GatewaySettings(
                port=0, timeout_ms=5_000, rate_limit_per_second=1000, rate_limit_burst=1000
            ),
            GatewayDeps(
                database=users,
                channels={ENGINE_SERVICE.full_name: channel},
                services=[ENGINE_SERVICE],
                signer=TEST_SIGNER,
            ),
        )
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        user_id, token = await add_user(users, "alice", "pro")
        _other_id, other_token = await add_user(users, "mallory", "pro")
        try:
            yield PolicyHarness(
                client, world, store, clock, engine, channel, user_id, token, other_token
            )
        finally:
            await client.close()
            await channel.close()
            await engine.shutdown()
            await users.close()
