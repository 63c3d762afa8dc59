"""Fakes and helpers shared by the sync service tests."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.broker.v1 import broker_service_pb2_grpc as broker_grpc
from copytrade.common.v1 import types_pb2
from copytrade.sync.v1 import sync_service_pb2 as pb
from meshkit import errors, identity
from meshkit.codec import set_decimal
from meshkit.testing import as_user as signed_user
from sync_svc.domain.model import (
    ExchangeAccount,
    LeaderFill,
    OrderType,
    Portfolio,
    Side,
    WatchEvent,
    WatchItem,
    WatchState,
)
from sync_svc.domain.positions import base_asset, base_delta
from sync_svc.exchange_sync import SyncTiming

_END = object()


class FakeBroker:
    """A broker with scripted accounts, fills, portfolios, failures and fill watches.

    ``trade`` records a fill at the venue (its REST history) and pushes it to the open watches
    of the account unless the venue stream is down or the fill is dropped (``drop_rate``, or
    ``drop_all``): a dropped fill is only found by a backfill.
    """

    def __init__(self) -> None:
        self.accounts: dict[str, tuple[str, str]] = {}
        self.fills: dict[str, list[LeaderFill]] = {}
        self.totals: dict[str, dict[str, Decimal]] = {}
        self.equity: dict[str, Decimal] = {}
        self.truth_positions: dict[str, Decimal] = {}
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
        self, exchange_id: str, *, user_id: str = "", timeout: float
    ) -> ExchangeAccount:
        account = self.accounts.get(exchange_id)
        if account is None or (user_id and account[1] != user_id):
            raise errors.NotFound("exchange account not found", reason="EXCHANGE_NOT_FOUND")
        return ExchangeAccount(exchange_id, account[0])

    async def list_fills(
        self, exchange_id: str, since: datetime, *, timeout: float
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

    async def get_portfolio(self, exchange_id: str, *, timeout: float) -> Portfolio:
        self.portfolio_calls += 1
        if self.portfolio_delay:
            await asyncio.sleep(self.portfolio_delay)
        totals = {k: v for k, v in self.totals[exchange_id].items() if v != 0}
        return Portfolio(
            equity=self.equity[exchange_id], totals=totals, read_time=datetime.now(UTC)
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


class FakeBrokerServicer(broker_grpc.BrokerServiceServicer):
    """The :class:`FakeBroker` served over gRPC, as the real broker would serve it."""

    def __init__(self, broker: FakeBroker) -> None:
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


class StepClock:
    """A clock that follows real time but can be pinned for a test."""

    def __init__(self) -> None:
        self.pinned: datetime | None = None

    def now(self) -> datetime:
        return self.pinned or datetime.now(UTC)


FAST = SyncTiming(
    retry_base_seconds=0.01,
    retry_max_seconds=0.05,
    equity_refresh_seconds=3600,
    equity_min_gap_seconds=0.05,
    error_pause_seconds=0.05,
    stream_silence_seconds=3600,
    stream_cooldown_seconds=0.2,
    balance_grace_seconds=0.1,
)


def as_user(user_id: str) -> tuple[tuple[str, str], ...]:
    """Return call metadata naming the authenticated user, as the gateway sets it."""
    return signed_user(user_id)


def published(
    signal_id: str,
    side: str = "buy",
    quantity: str = "0.5",
    symbol: str = "BTC/USDT",
    order_type: str = "market",
    **extra: str,
) -> pb.PublishedSignal:
    """Build a published strategy trade."""
    message = pb.PublishedSignal(
        signal_id=signal_id, symbol=symbol, side=side, order_type=order_type
    )
    message.quantity.value = quantity
    for name in ("price", "portfolio_fraction"):
        if name in extra:
            getattr(message, name).value = extra[name]
    if "time_in_force" in extra:
        message.time_in_force = extra["time_in_force"]
    return message


async def read_signals(
    call: grpc.aio.StreamStreamCall, count: int, timeout: float = 5.0
) -> list[pb.Signal]:
    """Read ``count`` signals from a stream, skipping heartbeats."""
    signals: list[pb.Signal] = []

    async def _read() -> None:
        while len(signals) < count:
            response = await call.read()
            assert response is not grpc.aio.EOF, "stream ended early"
            if response.WhichOneof("message") == "signal":
                signals.append(response.signal)

    await asyncio.wait_for(_read(), timeout)
    return signals


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


class SignalConsumer:
    """An engine-like consumer of ``StreamSignals`` subscribed to one source from the start."""

    def __init__(self, call: grpc.aio.StreamStreamCall, source_id: str) -> None:
        self.call = call
        self.source_id = source_id
        self.signals: list[pb.Signal] = []
        self.heartbeats = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> SignalConsumer:
        await self.call.write(
            pb.StreamSignalsRequest(
                subscribe=pb.SubscribeSignals(source_id=self.source_id, after_sequence=0)
            )
        )
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        while True:
            response = await self.call.read()
            if response is grpc.aio.EOF:
                return
            if response.WhichOneof("message") == "signal":
                self.signals.append(response.signal)
            else:
                self.heartbeats += 1

    async def wait_heartbeat(self, timeout: float = 5.0) -> None:
        """Wait for a heartbeat: the stream has been idle, its replay is over."""
        seen = self.heartbeats
        deadline = time.monotonic() + timeout
        while self.heartbeats == seen:
            assert time.monotonic() < deadline, "no heartbeat"
            await asyncio.sleep(0.01)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[pb.Signal]:
        """Wait until ``count`` signals arrived; return them."""
        deadline = time.monotonic() + timeout
        while len(self.signals) < count:
            assert self._task is not None and not self._task.done(), "the stream ended"
            assert time.monotonic() < deadline, (
                f"{len(self.signals)} of {count} signals within {timeout}s"
            )
            await asyncio.sleep(0.01)
        return list(self.signals)

    async def close(self) -> None:
        self.call.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
