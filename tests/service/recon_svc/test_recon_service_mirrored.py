"""Reconciling copy_mode orders through gRPC with fakes: a mirrored copy cancelled by hand.

The leader rests a buy (signal 1, an order open) that its copy mirrors at the follower; the copy
is cancelled by hand at the venue; the leader's order then fills (signal 2, order_mirrored), a
fill the engine skips as order_mirrored. The follower never bought: the report must say so.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from recon_fakes import SYMBOL, T0, USER, Mesh

from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.recon.v1 import recon_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2 as sync_pb
from meshkit.codec import set_decimal, timestamp_to_proto
from meshkit.testing import as_user


def _leader_signal(mesh: Mesh, sequence: int, kind: sync_pb.SignalKind.ValueType) -> None:
    world = mesh.world
    at = T0 - timedelta(minutes=60 - 10 * sequence)
    message = sync_pb.Signal(
        source_id=world.source_id,
        sequence=sequence,
        signal_id=f"leader-order-1/{sequence}",
        symbol=SYMBOL,
        side=types_pb2.ORDER_SIDE_BUY,
        kind=kind,
        leader_order_id="leader-order-1",
        order_mirrored=kind == sync_pb.SIGNAL_KIND_FILL,
        opened_sequence=1 if kind == sync_pb.SIGNAL_KIND_FILL else 0,
        event_time=timestamp_to_proto(at),
        log_time=timestamp_to_proto(at),
    )
    set_decimal(message.quantity, Decimal("1"))
    world.sync.append(message)


async def test_a_mirrored_copy_cancelled_by_hand_is_mismatched_and_its_drift_named(
    mesh: Mesh,
) -> None:
    world = mesh.world
    a, _ = world.accounts
    _leader_signal(mesh, 1, sync_pb.SIGNAL_KIND_ORDER_OPEN)
    _leader_signal(mesh, 2, sync_pb.SIGNAL_KIND_FILL)
    mirror = world.add_intent(
        1,
        a,
        engine_pb.INTENT_STATE_CANCELED,
        filled="0",
        quantity="0.01",
        reason="canceled_at_venue",
        venue_status=types_pb2.ORDER_STATUS_CANCELED,
    )
    world.add_intent(2, a, engine_pb.INTENT_STATE_SKIPPED, filled="0", reason="order_mirrored")
    world.broker.accounts[a].balances["BTC"] = (Decimal("0"), Decimal("0"))

    request = pb.ReconcileRequest(
        config_id=world.config_id, start_time=timestamp_to_proto(T0 - timedelta(hours=4))
    )
    report = (await mesh.stub.Reconcile(request, metadata=as_user(USER), timeout=10)).report

    [fill] = [i for i in report.items if i.kind == "copy" and i.target_exchange_id == a]
    assert fill.sequence == 2
    assert fill.outcome == pb.ITEM_OUTCOME_MISMATCHED, fill.detail
    assert fill.client_order_id == mirror
    assert "should have filled 0.01, the venue filled 0" in fill.detail
    [position] = [i for i in report.items if i.kind == "position" and i.target_exchange_id == a]
    assert position.outcome == pb.ITEM_OUTCOME_MISMATCHED
    assert Decimal(position.drift.value) == Decimal("-0.01")
    assert Decimal(position.expected_position.value) == Decimal("0.01")
