"""A futures leader's first entry from flat carries its leverage: sync reads every market's
leverage setting with the portfolio (a flat market has no position to report one), so the
engine can size a copy on margin (issue #18)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sync_helpers import as_user

from copytrade.broker.v1 import broker_service_pb2_grpc as broker_grpc
from copytrade.sync.v1 import sync_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2_grpc as pb_grpc
from meshkit.server import Registration
from meshkit.testing import eventually, inprocess_server, tls_for
from sync_svc.adapters.broker_client import GrpcBroker
from tests.fakes.broker import BrokerPortServicer, FakeBrokerPort

PERP = "BTC/USDT:USDT"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_first_entry_from_flat_carries_the_leaders_leverage(
    stub: pb_grpc.SyncServiceStub,
    broker: FakeBrokerPort,
) -> None:
    exchange_id = broker.add_account("alice", "binanceusdm", totals={"USDT": "10000"})
    broker.leverages[exchange_id] = {PERP: Decimal(10), "ETH/USDT:USDT": Decimal(20)}
    await stub.WatchExchangeSource(
        pb.WatchExchangeSourceRequest(
            exchange_id=exchange_id,
            sync_settings=pb.SyncSettings(sync_interval=3600, enable_polling=False),
        ),
        metadata=as_user("alice"),
    )
    await eventually(lambda: broker.watching(exchange_id) and broker.portfolio_calls, timeout=5)
    broker.trade(exchange_id, "buy", "0.1", symbol=PERP, trade_id="open")

    async def logged() -> list[pb.Signal]:
        reply = await stub.ListSignals(pb.ListSignalsRequest(source_id=exchange_id))
        return list(reply.signals)

    (signal,) = await eventually(logged, timeout=5)
    assert signal.position_effect == pb.POSITION_EFFECT_OPEN
    assert Decimal(signal.leader_position.value) == 0  # flat before it
    assert Decimal(signal.leader_leverage.value) == 10


async def test_the_broker_client_asks_the_broker_for_every_markets_leverage(
    broker: FakeBrokerPort,
) -> None:
    exchange_id = broker.add_account("alice", "binanceusdm", totals={"USDT": "10000"})
    broker.leverages[exchange_id] = {PERP: Decimal(10)}
    registration = Registration(
        broker_grpc.add_BrokerServiceServicer_to_server,
        BrokerPortServicer(broker),
        "copytrade.broker.v1.BrokerService",
    )
    async with inprocess_server([registration], domain="broker.copytrade") as (running, _):
        client = GrpcBroker.connect(f"127.0.0.1:{running.port}", tls_for("sync"))
        try:
            portfolio = await client.get_portfolio(exchange_id, timeout=5)
        finally:
            await client.close()
    # The bridge answers leverages only when include_leverages is asked, as the broker does.
    assert portfolio.leverages == {PERP: Decimal(10)}
