"""The broker port over gRPC: every call has a timeout; failures become service errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import grpc

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.broker.v1 import broker_service_pb2_grpc as broker_grpc
from meshkit import clients, errors, identity
from meshkit.codec import timestamp_to_proto
from meshkit.settings import TlsSettings
from sync_svc import codec
from sync_svc.domain.model import ExchangeAccount, LeaderFill, Portfolio, WatchItem

BROKER_SERVICE = "copytrade.broker.v1.BrokerService"
READ_METHODS = ("GetExchange", "ListFills", "GetPortfolio")  # WatchFills is never retried here


def _translate(error: grpc.aio.AioRpcError) -> errors.ServiceError:
    # A read that timed out changed nothing: it is unavailability, not an unknown outcome.
    if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.Unavailable("the broker did not answer in time", reason="BROKER_TIMEOUT")
    return clients.translate(error)


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
        timeout: float,
    ) -> ExchangeAccount:
        """Return the exchange account; NOT_FOUND when unknown or another user's."""
        try:
            reply = await self._stub.GetExchange(
                broker_pb.GetExchangeRequest(exchange_id=exchange_id),
                timeout=timeout,
                metadata=identity.forward_metadata(user_id),
            )
        except grpc.aio.AioRpcError as e:
            raise _translate(e) from None
        return codec.exchange_from_proto(reply.exchange)

    async def list_fills(
        self,
        exchange_id: str,
        since: datetime,
        *,
        timeout: float,
    ) -> list[LeaderFill]:
        """Return the account's fills at or after ``since``, oldest first."""
        try:
            reply = await self._stub.ListFills(
                broker_pb.ListFillsRequest(
                    exchange_id=exchange_id,
                    since=timestamp_to_proto(since),
                ),
                timeout=timeout,
                metadata=identity.forward_metadata(),
            )
        except grpc.aio.AioRpcError as e:
            raise _translate(e) from None
        return [codec.fill_from_proto(fill) for fill in reply.fills]

    async def get_portfolio(self, exchange_id: str, *, timeout: float) -> Portfolio:
        """Return the account's equity and asset totals in the venue's main quote."""
        try:
            reply = await self._stub.GetPortfolio(
                broker_pb.GetPortfolioRequest(exchange_id=exchange_id),
                timeout=timeout,
                metadata=identity.forward_metadata(),
            )
        except grpc.aio.AioRpcError as e:
            raise _translate(e) from None
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
            async for message in call:
                item = codec.watch_item_from_proto(message)
                if item is not None:
                    yield item
        except grpc.aio.AioRpcError as e:
            raise _translate(e) from None
        finally:
            call.cancel()
