"""The sync port over gRPC: a source's signal log."""

from __future__ import annotations

from datetime import datetime

import grpc

from copytrade.sync.v1 import sync_service_pb2 as sync_pb
from copytrade.sync.v1 import sync_service_pb2_grpc as sync_grpc
from meshkit import clients, identity
from meshkit.codec import timestamp_to_proto
from meshkit.settings import TlsSettings
from recon_svc import codec
from recon_svc.domain.model import LeaderSignal

SYNC_SERVICE = "copytrade.sync.v1.SyncService"
READ_METHODS = ("ListSignals",)
# Every call here reads. A read that timed out changed nothing: it is unavailability, not an
# unknown outcome.
_TIMED_OUT = clients.unavailable_when_timed_out(
    "the sync service did not answer in time", reason="UPSTREAM_TIMEOUT"
)


class GrpcSync:
    """Reads signal logs through the sync service."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self._stub = sync_grpc.SyncServiceStub(channel)

    @classmethod
    def connect(cls, address: str, tls: TlsSettings | None = None) -> GrpcSync:
        """Open a channel to the sync service at ``address`` (reads retried on UNAVAILABLE)."""
        return cls(
            clients.channel(
                address,
                tls=tls,
                service=SYNC_SERVICE,
                read_methods=READ_METHODS,
            )
        )

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def list_signals(
        self,
        source_id: str,
        *,
        after_sequence: int,
        start_time: datetime,
        end_time: datetime,
        page_size: int,
        timeout: float,  # noqa: ASYNC109 - the port's gRPC deadline, not an asyncio timeout
    ) -> list[LeaderSignal]:
        """Return one page of the source's signals with event time in the window, by sequence.

        The call is internal (no user rides along): the caller has already proved, through the
        engine, that the user owns a configuration copying this source.
        """
        reply = await clients.call(
            self._stub.ListSignals,
            sync_pb.ListSignalsRequest(
                source_id=source_id,
                after_sequence=after_sequence,
                start_time=timestamp_to_proto(start_time),
                end_time=timestamp_to_proto(end_time),
                page_size=page_size,
            ),
            mutating=False,
            metadata=identity.forward_metadata(),
            timeout=timeout,
            timed_out=_TIMED_OUT,
        )
        return [codec.signal_from_proto(signal) for signal in reply.signals]
