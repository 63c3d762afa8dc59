"""A report made as it streams: accounts judged a few at a time, items stored in batches, a
large report answered with its counts and its items paged, in the same order as a small one's."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import grpc
import pytest
from recon_fakes import OTHER_USER, T0, USER, Mesh

from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.recon.v1 import recon_service_pb2 as pb
from meshkit.codec import timestamp_to_proto
from meshkit.testing import as_user
from recon_svc import use_cases

TIMEOUT = 10


def _script(mesh: Mesh) -> None:
    # Four leader trades; both followers copied them, one copy is missing at the second.
    for sequence, minutes in ((1, 90), (2, 60), (3, 30), (4, 15)):
        mesh.world.add_signal(sequence, T0 - timedelta(minutes=minutes))
    a, b = mesh.world.accounts
    for sequence in (1, 2, 3, 4):
        mesh.world.add_intent(sequence, a)
    for sequence in (1, 2, 4):
        mesh.world.add_intent(sequence, b)
    mesh.world.add_intent(3, b, engine_pb.INTENT_STATE_SKIPPED, filled="0", reason="paused")


async def _reconcile(mesh: Mesh) -> pb.Reconciliation:
    request = pb.ReconcileRequest(
        config_id=mesh.world.config_id,
        start_time=timestamp_to_proto(T0 - timedelta(hours=2)),
    )
    return (await mesh.stub.Reconcile(request, metadata=as_user(USER), timeout=TIMEOUT)).report


async def _pages(mesh: Mesh, reconciliation_id: str, size: int) -> list[pb.ReconciliationItem]:
    items: list[pb.ReconciliationItem] = []
    token = ""
    while True:
        page = await mesh.stub.ListReconciliationItems(
            pb.ListReconciliationItemsRequest(
                reconciliation_id=reconciliation_id, page_size=size, page_token=token
            ),
            metadata=as_user(USER),
            timeout=TIMEOUT,
        )
        assert len(page.items) <= size
        items += page.items
        token = page.next_page_token
        if not token:
            return items


async def test_a_large_report_is_stored_in_batches_and_paged_in_the_order_of_a_small_one(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    _script(mesh)
    whole = await _reconcile(mesh)
    assert not whole.items_paged
    assert whole.total_count == len(whole.items) == 10  # 4 trades x 2 accounts, 2 positions

    # One account at a time (the second judged after the first), batches of 3 items, and a
    # reply that carries at most 4 items.
    monkeypatch.setattr(use_cases, "ACCOUNTS_AT_ONCE", 1)
    monkeypatch.setattr(use_cases, "ITEM_BATCH", 3)
    monkeypatch.setattr(use_cases, "ITEMS_IN_REPLY", 4)
    streamed = await _reconcile(mesh)

    assert streamed.items_paged
    assert list(streamed.items) == []
    counts = ("total_count", "matched_count", "mismatched_count", "missing_count")
    assert [getattr(streamed, c) for c in counts] == [getattr(whole, c) for c in counts]
    paged = await _pages(mesh, streamed.reconciliation_id, 3)
    assert paged == list(whole.items)
    assert [(i.sequence, i.target_exchange_id) for i in paged if i.kind == "copy"] == sorted(
        (i.sequence, i.target_exchange_id) for i in whole.items if i.kind == "copy"
    )
    listed = await mesh.stub.ListReconciliations(
        pb.ListReconciliationsRequest(config_id=mesh.world.config_id),
        metadata=as_user(USER),
        timeout=TIMEOUT,
    )
    assert {r.reconciliation_id for r in listed.reports} == {
        streamed.reconciliation_id,
        whole.reconciliation_id,
    }


async def test_a_reports_items_are_the_owners_and_a_bad_token_is_named(mesh: Mesh) -> None:
    _script(mesh)
    report = await _reconcile(mesh)

    with pytest.raises(grpc.aio.AioRpcError) as theirs:
        await mesh.stub.ListReconciliationItems(
            pb.ListReconciliationItemsRequest(reconciliation_id=report.reconciliation_id),
            metadata=as_user(OTHER_USER),
            timeout=TIMEOUT,
        )
    assert theirs.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await mesh.stub.ListReconciliationItems(
            pb.ListReconciliationItemsRequest(
                reconciliation_id=report.reconciliation_id, page_token="nope"
            ),
            metadata=as_user(USER),
            timeout=TIMEOUT,
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (bad.value.details() or "")


async def test_a_report_being_made_is_not_listed(mesh: Mesh) -> None:
    _script(mesh)
    report = await _reconcile(mesh)
    stored = await mesh.store.get_report(report.reconciliation_id, with_items=False)
    assert stored is not None
    unfinished = replace(stored, reconciliation_id="0d6f5c2e-3f7e-4b8e-9a51-0c2b1f3e4a5d")
    await mesh.store.start_report(unfinished)

    listed = await mesh.store.list_reports(mesh.world.config_id, USER, 10)
    assert [r.reconciliation_id for r in listed] == [report.reconciliation_id]
    await mesh.store.finish_report(unfinished)
    listed = await mesh.store.list_reports(mesh.world.config_id, USER, 10)
    assert {r.reconciliation_id for r in listed} == {
        report.reconciliation_id,
        unfinished.reconciliation_id,
    }


@pytest.mark.parametrize("world", [0.3], ids=["short-budget"], indirect=True)
async def test_an_account_not_read_before_the_budget_ran_out_is_named_not_the_engine(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One account at a time and a frozen broker: the first account's venue takes the whole
    # budget; the second's copies are never asked for. Its items say so; no read item blames
    # the engine, which answered everything it was asked.
    monkeypatch.setattr(use_cases, "ACCOUNTS_AT_ONCE", 1)
    _script(mesh)
    mesh.world.broker_frozen = True

    report = await _reconcile(mesh)

    first, second = sorted(mesh.world.accounts)
    assert not [i for i in report.items if i.kind == "read"]
    copies = [i for i in report.items if i.kind == "copy"]
    assert [(i.sequence, i.target_exchange_id) for i in copies] == [
        (sequence, account) for sequence in (1, 2, 3, 4) for account in (first, second)
    ]
    assert {i.detail for i in copies if i.target_exchange_id == first} == {
        "the venue could not be read: no answer from the broker within the time budget of 0.3s"
    }
    assert {i.detail for i in copies if i.target_exchange_id == second} == {
        "the copies at this account could not be read: not asked: the time budget of 0.3s ran out"
    }
    # The first account's position could not be measured; the second's symbols are unknown.
    assert [(i.kind, i.target_exchange_id) for i in report.items if i.kind != "copy"] == [
        ("position", first)
    ]
    assert report.error_count == report.total_count == 9
