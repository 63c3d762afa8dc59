"""In-process fakes of the broker and sync services for the engine's service tests.

The fake broker is a tiny venue: accounts with owners, portfolios, markets, and orders keyed
by client order id, with scripted outcomes for ``PlaceOrder``. The fake sync service keeps a
signal log per source and serves ``StreamSignals`` with subscribe, resume, heartbeats, acks,
and hooks to break the stream or inject duplicates and gaps.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import grpc

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.broker.v1 import broker_service_pb2_grpc as broker_grpc
from copytrade.common.v1 import types_pb2
from copytrade.sync.v1 import sync_service_pb2 as sync_pb
from copytrade.sync.v1 import sync_service_pb2_grpc as sync_grpc
from meshkit import errors
from meshkit.codec import format_decimal, timestamp_to_proto
from meshkit.identity import user_id_or_empty
from meshkit.server import Registration

USER = "user-alice"
OTHER_USER = "user-mallory"


def new_id() -> str:
    return str(uuid.uuid4())


def dec(value: Decimal | str) -> Any:
    from google.type import decimal_pb2

    return decimal_pb2.Decimal(value=format_decimal(Decimal(value)))


class TestClock:
    """Real time plus an offset the test can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class Account:
    exchange_id: str
    user_id: str
    exchange_name: str = "binance"
    equity: Decimal = Decimal("10000")
    balances: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    portfolio_error: errors.ServiceError | None = None


