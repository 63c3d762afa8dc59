"""Reconciling the real account through gRPC with fakes: orders by hand, drift, corrections, time.

The fakes serve the venue's orders and balances; the engine fake records the corrections it is
asked for (the engine's own CorrectPosition has its own tests).
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import grpc
import pytest
from recon_fakes import SYMBOL, T0, USER, Mesh, World

from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.recon.v1 import recon_service_pb2 as pb
from meshkit import clients, errors
from meshkit.codec import set_decimal, timestamp_to_proto
from meshkit.testing import as_user

TIMEOUT = 10
BUDGET = 0.5


async def _reconcile(mesh: Mesh, *, auto_correct: bool = False) -> pb.Reconciliation:
    request = pb.ReconcileRequest(
        config_id=mesh.world.config_id,
        start_time=timestamp_to_proto(T0 - timedelta(hours=4)),
        settings=pb.ReconcileSettings(auto_correct=auto_correct),
    )
    reply = await mesh.stub.Reconcile(request, metadata=as_user(USER), timeout=TIMEOUT)
    return reply.report


def _hand_order(world: World, account: str, filled: str) -> None:
    order = types_pb2.Order(
        exchange_id=account,
        venue_order_id="v-by-hand",
        client_order_id="web_8f2c1a",
        symbol=SYMBOL,
        side=types_pb2.ORDER_SIDE_BUY,
        type=types_pb2.ORDER_TYPE_MARKET,
        status=types_pb2.ORDER_STATUS_FILLED,
        create_time=timestamp_to_proto(T0 - timedelta(minutes=20)),
    )
    set_decimal(order.filled_quantity, Decimal(filled))
    world.broker.add_order(order)


def _script(world: World) -> None:
    """Account a: one copy filled, one cancelled at the venue by hand; 0.1 bought by hand."""
    world.add_signal(1, T0 - timedelta(minutes=60))
    world.add_signal(2, T0 - timedelta(minutes=30))
    a = world.accounts[0]
    world.add_intent(1, a)
    world.add_intent(
        2,
        a,
        engine_pb.INTENT_STATE_CANCELED,
        filled="0",
        quantity="0.25",
        reason="canceled_at_venue",
        venue_status=types_pb2.ORDER_STATUS_CANCELED,
    )
    _hand_order(world, a, "0.1")
    world.broker.accounts[a].balances["BTC"] = (Decimal("0.35"), Decimal("0.35"))


def _by_kind(report: pb.Reconciliation, kind: str) -> list[pb.ReconciliationItem]:
    return [i for i in report.items if i.kind == kind]


async def test_an_order_by_hand_is_extra_a_hand_cancel_mismatched_and_the_drift_named(
    mesh: Mesh,
) -> None:
    _script(mesh.world)
    a, _ = mesh.world.accounts

    report = await _reconcile(mesh)

    copies = {i.sequence: i for i in _by_kind(report, "copy") if i.target_exchange_id == a}
    assert copies[1].outcome == pb.ITEM_OUTCOME_MATCHED
    assert copies[2].outcome == pb.ITEM_OUTCOME_MISMATCHED
    assert "cancelled at the venue, not by the engine" in copies[2].detail
    [extra] = _by_kind(report, "order")
    assert (extra.outcome, extra.client_order_id, extra.target_exchange_id) == (
        pb.ITEM_OUTCOME_EXTRA,
        "web_8f2c1a",
        a,
    )
    assert report.extra_count == 1
    [position] = _by_kind(report, "position")
    # The copies should have bought 0.5; the venue bought 0.25 by copy and 0.1 by hand.
    assert position.outcome == pb.ITEM_OUTCOME_MISMATCHED
    assert (position.target_exchange_id, position.symbol) == (a, SYMBOL)
    assert Decimal(position.drift.value) == Decimal("-0.15")
    assert Decimal(position.venue_position.value) == Decimal("0.35")
    assert Decimal(position.expected_position.value) == Decimal("0.5")
    assert not position.correction_client_order_id
    assert mesh.world.corrections == []


async def test_auto_correct_asks_the_engine_for_the_missing_quantity_and_names_the_order(
    mesh: Mesh,
) -> None:
    _script(mesh.world)
    a, _ = mesh.world.accounts

    report = await _reconcile(mesh, auto_correct=True)

    [request] = mesh.world.corrections
    assert (request.target_exchange_id, request.symbol, request.side) == (
        a,
        SYMBOL,
        types_pb2.ORDER_SIDE_BUY,
    )
    assert Decimal(request.quantity.value) == Decimal("0.15")
    assert request.reconciliation_id == report.reconciliation_id
    [position] = _by_kind(report, "position")
    assert position.correction_client_order_id
    assert position.detail.endswith("correction buy BTC/USDT 0.15: pending")
    stored = await mesh.store.get_report(report.reconciliation_id)
    assert stored is not None
    assert [i.correction_client_order_id for i in stored.items if i.kind == "position"] == [
        position.correction_client_order_id
    ]


async def test_a_correction_the_risk_gate_skips_says_why(mesh: Mesh) -> None:
    _script(mesh.world)
    mesh.world.correction_state = engine_pb.INTENT_STATE_SKIPPED
    report = await _reconcile(mesh, auto_correct=True)
    [position] = _by_kind(report, "position")
    assert position.detail.endswith(": skipped (max_position_size)")


async def test_a_matched_position_is_not_corrected(mesh: Mesh) -> None:
    world = mesh.world
    world.add_signal(1, T0 - timedelta(minutes=60))
    world.add_intent(1, world.accounts[0])
    report = await _reconcile(mesh, auto_correct=True)
    assert [i.outcome for i in _by_kind(report, "position")] == [pb.ITEM_OUTCOME_MATCHED]
    assert world.corrections == []


@pytest.mark.parametrize("world", [BUDGET], ids=["short-budget"], indirect=True)
async def test_a_frozen_engine_gives_a_report_naming_it_within_the_budget(mesh: Mesh) -> None:
    _script(mesh.world)
    mesh.world.engine_frozen = True

    started = time.monotonic()
    report = await _reconcile(mesh, auto_correct=True)
    took = time.monotonic() - started

    [item] = report.items
    assert (item.kind, item.outcome) == ("read", pb.ITEM_OUTCOME_ERROR)
    assert item.detail == (
        "the engine (the configuration) could not be read:"
        f" no answer within the time budget of {BUDGET:g}s"
    )
    assert report.error_count == 1
    assert took < TIMEOUT  # the call's own deadline, far above the budget: it answered
    assert mesh.world.corrections == []


@pytest.mark.parametrize("world", [BUDGET], ids=["short-budget"], indirect=True)
async def test_a_venue_that_does_not_answer_makes_its_position_an_error_and_judges_the_rest(
    mesh: Mesh,
) -> None:
    _script(mesh.world)
    mesh.world.broker.portfolio_delay = 30

    report = await _reconcile(mesh, auto_correct=True)

    [position] = _by_kind(report, "position")
    assert position.outcome == pb.ITEM_OUTCOME_ERROR
    assert "balances could not be read: no answer from the broker within the time budget" in (
        position.detail
    )
    assert Decimal(position.drift.value) == Decimal("-0.15")
    assert {i.outcome for i in _by_kind(report, "order")} == {pb.ITEM_OUTCOME_EXTRA}
    assert mesh.world.corrections == []  # an unmeasured position is never corrected


@pytest.mark.parametrize("world", [BUDGET], ids=["short-budget"], indirect=True)
async def test_history_with_a_frozen_engine_is_unavailable_within_the_budget(mesh: Mesh) -> None:
    mesh.world.engine_frozen = True
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.stub.ListReconciliations(
            pb.ListReconciliationsRequest(config_id=mesh.world.config_id),
            metadata=as_user(USER),
            timeout=TIMEOUT,
        )
    error = clients.translate(caught.value)
    assert isinstance(error, errors.Unavailable)
    assert "no answer within the time budget" in error.message


async def test_fills_by_hand_of_an_order_the_listing_does_not_hold_are_extra(mesh: Mesh) -> None:
    world = mesh.world
    world.add_signal(1, T0 - timedelta(minutes=60))
    a = world.accounts[0]
    world.add_intent(1, a)
    old = types_pb2.Order(
        exchange_id=a,
        venue_order_id="v-resting-by-hand",
        symbol=SYMBOL,
        side=types_pb2.ORDER_SIDE_SELL,
        create_time=timestamp_to_proto(T0 - timedelta(minutes=10)),
    )
    set_decimal(old.filled_quantity, Decimal("0.05"))
    world.broker.trades_only[a] = [old]

    report = await _reconcile(mesh)

    [extra] = _by_kind(report, "order")
    assert extra.outcome == pb.ITEM_OUTCOME_EXTRA and "v-resting-by-hand" in extra.detail
    [position] = _by_kind(report, "position")
    assert Decimal(position.drift.value) == Decimal("-0.05")
