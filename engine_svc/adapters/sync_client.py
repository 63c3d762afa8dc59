"""The sync service through its gRPC stub, and the signal stream."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from copytrade.sync.v1 import sync_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2_grpc as pb_grpc
from engine_svc import codec
from engine_svc.domain.model import Signal, SyncSettings
from engine_svc.ports import Heartbeat, Source
from meshkit import clients, errors
from meshkit.codec import timestamp_from_proto
from meshkit.identity import forward_metadata
from meshkit.settings import TlsSettings

SERVICE = "copytrade.sync.v1.SyncService"
READ_METHODS = ("GetSource", "ListSignals")


def source_from_proto(message: pb.Source) -> Source:
    """Return the port's view of a source."""
    return Source(
        source_id=message.source_id,
        kind=codec.source_kind_from_proto(message.kind),
        user_id=message.user_id,
        public=message.public,
        last_sequence=message.last_sequence,
        mode=codec.sync_mode_name(message.mode),
        last_sync_time=timestamp_from_proto(
            message.last_sync_time, message.HasField("last_sync_time")
        ),
        equity=codec.optional_decimal(message.equity),
        last_error=message.last_error,
        watched=message.watched,
        down_since=timestamp_from_proto(message.down_since, message.HasField("down_since")),
    )


class GrpcSignalStream:
    """One open ``StreamSignals`` call; writes are serialised, reads come from one task."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._write_lock = asyncio.Lock()

    async def _write(self, request: pb.StreamSignalsRequest) -> None:
        async with self._write_lock:
            try:
                with clients.translated():
                    await self._call.write(request)
            except asyncio.InvalidStateError:
                # grpc's word for a write after the call ended (sync went away or ended it).
                raise errors.Unavailable(
                    "the signal stream has ended", reason="SIGNAL_STREAM_ENDED"
                ) from None

    async def subscribe(self, source_id: str, after_sequence: int) -> None:
        """Ask for the source's signals after ``after_sequence``."""
        await self._write(
            pb.StreamSignalsRequest(
                subscribe=pb.SubscribeSignals(source_id=source_id, after_sequence=after_sequence),
            )
        )

    async def ack(self, source_id: str, sequence: int) -> None:
        """Say every signal of the source up to ``sequence`` is stored."""
        await self._write(
            pb.StreamSignalsRequest(
                ack=pb.AckSignal(source_id=source_id, sequence=sequence),
            )
        )

    async def receive(self) -> Signal | Heartbeat | None:
        """Return the next signal or heartbeat, ``None`` at the end of the stream."""
        with clients.translated():
            message = await self._call.read()
        if message is grpc.aio.EOF:
            return None
        kind = message.WhichOneof("message")
        if kind == "signal":
            return codec.signal_from_proto(message.signal)
        heartbeat = message.heartbeat
        return Heartbeat(timestamp_from_proto(heartbeat.send_time, heartbeat.HasField("send_time")))

    async def close(self) -> None:
        """End the call."""
        self._call.cancel()


class GrpcSync:
    """A :class:`engine_svc.ports.SyncPort` over a gRPC channel."""

    def __init__(
        self, channel: grpc.aio.Channel, *, read_timeout: float = clients.READ_TIMEOUT
    ) -> None:
        self._channel = channel
        self._stub = pb_grpc.SyncServiceStub(channel)
        self._read_timeout = read_timeout

    @classmethod
    def connect(
        cls,
        address: str,
        *,
        tls: TlsSettings | None = None,
        read_timeout: float = clients.READ_TIMEOUT,
    ) -> GrpcSync:
        """Open a channel to the sync service at ``address``."""
        channel = clients.channel(address, tls=tls, service=SERVICE, read_methods=READ_METHODS)
        return cls(channel, read_timeout=read_timeout)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def get_source(self, source_id: str) -> Source:
        """Return the source; ``NotFound`` when there is none."""
        response = await clients.call(
            self._stub.GetSource,
            pb.GetSourceRequest(source_id=source_id),
            mutating=False,
            metadata=forward_metadata(),
            timeout=self._read_timeout,
        )
        return source_from_proto(response.source)

    async def watch_exchange_source(
        self,
        exchange_id: str,
        sync_settings: SyncSettings,
        user_id: str,
    ) -> Source:
        """Start (or keep) watching an exchange account as a source."""
        request = pb.WatchExchangeSourceRequest(
            exchange_id=exchange_id,
            sync_settings=codec.sync_settings_to_proto(sync_settings),
        )
        response = await clients.call(
            self._stub.WatchExchangeSource,
            request,
            mutating=True,
            metadata=forward_metadata(user_id),
            # Twice a read's deadline: sync looks the account up at the broker (a read with
            # its own deadline) before it answers.
            timeout=self._read_timeout * 2,
        )
        return source_from_proto(response.source)

    async def unwatch_exchange_source(self, exchange_id: str, user_id: str) -> Source:
        """Stop watching an exchange account no configuration copies any more."""
        response = await clients.call(
            self._stub.UnwatchExchangeSource,
            pb.UnwatchExchangeSourceRequest(exchange_id=exchange_id),
            mutating=True,
            metadata=forward_metadata(user_id),
            # A quick local change in sync (no venue involved): a read's deadline is enough.
            timeout=self._read_timeout,
        )
        return source_from_proto(response.source)

    async def open_signal_stream(self) -> GrpcSignalStream:
        """Open the signal stream (no deadline: it lives until it breaks or is closed)."""
        return GrpcSignalStream(self._stub.StreamSignals(metadata=forward_metadata()))
