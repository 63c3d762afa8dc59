"""A real engine behind the real REST gateway, over in-process fakes of broker and sync.

The engine is built exactly as in production (``build_engine``) with its store on the test's
database; the gateway is ``gateway.server.build_app`` with a channel to that engine. Only the
broker and the sync service are fakes (``tests/service/engine_svc/engine_fakes.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from aiohttp.test_utils import TestClient

from engine_svc.server import Engine
from engine_svc.store import EngineStore
from meshkit.testing import eventually
from tests.fakes.clock import FakeClock
from tests.service.engine_svc.engine_fakes import Account, World

API = "/api/institutional/copy-trading"


@dataclass
class PolicyHarness:
    """What a policy test drives: REST calls as a pro user, the fakes, the engine's store."""

    client: TestClient
    world: World
    store: EngineStore
    clock: FakeClock
    engine: Engine
    engine_channel: grpc.aio.Channel
    user_id: str
    token: str
    other_token: str = ""

    async def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> tuple[int, Any]:
        """Send one request to the gateway; return (status, JSON body)."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        response = await self.client.request(method, API + path, json=body, headers=headers)
        payload = await response.json(content_type=None) if response.content_length != 0 else None
        return response.status, payload

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        """Send a request that must succeed; return its JSON body."""
        status, payload = await self.call(method, path, body)
        assert status == 200, (status, payload)
        return payload

    def account(self, **kwargs: Any) -> Account:
        """Register a follower account of the calling user at the fake broker."""
        return self.world.broker.add_account(user_id=self.user_id, **kwargs)

    async def start(self, *targets: Account, **settings: Any) -> tuple[str, str]:
        """Start copying a new strategy source into ``targets``; return (config id, source)."""
        source = self.world.sync.add_backtest(user_id=self.user_id)
        body = {
            "source_backtest_id": source,
            "target_exchange_ids": [t.exchange_id for t in targets],
            **settings,
        }
        reply = await self.ok("POST", "/start", body)
        return reply["config_id"], source

    async def orders(self, config_id: str) -> list[dict[str, Any]]:
        """Return the configuration's copied orders through ``GET /orders/{config_id}``."""
        return (await self.ok("GET", f"/orders/{config_id}"))["orders"]

    async def settled(self, config_id: str, count: int) -> list[dict[str, Any]]:
        """Wait until ``count`` copied orders have their outcome; return all of them."""
        final = {
            "INTENT_STATE_FILLED",
            "INTENT_STATE_SKIPPED",
            "INTENT_STATE_REJECTED",
            "INTENT_STATE_CANCELED",
            "INTENT_STATE_EXPIRED",
        }

        async def done() -> list[dict[str, Any]] | None:
            orders = await self.orders(config_id)
            return orders if sum(o["state"] in final for o in orders) >= count else None

        return await eventually(done, timeout=10)


def field_paths(body: dict[str, Any]) -> list[str]:
    """Return the field paths of a 400's ``BadRequest`` detail."""
    paths: list[str] = []
    for detail in body.get("details", []):
        if detail.get("@type", "").endswith("google.rpc.BadRequest"):
            paths += [v["field"] for v in detail.get("field_violations", [])]
    return paths
