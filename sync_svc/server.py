"""Build the sync service: store, broker client, signal log, source readers and the gRPC server."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from copytrade.sync.v1 import sync_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2_grpc as pb_grpc
from meshkit import access
from meshkit import metrics as mesh_metrics
from meshkit.clock import Clock, SystemClock
from meshkit.server import Registration, RunningServer, start_server
from sync_svc.access import RULES
from sync_svc.adapters.broker_client import GrpcBroker
from sync_svc.adapters.leases import SyncLeaseKeeper
from sync_svc.adapters.postgres_notices import PostgresSignalNotices
from sync_svc.config import Settings
from sync_svc.exchange_sync import ExchangeSync, SyncTiming
from sync_svc.ports import BrokerPort
from sync_svc.servicer import SyncServicer
from sync_svc.signal_log import SignalLog
from sync_svc.signal_relay import SignalRelay
from sync_svc.store import SyncStore
from sync_svc.store.sync_store import SIGNALS_CHANNEL
from sync_svc.use_cases import SyncApp

log = logging.getLogger("sync_svc.server")

DOMAIN = "sync.copytrade"
SERVICE_NAME = "copytrade.sync.v1.SyncService"


@dataclass
class Deps:
    """Dependencies a test (or another assembly) may inject instead of the real ones."""

    store: SyncStore | None = None
    broker: BrokerPort | None = None
    clock: Clock | None = None
    timing: SyncTiming | None = None


@dataclass
class SyncService:
    """A running sync service: its server and the parts tests reach into."""

    running: RunningServer
    app: SyncApp
    store: SyncStore
    exchange_sync: ExchangeSync
    leases: SyncLeaseKeeper
    relay: SignalRelay | None = None


async def build_server(
    settings: Settings,
    deps: Deps | None = None,
) -> tuple[RunningServer, Callable[[], Awaitable[None]]]:
    """Start the sync service; return the running server and the coroutine that tears it down.

    The teardown stops the source readers and closes what this call opened (an injected store or
    broker is left to its owner); stop the server itself first (``running.stop``).
    """
    service, close = await build_service(settings, deps)
    return service.running, close


async def build_service(
    settings: Settings,
    deps: Deps | None = None,
) -> tuple[SyncService, Callable[[], Awaitable[None]]]:
    """Like :func:`build_server`, returning the service's parts as well."""
    deps = deps or Deps()
    clock: Clock = deps.clock or SystemClock()
    store = deps.store or await SyncStore.open(settings.database_url)
    owned_broker = None
    broker: BrokerPort
    if deps.broker is not None:
        broker = deps.broker
    else:
        owned_broker = GrpcBroker.connect(settings.broker_svc_addr, settings.tls)
        broker = owned_broker
    timing = deps.timing or SyncTiming(equity_refresh_seconds=settings.equity_refresh_seconds)
    signal_log = SignalLog(store, clock)
    exchange_sync = ExchangeSync(store, signal_log, broker, clock, timing)
    keeper = SyncLeaseKeeper(
        store.leases,
        service="sync",
        wanted=exchange_sync.wanted_sources,
        on_acquired=exchange_sync.on_acquired,
        on_lost=exchange_sync.on_lost,
        replica_id=settings.replica_id or None,
        ttl_seconds=settings.lease_ttl_ms / 1000,
    )
    exchange_sync.use_leases(keeper)
    relay = _relay(settings, store, signal_log)
    app = SyncApp(
        store,
        signal_log,
        broker,
        exchange_sync,
        clock,
        heartbeat_seconds=settings.heartbeat_seconds,
        lease_status=store.leases,
    )
    mesh_metrics.preinitialize(pb.DESCRIPTOR.services_by_name["SyncService"])
    try:
        running = await start_server(
            [
                Registration(
                    pb_grpc.add_SyncServiceServicer_to_server,
                    SyncServicer(app),
                    SERVICE_NAME,
                )
            ],
            domain=DOMAIN,
            host=settings.bind_host,
            port=settings.grpc_port,
            tls=settings.tls,
            guard=access.guard(RULES, settings.assertion_public_key),
            health_port=settings.health_port or None,
        )
    except BaseException:
        if owned_broker is not None:
            await owned_broker.close()
        if deps.store is None:
            await store.close()
        raise
    keeper.address = f"{settings.bind_host}:{running.port}"

    async def close() -> None:
        if relay is not None:
            await relay.stop()
        await exchange_sync.stop()  # stops its readers, then hands their leases over
        if owned_broker is not None:
            await owned_broker.close()
        if deps.store is None:
            await store.close()

    try:
        # On SQLite a second replica is refused here (ConfigError, exit code 2).
        await exchange_sync.start()
        if relay is not None:
            await relay.start()
    except BaseException:
        await running.stop(None)
        await close()
        raise
    return SyncService(running, app, store, exchange_sync, keeper, relay), close


def _relay(settings: Settings, store: SyncStore, signal_log: SignalLog) -> SignalRelay | None:
    """Return the relay of other replicas' signals: PostgreSQL only (SQLite has one replica)."""
    if store.database.dialect != "postgresql":
        return None
    if not settings.database_url.startswith(("postgresql:", "postgres:")):
        log.warning(
            "the injected store is on PostgreSQL but DATABASE_URL is not: signals other replicas"
            " append reach this replica's streams only when they re-read the log"
        )
        return None
    notices = PostgresSignalNotices(settings.database_url, SIGNALS_CHANNEL)
    return SignalRelay(signal_log, notices, settings.signal_poll_ms / 1000)
