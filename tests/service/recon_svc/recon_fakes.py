"""The reconciliation tests' world, served by an engine fake and the shared sync and broker fakes.

They serve a scripted world over real gRPC: they page (at most three rows per page, whatever
the caller asks), filter by time as the real services do, and enforce the caller's identity
where the real ones do (the engine's public RPCs, the broker's ownership check).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import grpc

from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.engine.v1 import engine_service_pb2_grpc as engine_grpc
from copytrade.recon.v1 import recon_service_pb2_grpc as recon_grpc
from copytrade.sync.v1 import sync_service_pb2 as sync_pb
from meshkit import errors
from meshkit.codec import set_decimal, timestamp_from_proto, timestamp_to_proto
from meshkit.identity import user_id_or_empty
from meshkit.server import Registration
from recon_svc.store import ReconStore
from tests.fakes.broker import FakeBrokerService
from tests.fakes.clock import FakeClock
from tests.fakes.sync import FakeSyncService

PAGE_CAP = 3
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
USER = "user-1"
OTHER_USER = "user-2"
SYMBOL = "BTC/USDT"


@dataclass
class World:
    """What the other services know: one user's configuration copying one leader."""

    clock: FakeClock = field(default_factory=lambda: FakeClock(T0))
    config_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    source_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    accounts: tuple[str, str] = field(
        default_factory=lambda: (str(uuid.uuid4()), str(uuid.uuid4())),
    )
    owner: str = USER
    config_created: datetime = T0 - timedelta(hours=2)
    intents: list[engine_pb.CopiedOrder] = field(default_factory=list)
    # Every read the fakes served, in order ("ListSignals", "ListOrders:<account>:<caller>", ...).
    calls: list[str] = field(default_factory=list)
    # While set, the engine never answers (a process frozen with SIGSTOP).
    engine_frozen: bool = False
    # While set, the broker never answers (its reads hang), and neither does the engine's
    # GetCopyStatus, which waits for the broker's portfolios.
    broker_frozen: bool = False
    # The reconciliation service's time budget in these tests.
    budget_seconds: float = 5.0
    # The CorrectPosition requests the engine received, and the state it answers with.
    corrections: list[engine_pb.CorrectPositionRequest] = field(default_factory=list)
    correction_state: engine_pb.IntentState.ValueType = engine_pb.INTENT_STATE_PENDING
    sync: FakeSyncService = field(init=False)
    broker: FakeBrokerService = field(init=False)

    def __post_init__(self) -> None:
        self.sync = FakeSyncService(calls=self.calls, page_cap=PAGE_CAP)
        self.sync.add_backtest(self.owner, source_id=self.source_id)
        self.broker = FakeBrokerService(calls=self.calls)
        for account in self.accounts:
            self.broker.add_account(self.owner, exchange_id=account)
        for name in ("ListOrders", "ListFills", "GetPortfolio"):
            setattr(self.broker, name, self._unless_broker_frozen(getattr(self.broker, name)))

    def _unless_broker_frozen(self, read: Callable[[Any, Any], Awaitable[Any]]) -> Any:
        # The broker's read, which never answers while ``broker_frozen`` is set.
        async def frozen_or(request: Any, context: Any) -> Any:
            if self.broker_frozen:
                await asyncio.Event().wait()
            return await read(request, context)

        return frozen_or

    @property
    def signals(self) -> list[sync_pb.Signal]:
        """The leader's signal log."""
        return self.sync.logs[self.source_id]

    @property
    def broken_venues(self) -> set[str]:
        """Accounts whose venue does not answer order listings."""
        return self.broker.unavailable

    @property
    def sync_down(self) -> bool:
        """Whether the signal log is unreachable."""
        return self.sync.down

    @sync_down.setter
    def sync_down(self, down: bool) -> None:
        self.sync.down = down

    def add_signal(
        self,
        sequence: int,
        event_time: datetime,
        *,
        symbol: str = SYMBOL,
        side: types_pb2.OrderSide.ValueType = types_pb2.ORDER_SIDE_BUY,
    ) -> None:
        """Log a leader trade of 1 BTC (a buy unless ``side`` says)."""
        message = sync_pb.Signal(
            source_id=self.source_id,
            sequence=sequence,
            signal_id=f"trade-{sequence}",
            symbol=symbol,
            side=side,
            event_time=timestamp_to_proto(event_time),
            log_time=timestamp_to_proto(event_time + timedelta(milliseconds=5)),
        )
        set_decimal(message.quantity, Decimal("1"))
        self.sync.append(message)

    def add_intent(
        self,
        sequence: int,
        account: str,
        state: engine_pb.IntentState.ValueType = engine_pb.INTENT_STATE_FILLED,
        *,
        filled: str = "0.25",
        reason: str = "",
        venue_filled: str | None = None,
        venue_copies: int = 1,
        quantity: str | None = None,
        venue_status: types_pb2.OrderStatus.ValueType = types_pb2.ORDER_STATUS_FILLED,
    ) -> str:
        """Record an intent and, unless skipped or ``venue_copies`` is 0, its venue orders
        (the signal's symbol and side)."""
        signal = next(s for s in self.signals if s.sequence == sequence)
        created = signal.event_time.ToDatetime(tzinfo=UTC) + timedelta(seconds=1)
        client_order_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sequence}/{account}"))
        message = engine_pb.CopiedOrder(
            intent_id=str(uuid.uuid4()),
            config_id=self.config_id,
            source_id=self.source_id,
            sequence=sequence,
            signal_id=signal.signal_id,
            target_exchange_id=account,
            client_order_id=client_order_id,
            symbol=signal.symbol,
            side=signal.side,
            type=types_pb2.ORDER_TYPE_MARKET,
            state=state,
            reason=reason,
            create_time=timestamp_to_proto(created),
        )
        set_decimal(message.filled_quantity, Decimal(filled))
        set_decimal(message.quantity, Decimal(quantity or filled))
        self.intents.append(message)
        if state != engine_pb.INTENT_STATE_SKIPPED:
            for copy in range(venue_copies):
                order = types_pb2.Order(
                    exchange_id=account,
                    venue_order_id=f"v-{sequence}-{copy}",
                    client_order_id=client_order_id,
                    symbol=signal.symbol,
                    side=signal.side,
                    type=types_pb2.ORDER_TYPE_MARKET,
                    status=venue_status,
                    create_time=timestamp_to_proto(created + timedelta(seconds=1 + copy)),
                )
                set_decimal(order.filled_quantity, Decimal(venue_filled or filled))
                self.broker.add_order(order)
        return client_order_id


