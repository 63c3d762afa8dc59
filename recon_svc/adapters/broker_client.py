"""The broker port over gRPC: a follower account's orders as the venue reports them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import grpc

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.broker.v1 import broker_service_pb2_grpc as broker_grpc
from meshkit import clients, identity
from meshkit.codec import timestamp_to_proto
from meshkit.settings import TlsSettings
from recon_svc import codec
from recon_svc.domain.model import VenueFill, VenueHoldings, VenueOrder

BROKER_SERVICE = "copytrade.broker.v1.BrokerService"
MAX_REPLY_BYTES = 512 * 1024 * 1024
"""One reply may be large: a follower account's whole window of venue records or copies."""
READ_METHODS = ("ListOrders", "ListFills", "GetPortfolio")
# Every call here reads. A read that timed out changed nothing: it is unavailability, not an
# unknown outcome.
_TIMED_OUT = clients.unavailable_when_timed_out(
    "the broker service did not answer in time", reason="UPSTREAM_TIMEOUT"
)


class GrpcBroker:
    """Reads venue orders through the broker service."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self._stub = broker_grpc.BrokerServiceStub(channel)

    @classmethod
    def connect(cls, address: str, tls: TlsSettings | None = None) -> GrpcBroker:
        """Open a channel to the broker at ``address`` (reads retried on UNAVAILABLE)."""
        return cls(
            clients.channel(
                address,
                tls=tls,
                service=BROKER_SERVICE,
                read_methods=READ_METHODS,
                max_receive_bytes=MAX_REPLY_BYTES,
            )
        )

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def list_orders(
        self,
        exchange_id: str,
        symbols: Sequence[str],
        start_time: datetime,
        *,
        user_id: str,
        timeout: float,  # noqa: ASYNC109 - the port's gRPC deadline, not an asyncio timeout
    ) -> list[VenueOrder]:
        """Return the account's venue orders created at or after ``start_time``, oldest first."""
        reply = await clients.call(
            self._stub.ListOrders,
            broker_pb.ListOrdersRequest(
                exchange_id=exchange_id,
                symbols=list(symbols),
                start_time=timestamp_to_proto(start_time),
            ),
            mutating=False,
            metadata=identity.forward_metadata(user_id),
            timeout=timeout,
            timed_out=_TIMED_OUT,
        )
        return [codec.order_from_proto(order, exchange_id) for order in reply.orders]

    async def list_fills(
        self,
        exchange_id: str,
        symbols: Sequence[str],
        since: datetime,
        *,
        user_id: str,
        timeout: float,  # noqa: ASYNC109 - the port's gRPC deadline, not an asyncio timeout
    ) -> list[VenueFill]:
        """Return the account's trades at or after ``since``, oldest first."""
        reply = await clients.call(
            self._stub.ListFills,
            broker_pb.ListFillsRequest(
                exchange_id=exchange_id,
                symbols=list(symbols),
                since=timestamp_to_proto(since),
            ),
            mutating=False,
            metadata=identity.forward_metadata(user_id),
            timeout=timeout,
            timed_out=_TIMED_OUT,
        )
        return [codec.fill_from_proto(fill) for fill in reply.fills]

    async def get_holdings(
        self,
        exchange_id: str,
        *,
        user_id: str,
        timeout: float,  # noqa: ASYNC109 - the port's gRPC deadline, not an asyncio timeout
    ) -> VenueHoldings:
        """Return each asset's total at the account's venue (assets holding 0 are absent) and
        its open derivatives positions."""
        reply = await clients.call(
            self._stub.GetPortfolio,
            broker_pb.GetPortfolioRequest(exchange_id=exchange_id),
            mutating=False,
            metadata=identity.forward_metadata(user_id),
            timeout=timeout,
            timed_out=_TIMED_OUT,
        )
        return VenueHoldings(codec.balances_from_proto(reply), codec.positions_from_proto(reply))
