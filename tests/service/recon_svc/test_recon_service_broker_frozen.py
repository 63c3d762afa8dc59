"""Reconciling while the broker is frozen: the engine's reads still work, the broker is named.

The engine's GetCopyStatus waits for the broker's portfolios; recon once read the configuration
through it, so a frozen broker spent the whole budget there and the report blamed the engine
alone. Recon reads the configuration with ListConfigs (the engine's store only).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from recon_fakes import T0, USER, Mesh

from copytrade.recon.v1 import recon_service_pb2 as pb
from meshkit.codec import timestamp_to_proto
from meshkit.testing import as_user

BUDGET = 0.3


@pytest.mark.parametrize("world", [BUDGET], ids=["short-budget"], indirect=True)
async def test_a_frozen_broker_is_named_and_the_signals_and_copies_are_still_read(
    mesh: Mesh,
) -> None:
    world = mesh.world
    world.add_signal(1, T0 - timedelta(minutes=30))
    a, b = world.accounts
    world.add_intent(1, a)
    world.add_intent(1, b)
    world.broker_frozen = True

    request = pb.ReconcileRequest(
        config_id=world.config_id, start_time=timestamp_to_proto(T0 - timedelta(hours=1))
    )
    report = (await mesh.stub.Reconcile(request, metadata=as_user(USER), timeout=10)).report

    assert "GetCopyStatus" not in world.calls
    assert "ListCopiedOrders" in world.calls
    assert not [i for i in report.items if i.kind == "read"]
    copies = [i for i in report.items if i.kind == "copy"]
    assert {i.target_exchange_id for i in copies} == {a, b}
    for item in copies:
        assert item.outcome == pb.ITEM_OUTCOME_ERROR
        assert item.detail == (
            "the venue could not be read:"
            f" no answer from the broker within the time budget of {BUDGET:g}s"
        )
