"""The signal stream: replay then live, resume from an ack, heartbeats, exactly-once delivery."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import grpc
import pytest
from sync_helpers import as_user, published, read_signals

from copytrade.sync.v1 import sync_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2_grpc as pb_grpc
from meshkit.testing import eventually
from sync_svc.domain.model import (
    AppendEntry,
    OrderType,
    Side,
    Signal,
    SignalDraft,
    Source,
    SourceKind,
    SyncMode,
    SyncSettings,
)
from sync_svc.server import SyncService
from sync_svc.signal_log import SignalLog
from sync_svc.store import SyncStore
from sync_svc.stream import Ack, Heartbeat, StreamSession, Subscribe
from tests.fakes.clock import FakeClock

ALICE = as_user("alice")


async def _backtest(stub: pb_grpc.SyncServiceStub) -> str:
    reply = await stub.CreateBacktest(pb.CreateBacktestRequest(name="s"), metadata=ALICE)
    return reply.backtest_id


async def _publish(stub: pb_grpc.SyncServiceStub, backtest_id: str, *signal_ids: str) -> None:
    await stub.PublishSignals(
        pb.PublishSignalsRequest(
            backtest_id=backtest_id, signals=[published(s) for s in signal_ids]
        ),
        metadata=ALICE,
    )


def _subscribe(source_id: str, after: int = 0) -> pb.StreamSignalsRequest:
    return pb.StreamSignalsRequest(
        subscribe=pb.SubscribeSignals(source_id=source_id, after_sequence=after)
    )


def _ack(source_id: str, sequence: int) -> pb.StreamSignalsRequest:
    return pb.StreamSignalsRequest(ack=pb.AckSignal(source_id=source_id, sequence=sequence))


async def test_subscribe_replays_the_log_then_sends_live_signals_in_order(
    stub: pb_grpc.SyncServiceStub,
) -> None:
    source = await _backtest(stub)
    await _publish(stub, source, "a", "b", "c")
    call = stub.StreamSignals()
    await call.write(_subscribe(source, after=1))
    replayed = await read_signals(call, 2)
    await _publish(stub, source, "d", "e")
    live = await read_signals(call, 2)
    assert [(s.sequence, s.signal_id) for s in replayed + live] == [
        (2, "b"),
        (3, "c"),
        (4, "d"),
        (5, "e"),
    ]
    call.cancel()


async def test_one_stream_carries_several_sources(stub: pb_grpc.SyncServiceStub) -> None:
    first, second = await _backtest(stub), await _backtest(stub)
    await _publish(stub, first, "f1")
    await _publish(stub, second, "s1", "s2")
    call = stub.StreamSignals()
    await call.write(_subscribe(first))
    assert [s.signal_id for s in await read_signals(call, 1)] == ["f1"]
    await call.write(_subscribe(second))
    got = await read_signals(call, 2)
    assert [(s.source_id, s.sequence) for s in got] == [(second, 1), (second, 2)]
    await _publish(stub, first, "f2")
    (live,) = await read_signals(call, 1)
    assert (live.source_id, live.sequence) == (first, 2)
    call.cancel()


async def test_resubscribing_resets_the_sources_position(stub: pb_grpc.SyncServiceStub) -> None:
    source = await _backtest(stub)
    await _publish(stub, source, "a", "b", "c")
    call = stub.StreamSignals()
    await call.write(_subscribe(source))
    assert [s.sequence for s in await read_signals(call, 3)] == [1, 2, 3]
    await call.write(_subscribe(source, after=1))
    assert [s.sequence for s in await read_signals(call, 2)] == [2, 3]
    call.cancel()


async def test_reconnect_resumes_after_the_acked_sequence(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
) -> None:
    source = await _backtest(stub)
    await _publish(stub, source, "a", "b", "c", "d")
    first = stub.StreamSignals()
    await first.write(_subscribe(source))
    received = await read_signals(first, 2)
    await first.write(_ack(source, received[-1].sequence))

    async def acked() -> bool:
        return await service.store.acked_sequence("engine", source) == 2

    await eventually(acked, timeout=5)
    first.cancel()
    await _publish(stub, source, "e")
    acked_sequence = await service.store.acked_sequence("engine", source)
    second = stub.StreamSignals()
    await second.write(_subscribe(source, after=acked_sequence))
    assert [s.signal_id for s in await read_signals(second, 3)] == ["c", "d", "e"]
    await second.write(_ack(source, 5))
    await second.write(_ack(source, 4))
    await eventually(lambda: service.store.acked_sequence("engine", source), timeout=5)

    async def highest() -> bool:
        return await service.store.acked_sequence("engine", source) == 5

    await eventually(highest, timeout=5)
    second.cancel()


async def test_idle_stream_sends_heartbeats(stub: pb_grpc.SyncServiceStub) -> None:
    source = await _backtest(stub)
    call = stub.StreamSignals()
    await call.write(_subscribe(source))
    first = await asyncio.wait_for(call.read(), 2)
    second = await asyncio.wait_for(call.read(), 2)
    assert first.WhichOneof("message") == "heartbeat" == second.WhichOneof("message")
    assert second.heartbeat.send_time.ToDatetime() >= first.heartbeat.send_time.ToDatetime()
    call.cancel()


async def test_subscribe_to_an_unknown_source_ends_the_stream_with_not_found(
    stub: pb_grpc.SyncServiceStub,
) -> None:
    call = stub.StreamSignals()
    await call.write(_subscribe(str(uuid.uuid4())))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        while True:
            await asyncio.wait_for(call.read(), 5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("request_message", "code"),
    [
        (
            pb.StreamSignalsRequest(subscribe=pb.SubscribeSignals(source_id="x")),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (pb.StreamSignalsRequest(), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_malformed_stream_requests_end_the_stream_with_invalid_argument(
    stub: pb_grpc.SyncServiceStub,
    request_message: pb.StreamSignalsRequest,
    code: grpc.StatusCode,
) -> None:
    call = stub.StreamSignals()
    await call.write(request_message)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        while True:
            await asyncio.wait_for(call.read(), 5)
    assert caught.value.code() == code


async def test_negative_after_sequence_and_one_beyond_the_log_are_refused(
    stub: pb_grpc.SyncServiceStub,
) -> None:
    source = await _backtest(stub)
    await _publish(stub, source, "a")
    for after, code in (
        (-1, grpc.StatusCode.INVALID_ARGUMENT),
        (2, grpc.StatusCode.FAILED_PRECONDITION),
    ):
        call = stub.StreamSignals()
        await call.write(_subscribe(source, after=after))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            while True:
                await asyncio.wait_for(call.read(), 5)
        assert caught.value.code() == code


async def test_cancelling_the_stream_stops_its_tasks_and_listeners(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
) -> None:
    source = await _backtest(stub)
    await _publish(stub, source, "a")
    hub = service.app.log.hub
    before = len(asyncio.all_tasks())
    call = stub.StreamSignals()
    await call.write(_subscribe(source))
    await read_signals(call, 1)
    assert hub.listener_count(source) == 1
    call.cancel()
    await eventually(lambda: hub.listener_count(source) == 0, timeout=5)
    await eventually(lambda: len(asyncio.all_tasks()) <= before, timeout=5)


# Replay racing with appends, on the session itself (both backends).


class _RacingStore(SyncStore):
    """Appends a signal just before or just after the last backlog read of a replay."""

    def __init__(self, store: SyncStore, append_before_read: bool) -> None:
        super().__init__(store.database)
        self.signal_log: SignalLog | None = None
        self.append_before_read = append_before_read
        self.raced = False

    async def list_signals(
        self,
        source_id: str,
        **kwargs: Any,
    ) -> list[Signal]:
        last_page = kwargs.get("after_sequence") == 4
        if self.raced or self.signal_log is None or not last_page:
            return await super().list_signals(source_id, **kwargs)
        self.raced = True
        if self.append_before_read:
            await _append(self.signal_log, source_id, "raced")
            return await super().list_signals(source_id, **kwargs)
        page = await super().list_signals(source_id, **kwargs)
        await _append(self.signal_log, source_id, "raced")
        return page


async def _append(signal_log: SignalLog, source_id: str, signal_id: str) -> None:
    draft = SignalDraft(
        source_id=source_id,
        signal_id=signal_id,
        symbol="BTC/USDT",
        side=Side.BUY,
        quantity=Decimal("1"),
        price=None,
        order_type=OrderType.MARKET,
        event_time=datetime.now(UTC),
    )
    await signal_log.append(source_id, [AppendEntry(draft)], SourceKind.BACKTEST)


async def _requests(*items: Subscribe | Ack) -> AsyncIterator[Subscribe | Ack]:
    for item in items:
        yield item
    await asyncio.Event().wait()  # an engine keeps its side open


async def _collect(
    session: StreamSession, requests: AsyncIterator[Subscribe | Ack], count: int, quiet: float = 0.3
) -> list[int]:
    """Collect signal sequences until ``count`` arrived and then ``quiet`` seconds passed."""
    sequences: list[int] = []
    stream = session.run(requests)

    async def _read() -> None:
        async for item in stream:
            if not isinstance(item, Heartbeat):
                sequences.append(item.sequence)

    reader = asyncio.create_task(_read())
    try:
        await eventually(lambda: len(sequences) >= count, timeout=5)
        await asyncio.sleep(quiet)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await stream.aclose()
    return sequences


@pytest.mark.parametrize("append_before_read", [True, False])
async def test_signal_appended_during_replay_is_delivered_exactly_once(
    store: SyncStore,
    append_before_read: bool,
) -> None:
    racing = _RacingStore(store, append_before_read)
    signal_log = SignalLog(racing, FakeClock.real_time())
    source_id = await _source(store)
    for number in range(5):
        await _append(signal_log, source_id, f"s{number}")
    racing.signal_log = signal_log
    session = StreamSession(signal_log, heartbeat_seconds=0.05, page_size=2)
    sequences = await _collect(session, _requests(Subscribe(source_id, 0)), count=6)
    assert sequences == [1, 2, 3, 4, 5, 6]
    assert racing.raced


async def test_live_signals_keep_flowing_while_a_long_backlog_replays(store: SyncStore) -> None:
    signal_log = SignalLog(store, FakeClock.real_time())
    source_id = await _source(store)
    for number in range(30):
        await _append(signal_log, source_id, f"s{number}")
    session = StreamSession(signal_log, heartbeat_seconds=0.05, page_size=4, queue_size=2)

    async def publisher() -> None:
        for number in range(30, 40):
            await _append(signal_log, source_id, f"s{number}")
            await asyncio.sleep(0)

    task = asyncio.create_task(publisher())
    sequences = await _collect(session, _requests(Subscribe(source_id, 3)), count=37, quiet=0.2)
    await task
    assert sequences == list(range(4, 41))


async def _source(store: SyncStore) -> str:
    now = datetime.now(UTC)
    source = Source(
        source_id=str(uuid.uuid4()),
        kind=SourceKind.BACKTEST,
        user_id="alice",
        name="s",
        public=False,
        exchange_id="",
        exchange_name="",
        sync_settings=SyncSettings(),
        equity=None,
        mode=SyncMode.PUBLISHED,
        start_time=now,
        created_at=now,
    )
    await store.create_source(source)
    return source.source_id
