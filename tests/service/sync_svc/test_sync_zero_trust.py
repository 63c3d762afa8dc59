"""Sync as ``build_server`` makes it refuses every caller the mesh did not credential: only
the engine reads the signal stream, only a strategy's owner publishes to it."""

from __future__ import annotations

import grpc
from google.type import decimal_pb2

from copytrade.sync.v1 import sync_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2_grpc as pb_grpc
from meshkit.testing import AuthorizedStub, as_user
from sync_svc.server import SyncService
from tests.service.zero_trust import TRANSPORT_REFUSALS, Probe, assert_matrix, refused_code

ALICE = "0b9f3f6e-1111-4c1e-9b0a-0000000000a1"


async def test_publishing_is_the_owners_through_the_gateway_and_the_log_is_the_engines(
    service: SyncService,
    stub: AuthorizedStub,
) -> None:
    address = f"127.0.0.1:{service.running.port}"
    created = await stub.CreateBacktest(
        pb.CreateBacktestRequest(name="s1"), metadata=as_user(ALICE)
    )
    backtest_id = created.backtest_id
    publish = pb.PublishSignalsRequest(
        backtest_id=backtest_id,
        signals=[
            pb.PublishedSignal(
                signal_id="sig-1",
                symbol="BTC/USDT",
                side="buy",
                quantity=decimal_pb2.Decimal(value="0.5"),
                order_type="market",
            )
        ],
    )

    async def nothing_published() -> None:
        listed = await stub.ListSignals(pb.ListSignalsRequest(source_id=backtest_id))
        assert list(listed.signals) == []

    await assert_matrix(
        address,
        user_probe=Probe(pb_grpc.SyncServiceStub, "PublishSignals", publish),
        user_caller="gateway",
        denied_callers=("broker", "engine", "recon", "operator"),
        user_id=ALICE,
        unchanged=nothing_published,
    )
    # The signal log: read by the engine and recon only.
    probe = Probe(
        pb_grpc.SyncServiceStub, "ListSignals", pb.ListSignalsRequest(source_id=backtest_id)
    )
    for how in TRANSPORT_REFUSALS:
        assert await refused_code(address, probe, how, "engine") == grpc.StatusCode.UNAVAILABLE, how
    for identity in ("gateway", "broker", "operator"):
        assert (
            await refused_code(address, probe, "mesh", identity)
            == grpc.StatusCode.PERMISSION_DENIED
        )
