"""The engine under test: built as in production, wired to the fakes, callable and restartable.

A module of its own (not ``conftest``) so that test modules import it by a unique name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine_fakes import USER, World

from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.engine.v1 import engine_service_pb2_grpc as pb_grpc
from engine_svc.access import RULES
from engine_svc.config import Settings
from engine_svc.server import Engine, EngineDeps, build_engine
from engine_svc.store import EngineStore
from meshkit.testing import AuthorizedStub, as_user, mesh_trust
from tests.fakes.clock import FakeClock


@dataclass
class Harness:
    """A running engine wired to the fakes, and ways to call and restart it."""

    world: World
    store: EngineStore
    clock: FakeClock
    fakes_address: str
    engine: Engine | None = None
    channel: AuthorizedStub | None = None
    stub: Any = None
    started: list[Engine] = field(default_factory=list)
    read_timeout_ms: int = 3000
    resolver_interval_ms: int = 50

    def settings(self) -> Settings:
        return Settings(
            grpc_port=0,
            metrics_port=0,
            broker_svc_addr=self.fakes_address,
            sync_svc_addr=self.fakes_address,
            resolver_interval_ms=self.resolver_interval_ms,
            resend_lag_seconds=10,
            place_timeout_ms=3000,
            read_timeout_ms=self.read_timeout_ms,
            **mesh_trust("engine"),
        )

    async def start(self) -> Engine:
        engine = await build_engine(self.settings(), EngineDeps(store=self.store, clock=self.clock))
        running = await engine.start()
        self.engine = engine
        self.started.append(engine)
        self.channel = AuthorizedStub(pb_grpc.EngineServiceStub, f"127.0.0.1:{running.port}", RULES)
        self.stub = self.channel
        return engine

    async def stop(self) -> None:
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
        if self.engine is not None:
            await self.engine.shutdown()
            self.engine = None

    async def restart(self) -> Engine:
        await self.stop()
        return await self.start()

    async def start_copy(self) -> tuple[str, str, str]:
        """Copy a new strategy source to a new account; return config, source and account."""
        target = self.world.broker.add_account()
        source = self.world.sync.add_backtest()
        reply = await self.call(
            "StartCopy",
            engine_pb.StartCopyRequest(
                source_backtest_id=source, target_exchange_ids=[target.exchange_id]
            ),
        )
        return reply.config_id, source, target.exchange_id

    async def call(self, method: str, request: Any, user: str = USER) -> Any:
        metadata = as_user(user) if user else ()
        return await getattr(self.stub, method)(request, metadata=metadata, timeout=10)
