"""Exchange-account sources in polling mode: watching, polling, positions, failures, recovery."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client import REGISTRY
from sync_helpers import FAST, as_user, read_signals

from copytrade.common.v1 import types_pb2
from copytrade.sync.v1 import sync_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2_grpc as pb_grpc
from meshkit.testing import AuthorizedStub, eventually, mesh_trust
from sync_svc.access import RULES
from sync_svc.config import Settings
from sync_svc.domain.model import OrderType
from sync_svc.exchange_sync import SyncTiming
from sync_svc.server import Deps, SyncService, build_service
from sync_svc.store import SyncStore
from tests.fakes.broker import FakeBrokerPort

ALICE = as_user("alice")


def _watch(exchange_id: str, **settings: int | bool) -> pb.WatchExchangeSourceRequest:
    values: dict[str, int | bool] = {"sync_interval": 3600, "enable_websocket": False, **settings}
    return pb.WatchExchangeSourceRequest(
        exchange_id=exchange_id, sync_settings=pb.SyncSettings(**values)
    )


async def _watched(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    exchange_id: str,
    **settings: int | bool,
) -> pb.Source:
    """Watch an account and wait for the poller's first (empty) poll and equity read."""
    reply = await stub.WatchExchangeSource(_watch(exchange_id, **settings), metadata=ALICE)

    async def first_poll_done() -> bool:
        stored = await service.store.get_source(exchange_id)
        return stored is not None and stored.last_sync_at is not None and stored.equity is not None

    await eventually(first_poll_done, timeout=5)
    return reply.source


async def _signals(stub: pb_grpc.SyncServiceStub, source_id: str) -> list[pb.Signal]:
    return list((await stub.ListSignals(pb.ListSignalsRequest(source_id=source_id))).signals)


async def _last_sync(service: SyncService, exchange_id: str) -> datetime | None:
    source = await service.store.get_source(exchange_id)
    return source.last_sync_at if source else None


async def _changed(service: SyncService, exchange_id: str, previous: datetime | None) -> bool:
    return await _last_sync(service, exchange_id) != previous


def _violations(error: grpc.aio.AioRpcError) -> set[str]:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return {v.field for v in bad.field_violations}
    return set()


async def test_watch_creates_a_polling_source_owned_by_the_caller(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
) -> None:
    exchange_id = broker.add_account("alice", "kraken")
    source = await _watched(stub, service, exchange_id, sync_interval=0)
    assert source.source_id == exchange_id and source.user_id == "alice"
    assert source.kind == pb.SOURCE_KIND_EXCHANGE and source.mode == pb.SYNC_MODE_POLLING
    assert source.exchange_name == "kraken" and source.sync_interval_seconds == 5
    shown = (await stub.GetSource(pb.GetSourceRequest(source_id=exchange_id))).source
    assert shown.equity.value == "10000" and shown.last_sync_time.seconds > 0
    assert service.exchange_sync.is_running(exchange_id)
    gauge = REGISTRY.get_sample_value(
        "realtime_sync_connections", {"exchange": "kraken", "mode": "polling"}
    )
    assert gauge is not None and gauge >= 1


