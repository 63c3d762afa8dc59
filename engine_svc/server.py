"""Build the engine: store, clients, copier, signal consumer, resolver loop and gRPC server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from copytrade.engine.v1 import engine_service_pb2 as pb
from copytrade.engine.v1 import engine_service_pb2_grpc as pb_grpc
from engine_svc.access import RULES
from engine_svc.adapters.broker_client import GrpcBroker
from engine_svc.adapters.sync_client import GrpcSync
from engine_svc.config import Settings
from engine_svc.config_counts import ConfigCounts
from engine_svc.configs import ConfigService
from engine_svc.consumer import SignalConsumer
from engine_svc.copy import Copier
from engine_svc.corrections import Corrector
from engine_svc.leader_monitor import LeaderMonitor
from engine_svc.ports import BrokerPort, Clock, SyncPort
from engine_svc.risk_monitor import RiskMonitor, Valuations
from engine_svc.servicer import EngineServicer
from engine_svc.store import EngineStore
from engine_svc.takeover import SourceOwnership, Takeover
from meshkit import access, metrics
from meshkit.clock import SystemClock
from meshkit.leases import LeaseKeeper
from meshkit.server import Registration, RunningServer, start_server
from meshkit.tasks import cancel_and_wait

log = logging.getLogger("engine_svc.server")

DOMAIN = "engine.copytrade"
SERVICE_NAME = "copytrade.engine.v1.EngineService"


@dataclass
class EngineDeps:
    """Dependencies to inject instead of building them from the settings (tests)."""

    store: EngineStore | None = None
    broker: BrokerPort | None = None
    sync: SyncPort | None = None
    clock: Clock | None = None


@dataclass
class Engine:
    """A built engine: its parts, and its background tasks once started."""

    settings: Settings
    store: EngineStore
    copier: Copier
    consumer: SignalConsumer
    configs: ConfigService
    keeper: LeaseKeeper
    takeover: Takeover
    ownership: SourceOwnership
    running: RunningServer | None = None
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    reconciled: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the start-up reconciliation is over and new signals are being taken."""
    config_counts: ConfigCounts | None = None
    """Keeps the ``copytrade_engine_configs`` gauge current."""
    risk_monitor: RiskMonitor | None = None
    """Takes the daily loss action between trades (None: ``RISK_MONITOR_INTERVAL_MS`` 0)."""
    corrector: Corrector | None = None
    """Writes the correction intents reconciliation asks for (CorrectPosition)."""
    leader_monitor: LeaderMonitor | None = None
    """Audits long leader outages (None: ``LEADER_MONITOR_INTERVAL_MS`` 0)."""

    async def _resolver_loop(self) -> None:
        interval = self.settings.resolver_interval_ms / 1000
        while True:
            try:
                await self.copier.resolve()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("resolver round failed")
            await asyncio.sleep(interval)

    async def start(self) -> RunningServer:
        """Join the replicas, serve; take the sources this replica holds over, consume, resolve.

        On SQLite a second replica stops here (``ConfigError``: SQLite serves one replica).
        """
        self.keeper.address = f"{self.settings.bind_host}:{self.settings.grpc_port}"
        await self.keeper.start()
        servicer = EngineServicer(self.configs, self.corrector)
        self.running = await start_server(
            [Registration(pb_grpc.add_EngineServiceServicer_to_server, servicer, SERVICE_NAME)],
            domain=DOMAIN,
            host=self.settings.bind_host,
            port=self.settings.grpc_port,
            tls=self.settings.tls,
            guard=access.guard(RULES, self.settings.assertion_public_key),
            health_port=self.settings.health_port or None,
        )
        self._tasks = [asyncio.create_task(self._begin(), name="engine-start-up")]
        return self.running

    async def _begin(self) -> None:
        # Crash-only start, per source: each source this replica holds is taken over (the
        # broker fenced, what the previous holder left unknown proved with the venues, its
        # PENDING intents sent) before its new signals are taken (engine_svc.takeover).
        # Queries and cancels are served meanwhile; ``reconciled`` is set once the sources
        # held at the first round are taken over.
        self._tasks += [
            asyncio.create_task(self.consumer.run(), name="engine-signal-consumer"),
            asyncio.create_task(self._resolver_loop(), name="engine-resolver"),
        ]
        if self.config_counts is not None:
            self._tasks.append(asyncio.create_task(self.config_counts.run(), name="engine-counts"))
        if self.risk_monitor is not None:
            self._tasks.append(
                asyncio.create_task(self.risk_monitor.run(), name="engine-risk-monitor")
            )
        if self.leader_monitor is not None:
            self._tasks.append(
                asyncio.create_task(self.leader_monitor.run(), name="engine-leader-monitor")
            )
        while self.takeover.in_progress or any(  # noqa: ASYNC110 - polls the takeovers the first round started
            not self.ownership.copying(s) for s in self.keeper.held
        ):
            await asyncio.sleep(0.05)
        self.reconciled.set()

    async def stop(self) -> None:
        """Stop the background work and close what the engine opened (not the gRPC server).

        Copying stops first, then the leases are handed over at once (another replica takes
        them at its next round), so nothing is sent under a lease already handed over.
        """
        await cancel_and_wait(self._tasks)
        self._tasks = []
        await self.copier.stop()
        await self.keeper.stop(release=True)
        for close in reversed(self._closers):
            await close()
        self._closers = []

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop the server, then everything else."""
        if self.running is not None:
            await self.running.server.stop(grace)
        await self.stop()


async def build_engine(settings: Settings, deps: EngineDeps | None = None) -> Engine:
    """Build an engine from ``settings``, using the injected dependencies where given."""
    deps = deps or EngineDeps()
    closers: list[Callable[[], Awaitable[None]]] = []
    store = deps.store
    if store is None:
        store = await EngineStore.open(settings.database_url)
        closers.append(store.close)
    broker = deps.broker
    if broker is None:
        grpc_broker = GrpcBroker.connect(
            settings.broker_svc_addr,
            tls=settings.tls,
            place_timeout=settings.place_timeout_ms / 1000,
            read_timeout=settings.read_timeout_ms / 1000,
        )
        closers.append(grpc_broker.close)
        broker = grpc_broker
    sync = deps.sync
    if sync is None:
        grpc_sync = GrpcSync.connect(
            settings.sync_svc_addr,
            tls=settings.tls,
            read_timeout=settings.read_timeout_ms / 1000,
        )
        closers.append(grpc_sync.close)
        sync = grpc_sync
    clock = deps.clock or SystemClock()
    ownership = SourceOwnership()
    copier = Copier(
        store,
        broker,
        clock,
        resend_lag_seconds=settings.resend_lag_seconds,
        market_cache_seconds=settings.market_cache_seconds,
        ownership=ownership,
    )
    consumer = SignalConsumer(store, sync, copier.record, copier.enqueue, owns=ownership.copying)

    async def wanted() -> set[str]:
        # Every source with live configurations or intents not yet final needs an owner.
        return set(await store.subscriptions()) | await store.sources_with_work()

    async def source_live(source_id: str) -> None:
        # A configuration now copies the source: give it an owner now, not at the next round.
        keeper.wake()
        await consumer.ensure_subscribed(source_id)

    config_counts = ConfigCounts(store)
    valuations = Valuations()  # the monitor's portfolio reads, for GET /status
    configs = ConfigService(
        store,
        broker,
        sync,
        clock,
        copier,
        source_live,
        on_status_change=config_counts.changed,
        valuations=valuations,
    )
    takeover = Takeover(
        ownership,
        broker,
        copier,
        configs.halt_unreconciled,
        consumer.ensure_subscribed,
        consumer.forget,
        lambda source_id, token: keeper.holds(source_id, token),
        lambda source_id, token, above: keeper.advance(source_id, token, above),
    )
    keeper = LeaseKeeper(
        store.leases,
        service="engine",
        wanted=wanted,
        on_acquired=takeover.acquired,
        on_lost=takeover.lost,
        ttl_seconds=settings.lease_ttl_ms / 1000,
    )
    metrics.preinitialize(pb.DESCRIPTOR.services_by_name["EngineService"])
    return Engine(
        settings,
        store,
        copier,
        consumer,
        configs,
        keeper,
        takeover,
        ownership,
        _closers=closers,
        config_counts=config_counts,
        risk_monitor=RiskMonitor(
            store,
            broker,
            clock,
            copier.enqueue,
            ownership,
            interval_seconds=settings.risk_monitor_interval_ms / 1000,
            on_status_change=config_counts.changed,
            cancel_copies=copier.cancel_copies,
            valuations=valuations,
        )
        if settings.risk_monitor_interval_ms > 0
        else None,
        corrector=Corrector(store, broker, clock, copier.enqueue, configs.owned),
        leader_monitor=LeaderMonitor(
            store,
            sync,
            clock,
            ownership,
            interval_seconds=settings.leader_monitor_interval_ms / 1000,
            threshold_seconds=settings.leader_down_alert_ms / 1000,
        )
        if settings.leader_monitor_interval_ms > 0
        else None,
    )


async def build_server(
    settings: Settings,
    deps: EngineDeps | None = None,
) -> tuple[RunningServer, Callable[[], Awaitable[None]]]:
    """Build and start the engine; return the server and the function that stops the rest."""
    engine = await build_engine(settings, deps)
    running = await engine.start()
    return running, engine.stop
