"""Fakes of the broker: its gRPC API over a tiny venue, and the sync service's broker port.

:class:`FakeBrokerService` is one fake ``BrokerService`` for every suite that talks to the broker
over gRPC: accounts with owners, portfolios, markets and candles, orders placed with scripted
outcomes, and each account's order history as the venue lists it. The engine's tests script
``PlaceOrder``, the reconciliation tests list an account's orders, the gateway's tests record
what reached the broker (give it a :class:`~tests.fakes.recording.Recorder`).

:class:`CannedBrokerService` answers fixed wire messages, to test a gRPC client's decoding
(the sync service's broker adapter).

:class:`FakeBrokerPort` is a different thing: the sync service's in-process broker port (fills,
portfolios, fill watches with venue disconnects and drops), and :class:`BrokerPortServicer`
serves it over gRPC for the sync service's end-to-end tests.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import grpc
from google.type import decimal_pb2

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.broker.v1 import broker_service_pb2_grpc as broker_grpc
from copytrade.common.v1 import types_pb2
from meshkit import errors, identity
from meshkit.codec import format_decimal, set_decimal, timestamp_from_proto, timestamp_to_proto
from meshkit.identity import user_id_or_empty
from meshkit.server import Registration
from sync_svc.domain.model import (
    ExchangeAccount,
    LeaderFill,
    LeaderOrder,
    OrderType,
    Portfolio,
    Side,
    WatchEvent,
    WatchItem,
    WatchState,
)
from sync_svc.domain.positions import base_asset, base_delta
from tests.fakes.recording import Recorder

DEFAULT_USER = "user-alice"


def new_id() -> str:
    """A fresh random id (accounts, sources)."""
    return str(uuid.uuid4())


def dec(value: Decimal | str) -> decimal_pb2.Decimal:
    """A ``google.type.Decimal`` holding ``value``."""
    return decimal_pb2.Decimal(value=format_decimal(Decimal(value)))


@dataclass
class Account:
    """One exchange account the fake broker holds."""

    exchange_id: str
    user_id: str
    exchange_name: str = "binance"
    equity: Decimal = Decimal("10000")
    balances: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    portfolio_error: errors.ServiceError | None = None
    # Open derivatives positions, as GetPortfolio lists them (a futures account).
    positions: list[broker_pb.Position] = field(default_factory=list)


class FakeBrokerService(broker_grpc.BrokerServiceServicer):
    """A venue behind the broker's gRPC API.

    ``PlaceOrder`` follows ``place_script`` (``fill`` when empty; see :meth:`PlaceOrder`);
    ``ListOrders`` lists ``history`` (orders placed here, and any :meth:`add_order` added), to the
    account's owner, failing for accounts in ``unavailable`` and logging each read in ``calls``.
    With a ``recorder``, the RPCs the gateway exposes record their calls and follow its scripted
    failures and delays.
    """

    def __init__(self, recorder: Recorder | None = None, calls: list[str] | None = None) -> None:
        self.recorder = recorder
        # One line per venue read, "ListOrders:<exchange id>:<caller>" (shared with other fakes).
        self.calls: list[str] = calls if calls is not None else []
        # Each account's orders as the venue lists them, oldest first.
        self.history: dict[str, list[types_pb2.Order]] = {}
        # Accounts whose venue does not answer ``ListOrders`` (nor ``ListFills``).
        self.unavailable: set[str] = set()
        # Orders whose trades ``ListFills`` reports but ``ListOrders`` does not (placed before
        # the listed window): their create time is their trade time.
        self.trades_only: dict[str, list[types_pb2.Order]] = {}
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
        # The broker's fences (the highest token seen per key) and its placement attempts
        # (client order id -> (fence key, token)), recorded before any venue call.
        self.fences: dict[str, int] = {}
        self.attempts: dict[str, tuple[str, int]] = {}
        self.fence_calls: list[tuple[str, int]] = []
        # SetLeverage calls (exchange id, symbol, leverage), in order, and (with the place calls)
        # the order of both in ``leverage_journal``.
        self.leverage_calls: list[tuple[str, str, int]] = []
        self.leverage_journal: list[str] = []
        # The accounts each GetPortfolios call read, one list per call, and GetPortfolio calls.
        self.portfolio_batches: list[list[str]] = []
        self.single_portfolio_calls = 0
        self.add_market("BTC/USDT", "BTC", "USDT", price="50000")

    # -- set-up

    def add_account(
        self, user_id: str = DEFAULT_USER, *, exchange_id: str | None = None, **kwargs: Any
    ) -> Account:
        """Open an account of ``user_id`` (a fresh id unless ``exchange_id`` is given)."""
        account = Account(exchange_id=exchange_id or new_id(), user_id=user_id, **kwargs)
        self.accounts[account.exchange_id] = account
        return account

    def add_order(self, order: types_pb2.Order) -> None:
        """Put an order in its account's venue history (as if it had been placed earlier)."""
        self.history.setdefault(order.exchange_id, []).append(order)

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
        self,
        request: broker_pb.PlaceOrderRequest,
        status: types_pb2.OrderStatus.ValueType,
        filled: str | None = None,
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
        self,
        request: broker_pb.PlaceOrderRequest,
        status: types_pb2.OrderStatus.ValueType,
        filled: str | None = None,
    ) -> types_pb2.Order:
        order = self._order(request, status, filled)
        self.orders[request.client_order_id] = order
        self.placed[request.client_order_id] += 1
        self.history.setdefault(request.exchange_id, []).append(order)
        return order

    async def _record(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        if self.recorder is not None:
            await self.recorder.record(method, request, context)

    def registration(self) -> Registration:
        """This fake, ready for ``meshkit.testing.inprocess_server``."""
        return Registration(
            broker_grpc.add_BrokerServiceServicer_to_server,
            self,
            "copytrade.broker.v1.BrokerService",
        )

    # -- RPCs

    async def GetExchange(self, request, context):
        account = self._account(request.exchange_id, context)
        return broker_pb.GetExchangeResponse(
            exchange=broker_pb.ExchangeAccount(
                exchange_id=account.exchange_id,
                exchange_name=account.exchange_name,
            )
        )

    async def GetPortfolio(self, request, context):
        self.single_portfolio_calls += 1
        await asyncio.sleep(self.portfolio_delay)
        await self._unless_down(context)
        return self._portfolio(self._account(request.exchange_id, context))

    async def GetPortfolios(self, request, context):
        # As the broker: every account read at once, each answered when read, with its error.
        self.portfolio_batches.append([read.exchange_id for read in request.reads])
        await asyncio.sleep(self.portfolio_delay)
        await self._unless_down(context)
        for index, read in enumerate(request.reads):
            answer = broker_pb.GetPortfoliosResponse(index=index, exchange_id=read.exchange_id)
            try:
                account = self._account(read.exchange_id, context)
                if read.user_id and read.user_id != account.user_id:
                    raise errors.NotFound("not found", reason="EXCHANGE_NOT_FOUND")
                answer.portfolio.CopyFrom(self._portfolio(account))
            except errors.ServiceError as e:
                answer.error.CopyFrom(errors.to_status(e, "broker.copytrade"))
            yield answer

    def _portfolio(self, account: Account) -> broker_pb.GetPortfolioResponse:
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
            positions=account.positions,
        )

    async def GetMarket(self, request, context):
        await self._unless_down(context)
        account = self._account(request.exchange_id, context)
        if request.symbol in self.market_errors:
            raise self.market_errors[request.symbol]
        markets = self.markets_of(account)
        if request.symbol not in markets:
            raise errors.NotFound(f"no market {request.symbol}", reason="MARKET_NOT_FOUND")
        market, price = markets[request.symbol]
        return broker_pb.GetMarketResponse(market=market, last_price=dec(price))

    async def ListCandles(self, request, context):
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

    def _raise_fence(self, key: str, token: int) -> int:
        self.fences[key] = max(self.fences.get(key, token), token)
        return self.fences[key]

    @staticmethod
    def _fenced(key: str, stored: int) -> errors.FailedPrecondition:
        return errors.FailedPrecondition(
            f"the lease {key} was taken over (token {stored})",
            reason="FENCED",
            metadata={"fence_key": key, "fence_token": str(stored)},
        )

    async def Fence(self, request, context):
        """Raise the key's token as the broker does; ``FENCED`` when it is already higher."""
        key, token = request.fence.key, request.fence.token
        self.fence_calls.append((key, token))
        stored = self._raise_fence(key, token)
        if stored > token:
            raise self._fenced(key, stored)
        return broker_pb.FenceResponse(token=stored)

    async def SetLeverage(self, request, context):
        """Set the leverage of a derivatives market: refused at a venue without positions."""
        account = self._account(request.exchange_id, context)
        if account.exchange_name != "binanceusdm":
            raise errors.FailedPrecondition(
                "the venue holds no positions", reason="LEVERAGE_UNSUPPORTED"
            )
        self.leverage_calls.append((request.exchange_id, request.symbol, request.leverage))
        self.leverage_journal.append(f"leverage {request.leverage}")
        return broker_pb.SetLeverageResponse(leverage=request.leverage)

    async def PlaceOrder(self, request, context):
        self._account(request.exchange_id, context)
        self.place_calls.append(request)
        self.leverage_journal.append(f"place {request.client_order_id}")
        # As the broker: refused before anything reaches the venue when a higher token fenced
        # the key, otherwise the attempt is recorded (the first one of a client order id kept).
        key, token = request.fence.key, request.fence.token
        if key and self._raise_fence(key, token) > token:
            raise self._fenced(key, self.fences[key])
        self.attempts.setdefault(request.client_order_id, (key, token))
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
        if mode == "order_type_unsupported":  # the broker's order table, before any venue call
            raise errors.FailedPrecondition(
                "the venue cannot place this order type", reason="ORDER_TYPE_UNSUPPORTED"
            )
        raise AssertionError(f"unknown place mode {mode}")

    async def GetOrder(self, request, context):
        self._account(request.exchange_id, context)
        self.get_order_calls.append(request.client_order_id)
        if self.get_order_delay:
            await asyncio.sleep(self.get_order_delay)
        if self.get_order_error is not None:
            raise self.get_order_error
        self.journal.append(("looked up", request.client_order_id))
        order = self.orders.get(request.client_order_id)
        if order is None:
            # As the broker: "never placed" when no attempt to place it was ever recorded.
            never = {} if request.client_order_id in self.attempts else {"never_placed": "true"}
            raise errors.NotFound("order not found", reason="ORDER_NOT_FOUND", metadata=never)
        return broker_pb.GetOrderResponse(order=order)

    async def CancelOrder(self, request, context):
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

    async def ListOrders(
        self,
        request: broker_pb.ListOrdersRequest,
        context: grpc.aio.ServicerContext,
    ) -> broker_pb.ListOrdersResponse:
        user = user_id_or_empty(context)
        self.calls.append(f"ListOrders:{request.exchange_id}:{user}")
        self._account(request.exchange_id, context)
        if request.exchange_id in self.unavailable:
            raise errors.Unavailable("binance did not answer", reason="EXCHANGE_UNAVAILABLE")
        start = timestamp_from_proto(request.start_time, request.HasField("start_time"))
        orders = [
            o
            for o in self.history.get(request.exchange_id, [])
            if (not request.symbols or o.symbol in request.symbols)
            and (start is None or o.create_time.ToDatetime(tzinfo=UTC) >= start)
        ]
        return broker_pb.ListOrdersResponse(orders=orders)

    async def ListFills(
        self,
        request: broker_pb.ListFillsRequest,
        context: grpc.aio.ServicerContext,
    ) -> broker_pb.ListFillsResponse:
        """One trade per order of ``history`` that filled (its whole fill, at its create time)."""
        self._account(request.exchange_id, context)
        if request.exchange_id in self.unavailable:
            raise errors.Unavailable("binance did not answer", reason="EXCHANGE_UNAVAILABLE")
        since = timestamp_from_proto(request.since, request.HasField("since"))
        fills = [
            types_pb2.Fill(
                exchange_id=o.exchange_id,
                trade_id=f"t-{o.venue_order_id}",
                venue_order_id=o.venue_order_id,
                client_order_id=o.client_order_id,
                symbol=o.symbol,
                side=o.side,
                quantity=o.filled_quantity,
                trade_time=o.create_time,
            )
            for o in self.history.get(request.exchange_id, [])
            + self.trades_only.get(request.exchange_id, [])
            if o.filled_quantity.value not in ("", "0")
            and (not request.symbols or o.symbol in request.symbols)
            and (since is None or o.create_time.ToDatetime(tzinfo=UTC) >= since)
        ]
        return broker_pb.ListFillsResponse(fills=fills)

    async def ListSupportedExchanges(self, request, context):
        await self._record("ListSupportedExchanges", request, context)
        venues = {"binance": self.markets, **self.venue_markets}
        return broker_pb.ListSupportedExchangesResponse(
            exchanges=[
                broker_pb.SupportedExchange(
                    exchange_name=name, markets=[market for market, _ in markets.values()]
                )
                for name, markets in venues.items()
            ]
        )

    async def ListExchanges(self, request, context):
        await self._record("ListExchanges", request, context)
        caller = user_id_or_empty(context)
        return broker_pb.ListExchangesResponse(
            exchanges=[
                broker_pb.ExchangeAccount(exchange_id=a.exchange_id, exchange_name=a.exchange_name)
                for a in self.accounts.values()
                if a.user_id == caller
            ]
        )

    async def DeleteExchange(self, request, context):
        """Forget the account if there is one; answer its id either way."""
        await self._record("DeleteExchange", request, context)
        self.accounts.pop(request.exchange_id, None)
        return broker_pb.DeleteExchangeResponse(exchange_id=request.exchange_id)


