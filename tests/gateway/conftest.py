"""Fixtures: in-process fake backends, the real aiohttp app over them, users with tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.config import Settings
from gateway.routes import default_services
from gateway.server import GatewayDeps, build_app
from gateway.users import add_user
from meshkit import db
from meshkit.testing import gateway_trust, inprocess_server
from tests.fakes.clock import FakeMonotonic
from tests.fakes.recording import Recorder
from tests.gateway.fakes import RULES_SERVICE, registrations

API = "/api/institutional/copy-trading"


@dataclass
class Harness:
    """A gateway over fake backends, with what a test needs to drive and inspect it."""

    client: TestClient
    recorder: Recorder
    database: db.Database
    clock: FakeMonotonic
    pro_token: str
    pro_user_id: str
    free_token: str

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = "pro",
        json: Any = None,
        data: str | bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, Any]:
        """Send one request; return (status, JSON body, response headers)."""
        sent = dict(headers or {})
        if token == "pro":
            sent["Authorization"] = f"Bearer {self.pro_token}"
        elif token == "free":
            sent["Authorization"] = f"Bearer {self.free_token}"
        elif token is not None:
            sent["Authorization"] = token
        response = await self.client.request(method, path, json=json, data=data, headers=sent)
        body = await response.json(content_type=None) if response.content_length != 0 else None
        return response.status, body, response.headers


@pytest.fixture
def settings() -> Settings:
    """Settings for a test gateway: a loose rate limit, a short deadline."""
    return Settings(
        port=0,
        timeout_ms=2_000,
        rate_limit_per_second=1000,
        rate_limit_burst=1000,
        **gateway_trust(),
    )


@pytest.fixture
async def backend() -> AsyncIterator[tuple[Recorder, Any]]:
    """The four fake services and the rules service on one in-process server."""
    recorder = Recorder()
    async with inprocess_server(registrations(recorder)) as (_running, channel):
        yield recorder, channel


HarnessFactory = Callable[..., Any]


@pytest.fixture
async def make_harness(
    backend: tuple[Recorder, Any],
    settings: Settings,
) -> AsyncIterator[HarnessFactory]:
    """Build a harness (optionally with other settings); everything is closed at the end."""
    recorder, channel = backend
    opened: list[tuple[TestClient, db.Database]] = []

    async def make(**overrides: Any) -> Harness:
        database = await db.connect("sqlite:///:memory:")
        services = [*default_services(), RULES_SERVICE]
        clock = FakeMonotonic()
        deps = GatewayDeps(
            database=database,
            channels={s.full_name: channel for s in services},
            services=services,
            clock=clock,
        )
        app = build_app(replace(settings, **overrides), deps)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        opened.append((client, database))
        pro_user_id, pro_token = await add_user(database, "alice", "pro")
        _free_id, free_token = await add_user(database, "bob", "free")
        return Harness(client, recorder, database, clock, pro_token, pro_user_id, free_token)

    yield make
    for client, database in opened:
        await client.close()
        await database.close()


@pytest.fixture
async def harness(make_harness: HarnessFactory) -> Harness:
    """A gateway over the fake backends with a pro user (alice) and a free user (bob)."""
    return await make_harness()
