"""A fake of the sync service's gRPC API: sources and their signal logs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc

from copytrade.common.v1 import types_pb2
from copytrade.sync.v1 import sync_service_pb2 as sync_pb
from copytrade.sync.v1 import sync_service_pb2_grpc as sync_grpc
from meshkit import errors
from meshkit.codec import timestamp_from_proto, timestamp_to_proto
from meshkit.identity import user_id_or_empty
from meshkit.server import Registration
from tests.fakes.broker import DEFAULT_USER, dec, new_id
from tests.fakes.recording import Recorder


class FakeSyncService(sync_grpc.SyncServiceServicer):
    """Sources and their signal logs behind the sync service's gRPC API.

    ``StreamSignals`` streams them with subscribe, resume, heartbeats and acks, and hooks to
    break the streams or inject duplicates and gaps (the engine's tests); ``ListSignals`` pages
    them (at most ``page_cap`` a page when set) filtered by event time, logging each read in
    ``calls`` and failing while ``down`` (the reconciliation tests); ``PublishSignals`` numbers
    published signals after the source's log without keeping them, and with a ``recorder`` the
    calls are recorded (the gateway's tests).
    """

    def __init__(
        self,
        recorder: Recorder | None = None,
        *,
        calls: list[str] | None = None,
        page_cap: int | None = None,
    ) -> None:
        self.recorder = recorder
        self.calls: list[str] = calls if calls is not None else []
        self.page_cap = page_cap
        # While set, ListSignals fails as an unreachable signal log does.
        self.down = False
        self.sources: dict[str, sync_pb.Source] = {}
        self.logs: dict[str, list[sync_pb.Signal]] = {}
        self.acks: list[tuple[str, int]] = []
        self.subscriptions: list[tuple[str, int]] = []
        self.watch_calls: list[sync_pb.WatchExchangeSourceRequest] = []
        self.unwatch_calls: list[str] = []
        self.streams_opened = 0
        self._wake: list[asyncio.Event] = []
        self._injected: list[asyncio.Queue[sync_pb.Signal]] = []
        self._break = False

    # -- set-up

    def add_backtest(
        self, user_id: str = DEFAULT_USER, *, public: bool = False, source_id: str | None = None
    ) -> str:
        """Open a published (backtest) source of ``user_id``; return its id."""
        source_id = source_id or new_id()
        self.sources[source_id] = sync_pb.Source(
            source_id=source_id,
            kind=sync_pb.SOURCE_KIND_BACKTEST,
            user_id=user_id,
            public=public,
            mode=sync_pb.SYNC_MODE_PUBLISHED,
        )
        self.logs[source_id] = []
        return source_id

    def publish(
        self,
        source_id: str,
        *,
        side: types_pb2.OrderSide.ValueType = types_pb2.ORDER_SIDE_BUY,
        quantity: str = "0.1",
        price: str = "50000",
        symbol: str = "BTC/USDT",
        leader_equity: str | None = "100000",
        event_time: datetime | None = None,
        leader_position: str | None = None,
    ) -> sync_pb.Signal:
        log = self.logs.setdefault(source_id, [])
        sequence = len(log) + 1
        signal = sync_pb.Signal(
            source_id=source_id,
            sequence=sequence,
            signal_id=f"t{sequence}",
            symbol=symbol,
            side=side,
            quantity=dec(quantity),
            price=dec(price),
            order_type=types_pb2.ORDER_TYPE_MARKET,
            exchange_name="binance",
        )
        if leader_equity is not None:
            signal.leader_equity.CopyFrom(dec(leader_equity))
        if leader_position is not None:
            signal.leader_position.CopyFrom(dec(leader_position))
        moment = event_time or datetime.now(UTC)
        signal.event_time.CopyFrom(timestamp_to_proto(moment))
        signal.log_time.CopyFrom(timestamp_to_proto(moment))
        log.append(signal)
        source = self.sources.get(source_id)
        if source is not None:
            source.last_sequence = sequence
        self._notify()
        return signal

    def append(self, signal: sync_pb.Signal) -> None:
        """Log a ready-made signal (its own sequence, whatever the log holds) in its source."""
        self.logs.setdefault(signal.source_id, []).append(signal)
        source = self.sources.get(signal.source_id)
        if source is not None:
            source.last_sequence = max(source.last_sequence, signal.sequence)
        self._notify()

    def inject(self, signal: sync_pb.Signal) -> None:
        """Send ``signal`` on every open stream now, out of band (duplicates, gaps)."""
        for queue in self._injected:
            queue.put_nowait(signal)
        self._notify()

    def break_streams(self) -> None:
        """Make every open stream fail, as a dropped connection would."""
        self._break = True
        self._notify()

    def _notify(self) -> None:
        for event in self._wake:
            event.set()

    def registration(self) -> Registration:
        """This fake, ready for ``meshkit.testing.inprocess_server``."""
        return Registration(
            sync_grpc.add_SyncServiceServicer_to_server,
            self,
            "copytrade.sync.v1.SyncService",
        )

    # -- RPCs

    async def ListSignals(
        self,
        request: sync_pb.ListSignalsRequest,
        context: grpc.aio.ServicerContext,
    ) -> sync_pb.ListSignalsResponse:
        self.calls.append("ListSignals")
        if self.down:
            raise errors.Unavailable("the signal log is unavailable")
        if request.source_id not in self.logs:
            raise errors.NotFound("source not found")
        start = timestamp_from_proto(request.start_time, request.HasField("start_time"))
        end = timestamp_from_proto(request.end_time, request.HasField("end_time"))
        rows = []
        for signal in sorted(self.logs[request.source_id], key=lambda s: s.sequence):
            event = signal.event_time.ToDatetime(tzinfo=UTC)
            if signal.sequence <= request.after_sequence:
                continue
            if (start is not None and event < start) or (end is not None and event >= end):
                continue
            rows.append(signal)
        limit = request.page_size or 1000
        if self.page_cap is not None:
            limit = min(limit, self.page_cap)
        return sync_pb.ListSignalsResponse(signals=rows[:limit])

    async def PublishSignals(self, request, context):
        if self.recorder is not None:
            await self.recorder.record("PublishSignals", request, context)
        logged = len(self.logs.get(request.backtest_id, []))
        return sync_pb.PublishSignalsResponse(
            sequences=list(range(logged + 1, logged + len(request.signals) + 1)),
            accepted=len(request.signals),
        )

    async def GetSource(self, request, context):
        source = self.sources.get(request.source_id)
        if source is None:
            raise errors.NotFound("source not found", reason="SOURCE_NOT_FOUND")
        return sync_pb.GetSourceResponse(source=source)

    async def WatchExchangeSource(self, request, context):
        self.watch_calls.append(request)
        source = self.sources.get(request.exchange_id)
        if source is None:
            source = sync_pb.Source(
                source_id=request.exchange_id,
                kind=sync_pb.SOURCE_KIND_EXCHANGE,
                user_id=user_id_or_empty(context),
                mode=sync_pb.SYNC_MODE_WEBSOCKET,
                last_sequence=len(self.logs.get(request.exchange_id, [])),
            )
            self.sources[request.exchange_id] = source
            self.logs.setdefault(request.exchange_id, [])
        source.watched = True
        return sync_pb.WatchExchangeSourceResponse(source=source)

    async def UnwatchExchangeSource(self, request, context):
        self.unwatch_calls.append(request.exchange_id)
        source = self.sources.get(request.exchange_id)
        if source is None:
            raise errors.NotFound("source not found", reason="SOURCE_NOT_FOUND")
        source.watched = False
        return sync_pb.UnwatchExchangeSourceResponse(source=source)

    async def StreamSignals(
        self,
        request_iterator,
        context,
    ) -> AsyncIterator[sync_pb.StreamSignalsResponse]:
        self.streams_opened += 1
        self._break = False
        cursors: dict[str, int] = {}
        wake = asyncio.Event()
        injected: asyncio.Queue[sync_pb.Signal] = asyncio.Queue()
        self._wake.append(wake)
        self._injected.append(injected)

        async def read() -> None:
            async for request in request_iterator:
                kind = request.WhichOneof("message")
                if kind == "subscribe" and request.subscribe.source_id not in self.sources:
                    refused.append(
                        errors.NotFound(
                            "source not found",
                            reason="SOURCE_NOT_FOUND",
                            metadata={"source_id": request.subscribe.source_id},
                        )
                    )
                    wake.set()
                elif kind == "subscribe":
                    cursors[request.subscribe.source_id] = request.subscribe.after_sequence
                    self.subscriptions.append(
                        (request.subscribe.source_id, request.subscribe.after_sequence),
                    )
                    wake.set()
                elif kind == "ack":
                    self.acks.append((request.ack.source_id, request.ack.sequence))

        refused: list[errors.ServiceError] = []
        reader = asyncio.create_task(read())
        try:
            while True:
                if refused:
                    raise refused[0]
                if self._break:
                    raise errors.Unavailable("stream dropped")
                while not injected.empty():
                    yield sync_pb.StreamSignalsResponse(signal=injected.get_nowait())
                for source_id in list(cursors):
                    while cursors[source_id] < len(self.logs.get(source_id, [])):
                        signal = self.logs[source_id][cursors[source_id]]
                        cursors[source_id] = signal.sequence  # a re-subscribe meanwhile wins
                        yield sync_pb.StreamSignalsResponse(signal=signal)
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), timeout=0.2)
                except TimeoutError:
                    yield sync_pb.StreamSignalsResponse(heartbeat=sync_pb.Heartbeat())
        finally:
            reader.cancel()
            self._wake.remove(wake)
            self._injected.remove(injected)
