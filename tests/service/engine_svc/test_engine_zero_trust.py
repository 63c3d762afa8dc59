"""The engine as ``build_server`` makes it refuses every caller the mesh did not credential:
a user's configuration is paused only by that user, through the gateway."""

from __future__ import annotations

from engine_fakes import USER
from engine_harness import Harness

from copytrade.engine.v1 import engine_service_pb2 as pb
from copytrade.engine.v1 import engine_service_pb2_grpc as pb_grpc
from tests.service.zero_trust import Probe, assert_matrix


async def test_a_users_configuration_is_changed_only_by_that_user_through_the_gateway(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account()
    started = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(
            source_backtest_id=harness.world.sync.add_backtest(),
            target_exchange_ids=[target.exchange_id],
        ),
    )
    assert harness.engine is not None and harness.engine.running is not None

    async def still_active() -> None:
        status = await harness.call(
            "GetCopyStatus", pb.GetCopyStatusRequest(config_id=started.config_id)
        )
        assert status.config.status == pb.COPY_STATUS_ACTIVE

    await assert_matrix(
        f"127.0.0.1:{harness.engine.running.port}",
        user_probe=Probe(
            pb_grpc.EngineServiceStub, "PauseCopy", pb.PauseCopyRequest(config_id=started.config_id)
        ),
        user_caller="gateway",
        denied_callers=("broker", "sync", "recon", "operator"),
        user_id=USER,
        unchanged=still_active,
    )