class FakeEngine(engine_grpc.EngineServiceServicer):
    """Serves the world's configuration and intents to their owner only."""

    def __init__(self, world: World) -> None:
        self.world = world

    async def _unless_frozen(self) -> None:
        if self.world.engine_frozen:
            await asyncio.Event().wait()

    def _check_owner(self, config_id: str, context: grpc.aio.ServicerContext) -> None:
        if config_id != self.world.config_id or user_id_or_empty(context) != self.world.owner:
            raise errors.NotFound(f"copy configuration {config_id} not found")

    def _config(self) -> engine_pb.CopyConfig:
        return engine_pb.CopyConfig(
            config_id=self.world.config_id,
            source_exchange_id=self.world.source_id,
            target_exchange_ids=list(self.world.accounts),
            status=engine_pb.COPY_STATUS_ACTIVE,
            is_active=True,
            create_time=timestamp_to_proto(self.world.config_created),
        )

    async def GetCopyStatus(
        self,
        request: engine_pb.GetCopyStatusRequest,
        context: grpc.aio.ServicerContext,
    ) -> engine_pb.GetCopyStatusResponse:
        self.world.calls.append("GetCopyStatus")
        await self._unless_frozen()
        if self.world.broker_frozen:  # the engine's status waits for the broker's portfolios
            await asyncio.Event().wait()
        self._check_owner(request.config_id, context)
        return engine_pb.GetCopyStatusResponse(config=self._config())

    async def ListConfigs(
        self,
        request: engine_pb.ListConfigsRequest,
        context: grpc.aio.ServicerContext,
    ) -> engine_pb.ListConfigsResponse:
        self.world.calls.append("ListConfigs")
        await self._unless_frozen()
        if user_id_or_empty(context) != self.world.owner:
            return engine_pb.ListConfigsResponse()
        return engine_pb.ListConfigsResponse(configs=[self._config()])

    async def ListCopiedOrders(
        self,
        request: engine_pb.ListCopiedOrdersRequest,
        context: grpc.aio.ServicerContext,
    ) -> engine_pb.ListCopiedOrdersResponse:
        self.world.calls.append("ListCopiedOrders")
        self._check_owner(request.config_id, context)
        start = timestamp_from_proto(request.start_time, request.HasField("start_time"))
        rows = sorted(
            (
                i
                for i in self.world.intents
                if (start is None or i.create_time.ToDatetime(tzinfo=UTC) >= start)
                and (
                    not request.target_exchange_id
                    or i.target_exchange_id == request.target_exchange_id
                )
            ),
            key=lambda i: (i.create_time.ToDatetime(tzinfo=UTC), i.intent_id),
        )
        # The page token is the index of the next row (the real engine's is opaque).
        first = int(request.page_token or 0)
        limit = min(request.page_size or 500, PAGE_CAP)
        page = rows[first : first + limit]
        more = first + limit < len(rows)
        return engine_pb.ListCopiedOrdersResponse(
            orders=page, next_page_token=str(first + limit) if more else ""
        )

    async def CorrectPosition(
        self,
        request: engine_pb.CorrectPositionRequest,
        context: grpc.aio.ServicerContext,
    ) -> engine_pb.CorrectPositionResponse:
        self.world.calls.append("CorrectPosition")
        self._check_owner(request.config_id, context)
        self.world.corrections.append(request)
        key = f"{request.config_id}/{request.target_exchange_id}/{request.symbol}"
        order = engine_pb.CopiedOrder(
            intent_id=str(uuid.uuid4()),
            config_id=request.config_id,
            source_id=self.world.source_id,
            sequence=0,
            signal_id=f"correction:{request.reconciliation_id}",
            target_exchange_id=request.target_exchange_id,
            client_order_id=str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"{key}/{request.reconciliation_id}")
            ),
            symbol=request.symbol,
            side=request.side,
            quantity=request.quantity,
            state=self.world.correction_state,
            reason="max_position_size"
            if self.world.correction_state == engine_pb.INTENT_STATE_SKIPPED
            else "",
        )
        return engine_pb.CorrectPositionResponse(order=order)


def registrations(world: World) -> list[Registration]:
    """Return the three fakes, ready for ``meshkit.testing.inprocess_server``."""
    return [
        Registration(
            engine_grpc.add_EngineServiceServicer_to_server,
            FakeEngine(world),
            "copytrade.engine.v1.EngineService",
        ),
        world.sync.registration(),
        world.broker.registration(),
    ]


@dataclass
class Mesh:
    """The reconciliation service under test, its store and the world its fakes serve."""

    stub: recon_grpc.ReconServiceStub
    store: ReconStore
    world: World
