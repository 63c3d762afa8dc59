"""The engine port over gRPC: configurations and copied orders, read for a user."""

from __future__ import annotations

from datetime import datetime

import grpc

from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.engine.v1 import engine_service_pb2_grpc as engine_grpc
from meshkit import clients, identity
from meshkit.codec import timestamp_to_proto
from meshkit.settings import TlsSettings
from recon_svc import codec
from recon_svc.domain.model import CopyConfig, Intent

ENGINE_SERVICE = "copytrade.engine.v1.EngineService"
READ_METHODS = ("GetCopyStatus", "ListCopiedOrders")
# Every call here reads. A read that timed out changed nothing: it is unavailability, not an
# unknown outcome.
_TIMED_OUT = clients.unavailable_when_timed_out(
    "the engine service did not answer in time", reason="UPSTREAM_TIMEOUT"
)


class GrpcEngine:
    """Reads configurations and copied orders through the engine service."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self._stub = engine_grpc.EngineServiceStub(channel)

    @classmethod
    def connect(cls, address: str, tls: TlsSettings | None = None) -> GrpcEngine:
        """Open a channel to the engine at ``address`` (reads retried on UNAVAILABLE)."""
        return cls(
            clients.channel(
                address,
                tls=tls,
                service=ENGINE_SERVICE,
                read_methods=READ_METHODS,
            )
        )

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def get_config(self, config_id: str, *, user_id: str, timeout: float) -> CopyConfig:  # noqa: ASYNC109 - the port's gRPC deadline
        """Return the configuration; NOT_FOUND when unknown or another user's."""
        reply = await clients.call(
            self._stub.GetCopyStatus,
            engine_pb.GetCopyStatusRequest(config_id=config_id),
            mutating=False,
            metadata=identity.forward_metadata(user_id),
            timeout=timeout,
            timed_out=_TIMED_OUT,
        )
        return codec.config_from_proto(reply)

    async def list_copied_orders(
        self,
        config_id: str,
        start_time: datetime,
        *,
        page_size: int,
        user_id: str,
        timeout: float,  # noqa: ASYNC109 - the port's gRPC deadline, not an asyncio timeout
    ) -> list[Intent]:
        """Return one page of the intents written at or after ``start_time``, oldest first."""
        reply = await clients.call(
            self._stub.ListCopiedOrders,
            engine_pb.ListCopiedOrdersRequest(
                config_id=config_id,
                start_time=timestamp_to_proto(start_time),
                page_size=page_size,
            ),
            mutating=False,
            metadata=identity.forward_metadata(user_id),
            timeout=timeout,
            timed_out=_TIMED_OUT,
        )
        return [codec.intent_from_proto(order) for order in reply.orders]
