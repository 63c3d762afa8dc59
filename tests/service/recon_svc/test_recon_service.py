"""The reconciliation service through real gRPC, with in-process fakes of engine, sync, broker."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import grpc
import pytest
from prometheus_client import REGISTRY
from recon_fakes import OTHER_USER, T0, USER, Mesh, World

from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.recon.v1 import recon_service_pb2 as pb
from meshkit import clients, errors
from meshkit.codec import timestamp_to_proto
from meshkit.testing import as_user

TIMEOUT = 10


def _as(user: str) -> tuple[tuple[str, str], ...]:
    return as_user(user)


def _checks(outcome: str) -> float:
    return REGISTRY.get_sample_value("reconciliation_checks_total", {"outcome": outcome}) or 0.0


def _script_matched(world: World) -> None:
    """Leader trades 1 (before the config existed) to 5; both followers copy 2 to 5."""
    for sequence, minutes in ((1, 180), (2, 90), (3, 60), (4, 30), (5, 15)):
        world.add_signal(sequence, T0 - timedelta(minutes=minutes))
    a, b = world.accounts
    for sequence in (2, 3, 4, 5):
        world.add_intent(sequence, a)
    world.add_intent(2, b, filled="0.5")
    world.add_intent(3, b, engine_pb.INTENT_STATE_SKIPPED, filled="0", reason="below_min_notional")
    world.add_intent(
        4,
        b,
        engine_pb.INTENT_STATE_REJECTED,
        filled="0",
        reason="INSUFFICIENT_FUNDS",
        venue_copies=0,
    )
    world.add_intent(5, b, engine_pb.INTENT_STATE_CANCELED, filled="0.1")


async def _reconcile(
    mesh: Mesh,
    *,
    hours: int = 4,
    end: timedelta | None = None,
    user: str = USER,
) -> pb.Reconciliation:
    request = pb.ReconcileRequest(
        config_id=mesh.world.config_id,
        start_time=timestamp_to_proto(T0 - timedelta(hours=hours)),
    )
    if end is not None:
        request.end_time.CopyFrom(timestamp_to_proto(T0 + end))
    reply = await mesh.stub.Reconcile(request, metadata=_as(user), timeout=TIMEOUT)
    return reply.report


async def _error(call: object) -> errors.ServiceError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return clients.translate(caught.value)


async def test_reconcile_with_every_copy_accounted_for_stores_a_matched_report(
    mesh: Mesh,
) -> None:
    _script_matched(mesh.world)
    matched_before = _checks("matched")

    report = await _reconcile(mesh)

    a, b = sorted(mesh.world.accounts)
    copies = [i for i in report.items if i.kind == "copy"]
    assert [(i.sequence, i.target_exchange_id) for i in copies] == [
        (2, a),
        (2, b),
        (3, a),
        (3, b),
        (4, a),
        (4, b),
        (5, a),
        (5, b),
    ]
    assert all(i.outcome == pb.ITEM_OUTCOME_MATCHED for i in report.items), report.items
    # One position item per (account, symbol): the copies explain both accounts' positions.
    positions = [(i.kind, i.target_exchange_id, i.symbol) for i in report.items[8:]]
    assert positions == [("position", a, "BTC/USDT"), ("position", b, "BTC/USDT")]
    assert (report.total_count, report.matched_count) == (10, 10)
    assert report.mismatched_count + report.missing_count + report.duplicate_count == 0
    assert report.extra_count == 0
    assert report.error_count == 0
    by_key = {(i.sequence, i.target_exchange_id): i for i in report.items}
    skipped = by_key[(3, mesh.world.accounts[1])]
    assert skipped.detail == "below_min_notional" and skipped.intent_state == "skipped"
    filled = by_key[(2, mesh.world.accounts[1])]
    assert Decimal(filled.venue_filled_quantity.value) == Decimal("0.5")
    assert filled.intent_state == "filled"
    assert report.end_time.ToDatetime() == T0.replace(tzinfo=None)
    assert _checks("matched") - matched_before == 10
    venue_reads = sorted(c for c in mesh.world.calls if c.startswith("ListOrders"))
    assert venue_reads == sorted(f"ListOrders:{account}:{USER}" for account in (a, b))

    stored = await mesh.store.get_report(report.reconciliation_id)
    assert stored is not None and stored.counts.matched == 10 and len(stored.items) == 10

    listed = await mesh.stub.ListReconciliations(
        pb.ListReconciliationsRequest(config_id=mesh.world.config_id),
        metadata=_as(USER),
        timeout=TIMEOUT,
    )
    assert [r.reconciliation_id for r in listed.reports] == [report.reconciliation_id]
    assert listed.reports[0].matched_count == 10 and not listed.reports[0].items


async def test_reconcile_reports_each_kind_of_discrepancy(mesh: Mesh) -> None:
    world = mesh.world
    for sequence, minutes in ((1, 90), (2, 60), (3, 30)):
        world.add_signal(sequence, T0 - timedelta(minutes=minutes))
    a, b = world.accounts
    world.add_intent(1, a, filled="0.25", venue_filled="0.2")
    world.add_intent(1, b, filled="0.25", venue_copies=2)
    world.add_intent(2, a, engine_pb.INTENT_STATE_UNKNOWN, filled="0", venue_copies=0)
    world.add_intent(3, a)
    world.add_intent(3, b)

    report = await _reconcile(mesh)

    outcomes = {(i.sequence, i.target_exchange_id): i for i in report.items if i.kind == "copy"}
    assert outcomes[(1, a)].outcome == pb.ITEM_OUTCOME_MISMATCHED
    assert "filled_quantity: intent 0.25, venue 0.2" in outcomes[(1, a)].detail
    assert outcomes[(1, b)].outcome == pb.ITEM_OUTCOME_DUPLICATE
    assert outcomes[(2, a)].outcome == pb.ITEM_OUTCOME_ERROR
    assert "outcome not resolved yet" in outcomes[(2, a)].detail
    assert outcomes[(2, b)].outcome == pb.ITEM_OUTCOME_MISSING
    # Positions: a's has a copy not resolved yet; b's venue filled the duplicate too.
    position = {i.target_exchange_id: i for i in report.items if i.kind == "position"}
    assert position[a].outcome == pb.ITEM_OUTCOME_ERROR
    assert position[b].outcome == pb.ITEM_OUTCOME_MISMATCHED
    assert Decimal(position[b].drift.value) == Decimal("0.25")
    assert (report.total_count, report.matched_count, report.mismatched_count) == (8, 2, 2)
    assert (report.missing_count, report.duplicate_count, report.error_count) == (1, 1, 2)


async def test_reconciliations_are_listed_newest_first(mesh: Mesh) -> None:
    _script_matched(mesh.world)
    first = await _reconcile(mesh)
    mesh.world.clock.advance(60)
    second = await _reconcile(mesh, end=timedelta(minutes=-45))
    assert second.total_count == 6  # signals 2 and 3 at both accounts, and two positions

    listed = await mesh.stub.ListReconciliations(
        pb.ListReconciliationsRequest(config_id=mesh.world.config_id),
        metadata=_as(USER),
        timeout=TIMEOUT,
    )
    assert [r.reconciliation_id for r in listed.reports] == [
        second.reconciliation_id,
        first.reconciliation_id,
    ]
    one = await mesh.stub.ListReconciliations(
        pb.ListReconciliationsRequest(config_id=mesh.world.config_id, page_size=1),
        metadata=_as(USER),
        timeout=TIMEOUT,
    )
    assert [r.reconciliation_id for r in one.reports] == [second.reconciliation_id]


async def test_reconcile_of_another_users_config_returns_not_found(mesh: Mesh) -> None:
    _script_matched(mesh.world)
    error = await _error(_reconcile(mesh, user=OTHER_USER))
    assert isinstance(error, errors.NotFound)
    listing = mesh.stub.ListReconciliations(
        pb.ListReconciliationsRequest(config_id=mesh.world.config_id),
        metadata=_as(OTHER_USER),
        timeout=TIMEOUT,
    )
    assert isinstance(await _error(listing), errors.NotFound)
    assert await mesh.store.list_reports(mesh.world.config_id, OTHER_USER, 10) == []
    assert not any(call.startswith(("ListSignals", "ListOrders")) for call in mesh.world.calls)


@pytest.mark.parametrize(
    ("start_hours", "end_hours", "config_id", "field"),
    [
        (None, None, "", "start_time"),
        (-4, -5, "", "end_time"),
        (-4, -4, "", "end_time"),
        (1, None, "", "start_time"),
        (-4, None, "not-a-uuid", "config_id"),
        (-4, None, "-", "config_id"),
    ],
    ids=["no-start", "end-before-start", "empty-window", "start-in-future", "bad-id", "no-id"],
)
async def test_reconcile_with_bad_request_returns_invalid_argument_naming_the_field(
    mesh: Mesh,
    start_hours: int | None,
    end_hours: int | None,
    config_id: str,
    field: str,
) -> None:
    _script_matched(mesh.world)
    request = pb.ReconcileRequest(
        config_id={"": mesh.world.config_id, "-": ""}.get(config_id, config_id),
    )
    if start_hours is not None:
        request.start_time.CopyFrom(timestamp_to_proto(T0 + timedelta(hours=start_hours)))
    if end_hours is not None:
        request.end_time.CopyFrom(timestamp_to_proto(T0 + timedelta(hours=end_hours)))

    error = await _error(mesh.stub.Reconcile(request, metadata=_as(USER), timeout=TIMEOUT))

    assert isinstance(error, errors.InvalidArgument)
    assert [v.field for v in error.violations] == [field]
    assert await mesh.store.list_reports(mesh.world.config_id, USER, 10) == []
    assert "ListSignals" not in mesh.world.calls


async def test_list_reconciliations_with_negative_page_size_names_the_field(mesh: Mesh) -> None:
    error = await _error(
        mesh.stub.ListReconciliations(
            pb.ListReconciliationsRequest(config_id=str(uuid.uuid4()), page_size=-1),
            metadata=_as(USER),
            timeout=TIMEOUT,
        )
    )
    assert isinstance(error, errors.InvalidArgument)
    assert [v.field for v in error.violations] == ["page_size"]


async def test_reconcile_without_a_user_returns_unauthenticated(mesh: Mesh) -> None:
    request = pb.ReconcileRequest(
        config_id=mesh.world.config_id,
        start_time=timestamp_to_proto(T0 - timedelta(hours=1)),
    )
    error = await _error(mesh.stub.Reconcile(request, timeout=TIMEOUT))
    assert isinstance(error, errors.Unauthenticated)


async def test_reconcile_with_a_venue_down_stores_error_items_for_that_account(
    mesh: Mesh,
) -> None:
    _script_matched(mesh.world)
    _, b = mesh.world.accounts
    mesh.world.broken_venues.add(b)

    report = await _reconcile(mesh)

    for item in report.items:
        if item.target_exchange_id == b:
            assert item.outcome == pb.ITEM_OUTCOME_ERROR
            assert "EXCHANGE_UNAVAILABLE" in item.detail
        else:
            assert item.outcome == pb.ITEM_OUTCOME_MATCHED
    assert (report.total_count, report.matched_count, report.error_count) == (10, 5, 5)
    listed = await mesh.stub.ListReconciliations(
        pb.ListReconciliationsRequest(config_id=mesh.world.config_id),
        metadata=_as(USER),
        timeout=TIMEOUT,
    )
    assert [r.error_count for r in listed.reports] == [5]


async def test_reconcile_with_the_signal_log_down_stores_a_report_naming_it(mesh: Mesh) -> None:
    _script_matched(mesh.world)
    mesh.world.sync_down = True
    report = await _reconcile(mesh)
    [item] = report.items
    assert (item.kind, item.outcome) == ("read", pb.ITEM_OUTCOME_ERROR)
    assert item.detail.startswith("the sync service (the leader's signals) could not be read")
    assert report.error_count == 1
    [stored] = await mesh.store.list_reports(mesh.world.config_id, USER, 10)
    assert stored.counts.error == 1
