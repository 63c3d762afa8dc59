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
from sync_svc.config import Settings
from sync_svc.exchange_sync import ExchangeSync, SyncTiming
from sync_svc.ports import BrokerPort
from sync_svc.servicer import SyncServicer
from sync_svc.signal_log import SignalLog
from sync_svc.store import SyncStore
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
    app = SyncApp(
        store,
        signal_log,
        broker,
        exchange_sync,
        clock,
        heartbeat_seconds=settings.heartbeat_seconds,
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
    await exchange_sync.start()

    async def close() -> None:
        await exchange_sync.stop()
        if owned_broker is not None:
            await owned_broker.close()
        if deps.store is None:
            await store.close()

    return SyncService(running, app, store, exchange_sync), close
