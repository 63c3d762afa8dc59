"""Order mirroring at the sync service: a leader's resting orders become order signals, once.

Each backfill lists the leader's orders (fake broker) and logs what changed: an order opened,
amended in place or by cancel-replace, or cancelled. Exactly once: an order whose fill is logged
first is never announced, an announced order's fills carry ``order_mirrored``, and a repeated
listing logs nothing.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

from sync_helpers import as_user

from copytrade.common.v1 import types_pb2
from copytrade.sync.v1 import sync_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2_grpc as pb_grpc
from meshkit.vocabulary import OrderStatus, OrderType, Side, TimeInForce
from sync_svc.domain.model import LeaderFill, LeaderOrder
from sync_svc.server import SyncService
from tests.fakes.broker import FakeBrokerPort

ALICE = as_user("alice")


def _order(order_id: str, price: str = "40000", **changes: object) -> LeaderOrder:
    order = LeaderOrder(
        order_id=order_id,
        symbol="BTC/USDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        status=OrderStatus.OPEN,
        quantity=Decimal("0.1"),
        filled_quantity=Decimal(0),
        price=Decimal(price),
        stop_price=None,
        time_in_force=TimeInForce.GTC,
        created_at=datetime.now(UTC),
    )
    return dataclasses.replace(order, **changes)  # type: ignore[arg-type]  # test overrides


def _fill(order_id: str, trade_id: str) -> LeaderFill:
    return LeaderFill(
        trade_id=trade_id,
        symbol="BTC/USDT",
        side=Side.BUY,
        quantity=Decimal("0.1"),
        price=Decimal("40000"),
        fee=None,
        fee_currency="",
        order_type=OrderType.LIMIT,
        trade_time=datetime.now(UTC),
        order_id=order_id,
    )


async def _watch(stub: pb_grpc.SyncServiceStub, exchange_id: str) -> None:
    await stub.WatchExchangeSource(
        pb.WatchExchangeSourceRequest(
            exchange_id=exchange_id,
            sync_settings=pb.SyncSettings(sync_interval=3600, enable_websocket=False),
        ),
        metadata=ALICE,
    )


async def _log(stub: pb_grpc.SyncServiceStub, source_id: str) -> list[pb.Signal]:
    reply = await stub.ListSignals(pb.ListSignalsRequest(source_id=source_id))
    return list(reply.signals)


async def test_resting_orders_are_logged_once_with_cancels_amends_and_mirrored_fills(
    service: SyncService, stub: pb_grpc.SyncServiceStub, broker: FakeBrokerPort
) -> None:
    exchange_id = broker.add_account("alice")
    await _watch(stub, exchange_id)
    sync = service.exchange_sync
    first = _order("o1")
    stop = _order(
        "o2",
        type=OrderType.STOP_LIMIT,
        side=Side.SELL,
        stop_price=Decimal("39000"),
        price=Decimal("38900"),
    )
    broker.orders[exchange_id] = [first, stop, _order("o3", type=OrderType.MARKET)]
    await sync.backfill_once(exchange_id)
    await sync.backfill_once(exchange_id)  # the same listing again: nothing new
    signals = await _log(stub, exchange_id)
    assert [(s.kind, s.leader_order_id) for s in signals] == [
        (pb.SIGNAL_KIND_ORDER_OPEN, "o1"),
        (pb.SIGNAL_KIND_ORDER_OPEN, "o2"),
    ]
    opened = {s.leader_order_id: s for s in signals}
    assert opened["o2"].order_type == types_pb2.ORDER_TYPE_STOP_LIMIT
    assert opened["o2"].stop_price.value == "39000"
    assert opened["o1"].time_in_force == types_pb2.TIME_IN_FORCE_GTC

    # o1 re-priced in place, o2 cancelled and replaced by o4 (a cancel-replace), o5 filled
    # before any listing saw it (its fill is copied as a fill), o1 then fills (mirrored).
    broker.orders[exchange_id] = [
        dataclasses.replace(first, price=Decimal("41000")),
        dataclasses.replace(stop, status=OrderStatus.CANCELED),
        dataclasses.replace(stop, order_id="o4", stop_price=Decimal("39500")),
    ]
    broker.fills[exchange_id] += [_fill("o5", "t5")]
    await sync.backfill_once(exchange_id)
    broker.orders[exchange_id].append(_order("o5"))  # a late listing of the filled order
    broker.fills[exchange_id] += [_fill("o1", "t1")]
    broker.orders[exchange_id][0] = dataclasses.replace(
        first, price=Decimal("41000"), status=OrderStatus.FILLED
    )
    await sync.backfill_once(exchange_id)
    # o4 cancelled: its cancel names the amend that opened it.
    broker.orders[exchange_id][2] = dataclasses.replace(
        stop, order_id="o4", stop_price=Decimal("39500"), status=OrderStatus.CANCELED
    )
    await sync.backfill_once(exchange_id)
    await sync.backfill_once(exchange_id)

    signals = await _log(stub, exchange_id)
    by_sequence = {s.sequence: s for s in signals}
    rest = [
        (s.kind, s.leader_order_id, s.replaced_order_id, s.order_mirrored, s.opened_sequence)
        for s in signals[2:]
    ]
    assert rest == [
        (pb.SIGNAL_KIND_FILL, "o5", "", False, 0),
        (pb.SIGNAL_KIND_ORDER_AMEND, "o1", "", False, 1),
        (pb.SIGNAL_KIND_ORDER_AMEND, "o4", "o2", False, 2),
        (pb.SIGNAL_KIND_FILL, "o1", "", True, 4),  # names the signal its copies came from
        (pb.SIGNAL_KIND_ORDER_CANCEL, "o4", "", False, 5),
    ]
    assert by_sequence[4].price.value == "41000"
    assert await service.store.open_leader_orders(exchange_id) == []


async def test_amending_back_and_forth_logs_every_amend(
    service: SyncService, stub: pb_grpc.SyncServiceStub, broker: FakeBrokerPort
) -> None:
    exchange_id = broker.add_account("alice")
    await _watch(stub, exchange_id)
    first = _order("o1")
    for price in ("40000", "41000", "40000", "41000"):
        broker.orders[exchange_id] = [dataclasses.replace(first, price=Decimal(price))]
        await service.exchange_sync.backfill_once(exchange_id)
    signals = await _log(stub, exchange_id)
    assert [(s.kind, s.price.value, s.opened_sequence) for s in signals] == [
        (pb.SIGNAL_KIND_ORDER_OPEN, "40000", 0),
        (pb.SIGNAL_KIND_ORDER_AMEND, "41000", 1),
        (pb.SIGNAL_KIND_ORDER_AMEND, "40000", 2),
        (pb.SIGNAL_KIND_ORDER_AMEND, "41000", 3),
    ]
