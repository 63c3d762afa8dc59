"""The reconciliation service's audit trail: each run appends an entry with the report's counts;
ListAuditEntries returns only the caller's; a refused run records nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import grpc
import pytest
from recon_fakes import OTHER_USER, T0, USER, Mesh

from copytrade.recon.v1 import recon_service_pb2 as pb
from meshkit.audit import verify_table
from meshkit.codec import timestamp_to_proto
from meshkit.testing import as_user

TIMEOUT = 10


async def _reconcile(mesh: Mesh, user: str = USER) -> pb.Reconciliation:
    request = pb.ReconcileRequest(
        config_id=mesh.world.config_id,
        start_time=timestamp_to_proto(T0 - timedelta(hours=4)),
    )
    reply = await mesh.stub.Reconcile(request, metadata=as_user(user), timeout=TIMEOUT)
    return reply.report


async def test_a_reconciliation_run_is_recorded_with_its_counts(mesh: Mesh) -> None:
    mesh.world.add_signal(1, T0 - timedelta(minutes=30))
    for account in mesh.world.accounts:
        mesh.world.add_intent(1, account)
    report = await _reconcile(mesh)

    [entry] = await mesh.store.audit.all_entries()
    assert (entry.actor, entry.owner_user_id) == (f"user:{USER}", USER)
    assert (entry.object_type, entry.object_id, entry.action) == (
        "reconciliation",
        report.reconciliation_id,
        "reconcile",
    )
    assert entry.request_id
    assert json.loads(entry.before) is None
    after = json.loads(entry.after)
    assert after["config_id"] == mesh.world.config_id
    assert (after["total_count"], after["matched_count"]) == (
        report.total_count,
        report.matched_count,
    )
    assert (await verify_table(mesh.store.database, "recon")).ok


async def test_a_refused_run_records_nothing_and_entries_are_the_callers_only(
    mesh: Mesh,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await _reconcile(mesh, user=OTHER_USER)  # not their configuration
    assert await mesh.store.audit.all_entries() == []
    await _reconcile(mesh)
    await _reconcile(mesh)
    mine = await mesh.stub.ListAuditEntries(
        pb.ListAuditEntriesRequest(page_size=1),
        metadata=as_user(USER),
        timeout=TIMEOUT,
    )
    assert [e.seq for e in mine.entries] == [2]
    theirs = await mesh.stub.ListAuditEntries(
        pb.ListAuditEntriesRequest(),
        metadata=as_user(OTHER_USER),
        timeout=TIMEOUT,
    )
    assert list(theirs.entries) == []
