"""Real-time sync: a leader's fill stream with REST backfill, every fill logged exactly once.

Each scenario drives a scripted fake broker (its ``WatchFills`` is a queue the test feeds and
breaks) while an engine-like consumer reads ``StreamSignals``; the consumer must receive every
leader fill exactly once, in a gap-free sequence.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY
from sync_helpers import (
    FAST,
    SignalConsumer,
    as_user,
)

from copytrade.broker.v1 import broker_service_pb2_grpc as broker_grpc
from copytrade.sync.v1 import sync_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2_grpc as pb_grpc
from meshkit import errors
from meshkit.access import Guard
from meshkit.server import Registration, RunningServer, start_server
from meshkit.testing import (
    TEST_VERIFIER,
    AuthorizedStub,
    eventually,
    mesh_trust,
    secure_channel,
    tls_for,
)
from sync_svc.access import RULES
from sync_svc.adapters.broker_client import GrpcBroker
from sync_svc.config import Settings
from sync_svc.domain.model import LeaderFill, WatchEvent, WatchState
from sync_svc.exchange_sync import SyncTiming
from sync_svc.server import Deps, SyncService, build_service
from sync_svc.store import SyncStore
from tests.fakes.broker import BrokerPortServicer, FakeBrokerPort

ALICE = as_user("alice")
FILLS = 200
# The portfolio is read once at start only: no balance check asks for a backfill, so a test
# can tell which trigger recovered what the stream lost.
QUIET = replace(FAST, equity_min_gap_seconds=3600)
START_TOTALS = {"BTC": "10", "USDT": "1000000"}

Fault = Callable[[], Awaitable[None] | None]
# For tests of the stream's control alone (no storage concern), one backend is enough.
SQLITE_ONLY = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _backfills(trigger: str) -> float:
    return _metric("copytrade_sync_backfills_total", exchange="binance", trigger=trigger)


def _found_by(path: str) -> float:
    return _metric("copytrade_sync_leader_fills_total", exchange="binance", path=path)


def _connections(mode: str) -> float:
    return _metric("realtime_sync_connections", exchange="binance", mode=mode)


async def _watched(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    exchange_id: str,
    *,
    connect: bool = True,
    **settings: int | bool,
) -> None:
    """Watch the account; wait for its first backfill, its equity and (if asked) the stream.

    With the stream, also for the backfill its connection asks for to be over: a test that then
    hides fills from the stream must not have them found by that backfill, however late it runs.
    """
    connected_before = _backfills("connected")
    await stub.WatchExchangeSource(
        pb.WatchExchangeSourceRequest(
            exchange_id=exchange_id, sync_settings=pb.SyncSettings(**settings)
        ),
        metadata=ALICE,
    )
    streaming = connect and settings.get("enable_websocket", True)

    async def ready() -> bool:
        source = await service.store.get_source(exchange_id)
        reader = service.exchange_sync.source(exchange_id)
        return (
            source is not None
            and source.last_sync_at is not None
            and source.equity is not None
            and reader is not None
            and (
                not streaming
                or (
                    reader.connected
                    and _backfills("connected") > connected_before
                    and reader.backfill_idle
                )
            )
        )

    await eventually(ready, timeout=5)


@pytest.fixture
async def consumer_of(
    stub: pb_grpc.SyncServiceStub,
) -> AsyncIterator[Callable[[str], Awaitable[SignalConsumer]]]:
    opened: list[SignalConsumer] = []

    async def open_consumer(source_id: str) -> SignalConsumer:
        consumer = await SignalConsumer(stub.StreamSignals(), source_id).start()
        opened.append(consumer)
        return consumer

    yield open_consumer
    for consumer in opened:
        await consumer.close()


async def _trade_many(
    broker: FakeBrokerPort,
    exchange_id: str,
    count: int,
    faults: dict[int, Fault] | None = None,
) -> list[LeaderFill]:
    """Make ``count`` leader fills (mostly buys, some sells), running ``faults`` at their index."""
    fills = []
    for index in range(count):
        fault = (faults or {}).get(index)
        if fault is not None:
            outcome = fault()
            if outcome is not None:
                await outcome
        side = "sell" if index % 4 == 3 else "buy"
        fills.append(broker.trade(exchange_id, side, "0.01", price=str(50000 + index)))
        await asyncio.sleep(0)
    return fills


async def _assert_exactly_once(
    service: SyncService,
    consumer: SignalConsumer,
    exchange_id: str,
    fills: list[LeaderFill],
    timeout: float = 10.0,  # noqa: ASYNC109 - the test's budget, handed to the consumer's wait
) -> list[pb.Signal]:
    await consumer.wait_for(len(fills), timeout=timeout)
    # Nothing is left to find, and nothing more arrives.
    assert await service.exchange_sync.backfill_once(exchange_id) == 0
    await asyncio.sleep(0.1)
    signals = consumer.signals
    assert [s.sequence for s in signals] == list(range(1, len(fills) + 1))
    assert sorted(s.signal_id for s in signals) == sorted(f.trade_id for f in fills)
    assert len(await service.store.list_signals(exchange_id, limit=10 * len(fills))) == len(fills)
    return signals


async def _source(stub: pb_grpc.SyncServiceStub, exchange_id: str) -> pb.Source:
    return (await stub.GetSource(pb.GetSourceRequest(source_id=exchange_id))).source


async def test_streamed_fills_carry_the_exact_leader_position_and_the_fresh_equity(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    consumer_of: Callable[[str], Awaitable[SignalConsumer]],
) -> None:
    exchange_id = broker.add_account("alice", totals=START_TOTALS, equity="1500000")
    await _watched(stub, service, exchange_id, sync_interval=3600, enable_polling=False)
    consumer = await consumer_of(exchange_id)
    await consumer.wait_heartbeat()  # subscribed and replayed: every signal from now on is live
    stream_before, backfill_before = _found_by("stream"), _found_by("backfill")
    latency_before = _metric("sync_latency_seconds_count", exchange="binance")
    fills = await _trade_many(broker, exchange_id, FILLS)
    signals = await _assert_exactly_once(service, consumer, exchange_id, fills)
    assert [s.signal_id for s in signals] == [f.trade_id for f in fills]
    # Portfolio reads overtook fills still queued on the stream; positions stay exact.
    assert broker.portfolio_calls > 2
    assert {s.signal_id: Decimal(s.leader_position.value) for s in signals} == {
        f.trade_id: broker.truth_positions[f.trade_id] for f in fills
    }
    assert all(s.leader_equity.value == "1500000" for s in signals)
    assert _found_by("stream") - stream_before == FILLS
    assert _found_by("backfill") == backfill_before
    assert _metric("sync_latency_seconds_count", exchange="binance") - latency_before == FILLS
    source = await _source(stub, exchange_id)
    assert source.mode == pb.SYNC_MODE_WEBSOCKET and source.last_error == ""


async def test_stream_closed_mid_way_reconnects_and_backfills_every_fill_exactly_once(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    consumer_of: Callable[[str], Awaitable[SignalConsumer]],
) -> None:
    exchange_id = broker.add_account("alice", totals=START_TOTALS)
    await _watched(stub, service, exchange_id, sync_interval=3600, enable_polling=False)
    consumer = await consumer_of(exchange_id)
    connects = _metric("copytrade_sync_stream_connects_total", exchange="binance")
    on_connect = _backfills("connected")
    closed = errors.Unavailable("websocket closed (1006)", reason="VENUE_STREAM_CLOSED")

    async def close_again() -> None:
        await eventually(lambda: broker.watching(exchange_id), timeout=5)
        broker.end_watches(exchange_id)  # this time cleanly

    fills = await _trade_many(
        broker,
        exchange_id,
        FILLS,
        {
            50: lambda: broker.end_watches(exchange_id, closed),
            120: close_again,
        },
    )
    await _assert_exactly_once(service, consumer, exchange_id, fills)
    assert broker.dropped, "the stream lost fills while it was closed"
    assert _metric("copytrade_sync_stream_connects_total", exchange="binance") - connects == 2
    assert _backfills("connected") > on_connect  # reconnects during a backfill share the next
    assert (await _source(stub, exchange_id)).mode == pb.SYNC_MODE_WEBSOCKET


@pytest.mark.parametrize("timing", [QUIET])
async def test_ten_percent_silently_dropped_while_the_stream_stays_up_are_recovered_by_the_timer(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    consumer_of: Callable[[str], Awaitable[SignalConsumer]],
) -> None:
    exchange_id = broker.add_account("alice", totals=START_TOTALS)
    await _watched(stub, service, exchange_id, sync_interval=1)
    consumer = await consumer_of(exchange_id)
    stream_before, backfill_before = _found_by("stream"), _found_by("backfill")
    connects = _metric("copytrade_sync_stream_connects_total", exchange="binance")
    on_timer = _backfills("timer")
    broker.drop_rate = 0.1
    fills = await _trade_many(broker, exchange_id, FILLS)
    broker.drop_rate = 0.0
    dropped = len(broker.dropped)
    assert 8 <= dropped <= 40
    # The stream never noticed: it stayed connected; the interval's backfill found the rest.
    await _assert_exactly_once(service, consumer, exchange_id, fills, timeout=5)
    found_by_backfill = _found_by("backfill") - backfill_before
    assert found_by_backfill >= dropped
    assert _found_by("stream") - stream_before + found_by_backfill == FILLS
    assert _backfills("timer") > on_timer
    assert _metric("copytrade_sync_stream_connects_total", exchange="binance") == connects
    assert (await _source(stub, exchange_id)).mode == pb.SYNC_MODE_WEBSOCKET


@pytest.mark.parametrize("timing", [QUIET])
async def test_subscription_expiry_falls_back_to_polling_then_backfills_on_reconnect(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    consumer_of: Callable[[str], Awaitable[SignalConsumer]],
) -> None:
    exchange_id = broker.add_account("alice", totals=START_TOTALS)
    await _watched(stub, service, exchange_id, sync_interval=3600, enable_polling=False)
    consumer = await consumer_of(exchange_id)
    websocket_gauge, polling_gauge = _connections("websocket"), _connections("polling")
    on_connect = _backfills("connected")

    async def expire() -> None:
        stored = await service.store.get_source(exchange_id)
        assert stored is not None
        broker.venue_disconnect(exchange_id, "listenKey expired")

        async def polled_once() -> pb.Source | None:
            source = await _source(stub, exchange_id)
            down = source.mode == pb.SYNC_MODE_POLLING
            polled = source.last_sync_time.ToDatetime(tzinfo=UTC) > stored.last_sync_at
            return source if down and polled else None

        # The drop is polled at once; the fills after it wait for the reconnect's backfill
        # (the interval is an hour).
        source = await eventually(polled_once, timeout=5)
        assert source.last_error == "WEBSOCKET_DOWN: DISCONNECTED: listenKey expired"
        assert _connections("websocket") == websocket_gauge - 1
        assert _connections("polling") == polling_gauge + 1

    fills = await _trade_many(
        broker,
        exchange_id,
        FILLS,
        {
            80: expire,
            140: lambda: broker.venue_reconnect(exchange_id),
        },
    )
    assert len(broker.dropped) == 60
    await _assert_exactly_once(service, consumer, exchange_id, fills)
    source = await _source(stub, exchange_id)
    assert source.mode == pb.SYNC_MODE_WEBSOCKET and source.last_error == ""
    assert _connections("websocket") == websocket_gauge
    assert _backfills("connected") > on_connect


@pytest.mark.parametrize("timing", [QUIET])
async def test_without_polling_a_silent_loss_waits_for_the_reconnect_backfill(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    consumer_of: Callable[[str], Awaitable[SignalConsumer]],
) -> None:
    exchange_id = broker.add_account("alice", totals=START_TOTALS)
    await _watched(stub, service, exchange_id, sync_interval=1, enable_polling=False)
    consumer = await consumer_of(exchange_id)
    on_timer = _backfills("timer")
    fills = await _trade_many(broker, exchange_id, 100)
    broker.drop_all = True
    fills += await _trade_many(broker, exchange_id, 50)
    broker.drop_all = False
    fills += await _trade_many(broker, exchange_id, 50)
    await consumer.wait_for(150)
    await asyncio.sleep(1.3)  # more than sync_interval: no timer backfill while the stream is up
    assert len(consumer.signals) == 150
    assert _backfills("timer") == on_timer
    broker.end_watches(exchange_id)  # the stream drops and reconnects: CONNECTED → backfill
    await _assert_exactly_once(service, consumer, exchange_id, fills)


async def test_gap_suspected_event_backfills_at_once(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    consumer_of: Callable[[str], Awaitable[SignalConsumer]],
) -> None:
    exchange_id = broker.add_account("alice", totals=START_TOTALS)
    await _watched(stub, service, exchange_id, sync_interval=3600, enable_polling=False)
    consumer = await consumer_of(exchange_id)
    on_gap = _backfills("gap")
    broker.drop_all = True
    fills = await _trade_many(broker, exchange_id, 5)
    broker.drop_all = False
    broker.push(exchange_id, WatchEvent(WatchState.GAP_SUSPECTED, "heartbeat_counter jumped"))
    await _assert_exactly_once(service, consumer, exchange_id, fills, timeout=3)
    assert _backfills("gap") == on_gap + 1


@pytest.mark.parametrize("timing", [replace(QUIET, stream_silence_seconds=0.3)])
async def test_a_connected_stream_silent_too_long_is_backfilled(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    consumer_of: Callable[[str], Awaitable[SignalConsumer]],
) -> None:
    exchange_id = broker.add_account("alice", totals=START_TOTALS)
    await _watched(stub, service, exchange_id, sync_interval=3600, enable_polling=False)
    consumer = await consumer_of(exchange_id)
    on_silence, on_backfill = _backfills("silence"), _found_by("backfill")
    others = {trigger: _backfills(trigger) for trigger in ("timer", "gap", "balance")}
    broker.drop_all = True
    fills = await _trade_many(broker, exchange_id, 3)
    await _assert_exactly_once(service, consumer, exchange_id, fills, timeout=3)
    assert _found_by("backfill") - on_backfill == 3
    # A silence backfill counts when it starts; one may have started before the trades and
    # found them, so the next one (every 0.3 s of silence) is what this waits for.
    await eventually(lambda: _backfills("silence") > on_silence, timeout=5)
    assert {trigger: _backfills(trigger) for trigger in others} == others


async def test_a_balance_change_no_fill_explains_triggers_a_backfill(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    consumer_of: Callable[[str], Awaitable[SignalConsumer]],
) -> None:
    exchange_id = broker.add_account("alice", totals=START_TOTALS)
    await _watched(stub, service, exchange_id, sync_interval=3600, enable_polling=False)
    consumer = await consumer_of(exchange_id)
    on_balance = _backfills("balance")
    broker.drop_all = True
    fills = await _trade_many(broker, exchange_id, 2)
    broker.drop_all = False
    # The next streamed fill's portfolio read shows balances the logged fills do not explain.
    fills += await _trade_many(broker, exchange_id, 1)
    await _assert_exactly_once(service, consumer, exchange_id, fills, timeout=3)
    assert _backfills("balance") > on_balance


async def test_a_deposit_rebases_the_equity_and_never_becomes_a_signal(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    consumer_of: Callable[[str], Awaitable[SignalConsumer]],
) -> None:
    exchange_id = broker.add_account(
        "alice", totals={"BTC": "1", "USDT": "100000"}, equity="150000"
    )
    await _watched(stub, service, exchange_id, sync_interval=3600, enable_polling=False)
    consumer = await consumer_of(exchange_id)
    reader = service.exchange_sync.source(exchange_id)
    assert reader is not None
    changes = _metric("copytrade_sync_unexplained_balance_changes_total", exchange="binance")

    async def equity_is(value: str) -> bool:
        return (await _source(stub, exchange_id)).equity.value == value

    def counted() -> float:
        return _metric("copytrade_sync_unexplained_balance_changes_total", exchange="binance")

    on_balance = _backfills("balance")
    broker.deposit(exchange_id, "USDT", "25000", value="25000")
    reader.request_refresh()
    await eventually(lambda: equity_is("175000"), timeout=5)
    await eventually(lambda: counted() == changes + 1, timeout=5)
    broker.deposit(exchange_id, "BTC", "0.5", value="25000")
    reader.request_refresh()
    await eventually(lambda: equity_is("200000"), timeout=5)
    await eventually(lambda: counted() == changes + 2, timeout=5)
    # The backfills the deposits asked for found nothing to log.
    await eventually(lambda: _backfills("balance") == on_balance + 2, timeout=5)
    await asyncio.sleep(0.1)
    assert consumer.signals == [] and await service.store.list_signals(exchange_id) == []
    broker.trade(exchange_id, "sell", "0.3")
    (signal,) = await consumer.wait_for(1)
    assert signal.leader_position.value == "1.5" and signal.leader_equity.value == "200000"


async def test_a_streamed_fill_reaches_the_consumer_without_a_broker_round_trip(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    consumer_of: Callable[[str], Awaitable[SignalConsumer]],
) -> None:
    exchange_id = broker.add_account("alice", totals=START_TOTALS, equity="1500000")
    await _watched(stub, service, exchange_id, sync_interval=3600, enable_polling=False)
    consumer = await consumer_of(exchange_id)
    broker.list_delay = broker.portfolio_delay = 3.0
    started = time.monotonic()
    broker.trade(exchange_id, "buy", "0.25", trade_id="fast")
    (signal,) = await consumer.wait_for(1, timeout=2)
    assert time.monotonic() - started < 1.0
    assert signal.signal_id == "fast" and signal.leader_position.value == "10"
    assert signal.leader_equity.value == "1500000"


# QUIET: no balance check may start a backfill of its own while this one holds its listing.
@pytest.mark.parametrize("timing", [QUIET])
async def test_a_fill_streamed_while_a_backfill_of_its_window_runs_is_logged_once(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    consumer_of: Callable[[str], Awaitable[SignalConsumer]],
) -> None:
    exchange_id = broker.add_account("alice", totals=START_TOTALS)
    await _watched(stub, service, exchange_id, sync_interval=3600, enable_polling=False)
    consumer = await consumer_of(exchange_id)
    broker.drop_all = True
    early = await _trade_many(broker, exchange_id, 100)  # only a backfill sees these
    broker.drop_all = False
    listed, release = asyncio.Event(), asyncio.Event()

    async def hold(_fills: list[LeaderFill]) -> None:
        listed.set()
        await release.wait()

    broker.list_hook = hold
    backfill = asyncio.create_task(service.exchange_sync.backfill_once(exchange_id))
    await listed.wait()
    broker.list_hook = None
    # While the backfill holds its listing, the venue re-sends half of it on the stream (T42)
    # and keeps trading; one fill made after the listing is lost by the stream.
    for fill in early[:50]:
        broker.push(exchange_id, fill)
    late = await _trade_many(broker, exchange_id, 99)
    broker.drop_all = True
    (missed,) = await _trade_many(broker, exchange_id, 1)
    broker.drop_all = False
    await consumer.wait_for(149)
    release.set()
    assert await backfill == 50  # what the stream had not delivered
    # The listing held back did not move the cursor past the fill made after it ...
    stored = await service.store.get_source(exchange_id)
    assert stored is not None and stored.cursor_time is not None
    assert stored.cursor_time <= missed.trade_time
    # ... so the next backfill finds the fill the stream lost.
    assert await service.exchange_sync.backfill_once(exchange_id) == 1
    await eventually(lambda: len(consumer.signals) >= 200, timeout=5)
    await _assert_exactly_once(service, consumer, exchange_id, [*early, *late, missed])


async def test_polling_only_mode_reads_every_fill_once_at_its_interval(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    consumer_of: Callable[[str], Awaitable[SignalConsumer]],
) -> None:
    exchange_id = broker.add_account("alice", totals=START_TOTALS)
    polling_gauge = _connections("polling")
    await _watched(stub, service, exchange_id, sync_interval=1, enable_websocket=False)
    assert _connections("polling") == polling_gauge + 1
    consumer = await consumer_of(exchange_id)
    fills = await _trade_many(broker, exchange_id, FILLS)
    await _assert_exactly_once(service, consumer, exchange_id, fills, timeout=4)
    assert broker.watch_calls == 0
    source = await _source(stub, exchange_id)
    assert source.mode == pb.SYNC_MODE_POLLING and source.last_error == ""
    assert source.sync_interval_seconds == 1
    timer_polls = broker.list_times[1:-1]  # between the first poll and the test's own
    assert timer_polls and all(b - a >= 0.95 for a, b in itertools.pairwise(timer_polls))


@SQLITE_ONLY
async def test_turning_the_stream_on_and_off_switches_modes(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
) -> None:
    exchange_id = broker.add_account("alice")
    await _watched(stub, service, exchange_id, sync_interval=60, enable_websocket=False)
    assert broker.watch_calls == 0
    await _watched(stub, service, exchange_id, sync_interval=60)
    assert (await _source(stub, exchange_id)).mode == pb.SYNC_MODE_WEBSOCKET
    await _watched(stub, service, exchange_id, sync_interval=60, enable_websocket=False)
    await eventually(lambda: not broker.watching(exchange_id), timeout=5)
    source = await _source(stub, exchange_id)
    assert source.mode == pb.SYNC_MODE_POLLING and source.last_error == ""


@SQLITE_ONLY
@pytest.mark.parametrize("timing", [replace(FAST, stream_cooldown_seconds=3600)])
async def test_a_broker_without_the_stream_is_polled_and_says_why(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    consumer_of: Callable[[str], Awaitable[SignalConsumer]],
) -> None:
    broker.watch_unimplemented = True
    exchange_id = broker.add_account("alice")
    await _watched(stub, service, exchange_id, connect=False, sync_interval=1)
    consumer = await consumer_of(exchange_id)

    async def reported() -> pb.Source | None:
        source = await _source(stub, exchange_id)
        return source if source.last_error else None

    source = await eventually(reported, timeout=5)
    assert source.mode == pb.SYNC_MODE_POLLING
    assert source.last_error == "WEBSOCKET_DOWN: UNIMPLEMENTED: WatchFills is not implemented"
    assert broker.watch_calls == 1  # not retried at once: it will not appear in a second
    fills = await _trade_many(broker, exchange_id, 20)
    await _assert_exactly_once(service, consumer, exchange_id, fills, timeout=4)


@SQLITE_ONLY
async def test_a_stream_that_does_not_open_in_time_is_retried(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
) -> None:
    broker.watch_hangs = True
    exchange_id = broker.add_account("alice")
    await _watched(stub, service, exchange_id, connect=False, sync_interval=60, timeout=1)

    async def timed_out() -> pb.Source | None:
        source = await _source(stub, exchange_id)
        return source if "TIMEOUT" in source.last_error else None

    source = await eventually(timed_out, timeout=5)
    assert source.mode == pb.SYNC_MODE_POLLING
    broker.watch_hangs = False
    await eventually(lambda: service.exchange_sync.source(exchange_id).connected, timeout=5)
    assert broker.watch_calls >= 2


async def _serve_broker(broker: FakeBrokerPort, port: int = 0) -> RunningServer:
    return await start_server(
        [
            Registration(
                broker_grpc.add_BrokerServiceServicer_to_server,
                BrokerPortServicer(broker),
                "copytrade.broker.v1.BrokerService",
            )
        ],
        domain="broker.copytrade",
        port=port,
        guard=Guard(None, TEST_VERIFIER),
        tls=tls_for("broker"),
    )


async def test_broker_restart_falls_back_to_polling_and_returns_to_the_stream(
    store: SyncStore,
    broker: FakeBrokerPort,
) -> None:
    """Through real gRPC: the broker process goes away, the watch RPC fails, and comes back."""
    broker_server = await _serve_broker(broker)
    port = broker_server.port
    # A short reconnect backoff so that the test does not wait for gRPC's default (1 s, growing).
    channel = secure_channel(
        f"127.0.0.1:{port}",
        "sync",
        options=[
            ("grpc.initial_reconnect_backoff_ms", 50),
            ("grpc.min_reconnect_backoff_ms", 50),
            ("grpc.max_reconnect_backoff_ms", 100),
        ],
    )
    grpc_broker = GrpcBroker(channel)
    service, close = await build_service(
        Settings(grpc_port=0, metrics_port=0, heartbeat_seconds=0.2, **mesh_trust("sync")),
        Deps(store=store, broker=grpc_broker, timing=FAST),
    )
    sync_channel = AuthorizedStub(
        pb_grpc.SyncServiceStub, f"127.0.0.1:{service.running.port}", RULES
    )
    stub = sync_channel
    consumer: SignalConsumer | None = None
    try:
        exchange_id = broker.add_account("alice", totals=START_TOTALS)
        await _watched(stub, service, exchange_id, sync_interval=1)
        consumer = await SignalConsumer(stub.StreamSignals(), exchange_id).start()
        websocket_gauge = _connections("websocket")
        fills = await _trade_many(broker, exchange_id, 100)
        await consumer.wait_for(100)

        broker.restart()
        await broker_server.server.stop(grace=None)

        async def polling() -> pb.Source | None:
            source = await _source(stub, exchange_id)
            return source if source.mode == pb.SYNC_MODE_POLLING else None

        source = await eventually(polling, timeout=5)
        assert source.last_error.startswith("WEBSOCKET_DOWN: ")
        assert _connections("websocket") == websocket_gauge - 1
        fills += await _trade_many(broker, exchange_id, 50)  # while the broker is away

        broker.watch_down = False
        broker_server = await _serve_broker(broker, port)

        async def streaming() -> pb.Source | None:
            source = await _source(stub, exchange_id)
            healthy = source.mode == pb.SYNC_MODE_WEBSOCKET and source.last_error == ""
            return source if healthy else None

        await eventually(streaming, timeout=10)
        assert _connections("websocket") == websocket_gauge
        fills += await _trade_many(broker, exchange_id, 50)
        await _assert_exactly_once(service, consumer, exchange_id, fills)
    finally:
        if consumer is not None:
            await consumer.close()
        await sync_channel.close()
        await service.running.stop(None)
        await close()
        await grpc_broker.close()
        await broker_server.server.stop(grace=None)


@SQLITE_ONLY
async def test_two_watch_calls_at_once_start_one_reader(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
) -> None:
    exchange_id = broker.add_account("alice")
    websocket_gauge = _connections("websocket")
    request = pb.WatchExchangeSourceRequest(
        exchange_id=exchange_id, sync_settings=pb.SyncSettings(sync_interval=60)
    )
    await asyncio.gather(*(stub.WatchExchangeSource(request, metadata=ALICE) for _ in range(3)))
    await eventually(lambda: _connections("websocket") == websocket_gauge + 1, timeout=5)
    await asyncio.sleep(0.1)
    assert broker.watch_calls == 1
    assert _connections("websocket") == websocket_gauge + 1


@pytest.mark.parametrize("timing", [QUIET])
async def test_a_fill_found_after_a_restart_is_placed_against_fills_logged_before_it(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
    store: SyncStore,
    timing: SyncTiming,
) -> None:
    exchange_id = broker.add_account("alice", totals={"BTC": "1", "USDT": "100000"})
    await _watched(stub, service, exchange_id, sync_interval=3600, enable_polling=False)
    broker.drop_all = True
    lost = broker.trade(exchange_id, "buy", "0.5", trade_id="lost")
    broker.drop_all = False
    broker.trade(exchange_id, "buy", "0.25", trade_id="streamed")
    await eventually(lambda: store.last_sequence(exchange_id), timeout=5)
    await service.exchange_sync.stop()
    restarted, close = await build_service(
        Settings(grpc_port=0, metrics_port=0), Deps(store=store, broker=broker, timing=timing)
    )
    try:

        async def found() -> bool:
            return await store.last_sequence(exchange_id) == 2

        await eventually(found, timeout=5)
        signals = {s.signal_id: s for s in await store.list_signals(exchange_id)}
        # Read after both fills, the portfolio holds both: walking back from it needs the
        # fill logged before the restart.
        assert signals["lost"].leader_position == broker.truth_positions[lost.trade_id]
        assert signals["streamed"].leader_position == Decimal(1)
    finally:
        await restarted.running.stop(None)
        await close()
