"""Reconciling a futures follower through gRPC with fakes: the venue's open position (side, size,
entry), from the broker's GetPortfolio, against what the copies should have produced (issue
#18)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from recon_fakes import T0, USER, Mesh

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.common.v1 import types_pb2
from copytrade.recon.v1 import recon_service_pb2 as pb
from meshkit.codec import timestamp_to_proto
from meshkit.testing import as_user
from tests.fakes.broker import dec

PERP = "BTC/USDT:USDT"


async def _reconcile(mesh: Mesh) -> pb.Reconciliation:
    request = pb.ReconcileRequest(
        config_id=mesh.world.config_id, start_time=timestamp_to_proto(T0 - timedelta(hours=4))
    )
    reply = await mesh.stub.Reconcile(request, metadata=as_user(USER), timeout=10)
    return reply.report


async def test_a_short_and_its_reduce_only_close_are_matched_and_a_drift_named_by_side(
    mesh: Mesh,
) -> None:
    world = mesh.world
    a, b = world.accounts
    world.add_signal(1, T0 - timedelta(minutes=60), symbol=PERP, side=types_pb2.ORDER_SIDE_SELL)
    world.add_signal(2, T0 - timedelta(minutes=30), symbol=PERP, side=types_pb2.ORDER_SIDE_BUY)
    # Account a: short 0.3, then a reduce-only close of 0.1; the venue holds short 0.2.
    world.add_intent(1, a, filled="0.3")
    world.add_intent(2, a, filled="0.1")
    world.broker.accounts[a].positions = [
        broker_pb.Position(
            symbol=PERP, side="short", contracts=dec("0.2"), entry_price=dec("50000")
        )
    ]
    # Account b: the same copies, but the venue filled only 0.05 of the close (the engine
    # recorded 0.1): it holds short 0.25 where the copies should have left short 0.2.
    world.add_intent(1, b, filled="0.3")
    world.add_intent(2, b, filled="0.1", venue_filled="0.05")
    world.broker.accounts[b].positions = [
        broker_pb.Position(symbol=PERP, side="short", contracts=dec("0.25"))
    ]

    report = await _reconcile(mesh)

    items = {i.target_exchange_id: i for i in report.items if i.kind == "position"}
    held = items[a]
    assert (held.outcome, held.symbol) == (pb.ITEM_OUTCOME_MATCHED, PERP)
    assert (held.venue_side, held.expected_side) == ("short", "short")
    assert Decimal(held.venue_position.value) == Decimal("-0.2")
    assert Decimal(held.drift.value) == 0
    assert "short 0.2 entry 50000" in held.detail
    drifted = items[b]
    assert drifted.outcome == pb.ITEM_OUTCOME_MISMATCHED
    assert (drifted.venue_side, drifted.expected_side) == ("short", "short")
    assert Decimal(drifted.venue_position.value) == Decimal("-0.25")
    assert Decimal(drifted.expected_position.value) == Decimal("-0.2")
    assert Decimal(drifted.drift.value) == Decimal("-0.05")


async def test_auto_correct_leaves_a_futures_drift_to_the_user(mesh: Mesh) -> None:
    world = mesh.world
    a, _ = world.accounts
    world.add_signal(1, T0 - timedelta(minutes=60), symbol=PERP, side=types_pb2.ORDER_SIDE_BUY)
    world.add_intent(1, a, filled="0.3", venue_filled="0.2")
    world.broker.accounts[a].positions = [
        broker_pb.Position(symbol=PERP, side="long", contracts=dec("0.2"))
    ]

    request = pb.ReconcileRequest(
        config_id=world.config_id,
        start_time=timestamp_to_proto(T0 - timedelta(hours=4)),
        settings=pb.ReconcileSettings(auto_correct=True),
    )
    report = (await mesh.stub.Reconcile(request, metadata=as_user(USER), timeout=10)).report

    [item] = [i for i in report.items if i.kind == "position" and i.target_exchange_id == a]
    assert item.outcome == pb.ITEM_OUTCOME_MISMATCHED and Decimal(item.drift.value) == Decimal(
        "-0.1"
    )
    assert "not corrected: a futures position is not corrected automatically" in item.detail
    assert not item.correction_client_order_id and world.corrections == []
