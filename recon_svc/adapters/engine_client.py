"""The engine port over gRPC: configurations and copied orders, read for a user."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import grpc

from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.engine.v1 import engine_service_pb2_grpc as engine_grpc
from meshkit import clients, errors, identity
from meshkit.codec import SIDE, set_decimal, timestamp_to_proto
from meshkit.settings import TlsSettings
from meshkit.vocabulary import Side
from recon_svc import codec
from recon_svc.domain.model import CopyConfig, Intent

ENGINE_SERVICE = "copytrade.engine.v1.EngineService"
MAX_REPLY_BYTES = 512 * 1024 * 1024
"""One reply may be large: a follower account's whole window of venue records or copies."""
READ_METHODS = ("ListConfigs", "ListCopiedOrders")
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
                max_receive_bytes=MAX_REPLY_BYTES,
            )
        )

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def get_config(self, config_id: str, *, user_id: str, timeout: float) -> CopyConfig:  # noqa: ASYNC109 - the port's gRPC deadline
        """Return the configuration; NOT_FOUND when unknown or another user's.

        Read from the user's configurations (ListConfigs, the engine's store only), not from
        GetCopyStatus, which also waits for the broker's portfolios: a frozen broker made the
        configuration unreadable and the whole report one error blaming the engine.
        """
        reply = await clients.call(
            self._stub.ListConfigs,
            engine_pb.ListConfigsRequest(),
            mutating=False,
            metadata=identity.forward_metadata(user_id),
            timeout=timeout,
            timed_out=_TIMED_OUT,
        )
        for config in reply.configs:
            if config.config_id == config_id:
                return codec.copy_config_from_proto(config)
        raise errors.NotFound(
            f"copy configuration {config_id} not found",
            reason="CONFIG_NOT_FOUND",
            metadata={"config_id": config_id},
        )

    async def list_copied_orders(
        self,
        config_id: str,
        start_time: datetime,
        *,
        target_exchange_id: str,
        page_token: str,
        page_size: int,
        user_id: str,
        timeout: float,  # noqa: ASYNC109 - the port's gRPC deadline, not an asyncio timeout
    ) -> tuple[list[Intent], str]:
        """Return one page of one account's intents written at or after ``start_time``,
        oldest first, and the next page's token ("" after the last)."""
        reply = await clients.call(
            self._stub.ListCopiedOrders,
            engine_pb.ListCopiedOrdersRequest(
                config_id=config_id,
                start_time=timestamp_to_proto(start_time),
                page_size=page_size,
                target_exchange_id=target_exchange_id,
                page_token=page_token,
            ),
            mutating=False,
            metadata=identity.forward_metadata(user_id),
            timeout=timeout,
            timed_out=_TIMED_OUT,
        )
        return [codec.intent_from_proto(order) for order in reply.orders], reply.next_page_token

    async def correct_position(
        self,
        config_id: str,
        target_exchange_id: str,
        symbol: str,
        side: Side,
        quantity: Decimal,
        reconciliation_id: str,
        *,
        user_id: str,
        timeout: float,  # noqa: ASYNC109 - the port's gRPC deadline, not an asyncio timeout
    ) -> Intent:
        """Have the engine write a correction intent; return it (a repeat returns the same).

        Mutating, so never retried by the channel; the engine derives the intent's client order
        id from (configuration, account, symbol, reconciliation id), so a caller may repeat it.
        """
        request = engine_pb.CorrectPositionRequest(
            config_id=config_id,
            target_exchange_id=target_exchange_id,
            symbol=symbol,
            side=SIDE.to_proto(side),
            reconciliation_id=reconciliation_id,
        )
        set_decimal(request.quantity, quantity)
        reply = await clients.call(
            self._stub.CorrectPosition,
            request,
            mutating=True,
            metadata=identity.forward_metadata(user_id),
            timeout=timeout,
        )
        return codec.intent_from_proto(reply.order)
