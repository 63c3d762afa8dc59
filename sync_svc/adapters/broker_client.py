"""The broker port over gRPC: every call has a timeout; failures become service errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import grpc

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.broker.v1 import broker_service_pb2_grpc as broker_grpc
from meshkit import clients, identity
from meshkit.codec import timestamp_to_proto
from meshkit.settings import TlsSettings
from sync_svc import codec
from sync_svc.domain.model import ExchangeAccount, LeaderFill, LeaderOrder, Portfolio, WatchItem

BROKER_SERVICE = "copytrade.broker.v1.BrokerService"
READ_METHODS = (
    "GetExchange",
    "ListFills",
    "ListOrders",
    "GetPortfolio",
)  # WatchFills is never retried here


# Every call here reads. A read that timed out changed nothing: it is unavailability, not an
# unknown outcome.
_TIMED_OUT = clients.unavailable_when_timed_out(
    "the broker did not answer in time", reason="BROKER_TIMEOUT"
)


class GrpcBroker:
    """Reads leader accounts through the broker service."""

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
            )
        )

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def get_exchange(
        self,
        exchange_id: str,
        *,
        user_id: str = "",
        timeout: float,  # noqa: ASYNC109 - the port's gRPC deadline, not an asyncio timeout
    ) -> ExchangeAccount:
        """Return the exchange account; NOT_FOUND when unknown or another user's."""
        reply = await clients.call(
            self._stub.GetExchange,
            broker_pb.GetExchangeRequest(exchange_id=exchange_id),
            mutating=False,
            metadata=identity.forward_metadata(user_id),
            timeout=timeout,
            timed_out=_TIMED_OUT,
        )
        return codec.exchange_from_proto(reply.exchange)

    async def list_fills(
        self,
        exchange_id: str,
        since: datetime,
        *,
        timeout: float,  # noqa: ASYNC109 - the port's gRPC deadline, not an asyncio timeout
    ) -> list[LeaderFill]:
        """Return the account's fills at or after ``since``, oldest first."""
        reply = await clients.call(
            self._stub.ListFills,
            broker_pb.ListFillsRequest(
                exchange_id=exchange_id,
                since=timestamp_to_proto(since),
            ),
            mutating=False,
            metadata=identity.forward_metadata(),
            timeout=timeout,
            timed_out=_TIMED_OUT,
        )
        return [codec.fill_from_proto(fill) for fill in reply.fills]

    async def list_orders(
        self,
        exchange_id: str,
        since: datetime,
        *,
        timeout: float,  # noqa: ASYNC109 - the port's gRPC deadline, not an asyncio timeout
    ) -> list[LeaderOrder]:
        """Return the account's orders created at or after ``since`` (any status), oldest first."""
        reply = await clients.call(
            self._stub.ListOrders,
            broker_pb.ListOrdersRequest(
                exchange_id=exchange_id,
                start_time=timestamp_to_proto(since),
            ),
            mutating=False,
            metadata=identity.forward_metadata(),
            timeout=timeout,
            timed_out=_TIMED_OUT,
        )
        orders = (codec.leader_order_from_proto(order) for order in reply.orders)
        return [order for order in orders if order is not None]

    async def get_portfolio(self, exchange_id: str, *, timeout: float) -> Portfolio:  # noqa: ASYNC109 - the port's gRPC deadline
        """Return the account's equity and asset totals in the venue's main quote."""
        reply = await clients.call(
            self._stub.GetPortfolio,
            # With each market's leverage setting: a leader's first entry from flat has no
            # position whose leverage the venue could report.
            broker_pb.GetPortfolioRequest(exchange_id=exchange_id, include_leverages=True),
            mutating=False,
            metadata=identity.forward_metadata(),
            timeout=timeout,
            timed_out=_TIMED_OUT,
        )
        return codec.portfolio_from_proto(reply)

    async def watch_fills(self, exchange_id: str) -> AsyncIterator[WatchItem]:
        """Stream the account's fills and stream events; closing the iterator cancels the call.

        The watch has no deadline (keepalive pings detect a dead broker). A failure of the call
        is raised as a service error; the broker ending it cleanly ends the iteration.
        """
        call = self._stub.WatchFills(
            broker_pb.WatchFillsRequest(exchange_id=exchange_id),
            metadata=identity.forward_metadata(),
        )
        try:
            with clients.translated(timed_out=_TIMED_OUT):
                async for message in call:
                    item = codec.watch_item_from_proto(message)
                    if item is not None:
                        yield item
        finally:
            call.cancel()
