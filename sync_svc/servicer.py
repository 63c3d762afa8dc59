"""The SyncService servicer: validates and translates requests, calls the use-cases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from copytrade.sync.v1 import sync_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2_grpc as pb_grpc
from meshkit import identity
from meshkit.codec import utcnow
from sync_svc import codec
from sync_svc.domain.validation import check_id
from sync_svc.stream import Heartbeat, StreamRequest
from sync_svc.use_cases import SyncApp, raise_if


class SyncServicer(pb_grpc.SyncServiceServicer):
    """gRPC face of :class:`sync_svc.use_cases.SyncApp`."""

    def __init__(self, app: SyncApp) -> None:
        self._app = app

    async def CreateBacktest(
        self,
        request: pb.CreateBacktestRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.CreateBacktestResponse:
        user_id = identity.require_user(context)
        source = await self._app.create_backtest(
            user_id,
            request.name,
            request.public,
            request.equity.value,
            request.request_id,
        )
        return pb.CreateBacktestResponse(
            backtest_id=source.source_id,
            source=codec.source_to_proto(source),
        )

    async def PublishSignals(
        self,
        request: pb.PublishSignalsRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.PublishSignalsResponse:
        user_id = identity.require_user(context)
        sequences, accepted, duplicates = await self._app.publish_signals(
            user_id,
            request.backtest_id,
            [codec.raw_published_signal(signal) for signal in request.signals],
        )
        return pb.PublishSignalsResponse(
            sequences=sequences,
            accepted=accepted,
            duplicates=duplicates,
        )

    async def WatchExchangeSource(
        self,
        request: pb.WatchExchangeSourceRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.WatchExchangeSourceResponse:
        settings, violations = codec.sync_settings_from_proto(request.sync_settings)
        raise_if(check_id(request.exchange_id, "exchange_id") + violations)
        source = await self._app.watch_exchange_source(
            identity.user_id_or_empty(context),
            request.exchange_id,
            settings,
        )
        return pb.WatchExchangeSourceResponse(source=codec.source_to_proto(source))

    async def UnwatchExchangeSource(
        self,
        request: pb.UnwatchExchangeSourceRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.UnwatchExchangeSourceResponse:
        source = await self._app.unwatch_exchange_source(
            identity.user_id_or_empty(context),
            request.exchange_id,
        )
        return pb.UnwatchExchangeSourceResponse(source=codec.source_to_proto(source))

    async def GetSource(
        self,
        request: pb.GetSourceRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.GetSourceResponse:
        caller = identity.user_id_or_empty(context)
        source = await self._app.get_source(caller, request.source_id)
        reply = codec.source_to_proto(source)
        if caller and source.user_id != caller:
            # A public strategy is visible to every user, but not whose it is.
            reply.user_id = ""
        return pb.GetSourceResponse(source=reply)

    async def ListSignals(
        self,
        request: pb.ListSignalsRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListSignalsResponse:
        signals = await self._app.list_signals(
            identity.user_id_or_empty(context),
            request.source_id,
            request.after_sequence,
            codec.time_from_proto(request, "start_time"),
            codec.time_from_proto(request, "end_time"),
            request.page_size,
        )
        return pb.ListSignalsResponse(signals=[codec.signal_to_proto(s) for s in signals])

    async def StreamSignals(
        self,
        request_iterator: AsyncIterator[pb.StreamSignalsRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.StreamSignalsResponse]:
        session = self._app.stream(identity.user_id_or_empty(context))

        async def requests() -> AsyncIterator[StreamRequest]:
            async for message in request_iterator:
                yield codec.stream_request_from_proto(message)

        async for item in session.run(requests()):
            if isinstance(item, Heartbeat):
                response = pb.StreamSignalsResponse(heartbeat=pb.Heartbeat())
                response.heartbeat.send_time.FromDatetime(utcnow())
                yield response
            else:
                yield pb.StreamSignalsResponse(signal=codec.signal_to_proto(item))

    async def ListLeases(
        self,
        request: pb.ListLeasesRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListLeasesResponse:
        leases, replicas = await self._app.list_leases()
        return pb.ListLeasesResponse(
            leases=[codec.lease_to_proto(lease) for lease in leases],
            replicas=[codec.replica_to_proto(replica) for replica in replicas],
        )
