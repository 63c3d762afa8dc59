"""Recon as ``build_server`` makes it refuses every caller the mesh did not credential: a
configuration is reconciled only for its owner, through the gateway."""

from __future__ import annotations

from datetime import timedelta

from recon_fakes import T0, USER, Mesh

from copytrade.recon.v1 import recon_service_pb2 as pb
from copytrade.recon.v1 import recon_service_pb2_grpc as pb_grpc
from meshkit.codec import timestamp_to_proto
from meshkit.testing import as_user
from tests.service.zero_trust import Probe, assert_matrix


async def test_reconciliation_runs_only_for_the_owner_through_the_gateway(mesh: Mesh) -> None:
    request = pb.ReconcileRequest(
        config_id=mesh.world.config_id,
        start_time=timestamp_to_proto(T0 - timedelta(hours=1)),
    )

    async def no_report() -> None:
        history = await mesh.stub.ListReconciliations(
            pb.ListReconciliationsRequest(config_id=mesh.world.config_id), metadata=as_user(USER)
        )
        assert list(history.reports) == []

    await assert_matrix(
        mesh.stub.address,
        user_probe=Probe(pb_grpc.ReconServiceStub, "Reconcile", request),
        user_caller="gateway",
        denied_callers=("broker", "engine", "sync", "operator"),
        user_id=USER,
        unchanged=no_report,
    )