# ---------------------------------------------------------------------- fixed wire answers

CANNED_TRADE_TIME = datetime(2026, 4, 1, 10, 0, 0, 123000, tzinfo=UTC)


class CannedBrokerService(broker_grpc.BrokerServiceServicer):
    """A ``BrokerService`` answering fixed wire messages, to test a gRPC client's decoding.

    One account ``acc-1`` (coinbase); ``ListFills`` answers one limit sell with a fee at
    :data:`CANNED_TRADE_TIME` (after ``delay``) and notes ``since``; ``WatchFills`` sends
    CONNECTED, a fill, an event of an unknown state and GAP_SUSPECTED, then fails with
    ``watch_error`` or hangs while ``watch_forever``; ``GetPortfolio`` is always UNAVAILABLE
    with a retry-after. ``users`` lists the callers ``GetExchange`` saw.
    """

    def __init__(self) -> None:
        self.since: datetime | None = None
        self.users: list[str] = []
        self.delay = 0.0
        self.watch_error: errors.ServiceError | None = None
        self.watch_forever = False
        self.watch_cancelled = asyncio.Event()

    async def GetExchange(
        self,
        request: broker_pb.GetExchangeRequest,
        context: grpc.aio.ServicerContext,
    ) -> broker_pb.GetExchangeResponse:
        self.users += [identity.user_id_or_empty()] if identity.user_id_or_empty() else []
        if request.exchange_id != "acc-1":
            raise errors.NotFound("no such account", reason="EXCHANGE_NOT_FOUND")
        return broker_pb.GetExchangeResponse(
            exchange=broker_pb.ExchangeAccount(exchange_id="acc-1", exchange_name="coinbase")
        )

    async def ListFills(
        self,
        request: broker_pb.ListFillsRequest,
        context: grpc.aio.ServicerContext,
    ) -> broker_pb.ListFillsResponse:
        await asyncio.sleep(self.delay)
        self.since = request.since.ToDatetime(tzinfo=UTC)
        fill = types_pb2.Fill(
            exchange_id="acc-1",
            trade_id="t9",
            symbol="BTC/USD",
            side=types_pb2.ORDER_SIDE_SELL,
            order_type=types_pb2.ORDER_TYPE_LIMIT,
            fee_currency="USD",
        )
        fill.quantity.value, fill.price.value, fill.fee.value = "0.01", "61000.5", "0.3"
        fill.trade_time.FromDatetime(CANNED_TRADE_TIME)
        return broker_pb.ListFillsResponse(fills=[fill])

    async def WatchFills(
        self,
        request: broker_pb.WatchFillsRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[broker_pb.WatchFillsResponse]:
        yield broker_pb.WatchFillsResponse(
            event=broker_pb.WatchEvent(state=broker_pb.WATCH_STATE_CONNECTED, detail="subscribed")
        )
        fill = types_pb2.Fill(
            exchange_id=request.exchange_id,
            trade_id="w1",
            symbol="ETH/USD",
            side=types_pb2.ORDER_SIDE_BUY,
        )
        fill.quantity.value, fill.price.value = "1.5", "3000"
        fill.trade_time.FromDatetime(CANNED_TRADE_TIME)
        yield broker_pb.WatchFillsResponse(fill=fill)
        # An unknown state on purpose.
        yield broker_pb.WatchFillsResponse(event=broker_pb.WatchEvent(state=99))
        yield broker_pb.WatchFillsResponse(
            event=broker_pb.WatchEvent(
                state=broker_pb.WATCH_STATE_GAP_SUSPECTED, detail="sequence jumped"
            )
        )
        if self.watch_error is not None:
            raise self.watch_error
        if self.watch_forever:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.watch_cancelled.set()
                raise

    async def GetPortfolio(
        self,
        request: broker_pb.GetPortfolioRequest,
        context: grpc.aio.ServicerContext,
    ) -> broker_pb.GetPortfolioResponse:
        raise errors.Unavailable("venue down", retry_after=1.5, reason="EXCHANGE_UNAVAILABLE")


# ---------------------------------------------------------------------- the sync service's port

_END = object()


class FakeBrokerPort:
    """The sync service's ``BrokerPort``, in process: scripted accounts, fills, portfolios,
    failures and fill watches.

    ``trade`` records a fill at the venue (its REST history) and pushes it to the open watches
    of the account unless the venue stream is down or the fill is dropped (``drop_rate``, or
    ``drop_all``): a dropped fill is only found by a backfill.
    """

    def __init__(self) -> None:
        self.accounts: dict[str, tuple[str, str]] = {}
        self.fills: dict[str, list[LeaderFill]] = {}
        self.orders: dict[str, list[LeaderOrder]] = {}
        self.totals: dict[str, dict[str, Decimal]] = {}
        self.equity: dict[str, Decimal] = {}
        self.truth_positions: dict[str, Decimal] = {}
        # A derivatives account's leverage setting by symbol (GetPortfolio's leverages).
        self.leverages: dict[str, dict[str, Decimal]] = {}
        self.fail_list_fills = 0
        self.list_calls: list[tuple[str, datetime]] = []
        self.list_times: list[float] = []
        self.portfolio_calls = 0
        self.list_delay = 0.0
        self.portfolio_delay = 0.0
        self.list_hook: Callable[[list[LeaderFill]], Awaitable[None]] | None = None
        self.watch_calls = 0
        self.watch_down = False
        self.watch_unimplemented = False
        self.watch_hangs = False
        self.drop_rate = 0.0
        self.drop_all = False
        self.dropped: list[LeaderFill] = []
        self.venue_stream_up: dict[str, bool] = {}
        self._random = random.Random(20260401)
        self._watchers: dict[str, list[asyncio.Queue[object]]] = {}
        self._trade_number = 0

    def add_account(
        self,
        user_id: str,
        exchange_name: str = "binance",
        totals: dict[str, str] | None = None,
        equity: str = "10000",
    ) -> str:
        exchange_id = str(uuid.uuid4())
        self.accounts[exchange_id] = (exchange_name, user_id)
        self.fills[exchange_id] = []
        self.totals[exchange_id] = {k: Decimal(v) for k, v in (totals or {"USDT": "10000"}).items()}
        self.equity[exchange_id] = Decimal(equity)
        return exchange_id

    def trade(
        self,
        exchange_id: str,
        side: str,
        quantity: str,
        price: str = "50000",
        symbol: str = "BTC/USDT",
        at: datetime | None = None,
        trade_id: str | None = None,
        fee: str | None = None,
        fee_currency: str = "",
        order_type: OrderType | None = OrderType.MARKET,
    ) -> LeaderFill:
        """Record a leader fill and move the account's totals as the venue would."""
        self._trade_number += 1
        fill = LeaderFill(
            trade_id=trade_id or f"t{self._trade_number}",
            symbol=symbol,
            side=Side(side),
            quantity=Decimal(quantity),
            price=Decimal(price),
            fee=Decimal(fee) if fee else None,
            fee_currency=fee_currency,
            order_type=order_type,
            trade_time=at or datetime.now(UTC),
        )
        self.fills[exchange_id].append(fill)
        totals = self.totals[exchange_id]
        base = base_asset(symbol)
        self.truth_positions[fill.trade_id] = totals.get(base, Decimal(0))
        totals[base] = totals.get(base, Decimal(0)) + base_delta(fill)
        quote = symbol.split("/")[1]
        notional = fill.quantity * fill.price
        totals[quote] = totals.get(quote, Decimal(0)) + (-notional if side == "buy" else notional)
        if fee and fee_currency == quote:
            totals[quote] -= Decimal(fee)
        self._stream(exchange_id, fill)
        return fill

    def _stream(self, exchange_id: str, fill: LeaderFill) -> None:
        if not self._watchers.get(exchange_id) or not self.venue_stream_up.get(exchange_id, True):
            self.dropped.append(fill)
            return
        if self.drop_all or (self.drop_rate and self._random.random() < self.drop_rate):
            self.dropped.append(fill)
            return
        self.push(exchange_id, fill)

    def deposit(self, exchange_id: str, asset: str, amount: str, value: str) -> None:
        """Move funds into (or, negative, out of) the account: no fill, no trade."""
        totals = self.totals[exchange_id]
        totals[asset] = totals.get(asset, Decimal(0)) + Decimal(amount)
        self.equity[exchange_id] += Decimal(value)

    # Watch scripting.

    def watching(self, exchange_id: str) -> bool:
        """Return whether a watch of the account is open."""
        return bool(self._watchers.get(exchange_id))

    def push(self, exchange_id: str, item: WatchItem) -> None:
        """Send a fill or an event on every open watch of the account."""
        for queue in self._watchers.get(exchange_id, []):
            queue.put_nowait(item)

    def venue_disconnect(self, exchange_id: str, detail: str = "listenKey expired") -> None:
        """The venue stream drops: DISCONNECTED, and fills stop flowing until reconnected."""
        self.venue_stream_up[exchange_id] = False
        self.push(exchange_id, WatchEvent(WatchState.DISCONNECTED, detail))

    def venue_reconnect(self, exchange_id: str) -> None:
        """The venue stream is back: CONNECTED (events may have been missed before it)."""
        self.venue_stream_up[exchange_id] = True
        self.push(exchange_id, WatchEvent(WatchState.CONNECTED, "resubscribed"))

    def end_watches(self, exchange_id: str, error: BaseException | None = None) -> None:
        """End the open watches of the account, with ``error`` or cleanly.

        Fills traded from now on are lost to them (as on a closed socket).
        """
        for queue in self._watchers.pop(exchange_id, []):
            queue.put_nowait(error if error is not None else _END)

    def restart(self) -> None:
        """The broker goes down: every watch fails, new ones fail until ``watch_down`` clears."""
        self.watch_down = True
        for exchange_id in list(self._watchers):
            self.end_watches(
                exchange_id,
                errors.Unavailable("broker restarting", reason="BROKER_RESTARTING"),
            )

    async def watch_fills(self, exchange_id: str) -> AsyncIterator[WatchItem]:
        self.watch_calls += 1
        if self.watch_unimplemented:
            raise errors.Unimplemented("WatchFills is not implemented")
        if self.watch_down:
            raise errors.Unavailable("broker unreachable", reason="BROKER_UNREACHABLE")
        queue: asyncio.Queue[object] = asyncio.Queue()
        self._watchers.setdefault(exchange_id, []).append(queue)
        try:
            if self.watch_hangs:
                await asyncio.Event().wait()
            if self.venue_stream_up.get(exchange_id, True):
                yield WatchEvent(WatchState.CONNECTED, "subscribed")
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, LeaderFill | WatchEvent)
                yield item
        finally:
            watchers = self._watchers.get(exchange_id, [])
            if queue in watchers:
                watchers.remove(queue)

    async def get_exchange(
        self,
        exchange_id: str,
        *,
        user_id: str = "",
        timeout: float,  # noqa: ASYNC109 - the port's gRPC deadline, unused by a fake
    ) -> ExchangeAccount:
        account = self.accounts.get(exchange_id)
        if account is None or (user_id and account[1] != user_id):
            raise errors.NotFound("exchange account not found", reason="EXCHANGE_NOT_FOUND")
        return ExchangeAccount(exchange_id, account[0])

    async def list_fills(
        self,
        exchange_id: str,
        since: datetime,
        *,
        timeout: float,  # noqa: ASYNC109 - the port's gRPC deadline, unused by a fake
    ) -> list[LeaderFill]:
        self.list_calls.append((exchange_id, since))
        self.list_times.append(time.monotonic())
        if self.fail_list_fills > 0:
            self.fail_list_fills -= 1
            raise errors.Unavailable("venue unavailable", reason="EXCHANGE_UNAVAILABLE")
        if self.list_delay:
            await asyncio.sleep(self.list_delay)
        fills = [f for f in self.fills.get(exchange_id, []) if f.trade_time >= since]
        fills = sorted(fills, key=lambda f: f.trade_time)
        if self.list_hook is not None:
            await self.list_hook(fills)
        return fills

    async def list_orders(
        self,
        exchange_id: str,
        since: datetime,
        *,
        timeout: float,  # noqa: ASYNC109 - the port's gRPC deadline, unused by a fake
    ) -> list[LeaderOrder]:
        return [
            o
            for o in self.orders.get(exchange_id, [])
            if o.created_at is None or o.created_at >= since
        ]

    async def get_portfolio(
        self,
        exchange_id: str,
        *,
        timeout: float,  # noqa: ASYNC109 - the port's gRPC deadline, unused by a fake
    ) -> Portfolio:
        self.portfolio_calls += 1
        if self.portfolio_delay:
            await asyncio.sleep(self.portfolio_delay)
        totals = {k: v for k, v in self.totals[exchange_id].items() if v != 0}
        return Portfolio(
            equity=self.equity[exchange_id],
            totals=totals,
            read_time=datetime.now(UTC),
            leverages=dict(self.leverages.get(exchange_id, {})),
        )