class FakeBroker(broker_grpc.BrokerServiceServicer):
    """A venue behind the broker's API, with scripted answers to ``PlaceOrder``."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.markets: dict[str, tuple[broker_pb.Market, Decimal]] = {}
        self.orders: dict[str, types_pb2.Order] = {}
        self.placed: Counter[str] = Counter()
        self.place_calls: list[broker_pb.PlaceOrderRequest] = []
        self.cancel_calls: list[str] = []
        self.get_order_calls: list[str] = []
        self.place_script: list[str] = []
        self.on_place: Callable[[broker_pb.PlaceOrderRequest], Awaitable[None]] | None = None
        self.venue_markets: dict[str, dict[str, tuple[broker_pb.Market, Decimal]]] = {}
        self.market_errors: dict[str, errors.ServiceError] = {}
        self.closes: dict[str, list[Decimal]] = {}
        self.candle_error: errors.ServiceError | None = None
        self.candle_calls: list[tuple[str, str, int]] = []
        # While set, the account reads fail as a broker that is down does: UNAVAILABLE with
        # no ErrorInfo (gRPC's own status), not an answer of the broker about its venue.
        self.down = False
        # A delay before each portfolio answer (so that a market read fails first).
        self.portfolio_delay = 0.0
        # Order look-ups: an error to answer with instead, and a delay before each answer.
        self.get_order_error: errors.ServiceError | None = None
        self.get_order_delay = 0.0
        # While set, a cancel is carried out at the venue but its answer never comes back.
        self.cancel_answer_lost = False
        # While set, a cancel fails before it reaches the venue.
        self.cancel_error: errors.ServiceError | None = None
        # ("placed", id) and ("looked up", id) in the order the answers were given.
        self.journal: list[tuple[str, str]] = []
        self.add_market("BTC/USDT", "BTC", "USDT", price="50000")

    # -- set-up

    def add_account(self, user_id: str = USER, **kwargs: Any) -> Account:
        account = Account(exchange_id=new_id(), user_id=user_id, **kwargs)
        self.accounts[account.exchange_id] = account
        return account

    def add_market(
        self,
        symbol: str,
        base: str,
        quote: str,
        *,
        price: str,
        step: str = "0.00001",
        min_notional: str = "10",
        min_quantity: str = "0.00001",
        tick: str | None = None,
        venue: str | None = None,
    ) -> None:
        """Add a market to every venue, or to ``venue`` only (which then has only its own)."""
        market = broker_pb.Market(
            symbol=symbol,
            base=base,
            quote=quote,
            quantity_step=dec(step),
            min_notional=dec(min_notional),
            min_quantity=dec(min_quantity),
        )
        if tick is not None:
            market.price_tick.CopyFrom(dec(tick))
        if venue is None:
            self.markets[symbol] = (market, Decimal(price))
        else:
            self.venue_markets.setdefault(venue, {})[symbol] = (market, Decimal(price))

    def markets_of(self, account: Account) -> dict[str, tuple[broker_pb.Market, Decimal]]:
        return self.venue_markets.get(account.exchange_name, self.markets)

    def set_closes(self, symbol: str, closes: list[str | Decimal]) -> None:
        """Give ``symbol`` hourly candles with these closes, the last one this hour."""
        self.closes[symbol] = [Decimal(c) for c in closes]

    # -- helpers

    async def _unless_down(self, context: grpc.aio.ServicerContext) -> None:
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")

    def _account(self, exchange_id: str, context: grpc.aio.ServicerContext) -> Account:
        account = self.accounts.get(exchange_id)
        caller = user_id_or_empty(context)
        if account is None or (caller and caller != account.user_id):
            raise errors.NotFound(
                f"exchange account {exchange_id} not found", reason="EXCHANGE_NOT_FOUND"
            )
        return account

    def _order(
        self, request: broker_pb.PlaceOrderRequest, status: int, filled: str | None = None
    ) -> types_pb2.Order:
        account = self.accounts[request.exchange_id]
        price = self.markets_of(account)[request.symbol][1]
        if filled is None:
            filled = request.quantity.value if status == types_pb2.ORDER_STATUS_FILLED else "0"
        order = types_pb2.Order(
            exchange_id=request.exchange_id,
            venue_order_id=f"v-{len(self.orders) + 1}",
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            time_in_force=request.time_in_force,
            quantity=request.quantity,
            price=request.price,
            status=status,
            filled_quantity=dec(filled),
        )
        if Decimal(filled) > 0:
            order.average_price.CopyFrom(dec(price))
        return order

    def _store(
        self, request: broker_pb.PlaceOrderRequest, status: int, filled: str | None = None
    ) -> types_pb2.Order:
        order = self._order(request, status, filled)
        self.orders[request.client_order_id] = order
        self.placed[request.client_order_id] += 1
        return order

    # -- RPCs

    async def GetExchange(self, request, context):  # type: ignore[no-untyped-def]
        account = self._account(request.exchange_id, context)
        return broker_pb.GetExchangeResponse(
            exchange=broker_pb.ExchangeAccount(
                exchange_id=account.exchange_id,
                exchange_name=account.exchange_name,
            )
        )

    async def GetPortfolio(self, request, context):  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.portfolio_delay)
        await self._unless_down(context)
        account = self._account(request.exchange_id, context)
        if account.portfolio_error is not None:
            raise account.portfolio_error
        balances = [
            broker_pb.Balance(asset=asset, free=dec(free), total=dec(total))
            for asset, (free, total) in account.balances.items()
        ]
        return broker_pb.GetPortfolioResponse(
            balances=balances,
            equity=dec(account.equity),
            quote_currency="USDT",
        )

    async def GetMarket(self, request, context):  # type: ignore[no-untyped-def]
        await self._unless_down(context)
        account = self._account(request.exchange_id, context)
        if request.symbol in self.market_errors:
            raise self.market_errors[request.symbol]
        markets = self.markets_of(account)
        if request.symbol not in markets:
            raise errors.NotFound(f"no market {request.symbol}", reason="MARKET_NOT_FOUND")
        market, price = markets[request.symbol]
        return broker_pb.GetMarketResponse(market=market, last_price=dec(price))

    async def ListCandles(self, request, context):  # type: ignore[no-untyped-def]
        await self._unless_down(context)
        account = self._account(request.exchange_id, context)
        self.candle_calls.append((request.exchange_id, request.symbol, request.limit))
        if self.candle_error is not None:
            raise self.candle_error
        if request.symbol not in self.markets_of(account) or request.symbol not in self.closes:
            raise errors.NotFound(f"no market {request.symbol}", reason="MARKET_NOT_FOUND")
        closes = self.closes[request.symbol][-(request.limit or 100) :]
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        candles = []
        for i, close in enumerate(closes):
            candle = broker_pb.Candle(close=dec(close), open=dec(close))
            moment = hour - timedelta(hours=len(closes) - 1 - i)
            candle.open_time.CopyFrom(timestamp_to_proto(moment))
            candles.append(candle)
        return broker_pb.ListCandlesResponse(candles=candles)

    async def PlaceOrder(self, request, context):  # type: ignore[no-untyped-def]
        self._account(request.exchange_id, context)
        self.place_calls.append(request)
        if self.on_place is not None:
            await self.on_place(request)
        mode = self.place_script.pop(0) if self.place_script else "fill"
        self.journal.append(("placed", request.client_order_id))
        if mode == "fill":
            return broker_pb.PlaceOrderResponse(
                order=self._store(request, types_pb2.ORDER_STATUS_FILLED)
            )
        if mode == "open":
            return broker_pb.PlaceOrderResponse(
                order=self._store(request, types_pb2.ORDER_STATUS_OPEN)
            )
        if mode in ("expired_half", "canceled_half"):
            half = format_decimal(Decimal(request.quantity.value) / 2)
            status = (
                types_pb2.ORDER_STATUS_EXPIRED
                if mode == "expired_half"
                else types_pb2.ORDER_STATUS_CANCELED
            )
            return broker_pb.PlaceOrderResponse(order=self._store(request, status, half))
        if mode == "unknown_placed":
            self._store(request, types_pb2.ORDER_STATUS_FILLED)
            raise errors.OutcomeUnknown("venue timed out")
        if mode == "unknown_lost":
            raise errors.OutcomeUnknown("venue timed out")
        if mode == "rate_limited":
            raise errors.ResourceExhausted("slow down", retry_after=0.05)
        if mode == "insufficient_funds":
            raise errors.FailedPrecondition(
                "Account has insufficient balance", reason="INSUFFICIENT_FUNDS"
            )
        raise AssertionError(f"unknown place mode {mode}")

    async def GetOrder(self, request, context):  # type: ignore[no-untyped-def]
        self._account(request.exchange_id, context)
        self.get_order_calls.append(request.client_order_id)
        if self.get_order_delay:
            await asyncio.sleep(self.get_order_delay)
        if self.get_order_error is not None:
            raise self.get_order_error
        self.journal.append(("looked up", request.client_order_id))
        order = self.orders.get(request.client_order_id)
        if order is None:
            raise errors.NotFound("order not found", reason="ORDER_NOT_FOUND")
        return broker_pb.GetOrderResponse(order=order)

    async def CancelOrder(self, request, context):  # type: ignore[no-untyped-def]
        self._account(request.exchange_id, context)
        self.cancel_calls.append(request.client_order_id)
        if self.cancel_error is not None:
            raise self.cancel_error
        order = self.orders.get(request.client_order_id)
        if order is None:
            raise errors.NotFound("order not found", reason="ORDER_NOT_FOUND")
        if order.status == types_pb2.ORDER_STATUS_OPEN:
            order.status = types_pb2.ORDER_STATUS_CANCELED
        elif order.status != types_pb2.ORDER_STATUS_CANCELED:
            raise errors.FailedPrecondition("order is closed", reason="ORDER_CLOSED")
        if self.cancel_answer_lost:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset")
        return broker_pb.CancelOrderResponse(order=order)


class FakeSync(sync_grpc.SyncServiceServicer):
    """Sources and their signal logs, streamed with subscribe, resume and acks."""

    def __init__(self) -> None:
        self.sources: dict[str, sync_pb.Source] = {}
        self.logs: dict[str, list[sync_pb.Signal]] = {}
        self.acks: list[tuple[str, int]] = []
        self.subscriptions: list[tuple[str, int]] = []
        self.watch_calls: list[sync_pb.WatchExchangeSourceRequest] = []
        self.unwatch_calls: list[str] = []
        self.streams_opened = 0
        self._wake: list[asyncio.Event] = []
        self._injected: list[asyncio.Queue[sync_pb.Signal]] = []
        self._break = False

    # -- set-up

    def add_backtest(self, user_id: str = USER, *, public: bool = False) -> str:
        source_id = new_id()
        self.sources[source_id] = sync_pb.Source(
            source_id=source_id,
            kind=sync_pb.SOURCE_KIND_BACKTEST,
            user_id=user_id,
            public=public,
            mode=sync_pb.SYNC_MODE_PUBLISHED,
        )
        self.logs[source_id] = []
        return source_id

    def publish(
        self,
        source_id: str,
        *,
        side: int = types_pb2.ORDER_SIDE_BUY,
        quantity: str = "0.1",
        price: str = "50000",
        symbol: str = "BTC/USDT",
        leader_equity: str | None = "100000",
        event_time: datetime | None = None,
        leader_position: str | None = None,
    ) -> sync_pb.Signal:
        log = self.logs.setdefault(source_id, [])
        sequence = len(log) + 1
        signal = sync_pb.Signal(
            source_id=source_id,
            sequence=sequence,
            signal_id=f"t{sequence}",
            symbol=symbol,
            side=side,
            quantity=dec(quantity),
            price=dec(price),
            order_type=types_pb2.ORDER_TYPE_MARKET,
            exchange_name="binance",
        )
        if leader_equity is not None:
            signal.leader_equity.CopyFrom(dec(leader_equity))
        if leader_position is not None:
            signal.leader_position.CopyFrom(dec(leader_position))
        moment = event_time or datetime.now(UTC)
        signal.event_time.CopyFrom(timestamp_to_proto(moment))
        signal.log_time.CopyFrom(timestamp_to_proto(moment))
        log.append(signal)
        source = self.sources.get(source_id)
        if source is not None:
            source.last_sequence = sequence
        self._notify()
        return signal

    def inject(self, signal: sync_pb.Signal) -> None:
        """Send ``signal`` on every open stream now, out of band (duplicates, gaps)."""
        for queue in self._injected:
            queue.put_nowait(signal)
        self._notify()

    def break_streams(self) -> None:
        """Make every open stream fail, as a dropped connection would."""
        self._break = True
        self._notify()

    def _notify(self) -> None:
        for event in self._wake:
            event.set()

    # -- RPCs

    async def GetSource(self, request, context):  # type: ignore[no-untyped-def]
        source = self.sources.get(request.source_id)
        if source is None:
            raise errors.NotFound("source not found", reason="SOURCE_NOT_FOUND")
        return sync_pb.GetSourceResponse(source=source)

    async def WatchExchangeSource(self, request, context):  # type: ignore[no-untyped-def]
        self.watch_calls.append(request)
        source = self.sources.get(request.exchange_id)
        if source is None:
            source = sync_pb.Source(
                source_id=request.exchange_id,
                kind=sync_pb.SOURCE_KIND_EXCHANGE,
                user_id=user_id_or_empty(context),
                mode=sync_pb.SYNC_MODE_WEBSOCKET,
                last_sequence=len(self.logs.get(request.exchange_id, [])),
            )
            self.sources[request.exchange_id] = source
            self.logs.setdefault(request.exchange_id, [])
        source.watched = True
        return sync_pb.WatchExchangeSourceResponse(source=source)

    async def UnwatchExchangeSource(self, request, context):  # type: ignore[no-untyped-def]
        self.unwatch_calls.append(request.exchange_id)
        source = self.sources.get(request.exchange_id)
        if source is None:
            raise errors.NotFound("source not found", reason="SOURCE_NOT_FOUND")
        source.watched = False
        return sync_pb.UnwatchExchangeSourceResponse(source=source)

    async def StreamSignals(  # type: ignore[no-untyped-def]
        self,
        request_iterator,
        context,
    ) -> AsyncIterator[sync_pb.StreamSignalsResponse]:
        self.streams_opened += 1
        self._break = False
        cursors: dict[str, int] = {}
        wake = asyncio.Event()
        injected: asyncio.Queue[sync_pb.Signal] = asyncio.Queue()
        self._wake.append(wake)
        self._injected.append(injected)

        async def read() -> None:
            async for request in request_iterator:
                kind = request.WhichOneof("message")
                if kind == "subscribe" and request.subscribe.source_id not in self.sources:
                    refused.append(
                        errors.NotFound(
                            "source not found",
                            reason="SOURCE_NOT_FOUND",
                            metadata={"source_id": request.subscribe.source_id},
                        )
                    )
                    wake.set()
                elif kind == "subscribe":
                    cursors[request.subscribe.source_id] = request.subscribe.after_sequence
                    self.subscriptions.append(
                        (request.subscribe.source_id, request.subscribe.after_sequence),
                    )
                    wake.set()
                elif kind == "ack":
                    self.acks.append((request.ack.source_id, request.ack.sequence))

        refused: list[errors.ServiceError] = []
        reader = asyncio.create_task(read())
        try:
            while True:
                if refused:
                    raise refused[0]
                if self._break:
                    raise errors.Unavailable("stream dropped")
                while not injected.empty():
                    yield sync_pb.StreamSignalsResponse(signal=injected.get_nowait())
                for source_id in list(cursors):
                    while cursors[source_id] < len(self.logs.get(source_id, [])):
                        signal = self.logs[source_id][cursors[source_id]]
                        cursors[source_id] = signal.sequence  # a re-subscribe meanwhile wins
                        yield sync_pb.StreamSignalsResponse(signal=signal)
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), timeout=0.2)
                except TimeoutError:
                    yield sync_pb.StreamSignalsResponse(heartbeat=sync_pb.Heartbeat())
        finally:
            reader.cancel()
            self._wake.remove(wake)
            self._injected.remove(injected)


@dataclass
class World:
    """The fakes one test talks to."""

    broker: FakeBroker = field(default_factory=FakeBroker)
    sync: FakeSync = field(default_factory=FakeSync)

    def registrations(self) -> list[Registration]:
        return [
            Registration(
                broker_grpc.add_BrokerServiceServicer_to_server,
                self.broker,
                "copytrade.broker.v1.BrokerService",
            ),
            Registration(
                sync_grpc.add_SyncServiceServicer_to_server,
                self.sync,
                "copytrade.sync.v1.SyncService",
            ),
        ]


def field_paths(error: grpc.aio.AioRpcError) -> list[str]:
    """Return the field paths of an INVALID_ARGUMENT's BadRequest."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)
    paths: list[str] = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            paths += [v.field for v in bad.field_violations]
    return paths


def error_reason(error: grpc.aio.AioRpcError) -> str:
    """Return the ErrorInfo reason of a failed call."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""
