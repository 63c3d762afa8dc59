"""The broker service through its gRPC stub, acting for the owner of the accounts named."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.broker.v1 import broker_service_pb2_grpc as pb_grpc
from engine_svc import codec
from engine_svc.domain.model import Candle, Intent, MarketInfo, Portfolio, VenueOrder
from engine_svc.ports import ExchangeAccount
from meshkit import clients, errors
from meshkit.identity import forward_metadata
from meshkit.settings import TlsSettings

SERVICE = "copytrade.broker.v1.BrokerService"
READ_METHODS = (
    "GetExchange",
    "GetOrder",
    "GetPortfolio",
    "GetPortfolios",
    "GetMarket",
    "ListCandles",
)
LATE_READ_GROWTH = 2
"""A read the broker did not answer in time is asked again with up to this many times the read
deadline (2: 10 s by default, inside the gateway's 15 s for a status that reads portfolios)."""


class GrpcBroker:
    """A :class:`engine_svc.ports.BrokerPort` over a gRPC channel.

    Reads retry on UNAVAILABLE through the channel's service config; ``PlaceOrder``,
    ``CancelOrder`` and ``Fence`` are never retried here.

    A portfolio, market or candles read that ran out of time (``OutcomeUnknown``, which the
    copy path asks again while the signal is young) has a longer deadline the next time the
    same read is asked (twice the last, up to :data:`LATE_READ_GROWTH` times the read
    deadline), until one is answered. A broker slowed by a fan-out works on many reads at
    once and may answer all of them later than one deadline: asked again with the same
    deadline, none would ever be answered; with a longer one, they are.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        place_timeout: float = clients.WRITE_TIMEOUT,
        read_timeout: float = clients.READ_TIMEOUT,
    ) -> None:
        self._channel = channel
        self._stub = pb_grpc.BrokerServiceStub(channel)
        self._place_timeout = place_timeout
        self._read_timeout = read_timeout
        # The deadline of each read that last ran out of time (gone once one is answered).
        self._late: dict[tuple[str, ...], float] = {}

    @classmethod
    def connect(
        cls,
        address: str,
        *,
        tls: TlsSettings | None = None,
        place_timeout: float = clients.WRITE_TIMEOUT,
        read_timeout: float = clients.READ_TIMEOUT,
    ) -> GrpcBroker:
        """Open a channel to the broker at ``address``."""
        channel = clients.channel(address, tls=tls, service=SERVICE, read_methods=READ_METHODS)
        return cls(channel, place_timeout=place_timeout, read_timeout=read_timeout)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def _read(
        self, method: Any, request: Any, user_id: str, late: tuple[str, ...] | None = None
    ) -> Any:
        # No timed_out: a read that timed out stays OutcomeUnknown here, as it has always been.
        # ``late`` names the read for a longer deadline once it ran out of time.
        timeout = self._late.get(late, self._read_timeout) if late else self._read_timeout
        try:
            response = await clients.call(
                method,
                request,
                mutating=False,
                metadata=forward_metadata(user_id),
                timeout=timeout,
            )
        except errors.OutcomeUnknown as e:
            if late and e.from_transport:
                self._late[late] = min(timeout * 2, self._read_timeout * LATE_READ_GROWTH)
            raise
        if late:
            self._late.pop(late, None)
        return response

    async def _write(self, method: Any, request: Any, user_id: str) -> Any:
        return await clients.call(
            method,
            request,
            mutating=True,
            metadata=forward_metadata(user_id),
            timeout=self._place_timeout,
        )

    async def get_exchange(self, exchange_id: str, user_id: str) -> ExchangeAccount:
        """Return the user's exchange account; ``NotFound`` when it is not theirs or absent."""
        response = await self._read(
            self._stub.GetExchange,
            pb.GetExchangeRequest(exchange_id=exchange_id),
            user_id,
        )
        return ExchangeAccount(
            exchange_id=response.exchange.exchange_id or exchange_id,
            exchange_name=response.exchange.exchange_name,
        )

    async def get_portfolio(self, exchange_id: str, user_id: str) -> Portfolio:
        """Return the account's balances and equity in its main quote currency."""
        response = await self._read(
            self._stub.GetPortfolio,
            pb.GetPortfolioRequest(exchange_id=exchange_id),
            user_id,
            ("GetPortfolio", exchange_id),
        )
        return codec.portfolio_from_proto(response)

    async def get_portfolios(
        self, accounts: Sequence[tuple[str, str]]
    ) -> AsyncIterator[tuple[int, Portfolio | Exception]]:
        """Read many accounts' portfolios in one ``GetPortfolios`` call; see the port.

        Each account's answer is yielded as the broker streams it. The call's deadline is the
        longest any of its accounts has now (an account whose read ran out of time, in this
        call or a ``GetPortfolio``, gets a longer one the next time, as :meth:`get_portfolio`
        does); a failure of the whole call is each unanswered account's error.
        """
        keys = [("GetPortfolio", exchange_id) for exchange_id, _ in accounts]
        timeout = max((self._late.get(k, self._read_timeout) for k in keys), default=0.0)
        owners = {user_id for _, user_id in accounts}
        # The call's own user, when every account is one user's (the assertion goes along if
        # this call is that user's); each read names its owner in any case.
        user_id = owners.pop() if len(owners) == 1 else ""
        request = pb.GetPortfoliosRequest(
            reads=[pb.PortfolioRead(exchange_id=e, user_id=u) for e, u in accounts]
        )
        unanswered = dict.fromkeys(range(len(accounts)))
        failure: grpc.aio.AioRpcError | None = None
        call = self._stub.GetPortfolios(
            request, timeout=timeout, metadata=forward_metadata(user_id)
        )
        try:
            async for answer in call:
                if answer.index not in unanswered:
                    continue  # not an account of this call, or answered already
                del unanswered[answer.index]
                if answer.HasField("portfolio"):
                    self._late.pop(keys[answer.index], None)
                    yield answer.index, codec.portfolio_from_proto(answer.portfolio)
                else:
                    yield answer.index, clients.from_status(answer.error)
        except grpc.aio.AioRpcError as e:
            failure = e
        finally:
            call.cancel()  # nothing when it ended; a caller that stopped listening ends it
        for index in unanswered:
            if failure is None:
                yield (
                    index,
                    errors.ServiceError(
                        "the broker ended GetPortfolios without this account's answer",
                        reason="NO_ANSWER",
                    ),
                )
                continue
            error = clients.translate(failure)
            if isinstance(error, errors.OutcomeUnknown) and error.from_transport:
                self._late[keys[index]] = min(timeout * 2, self._read_timeout * LATE_READ_GROWTH)
            yield index, error

    async def get_market(self, exchange_id: str, symbol: str, user_id: str) -> MarketInfo:
        """Return the market ``symbol`` of the account's venue, with its last price."""
        response = await self._read(
            self._stub.GetMarket,
            pb.GetMarketRequest(exchange_id=exchange_id, symbol=symbol),
            user_id,
            ("GetMarket", exchange_id, symbol),
        )
        return codec.market_from_proto(response)

    async def list_candles(
        self,
        exchange_id: str,
        symbol: str,
        timeframe: str,
        limit: int,
        user_id: str,
    ) -> list[Candle]:
        """Return the market's most recent candles, oldest first."""
        response = await self._read(
            self._stub.ListCandles,
            pb.ListCandlesRequest(
                exchange_id=exchange_id, symbol=symbol, timeframe=timeframe, limit=limit
            ),
            user_id,
            ("ListCandles", exchange_id, symbol, timeframe, str(limit)),
        )
        return codec.candles_from_proto(response)

    async def place_order(
        self, intent: Intent, user_id: str, *, fence: tuple[str, int] | None = None
    ) -> VenueOrder:
        """Place the intent's order with its client order id.

        ``fence`` is the lease (key and token) the order is sent under: the broker refuses it
        with ``FailedPrecondition`` reason ``FENCED``, before any venue call, once a higher
        token has fenced the key.
        """
        request = codec.place_order_request(intent)
        if fence is not None:
            request.fence.key, request.fence.token = fence
        response = await self._write(self._stub.PlaceOrder, request, user_id)
        return codec.order_from_proto(response.order)

    async def set_leverage(self, exchange_id: str, symbol: str, leverage: int, user_id: str) -> int:
        """Set the account's leverage on a derivatives market, leaving its margin mode; return
        the leverage the venue applies now. Idempotent at the broker."""
        response = await self._write(
            self._stub.SetLeverage,
            pb.SetLeverageRequest(exchange_id=exchange_id, symbol=symbol, leverage=leverage),
            user_id,
        )
        return int(response.leverage)

    async def fence(self, key: str, token: int) -> int:
        """Raise the broker's fence of ``key`` to ``token`` and return the key's token now.

        ``FailedPrecondition`` reason ``FENCED`` when the key's token is already higher. Once
        it returns, no order sent under ``key`` with a lower token reaches a venue unless the
        broker recorded its attempt before (a lookup's ``NotFound`` carries metadata
        ``never_placed`` when it did not). Idempotent; a quick write at the broker, so it has
        the read deadline, and a timeout is ``OutcomeUnknown`` (ask again).
        """
        response = await clients.call(
            self._stub.Fence,
            pb.FenceRequest(fence=pb.Fence(key=key, token=token)),
            mutating=True,
            metadata=forward_metadata(""),
            timeout=self._read_timeout,
        )
        return int(response.token)

    async def get_order(
        self,
        exchange_id: str,
        client_order_id: str,
        symbol: str,
        user_id: str,
    ) -> VenueOrder:
        """Look an order up by client order id."""
        response = await self._read(
            self._stub.GetOrder,
            pb.GetOrderRequest(
                exchange_id=exchange_id, client_order_id=client_order_id, symbol=symbol
            ),
            user_id,
        )
        return codec.order_from_proto(response.order)

    async def cancel_order(
        self,
        exchange_id: str,
        client_order_id: str,
        symbol: str,
        user_id: str,
    ) -> VenueOrder:
        """Cancel an order by client order id."""
        response = await self._write(
            self._stub.CancelOrder,
            pb.CancelOrderRequest(
                exchange_id=exchange_id, client_order_id=client_order_id, symbol=symbol
            ),
            user_id,
        )
        return codec.order_from_proto(response.order)