def fill_to_proto(exchange_id: str, fill: LeaderFill) -> types_pb2.Fill:
    """Return the broker's wire form of a fill."""
    message = types_pb2.Fill(
        exchange_id=exchange_id,
        trade_id=fill.trade_id,
        symbol=fill.symbol,
        side=types_pb2.ORDER_SIDE_BUY if fill.side is Side.BUY else types_pb2.ORDER_SIDE_SELL,
        order_type=types_pb2.ORDER_TYPE_MARKET,
        fee_currency=fill.fee_currency,
    )
    set_decimal(message.quantity, fill.quantity)
    set_decimal(message.price, fill.price)
    if fill.fee is not None:
        set_decimal(message.fee, fill.fee)
    message.trade_time.FromDatetime(fill.trade_time)
    return message


_STATE_TO_PROTO = {
    WatchState.CONNECTED: broker_pb.WATCH_STATE_CONNECTED,
    WatchState.DISCONNECTED: broker_pb.WATCH_STATE_DISCONNECTED,
    WatchState.GAP_SUSPECTED: broker_pb.WATCH_STATE_GAP_SUSPECTED,
}


class BrokerPortServicer(broker_grpc.BrokerServiceServicer):
    """The :class:`FakeBrokerPort` served over gRPC, as the real broker would serve it."""

    def __init__(self, broker: FakeBrokerPort) -> None:
        self.broker = broker

    async def GetExchange(
        self,
        request: broker_pb.GetExchangeRequest,
        context: grpc.aio.ServicerContext,
    ) -> broker_pb.GetExchangeResponse:
        user = identity.user_id_or_empty()
        account = await self.broker.get_exchange(request.exchange_id, user_id=user, timeout=5)
        return broker_pb.GetExchangeResponse(
            exchange=broker_pb.ExchangeAccount(
                exchange_id=account.exchange_id, exchange_name=account.exchange_name
            )
        )

    async def ListFills(
        self,
        request: broker_pb.ListFillsRequest,
        context: grpc.aio.ServicerContext,
    ) -> broker_pb.ListFillsResponse:
        fills = await self.broker.list_fills(
            request.exchange_id, request.since.ToDatetime(tzinfo=UTC), timeout=5
        )
        return broker_pb.ListFillsResponse(
            fills=[fill_to_proto(request.exchange_id, fill) for fill in fills]
        )

    async def GetPortfolio(
        self,
        request: broker_pb.GetPortfolioRequest,
        context: grpc.aio.ServicerContext,
    ) -> broker_pb.GetPortfolioResponse:
        portfolio = await self.broker.get_portfolio(request.exchange_id, timeout=5)
        reply = broker_pb.GetPortfolioResponse(quote_currency="USDT")
        for asset, total in portfolio.totals.items():
            balance = reply.balances.add(asset=asset)
            set_decimal(balance.total, total)
        if portfolio.equity is not None:
            set_decimal(reply.equity, portfolio.equity)
        assert portfolio.read_time is not None
        reply.read_time.FromDatetime(portfolio.read_time)
        if request.include_leverages:
            for symbol, leverage in portfolio.leverages.items():
                set_decimal(reply.leverages.add(symbol=symbol).leverage, leverage)
        return reply

    async def WatchFills(
        self,
        request: broker_pb.WatchFillsRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[broker_pb.WatchFillsResponse]:
        async for item in self.broker.watch_fills(request.exchange_id):
            if isinstance(item, LeaderFill):
                yield broker_pb.WatchFillsResponse(fill=fill_to_proto(request.exchange_id, item))
            else:
                event = broker_pb.WatchEvent(state=_STATE_TO_PROTO[item.state], detail=item.detail)
                event.event_time.FromDatetime(datetime.now(UTC))
                yield broker_pb.WatchFillsResponse(event=event)
