"""Build the reconciliation service's gRPC server; tests and ``__main__`` share it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from copytrade.recon.v1 import recon_service_pb2 as pb
from copytrade.recon.v1 import recon_service_pb2_grpc as pb_grpc
from meshkit import access, metrics
from meshkit.server import Registration, RunningServer, start_server
from recon_svc.access import RULES
from recon_svc.adapters.broker_client import GrpcBroker
from recon_svc.adapters.engine_client import GrpcEngine
from recon_svc.adapters.sync_client import GrpcSync
from recon_svc.config import Settings
from recon_svc.ports import BrokerPort, Clock, EnginePort, SyncPort
from recon_svc.servicer import ReconServicer
from recon_svc.store import ReconStore
from recon_svc.use_cases import Reconciler

DOMAIN = "recon.copytrade"
SERVICE_DESCRIPTOR = pb.DESCRIPTOR.services_by_name["ReconService"]
SERVICE_NAME = SERVICE_DESCRIPTOR.full_name


@dataclass
class Dependencies:
    """What a test may inject instead of the real store, clients or clock."""

    store: ReconStore | None = None
    engine: EnginePort | None = None
    sync: SyncPort | None = None
    broker: BrokerPort | None = None
    clock: Clock | None = None


async def build_server(
    settings: Settings,
    deps: Dependencies | None = None,
    *,
    port: int | None = None,
) -> tuple[RunningServer, Callable[[], Awaitable[None]]]:
    """Start the reconciliation server; return it and the coroutine that releases its resources.

    The release closes the client channels this function opened and, unless the store was
    injected, the store. An injected store is migrated.
    """
    deps = deps or Dependencies()
    if deps.store is not None:
        store = deps.store
        await store.migrate()
    else:
        store = await ReconStore.open(settings.database_url)
    owned: list[GrpcEngine | GrpcSync | GrpcBroker] = []
    engine = deps.engine
    if engine is None:
        engine = GrpcEngine.connect(settings.engine_svc_addr, settings.tls)
        owned.append(engine)
    sync = deps.sync
    if sync is None:
        sync = GrpcSync.connect(settings.sync_svc_addr, settings.tls)
        owned.append(sync)
    broker = deps.broker
    if broker is None:
        broker = GrpcBroker.connect(settings.broker_svc_addr, settings.tls)
        owned.append(broker)

    async def release() -> None:
        for client in owned:
            await client.close()
        if deps.store is None:
            await store.close()

    reconciler = Reconciler(
        store,
        engine,
        sync,
        broker,
        deps.clock,
        timeout=float(settings.rpc_timeout_seconds),
        budget=settings.reconcile_budget_seconds,
    )
    metrics.preinitialize(SERVICE_DESCRIPTOR)
    try:
        running = await start_server(
            [
                Registration(
                    pb_grpc.add_ReconServiceServicer_to_server,
                    ReconServicer(reconciler),
                    SERVICE_NAME,
                )
            ],
            domain=DOMAIN,
            host=settings.bind_host,
            port=settings.grpc_port if port is None else port,
            tls=settings.tls,
            guard=access.guard(RULES, settings.assertion_public_key),
            health_port=settings.health_port or None,
        )
    except BaseException:
        await release()
        raise
    return running, release
