"""Build the broker's gRPC server; tests and ``__main__`` share it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from broker_svc.access import RULES
from broker_svc.adapters.paper_exchange import PaperVenues, open_paper_venue
from broker_svc.adapters.ratelimit import RateLimits
from broker_svc.adapters.venues import CcxtVenues, VenueSet
from broker_svc.config import Settings
from broker_svc.crypto import Cipher
from broker_svc.keys import verify_key
from broker_svc.membership import BrokerMembership
from broker_svc.ports import Clock, Venues
from broker_svc.servicer import BrokerServicer
from broker_svc.store import BrokerStore
from broker_svc.usecases import Broker
from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.broker.v1 import broker_service_pb2_grpc as pb_grpc
from meshkit import access, metrics
from meshkit.leases import LeaseTable
from meshkit.server import Registration, RunningServer, start_server

DOMAIN = "broker.copytrade"
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["BrokerService"].full_name


@dataclass
class Dependencies:
    """What a test may inject instead of the real store, venues, clock or rate limiter."""

    store: BrokerStore | None = None
    venues: Venues | None = None
    clock: Clock | None = None
    # The venue rate limits of this process (shared with the other replicas by build_server).
    rate_limits: RateLimits | None = None


async def build_broker(settings: Settings, deps: Dependencies | None = None) -> Broker:
    """Open the store (migrated) and the venues, and return the broker's use-cases."""
    deps = deps or Dependencies()
    store = deps.store or await BrokerStore.open(settings.database_url)
    if deps.store is not None:
        await store.migrate()
    cipher = Cipher(settings.encryption_key, old_keys=settings.encryption_keys_previous)
    try:
        await verify_key(store, cipher)  # KeyCheckFailed: the configured keys open nothing here
    except BaseException:
        if deps.store is None:
            await store.close()
        raise
    venues = deps.venues or venues_of(settings, deps.rate_limits or rate_limits_of(settings))
    broker = Broker(
        store,
        venues,
        cipher,
        deps.clock,
        resend_safe_after_seconds=settings.resend_safe_after_seconds,
    )
    broker.start_key_rotation()  # re-seals what older keys sealed while the broker serves
    return broker


def venues_of(settings: Settings, rate_limits: RateLimits) -> Venues:
    """Return the venues the settings offer: the ccxt venues, and the paper venue when asked."""
    ccxt = CcxtVenues(
        settings.venue_urls,
        timeout_ms=settings.order_timeout_ms,
        rate_limits=rate_limits,
    )
    if not settings.paper_venue:
        return ccxt
    paper = open_paper_venue(settings.paper_balances, settings.paper_prices)
    return VenueSet(ccxt, PaperVenues(paper))


def rate_limits_of(settings: Settings) -> RateLimits:
    """Return the venue rate limiter the settings describe."""
    return RateLimits(
        enabled=settings.rate_limits,
        max_wait=settings.rate_limit_max_wait_ms / 1000,
    )


async def build_server(
    settings: Settings,
    deps: Dependencies | None = None,
    *,
    port: int | None = None,
) -> tuple[RunningServer, Callable[[], Awaitable[None]]]:
    """Start the broker's server; return it and the coroutine that releases its resources.

    The replica joins ``broker_replicas`` before it serves (on SQLite a second replica is
    refused: ``ConfigError``) and shares every venue's rate limit with the live replicas. The
    release leaves the replicas, closes every venue client and, unless the store was
    injected, the store.
    """
    deps = deps or Dependencies()
    owns_store = deps.store is None
    store = deps.store or await BrokerStore.open(settings.database_url)
    rate_limits = deps.rate_limits or rate_limits_of(settings)
    membership = BrokerMembership(
        LeaseTable(store.database, "broker"),
        rate_limits.set_replicas,
        replica_id=settings.replica_id or None,
        ttl_seconds=settings.lease_ttl_ms / 1000,
    )
    try:
        # First of all: a second replica on SQLite is refused before it touches anything
        # (key rotation included).
        await membership.start()
        broker = await build_broker(settings, replace(deps, store=store, rate_limits=rate_limits))
    except BaseException:
        await membership.stop()
        if owns_store:
            await store.close()
        raise

    async def release() -> None:
        await membership.stop()  # leaves broker_replicas: the others take its share at once
        await broker.close()
        if owns_store:
            await store.close()

    try:
        metrics.preinitialize(pb.DESCRIPTOR.services_by_name["BrokerService"])
        running = await start_server(
            [
                Registration(
                    pb_grpc.add_BrokerServiceServicer_to_server,
                    BrokerServicer(broker),
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
    membership.address = f"{settings.bind_host}:{running.port}"
    return running, release
