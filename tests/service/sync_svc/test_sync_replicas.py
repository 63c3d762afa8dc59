"""Several sync replicas on one database: leased leaders, fenced appends, live delivery anywhere.

On PostgreSQL two replicas run side by side: each watched leader is read by exactly one of them,
one that stops hands its leaders to the other, and an engine's stream on either replica gets
live what the other appended. On SQLite a second replica is refused (one file, one replica):
the same tests check that refusal, a restart that takes every leader over, and local delivery.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY
from sync_helpers import FAST, SignalConsumer, as_user, published

from copytrade.sync.v1 import sync_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2_grpc as pb_grpc
from meshkit.leases import Fenced
from meshkit.service import EXIT_CONFIGURATION, explain
from meshkit.settings import ConfigError
from meshkit.testing import AuthorizedStub, eventually, mesh_trust
from sync_svc.access import RULES
from sync_svc.adapters.postgres_notices import PostgresSignalNotices
from sync_svc.config import Settings
from sync_svc.domain.model import AppendEntry, OrderType, Side, SignalDraft, SourceKind
from sync_svc.server import Deps, SyncService, build_service
from sync_svc.signal_log import SignalLog
from sync_svc.store import SyncStore
from tests.fakes.broker import FakeBrokerPort
from tests.fakes.clock import FakeClock

ALICE = as_user("alice")
TTL_MS = 600  # a round every 200 ms


@dataclass
class Replica:
    """One running sync replica and a stub that calls it."""

    name: str
    service: SyncService
    stub: pb_grpc.SyncServiceStub
    close: contextlib.AsyncExitStack

    @property
    def running(self) -> set[str]:
        return self.service.exchange_sync.running_sources()

    async def stop(self) -> None:
        await self.close.aclose()


async def _replica(
    database_url: str,
    broker: FakeBrokerPort,
    name: str,
    **overrides: int,
) -> Replica:
    values = {"lease_ttl_ms": TTL_MS, "signal_poll_ms": 200, **overrides}
    settings = Settings(
        grpc_port=0,
        metrics_port=0,
        heartbeat_seconds=0.2,
        database_url=database_url,
        replica_id=name,
        **values,
        **mesh_trust("sync"),
    )
    service, close = await build_service(settings, Deps(broker=broker, timing=FAST))
    stack = contextlib.AsyncExitStack()
    stack.push_async_callback(close)
    stack.push_async_callback(service.running.stop, None)
    stub = AuthorizedStub(pb_grpc.SyncServiceStub, f"127.0.0.1:{service.running.port}", RULES)
    stack.push_async_callback(stub.close)
    return Replica(name, service, stub, stack)


@pytest.fixture
async def replicas() -> AsyncIterator[list[Replica]]:
    """The replicas a test starts; each is stopped at the end (once)."""
    started: list[Replica] = []
    try:
        yield started
    finally:
        for replica in reversed(started):
            await replica.stop()


def _postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


async def _second_is_refused(database_url: str, broker: FakeBrokerPort) -> None:
    with pytest.raises(ConfigError) as caught:
        await _replica(database_url, broker, "b")
    # What the operator reads: one line on stderr, exit code 2 (meshkit.service.main).
    code, message = explain(caught.value)
    assert code == EXIT_CONFIGURATION
    assert "another sync replica uses it (a, pid" in message
    assert "SQLite serves one replica" in message


def _watch(exchange_id: str) -> pb.WatchExchangeSourceRequest:
    return pb.WatchExchangeSourceRequest(
        exchange_id=exchange_id,
        sync_settings=pb.SyncSettings(sync_interval=3600, enable_websocket=False),
    )


async def _watch_all(replica: Replica, broker: FakeBrokerPort, count: int) -> list[str]:
    ids = [broker.add_account("alice") for _ in range(count)]
    for exchange_id in ids:
        await replica.stub.WatchExchangeSource(_watch(exchange_id), metadata=ALICE)
    return ids


async def _leases(replica: Replica) -> dict[str, tuple[str, bool]]:
    reply = await replica.stub.ListLeases(pb.ListLeasesRequest())
    return {lease.resource: (lease.owner, lease.live) for lease in reply.leases}


async def test_each_watched_leader_is_read_by_exactly_one_replica(
    database_url: str, replicas: list[Replica]
) -> None:
    broker = FakeBrokerPort()
    a = await _replica(database_url, broker, "a")
    replicas.append(a)
    ids = await _watch_all(a, broker, 4)
    # A single replica reads each source as soon as it is watched.
    assert a.running == set(ids)
    if not _postgres(database_url):
        await _second_is_refused(database_url, broker)
        assert a.running == set(ids)
        return
    b = await _replica(database_url, broker, "b")
    replicas.append(b)

    def shared() -> bool:
        return a.running | b.running == set(ids) and len(a.running) == len(b.running) == 2

    await eventually(shared, timeout=10)
    assert not a.running & b.running
    leases = await _leases(b)
    assert leases == {source: ("a" if source in a.running else "b", True) for source in sorted(ids)}
    shown = await a.stub.ListLeases(pb.ListLeasesRequest())
    assert {(r.replica_id, r.live) for r in shown.replicas} == {("a", True), ("b", True)}
    assert all(r.address.startswith("127.0.0.1:") for r in shown.replicas)
    # Unwatched through one replica, a source the other reads is let go by its holder.
    held_by_b = sorted(b.running)[0]
    await a.stub.UnwatchExchangeSource(
        pb.UnwatchExchangeSourceRequest(exchange_id=held_by_b), metadata=ALICE
    )
    await eventually(lambda: held_by_b not in a.running | b.running, timeout=10)
    assert (await _leases(a))[held_by_b][1] is False


async def test_a_replica_that_stops_hands_its_leaders_over(
    database_url: str, replicas: list[Replica]
) -> None:
    broker = FakeBrokerPort()
    a = await _replica(database_url, broker, "a")
    replicas.append(a)
    ids = await _watch_all(a, broker, 4)
    if _postgres(database_url):
        b = await _replica(database_url, broker, "b")
        replicas.append(b)
        await eventually(lambda: len(b.running) == 2, timeout=10)
        await a.stop()
        replicas.remove(a)
        await eventually(lambda: b.running == set(ids), timeout=10)
    else:
        await a.stop()
        replicas.remove(a)
        b = await _replica(database_url, broker, "b")
        replicas.append(b)
        assert b.running == set(ids)
    assert await _leases(b) == {source: ("b", True) for source in ids}
    shown = await b.stub.ListLeases(pb.ListLeasesRequest())
    assert [r.replica_id for r in shown.replicas] == ["b"]  # a left
    # The new holder reads the account: a trade made now is logged by it.
    broker.trade(ids[0], "buy", "0.1", trade_id="after-handover")
    await b.service.exchange_sync.backfill_once(ids[0])
    signals = (await b.stub.ListSignals(pb.ListSignalsRequest(source_id=ids[0]))).signals
    assert [s.signal_id for s in signals] == ["after-handover"]


async def _stream(replica: Replica, source_id: str) -> SignalConsumer:
    consumer = await SignalConsumer(replica.stub.StreamSignals(), source_id).start()
    await consumer.wait_heartbeat()  # subscribed, the backlog sent: what comes now is live
    return consumer


async def _publish(replica: Replica, backtest_id: str, *signal_ids: str) -> None:
    await replica.stub.PublishSignals(
        pb.PublishSignalsRequest(
            backtest_id=backtest_id, signals=[published(s) for s in signal_ids]
        ),
        metadata=ALICE,
    )


async def test_a_stream_on_one_replica_gets_live_what_another_appended(
    database_url: str, replicas: list[Replica]
) -> None:
    broker = FakeBrokerPort()
    # No poll within the test: on PostgreSQL only the append's notification can deliver.
    a = await _replica(database_url, broker, "a", signal_poll_ms=60_000)
    replicas.append(a)
    if _postgres(database_url):
        b = await _replica(database_url, broker, "b", signal_poll_ms=60_000)
        replicas.append(b)
    else:
        assert a.service.relay is None  # one replica: every append is local
        b = a
    backtest = await a.stub.CreateBacktest(pb.CreateBacktestRequest(name="s"), metadata=ALICE)
    source_id = backtest.backtest_id
    await _publish(a, source_id, "before")
    consumer = await _stream(b, source_id)
    try:
        assert [s.signal_id for s in await consumer.wait_for(1)] == ["before"]
        await _publish(a, source_id, "x")
        await _publish(a, source_id, "y", "z")
        got = await consumer.wait_for(4)
        assert [(s.sequence, s.signal_id) for s in got] == [
            (1, "before"),
            (2, "x"),
            (3, "y"),
            (4, "z"),
        ]
    finally:
        await consumer.close()


async def test_live_delivery_survives_a_dropped_notification_connection(
    database_url: str, replicas: list[Replica]
) -> None:
    broker = FakeBrokerPort()
    a = await _replica(database_url, broker, "a")
    replicas.append(a)
    if not _postgres(database_url):
        assert a.service.relay is None
        await _second_is_refused(database_url, broker)
        return
    b = await _replica(database_url, broker, "b")
    replicas.append(b)
    assert b.service.relay is not None
    notices = b.service.relay.notices
    assert isinstance(notices, PostgresSignalNotices)
    await eventually(lambda: notices.backend_pid is not None, timeout=5)
    backtest = await a.stub.CreateBacktest(pb.CreateBacktestRequest(name="s"), metadata=ALICE)
    source_id = backtest.backtest_id
    consumer = await _stream(b, source_id)
    try:
        # Cut b's LISTEN connection: notifications sent meanwhile are lost to b.
        await a.service.store.database.execute(
            "SELECT pg_terminate_backend(?)", (notices.backend_pid,)
        )
        await _publish(a, source_id, "while-deaf")
        got = await consumer.wait_for(1)
        assert [(s.sequence, s.signal_id) for s in got] == [(1, "while-deaf")]
        await eventually(lambda: notices.connects >= 2, timeout=10)  # listening again
        await _publish(a, source_id, "after")
        got = await consumer.wait_for(2)
        assert [(s.sequence, s.signal_id) for s in got] == [(1, "while-deaf"), (2, "after")]
    finally:
        await consumer.close()


def _fenced_count() -> float:
    value = REGISTRY.get_sample_value(
        "copytrade_fenced_writes_total", {"service": "sync", "what": "append"}
    )
    return value or 0.0


async def test_an_append_under_a_lease_that_moved_on_is_refused_counted_and_stops_the_reader(
    store: SyncStore,
) -> None:
    broker = FakeBrokerPort()
    settings = Settings(grpc_port=0, metrics_port=0, lease_ttl_ms=120_000, **mesh_trust("sync"))
    service, close = await build_service(settings, Deps(store=store, broker=broker, timing=FAST))
    stub = AuthorizedStub(pb_grpc.SyncServiceStub, f"127.0.0.1:{service.running.port}", RULES)
    try:
        exchange_id = broker.add_account("alice")
        await stub.WatchExchangeSource(_watch(exchange_id), metadata=ALICE)

        async def first_poll_done() -> bool:
            stored = await store.get_source(exchange_id)
            return stored is not None and stored.last_sync_at is not None

        await eventually(first_poll_done, timeout=5)
        reader = service.exchange_sync.source(exchange_id)
        assert reader is not None and reader.token is not None
        token = reader.token
        assert service.leases.token(exchange_id) == token
        # Another replica takes the lease over (this one was paused past it, say).
        await store.leases.release(exchange_id, service.leases.replica_id, token)
        assert await store.leases.acquire(exchange_id, "other", 120_000) == (token + 1, False)
        before = _fenced_count()
        broker.trade(exchange_id, "buy", "0.1", trade_id="late")
        with pytest.raises(Fenced):
            await service.exchange_sync.backfill_once(exchange_id)
        assert _fenced_count() == before + 1
        assert await store.list_signals(exchange_id) == []
        await eventually(lambda: not service.exchange_sync.is_running(exchange_id), timeout=5)
    finally:
        await stub.close()
        await service.running.stop(None)
        await close()


def _draft(source_id: str, signal_id: str) -> SignalDraft:
    return SignalDraft(
        source_id=source_id,
        signal_id=signal_id,
        symbol="BTC/USDT",
        side=Side.BUY,
        quantity=Decimal("0.25"),
        price=None,
        order_type=OrderType.MARKET,
        event_time=datetime(2026, 3, 1, tzinfo=UTC),
    )


async def test_the_store_fences_an_append_by_token_and_leaves_others_alone(
    store: SyncStore,
) -> None:
    source_id = str(uuid.uuid4())
    now = datetime(2026, 3, 1, tzinfo=UTC)
    first = await store.leases.acquire(source_id, "a", 60_000)
    assert first == (1, False)
    await store.append(source_id, [AppendEntry(_draft(source_id, "s1"))], now, token=1)
    await store.leases.release(source_id, "a", 1)
    assert await store.leases.acquire(source_id, "b", 60_000) == (2, False)
    with pytest.raises(Fenced):
        await store.append(source_id, [AppendEntry(_draft(source_id, "s2"))], now, token=1)
    assert [s.signal_id for s in await store.list_signals(source_id)] == ["s1"]
    await store.append(source_id, [AppendEntry(_draft(source_id, "s3"))], now, token=2)
    await store.append(source_id, [AppendEntry(_draft(source_id, "s4"))], now)  # unleased
    assert [s.sequence for s in await store.list_signals(source_id)] == [1, 2, 3]
    # A source nobody ever leased refuses any token.
    other = str(uuid.uuid4())
    with pytest.raises(Fenced):
        await store.append(other, [AppendEntry(_draft(other, "x"))], now, token=1)


async def test_catch_up_hands_listeners_only_what_they_were_not_handed(store: SyncStore) -> None:
    signal_log = SignalLog(store, FakeClock.real_time())
    source_id = str(uuid.uuid4())
    now = datetime(2026, 3, 1, tzinfo=UTC)
    await store.append(source_id, [AppendEntry(_draft(source_id, "old"))], now)
    # Nobody listens: nothing is read.
    assert await signal_log.catch_up(source_id) == 0
    listener = signal_log.hub.listen(source_id, after_sequence=1)
    # Appended by another replica: straight into the shared log, no listener here told.
    await store.append(source_id, [AppendEntry(_draft(source_id, "remote"))], now)
    assert listener.queue.empty()
    assert await signal_log.catch_up(source_id) == 1
    assert await signal_log.catch_up(source_id) == 0
    # Appended here: handed at once, and not again by a catch-up.
    await signal_log.append(
        source_id, [AppendEntry(_draft(source_id, "local"))], SourceKind.BACKTEST
    )
    assert await signal_log.catch_up(source_id) == 0
    handed = [listener.queue.get_nowait() for _ in range(listener.queue.qsize())]
    assert [(s.sequence, s.signal_id) for s in handed] == [(2, "remote"), (3, "local")]
    signal_log.hub.unlisten(listener)
    assert signal_log.hub.published_up_to(source_id) is None