async def test_watch_again_changes_only_the_sync_settings(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
) -> None:
    exchange_id = broker.add_account("alice")
    first = await _watched(stub, service, exchange_id)
    again = (
        await stub.WatchExchangeSource(
            _watch(exchange_id, sync_interval=30, max_retries=5), metadata=ALICE
        )
    ).source
    assert again.sync_interval_seconds == 30
    assert again.create_time == first.create_time
    stored = await service.store.get_source(exchange_id)
    assert stored is not None and stored.sync_settings.max_retries == 5
    assert len(await service.store.list_exchange_sources()) == 1


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"sync_interval": 3601}, "sync_settings.sync_interval"),
        ({"sync_interval": -1}, "sync_settings.sync_interval"),
        ({"max_retries": 21}, "sync_settings.max_retries"),
        ({"timeout": 301}, "sync_settings.timeout"),
    ],
)
async def test_watch_with_out_of_range_settings_names_the_field_and_creates_nothing(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    settings: dict[str, int],
    field: str,
) -> None:
    exchange_id = broker.add_account("alice")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.WatchExchangeSource(_watch(exchange_id, **settings), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(caught.value) == {field}
    assert await service.store.get_source(exchange_id) is None


async def test_watch_of_a_malformed_unknown_or_foreign_account_fails(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await stub.WatchExchangeSource(_watch("nope"), metadata=ALICE)
    assert _violations(malformed.value) == {"exchange_id"}
    for exchange_id in (str(uuid.uuid4()), broker.add_account("bob")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.WatchExchangeSource(_watch(exchange_id), metadata=ALICE)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert await service.store.list_exchange_sources() == []


async def test_new_fills_become_signals_once_across_overlapping_polls(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
) -> None:
    exchange_id = broker.add_account("alice", totals={"USDT": "100000"}, equity="100000")
    await _watched(stub, service, exchange_id)
    portfolio_reads = broker.portfolio_calls
    broker.trade(exchange_id, "buy", "0.1", price="50000", trade_id="1001")
    broker.trade(
        exchange_id, "buy", "0.2", price="50010", trade_id="1002", order_type=OrderType.STOP_LIMIT
    )
    assert await service.exchange_sync.backfill_once(exchange_id) == 2
    broker.trade(exchange_id, "sell", "0.05", price="50020", trade_id="1003", order_type=None)
    assert await service.exchange_sync.backfill_once(exchange_id) == 1
    assert await service.exchange_sync.backfill_once(exchange_id) == 0
    signals = await _signals(stub, exchange_id)
    assert [(s.sequence, s.signal_id) for s in signals] == [(1, "1001"), (2, "1002"), (3, "1003")]
    assert [s.order_type for s in signals] == [
        types_pb2.ORDER_TYPE_MARKET,
        types_pb2.ORDER_TYPE_LIMIT,
        types_pb2.ORDER_TYPE_MARKET,
    ]
    assert signals[0].exchange_name == "binance" and signals[0].leader_equity.value == "100000"
    fills = broker.fills[exchange_id]
    assert [
        s.event_time.ToDatetime().replace(tzinfo=fills[0].trade_time.tzinfo) for s in signals
    ] == [f.trade_time for f in fills]
    # Every poll after the first looked back over the newest fill it had seen (the overlap).
    newest = fills[1].trade_time
    assert broker.list_calls[-2][1] == newest - timedelta(seconds=5)
    # A batch with new fills asks for a fresh read of the portfolio; an empty one does not.
    await eventually(lambda: broker.portfolio_calls > portfolio_reads, timeout=5)
    await asyncio.sleep(0.1)
    reads = broker.portfolio_calls
    assert await service.exchange_sync.backfill_once(exchange_id) == 0
    await asyncio.sleep(0.1)
    assert broker.portfolio_calls == reads


async def test_the_running_poller_logs_a_fill_once_and_streams_it(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
) -> None:
    exchange_id = broker.add_account("alice")
    await _watched(stub, service, exchange_id)
    call = stub.StreamSignals()
    await call.write(
        pb.StreamSignalsRequest(
            subscribe=pb.SubscribeSignals(source_id=exchange_id, after_sequence=0)
        )
    )
    counted = REGISTRY.get_sample_value("copytrade_sync_signals_total", {"kind": "exchange"}) or 0
    broker.trade(exchange_id, "buy", "0.3", trade_id="77")
    service.exchange_sync.wake(exchange_id)
    (signal,) = await read_signals(call, 1)
    assert (signal.sequence, signal.signal_id, signal.quantity.value) == (1, "77", "0.3")
    # The subscription is live now (the first fill may have raced it and come as a replay,
    # which is not timed): the next fill is sent live and its sync latency observed once.
    before = REGISTRY.get_sample_value("sync_latency_seconds_count", {"exchange": "binance"}) or 0
    broker.trade(exchange_id, "sell", "0.1", trade_id="78")
    service.exchange_sync.wake(exchange_id)
    (second,) = await read_signals(call, 1)
    assert (second.sequence, second.signal_id) == (2, "78")
    for _ in range(2):
        synced = await _last_sync(service, exchange_id)
        service.exchange_sync.wake(exchange_id)
        await eventually(lambda synced=synced: _changed(service, exchange_id, synced), timeout=5)
    assert len(await _signals(stub, exchange_id)) == 2
    after = REGISTRY.get_sample_value("sync_latency_seconds_count", {"exchange": "binance"})
    assert after == before + 1
    total = REGISTRY.get_sample_value("copytrade_sync_signals_total", {"kind": "exchange"})
    assert total == counted + 2
    call.cancel()


async def test_fills_made_before_the_source_started_are_never_copied(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
) -> None:
    exchange_id = broker.add_account("alice")
    broker.trade(exchange_id, "buy", "1", trade_id="old")  # within the 5 s overlap of the start
    await asyncio.sleep(0.01)
    await _watched(stub, service, exchange_id)
    broker.trade(exchange_id, "sell", "0.5", trade_id="new")
    await service.exchange_sync.backfill_once(exchange_id)
    assert [s.signal_id for s in await _signals(stub, exchange_id)] == ["new"]
    assert broker.list_calls[0][1] < broker.fills[exchange_id][0].trade_time


async def test_a_fill_stamped_in_the_future_does_not_blind_later_polls(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
) -> None:
    exchange_id = broker.add_account("alice")
    await _watched(stub, service, exchange_id)
    future = datetime.now(UTC) + timedelta(hours=1)
    broker.trade(exchange_id, "buy", "1", trade_id="skewed", at=future)
    await service.exchange_sync.backfill_once(exchange_id)
    broker.trade(exchange_id, "sell", "1", trade_id="normal")
    await service.exchange_sync.backfill_once(exchange_id)
    assert [s.signal_id for s in await _signals(stub, exchange_id)] == ["skewed", "normal"]


async def test_leader_position_is_walked_back_from_the_portfolio_read_after_the_fills(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
) -> None:
    exchange_id = broker.add_account("alice", totals={"BTC": "1", "USDT": "50000"}, equity="100000")
    await _watched(stub, service, exchange_id)
    broker.trade(exchange_id, "buy", "0.5", trade_id="a", fee="0.001", fee_currency="BTC")
    broker.trade(exchange_id, "buy", "2", symbol="ETH/USDT", price="3000", trade_id="b")
    broker.trade(exchange_id, "sell", "0.2", trade_id="c", fee="3", fee_currency="USDT")
    broker.trade(exchange_id, "sell", "1.299", trade_id="d")
    await service.exchange_sync.backfill_once(exchange_id)
    broker.trade(exchange_id, "buy", "0.1", trade_id="e")
    await service.exchange_sync.backfill_once(exchange_id)
    positions = {s.signal_id: s.leader_position.value for s in await _signals(stub, exchange_id)}
    assert positions == {"a": "1", "b": "0", "c": "1.499", "d": "1.299", "e": "0"}


async def test_broker_failure_is_retried_recorded_and_recovered(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
) -> None:
    exchange_id = broker.add_account("alice")
    await _watched(stub, service, exchange_id, max_retries=2)
    broker.trade(exchange_id, "buy", "1", trade_id="x")
    calls = len(broker.list_calls)
    broker.fail_list_fills = 3  # the first try and both retries fail
    service.exchange_sync.wake(exchange_id)

    async def failed() -> str:
        stored = await service.store.get_source(exchange_id)
        return stored.last_error if stored else ""

    assert await eventually(failed, timeout=5) == "EXCHANGE_UNAVAILABLE: venue unavailable"
    assert len(broker.list_calls) - calls == 3
    source = (await stub.GetSource(pb.GetSourceRequest(source_id=exchange_id))).source
    assert source.last_error == "EXCHANGE_UNAVAILABLE: venue unavailable"
    assert await _signals(stub, exchange_id) == []
    assert service.exchange_sync.is_running(exchange_id)
    broker.fail_list_fills = 1  # one failure, then the retry works
    service.exchange_sync.wake(exchange_id)

    async def recovered() -> bool:
        stored = await service.store.get_source(exchange_id)
        return stored is not None and stored.last_error == ""

    await eventually(recovered, timeout=5)
    assert [s.signal_id for s in await _signals(stub, exchange_id)] == ["x"]


async def test_readers_resume_for_every_exchange_source_on_start_up(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    store: SyncStore,
) -> None:
    exchange_id = broker.add_account("alice")
    await _watched(stub, service, exchange_id)
    await service.exchange_sync.stop()
    broker.trade(exchange_id, "buy", "0.4", trade_id="while-down")
    settings = Settings(grpc_port=0, metrics_port=0)
    restarted, close = await build_service(settings, Deps(store=store, broker=broker, timing=FAST))
    try:
        assert restarted.exchange_sync.is_running(exchange_id)

        async def caught_up() -> bool:
            return len(await store.list_signals(exchange_id)) == 1

        await eventually(caught_up, timeout=5)
    finally:
        await restarted.running.stop(None)
        await close()


async def test_an_unwatched_source_is_not_read_nor_resumed_and_a_new_watch_starts_it_afresh(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    store: SyncStore,
) -> None:
    exchange_id = broker.add_account("alice")
    await _watched(stub, service, exchange_id)
    broker.trade(exchange_id, "buy", "0.1", trade_id="copied")
    assert await service.exchange_sync.backfill_once(exchange_id) == 1
    gone = (
        await stub.UnwatchExchangeSource(
            pb.UnwatchExchangeSourceRequest(exchange_id=exchange_id), metadata=ALICE
        )
    ).source
    assert not gone.watched and gone.last_sequence == 1
    assert not service.exchange_sync.is_running(exchange_id)
    again = await stub.UnwatchExchangeSource(  # idempotent
        pb.UnwatchExchangeSourceRequest(exchange_id=exchange_id), metadata=ALICE
    )
    assert not again.source.watched
    # Nobody copies it now: a restart does not read it again.
    lists = len(broker.list_calls)
    await service.exchange_sync.stop()
    restarted, close = await build_service(
        Settings(grpc_port=0, metrics_port=0, **mesh_trust("sync")),
        Deps(store=store, broker=broker, timing=FAST),
    )
    try:
        assert not restarted.exchange_sync.is_running(exchange_id)
        broker.trade(exchange_id, "buy", "0.2", trade_id="while-unwatched")
        await asyncio.sleep(0.2)
        assert len(broker.list_calls) == lists
        # Watched again: it starts now, so the trade made meanwhile is never a signal.
        await asyncio.sleep(0.01)
        restub = AuthorizedStub(
            pb_grpc.SyncServiceStub, f"127.0.0.1:{restarted.running.port}", RULES
        )
        try:
            back = (await restub.WatchExchangeSource(_watch(exchange_id), metadata=ALICE)).source
            assert back.watched
            assert restarted.exchange_sync.is_running(exchange_id)
            assert await restarted.exchange_sync.backfill_once(exchange_id) == 0
            broker.trade(exchange_id, "buy", "0.3", trade_id="after")
            assert await restarted.exchange_sync.backfill_once(exchange_id) == 1
            assert [s.signal_id for s in await _signals(restub, exchange_id)] == ["copied", "after"]
        finally:
            await restub.close()
    finally:
        await restarted.running.stop(None)
        await close()


async def test_only_the_owner_may_unwatch_a_source(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
) -> None:
    exchange_id = broker.add_account("alice")
    await _watched(stub, service, exchange_id)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UnwatchExchangeSource(
            pb.UnwatchExchangeSourceRequest(exchange_id=exchange_id), metadata=as_user("bob")
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert service.exchange_sync.is_running(exchange_id)


async def test_equity_is_refreshed_on_a_timer(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    store: SyncStore,
) -> None:
    exchange_id = broker.add_account("alice", equity="1000")
    await _watched(stub, service, exchange_id)
    await service.exchange_sync.stop()
    broker.equity[exchange_id] = Decimal("1234.5")
    timing = SyncTiming(retry_base_seconds=0, equity_refresh_seconds=0.05)
    other, close = await build_service(
        Settings(grpc_port=0, metrics_port=0), Deps(store=store, broker=broker, timing=timing)
    )
    try:

        async def refreshed() -> bool:
            source = await store.get_source(exchange_id)
            return source is not None and source.equity == Decimal("1234.5")

        await eventually(refreshed, timeout=5)
        source = (await stub.GetSource(pb.GetSourceRequest(source_id=exchange_id))).source
        assert source.equity.value == "1234.5"
    finally:
        await other.running.stop(None)
        await close()
