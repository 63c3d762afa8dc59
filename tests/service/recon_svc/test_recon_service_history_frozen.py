"""The reconciliation history with a frozen engine, through the gateway's channel.

The gateway's channel retries read-only methods on UNAVAILABLE; recon's answer after its time
budget must not be retried (the engine stayed frozen: each retry waited the budget again, and
four of them passed the gateway's deadline, a 504 after 15 s). Stored reports need no engine.
"""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from recon_fakes import T0, USER, Mesh

from copytrade.recon.v1 import recon_service_pb2 as pb
from copytrade.recon.v1 import recon_service_pb2_grpc as pb_grpc
from meshkit import clients, errors
from meshkit.codec import timestamp_to_proto
from meshkit.testing import as_user, tls_for
from recon_svc.access import SERVICE

BUDGET = 0.3


def _gateway_stub(mesh: Mesh) -> tuple[grpc.aio.Channel, pb_grpc.ReconServiceStub]:
    # The channel the gateway opens: GET routes' methods retried on UNAVAILABLE.
    channel = clients.channel(
        mesh.stub.address,
        tls=tls_for("gateway"),
        service=SERVICE,
        read_methods=["ListReconciliations"],
    )
    return channel, pb_grpc.ReconServiceStub(channel)


@pytest.mark.parametrize("world", [BUDGET], ids=["short-budget"], indirect=True)
async def test_history_with_a_frozen_engine_is_answered_once_not_retried(mesh: Mesh) -> None:
    mesh.world.engine_frozen = True
    channel, stub = _gateway_stub(mesh)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListReconciliations(
                pb.ListReconciliationsRequest(config_id=mesh.world.config_id),
                metadata=as_user(USER),
                timeout=30,
            )
    finally:
        await channel.close()
    error = clients.translate(caught.value)
    assert isinstance(error, errors.Unavailable)
    assert "no answer within the time budget" in error.message
    assert not error.retryable
    assert mesh.world.calls.count("ListConfigs") == 1


@pytest.mark.parametrize("world", [BUDGET], ids=["short-budget"], indirect=True)
async def test_stored_reports_are_listed_while_the_engine_is_frozen(mesh: Mesh) -> None:
    mesh.world.add_signal(1, T0 - timedelta(minutes=30))
    request = pb.ReconcileRequest(
        config_id=mesh.world.config_id, start_time=timestamp_to_proto(T0 - timedelta(hours=1))
    )
    made = (await mesh.stub.Reconcile(request, metadata=as_user(USER), timeout=10)).report
    mesh.world.engine_frozen = True
    asked = mesh.world.calls.count("ListConfigs")
    channel, stub = _gateway_stub(mesh)
    try:
        reply = await stub.ListReconciliations(
            pb.ListReconciliationsRequest(config_id=mesh.world.config_id),
            metadata=as_user(USER),
            timeout=30,
        )
    finally:
        await channel.close()
    assert [r.reconciliation_id for r in reply.reports] == [made.reconciliation_id]
    assert mesh.world.calls.count("ListConfigs") == asked
