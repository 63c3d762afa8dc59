"""gRPC servicer of the broker: validate the request, translate it, call the use-case.

Every bad field is reported at once as INVALID_ARGUMENT naming its JSON path. Public RPCs (those
with an HTTP annotation) need a user; internal ones trust the caller but still enforce
ownership when a user id rides along.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import grpc
from google.type import decimal_pb2

from broker_svc import codec
from broker_svc.domain.credentials import credential_violations
from broker_svc.domain.model import (
    Credentials,
    Fill,
    Order,
    OrderRequest,
    OrderType,
    StreamEvent,
    WatchChannel,
)
from broker_svc.domain.records import NO_FENCE, Fence
from broker_svc.usecases import Broker
from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.broker.v1 import broker_service_pb2_grpc as pb_grpc
from copytrade.common.v1 import types_pb2
from meshkit import errors
from meshkit.audit import message_fields
from meshkit.codec import decimal_from_proto, set_decimal, timestamp_from_proto
from meshkit.faultpoints import afaultpoint
from meshkit.identity import require_user, user_id_or_empty
from meshkit.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9._:/-]{1,36}$")
# BASE/QUOTE, and :SETTLE for a perpetual (ccxt's BTC/USDT:USDT)
SYMBOL = re.compile(r"^[A-Za-z0-9]{1,20}/[A-Za-z0-9]{1,20}(:[A-Za-z0-9]{1,20})?$")
CURRENCY = re.compile(r"^[A-Za-z0-9]{1,20}$")
MAX_LABEL = 100
MAX_REQUEST_ID = 128
MAX_KEY = 512
MAX_SECRET = 4096
TIMEFRAME = re.compile(r"^[1-9][0-9]{0,2}[smhdwM]$")
DEFAULT_CANDLES = 100
MAX_CANDLES = 1000
MAX_FENCE_KEY = 200
MAX_PORTFOLIO_READS = 10_000

T = TypeVar("T")


class _Violations:
    """Collects the bad fields of one request and raises them together."""

    def __init__(self) -> None:
        self.items: list[errors.FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(errors.FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise errors.InvalidArgument(self.items)

    def exchange_id(self, value: str, field: str = "exchange_id") -> None:
        if not value:
            self.add(field, "is required")
            return
        try:
            uuid.UUID(value)
        except ValueError:
            self.add(field, "must be a UUID")

    def client_order_id(self, value: str) -> None:
        if not value:
            self.add("client_order_id", "is required")
        elif not CLIENT_ORDER_ID.match(value):
            self.add(
                "client_order_id",
                "must be 1 to 36 characters among letters, digits and . _ : / -",
            )

    def symbol(self, value: str, field: str = "symbol", *, required: bool = True) -> None:
        if not value:
            if required:
                self.add(field, "is required")
        elif not SYMBOL.match(value):
            self.add(field, "must be a unified symbol such as BTC/USDT")

    def fence(self, message: pb.Fence, field: str, *, required: bool) -> Fence:
        if not message.key:
            if required:
                self.add(f"{field}.key", "is required")
            elif message.token:
                self.add(f"{field}.key", "is required with a token")
            return NO_FENCE
        if len(message.key) > MAX_FENCE_KEY:
            self.add(f"{field}.key", f"must be at most {MAX_FENCE_KEY} characters")
        if message.token < 0:
            self.add(f"{field}.token", "must not be negative")
        return Fence(message.key, message.token)

    def symbols(self, values: Any) -> list[str]:
        for index, value in enumerate(values):
            self.symbol(value, f"symbols[{index}]")
        return list(values)

    def decimal(
        self,
        message: decimal_pb2.Decimal,
        field: str,
        *,
        required: bool,
        positive: bool = True,
    ) -> Decimal | None:
        try:
            value = decimal_from_proto(message, field, required=required)
        except errors.InvalidArgument as e:
            self.items.extend(e.violations)
            return None
        if value is not None and positive and value <= 0:
            self.add(field, "must be greater than zero")
            return None
        return value

    def credentials(
        self,
        venue: str,
        api_key: str,
        api_secret: str,
        passphrase: str,
    ) -> Credentials:
        before = {v.field for v in self.items}
        if not api_key.strip():
            self.add("api_key", "is required")
        elif len(api_key) > MAX_KEY:
            self.add("api_key", f"must be at most {MAX_KEY} characters")
        if not api_secret.strip():
            self.add("api_secret", "is required")
        elif len(api_secret) > MAX_SECRET:
            self.add("api_secret", f"must be at most {MAX_SECRET} characters")
        if len(passphrase) > MAX_KEY:
            self.add("passphrase", f"must be at most {MAX_KEY} characters")
        credentials = Credentials(api_key.strip(), api_secret.strip(), passphrase)
        named = {v.field for v in self.items} - before
        for name, why in credential_violations(venue, credentials):
            if name not in named:
                self.add(name, why)
        return credentials


def _venue_name(value: str) -> str:
    return value.strip().lower()


class BrokerServicer(pb_grpc.BrokerServiceServicer):
    """The BrokerService RPCs over the :class:`~broker_svc.usecases.Broker` use-cases."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._finishing: set[asyncio.Future[Any]] = set()

    async def _to_the_end(self, work: Awaitable[T]) -> T:
        """Await ``work`` (a call that may act at a venue) to its end, even once nobody waits.

        gRPC cancels a handler when its caller's deadline passes or the caller goes away; an
        order sent, cancelled or levered there may be done at the venue and never recorded
        here. The work runs in a task of its own that the handler's cancellation leaves
        running: what the broker accepted it finishes and records (the caller, which saw its
        deadline pass, finds the outcome by looking the order up).
        """
        task = asyncio.ensure_future(work)
        self._finishing.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._finishing.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a caller that stopped waiting never will

    # Accounts ---------------------------------------------------------------------------------

    async def RegisterExchange(
        self,
        request: pb.RegisterExchangeRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.RegisterExchangeResponse:
        user_id = require_user(context)
        check = _Violations()
        venue = self._venue(request.exchange_name, check)
        credentials = check.credentials(
            venue,
            request.api_key,
            request.api_secret,
            request.passphrase,
        )
        if len(request.label) > MAX_LABEL:
            check.add("label", f"must be at most {MAX_LABEL} characters")
        if len(request.request_id) > MAX_REQUEST_ID:
            check.add("request_id", f"must be at most {MAX_REQUEST_ID} characters")
        check.raise_if_any()
        account = await self.broker.register(
            user_id,
            venue,
            credentials,
            label=request.label.strip(),
            request_id=request.request_id,
        )
        return pb.RegisterExchangeResponse(exchange=codec.account_to_proto(account))

    def _venue(self, value: str, check: _Violations) -> str:
        venue = _venue_name(value)
        if not venue:
            check.add("exchange_name", "is required")
        elif self.broker.venues.profile(venue) is None:
            names = ", ".join(p.name for p in self.broker.venues.profiles())
            check.add("exchange_name", f"is not a supported venue (supported: {names})")
        return venue

    async def ListExchanges(
        self,
        request: pb.ListExchangesRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListExchangesResponse:
        user_id = require_user(context)
        accounts = await self.broker.list_accounts(user_id)
        return pb.ListExchangesResponse(exchanges=[codec.account_to_proto(a) for a in accounts])

    async def GetExchange(
        self,
        request: pb.GetExchangeRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.GetExchangeResponse:
        check = _Violations()
        check.exchange_id(request.exchange_id)
        check.raise_if_any()
        account = await self.broker.get_account(request.exchange_id, user_id_or_empty(context))
        return pb.GetExchangeResponse(exchange=codec.account_to_proto(account))

    async def DeleteExchange(
        self,
        request: pb.DeleteExchangeRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.DeleteExchangeResponse:
        user_id = require_user(context)
        check = _Violations()
        check.exchange_id(request.exchange_id)
        check.raise_if_any()
        await self.broker.delete_account(request.exchange_id, user_id)
        return pb.DeleteExchangeResponse(exchange_id=request.exchange_id)

    async def ListAuditEntries(
        self,
        request: pb.ListAuditEntriesRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListAuditEntriesResponse:
        user_id = require_user(context)
        entries = await self.broker.audit_entries(user_id, request.before_seq, request.page_size)
        return pb.ListAuditEntriesResponse(
            entries=[types_pb2.AuditEntry(**message_fields(e)) for e in entries],
        )

    async def TestBroker(
        self,
        request: pb.TestBrokerRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.TestBrokerResponse:
        require_user(context)
        check = _Violations()
        venue = self._venue(request.exchange_name, check)
        credentials = check.credentials(
            venue,
            request.api_key,
            request.api_secret,
            request.passphrase,
        )
        check.raise_if_any()
        report = await self.broker.test_credentials(venue, credentials)
        return codec.report_to_proto(report)

    async def ListSupportedExchanges(
        self,
        request: pb.ListSupportedExchangesRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListSupportedExchangesResponse:
        require_user(context)
        venues = await self.broker.supported_venues()
        return pb.ListSupportedExchangesResponse(
            exchanges=[codec.supported_exchange_to_proto(p, m) for p, m in venues],
        )

    # Orders -----------------------------------------------------------------------------------

    async def PlaceOrder(
        self,
        request: pb.PlaceOrderRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.PlaceOrderResponse:
        order_request, fence = _order_request(request)
        order = await self._to_the_end(
            self.broker.place_order(
                request.exchange_id,
                user_id_or_empty(context),
                order_request,
                fence,
            )
        )
        await afaultpoint("broker.before_reply")
        return pb.PlaceOrderResponse(order=codec.order_to_proto(order, request.exchange_id))

    async def Fence(
        self,
        request: pb.FenceRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.FenceResponse:
        check = _Violations()
        fence = check.fence(request.fence, "fence", required=True)
        check.raise_if_any()
        return pb.FenceResponse(token=await self.broker.fence(fence))

    async def SetLeverage(
        self,
        request: pb.SetLeverageRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.SetLeverageResponse:
        check = _Violations()
        check.exchange_id(request.exchange_id)
        check.symbol(request.symbol)
        if not 1 <= request.leverage <= 125:
            check.add("leverage", "must be between 1 and 125")
        if request.margin_mode not in ("", "cross", "isolated"):
            check.add("margin_mode", "must be cross, isolated or empty")
        check.raise_if_any()
        leverage = await self._to_the_end(
            self.broker.set_leverage(
                request.exchange_id,
                user_id_or_empty(context),
                request.symbol,
                request.leverage,
                request.margin_mode,
            )
        )
        return pb.SetLeverageResponse(leverage=leverage, margin_mode=request.margin_mode)

    async def GetOrder(
        self,
        request: pb.GetOrderRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.GetOrderResponse:
        _check_order_reference(request)
        order = await self.broker.get_order(
            request.exchange_id,
            user_id_or_empty(context),
            request.client_order_id,
            request.symbol,
        )
        return pb.GetOrderResponse(order=codec.order_to_proto(order, request.exchange_id))

    async def CancelOrder(
        self,
        request: pb.CancelOrderRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.CancelOrderResponse:
        _check_order_reference(request)
        order = await self._to_the_end(
            self.broker.cancel_order(
                request.exchange_id,
                user_id_or_empty(context),
                request.client_order_id,
                request.symbol,
            )
        )
        return pb.CancelOrderResponse(order=codec.order_to_proto(order, request.exchange_id))

    async def ListOrders(
        self,
        request: pb.ListOrdersRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListOrdersResponse:
        check = _Violations()
        check.exchange_id(request.exchange_id)
        symbols = check.symbols(request.symbols)
        start = timestamp_from_proto(request.start_time, request.HasField("start_time"))
        end = timestamp_from_proto(request.end_time, request.HasField("end_time"))
        if start is None:
            check.add("start_time", "is required")
        elif end is not None and end <= start:
            check.add("end_time", "must be after start_time")
        check.raise_if_any()
        assert start is not None
        orders = await self.broker.list_orders(
            request.exchange_id,
            user_id_or_empty(context),
            symbols,
            start,
            end,
        )
        return pb.ListOrdersResponse(
            orders=[codec.order_to_proto(o, request.exchange_id) for o in orders],
        )

    async def ListFills(
        self,
        request: pb.ListFillsRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListFillsResponse:
        check = _Violations()
        check.exchange_id(request.exchange_id)
        symbols = check.symbols(request.symbols)
        check.raise_if_any()
        since: datetime | None = timestamp_from_proto(request.since, request.HasField("since"))
        fills = await self.broker.list_fills(
            request.exchange_id,
            user_id_or_empty(context),
            symbols,
            since,
        )
        return pb.ListFillsResponse(
            fills=[codec.fill_to_proto(f, request.exchange_id) for f in fills]
        )

    async def GetPortfolio(
        self,
        request: pb.GetPortfolioRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.GetPortfolioResponse:
        read = pb.PortfolioRead(
            exchange_id=request.exchange_id,
            quote_currency=request.quote_currency,
            include_leverages=request.include_leverages,
        )
        return await self._portfolio_of(read, user_id_or_empty(context))

    async def GetPortfolios(
        self,
        request: pb.GetPortfoliosRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.GetPortfoliosResponse]:
        # Every account is read at once, and each answer is sent as soon as it is read: one
        # slow venue holds up no other account. A read fails alone, with the status its own
        # GetPortfolio would have had; the call fails only for a request too big to read.
        if len(request.reads) > MAX_PORTFOLIO_READS:
            raise errors.invalid("reads", f"must hold at most {MAX_PORTFOLIO_READS} accounts")
        caller = user_id_or_empty(context)
        answers: asyncio.Queue[pb.GetPortfoliosResponse] = asyncio.Queue()

        async def answer(index: int, read: pb.PortfolioRead) -> None:
            response = pb.GetPortfoliosResponse(index=index, exchange_id=read.exchange_id)
            try:
                response.portfolio.CopyFrom(await self._portfolio_of(read, caller))
            except errors.ServiceError as e:
                response.error.CopyFrom(errors.to_status(e, codec.DOMAIN))
            except Exception as e:
                log.error("unexpected error reading portfolio %d", index, exc_info=e)
                response.error.CopyFrom(errors.internal_status(codec.DOMAIN))
            answers.put_nowait(response)

        reads = [asyncio.ensure_future(answer(i, r)) for i, r in enumerate(request.reads)]
        try:
            for _ in reads:
                yield await answers.get()
        finally:  # the caller went away (its deadline): the reads left are not wanted
            await cancel_and_wait(reads)

    async def _portfolio_of(self, read: pb.PortfolioRead, caller: str) -> pb.GetPortfolioResponse:
        # One account, checked and read (GetPortfolio's, and each of GetPortfolios'). The
        # owner the read names must be the call's user, when the call has one.
        check = _Violations()
        check.exchange_id(read.exchange_id)
        quote = read.quote_currency.strip().upper()
        if quote and not CURRENCY.match(quote):
            check.add("quote_currency", "must be an asset code such as USDT")
        check.raise_if_any()
        if caller and read.user_id and read.user_id != caller:
            raise errors.NotFound(
                f"exchange account {read.exchange_id} not found",
                reason="EXCHANGE_NOT_FOUND",
                metadata={"exchange_id": read.exchange_id},
            )
        await afaultpoint("broker.before_portfolio_read")  # a broker slowed on purpose
        portfolio = await self.broker.portfolio(
            read.exchange_id,
            caller or read.user_id,
            quote,
            include_leverages=read.include_leverages,
        )
        return codec.portfolio_to_proto(portfolio)

    async def GetMarket(
        self,
        request: pb.GetMarketRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.GetMarketResponse:
        check = _Violations()
        check.exchange_id(request.exchange_id)
        check.symbol(request.symbol)
        check.raise_if_any()
        await afaultpoint("broker.before_market_read")
        market, last = await self.broker.market(
            request.exchange_id,
            user_id_or_empty(context),
            request.symbol,
        )
        response = pb.GetMarketResponse(market=codec.market_to_proto(market))
        if last is not None:
            set_decimal(response.last_price, last)
        return response

    async def ListCandles(
        self,
        request: pb.ListCandlesRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListCandlesResponse:
        check = _Violations()
        check.exchange_id(request.exchange_id)
        check.symbol(request.symbol)
        if not request.timeframe:
            check.add("timeframe", "is required")
        elif not TIMEFRAME.match(request.timeframe):
            check.add("timeframe", "must be a ccxt timeframe such as 1m, 1h or 1d")
        if not 0 <= request.limit <= MAX_CANDLES:
            check.add("limit", f"must be between 0 and {MAX_CANDLES}")
        check.raise_if_any()
        since = timestamp_from_proto(request.since, request.HasField("since"))
        await afaultpoint("broker.before_candles_read")
        candles = await self.broker.candles(
            request.exchange_id,
            user_id_or_empty(context),
            request.symbol,
            request.timeframe,
            since,
            request.limit or DEFAULT_CANDLES,
        )
        return pb.ListCandlesResponse(candles=[codec.candle_to_proto(c) for c in candles])

    async def WatchFills(
        self,
        request: pb.WatchFillsRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.WatchFillsResponse]:
        symbols = _check_watch(request)
        async with self.broker.watch(
            request.exchange_id, user_id_or_empty(context), WatchChannel.FILLS, symbols
        ) as stream:
            async for item in stream:
                if isinstance(item, Fill | StreamEvent):
                    yield codec.watch_fills_response(item, request.exchange_id)

    async def WatchOrders(
        self,
        request: pb.WatchOrdersRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.WatchOrdersResponse]:
        symbols = _check_watch(request)
        async with self.broker.watch(
            request.exchange_id, user_id_or_empty(context), WatchChannel.ORDERS, symbols
        ) as stream:
            async for item in stream:
                if isinstance(item, Order | StreamEvent):
                    yield codec.watch_orders_response(item, request.exchange_id)


def _check_watch(request: pb.WatchFillsRequest | pb.WatchOrdersRequest) -> list[str]:
    check = _Violations()
    check.exchange_id(request.exchange_id)
    symbols = check.symbols(request.symbols)
    check.raise_if_any()
    return symbols


def _check_order_reference(request: pb.GetOrderRequest | pb.CancelOrderRequest) -> None:
    check = _Violations()
    check.exchange_id(request.exchange_id)
    check.client_order_id(request.client_order_id)
    check.symbol(request.symbol, required=False)
    check.raise_if_any()


def _order_request(request: pb.PlaceOrderRequest) -> tuple[OrderRequest, Fence]:
    check = _Violations()
    check.exchange_id(request.exchange_id)
    check.client_order_id(request.client_order_id)
    check.symbol(request.symbol)
    side = codec.SIDE.from_proto(request.side)
    if side is None:
        check.add("side", "must be ORDER_SIDE_BUY or ORDER_SIDE_SELL")
    kind = codec.ORDER_TYPE.from_proto(request.type)
    if kind is None:
        check.add("type", "must be a known order type, not ORDER_TYPE_UNSPECIFIED")
    quantity = check.decimal(request.quantity, "quantity", required=True)
    price = check.decimal(request.price, "price", required=bool(kind and kind.has_limit_price))
    stop_price = check.decimal(
        request.stop_price,
        "stop_price",
        required=bool(kind and kind.has_stop_price),
    )
    time_in_force = None
    if request.time_in_force != types_pb2.TIME_IN_FORCE_UNSPECIFIED:
        time_in_force = codec.TIME_IN_FORCE.from_proto(request.time_in_force)
        if time_in_force is None:
            check.add("time_in_force", "is not a known time in force")
    if kind is not None:
        if not kind.has_limit_price and request.price.value.strip():
            check.add("price", f"must be empty for {kind.name} orders")
        if not kind.has_stop_price and request.stop_price.value.strip():
            check.add("stop_price", f"must be empty for {kind.name} orders")
        if kind in (OrderType.MARKET, OrderType.STOP_MARKET) and time_in_force is not None:
            check.add("time_in_force", f"must be unset for {kind.name} orders")
    fence = check.fence(request.fence, "fence", required=False)
    check.raise_if_any()
    assert side is not None and kind is not None and quantity is not None
    order = OrderRequest(
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        side=side,
        type=kind,
        quantity=quantity,
        price=price,
        stop_price=stop_price,
        time_in_force=time_in_force,
        reduce_only=request.reduce_only,
    )
    return order, fence
