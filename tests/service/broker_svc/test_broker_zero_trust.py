"""The broker as ``build_server`` makes it refuses every caller the mesh did not credential.

The broker holds every follower's exchange keys: a process without the mesh's credentials,
or a mesh identity other than the engine, must not get an order to the venue.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import grpc
import pytest
from google.type import decimal_pb2

from broker_svc.access import RULES
from broker_svc.adapters.paper_exchange import PaperVenue, PaperVenues
from broker_svc.config import Settings
from broker_svc.domain.model import Credentials
from broker_svc.server import Dependencies, build_server
from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.broker.v1 import broker_service_pb2_grpc as pb_grpc
from copytrade.common.v1 import types_pb2
from meshkit.testing import AuthorizedStub, as_user, mesh_trust, secure_channel
from tests.fakes.clock import FakeClock
from tests.service.zero_trust import TRANSPORT_REFUSALS, Probe, assert_matrix, refused_code

ALICE = "0b9f3f6e-1111-4c1e-9b0a-000000000001"
BOB = "0b9f3f6e-2222-4c1e-9b0a-000000000002"
CID = "5f0c2a52-8f6b-5d7e-9a55-3c9f1d2b7e99"


@dataclass
class Served:
    address: str
    stub: AuthorizedStub
    venue: PaperVenue
    credentials: Credentials
    exchange_id: str


@pytest.fixture
async def served(tmp_path) -> AsyncIterator[Served]:
    clock = FakeClock()
    venue = PaperVenue("binance", clock=clock)
    venue.set_price("BTC/USDT", Decimal("50000"))
    settings = Settings(
        encryption_key=os.urandom(32),
        grpc_port=0,
        metrics_port=0,
        database_url=f"sqlite:///{tmp_path}/broker.db",
        **mesh_trust("broker"),
    )
    running, release = await build_server(
        settings, Dependencies(venues=PaperVenues(venue), clock=clock)
    )
    address = f"127.0.0.1:{running.port}"
    stub = AuthorizedStub(pb_grpc.BrokerServiceStub, address, RULES)
    try:
        credentials = venue.add_account({"USDT": "100000"})
        registered = await stub.RegisterExchange(
            pb.RegisterExchangeRequest(
                exchange_name="binance",
                api_key=credentials.api_key,
                api_secret=credentials.api_secret,
            ),
            metadata=as_user(ALICE),
        )
        yield Served(address, stub, venue, credentials, registered.exchange.exchange_id)
    finally:
        await stub.close()
        await running.stop(grace=None)
        await release()


def _market_buy(exchange_id: str) -> pb.PlaceOrderRequest:
    return pb.PlaceOrderRequest(
        exchange_id=exchange_id,
        client_order_id=CID,
        symbol="BTC/USDT",
        side=types_pb2.ORDER_SIDE_BUY,
        type=types_pb2.ORDER_TYPE_MARKET,
        quantity=decimal_pb2.Decimal(value="0.01"),
    )


async def test_no_order_reaches_the_venue_but_from_the_engine(served: Served) -> None:
    probe = Probe(pb_grpc.BrokerServiceStub, "PlaceOrder", _market_buy(served.exchange_id))
    for how in TRANSPORT_REFUSALS:
        assert (
            await refused_code(served.address, probe, how, "engine") == grpc.StatusCode.UNAVAILABLE
        ), how
    for identity in ("gateway", "sync", "recon", "operator"):
        # Not even with a valid assertion of the account's owner.
        code = await refused_code(served.address, probe, "mesh", identity, as_user(ALICE))
        assert code == grpc.StatusCode.PERMISSION_DENIED, identity
    assert served.venue.orders_of(served.credentials) == []
    # The engine places it (the copy path runs under the engine's own identity, no user).
    channel = secure_channel(served.address, "engine")
    try:
        placed = await probe.call(channel)
    finally:
        await channel.close()
    assert placed.order.client_order_id == CID
    assert len(served.venue.orders_of(served.credentials)) == 1


async def test_accounts_are_a_users_through_the_gateway_only(served: Served) -> None:
    async def still_there() -> None:
        listed = await served.stub.ListExchanges(pb.ListExchangesRequest(), metadata=as_user(ALICE))
        assert [a.exchange_id for a in listed.exchanges] == [served.exchange_id]

    await assert_matrix(
        served.address,
        user_probe=Probe(
            pb_grpc.BrokerServiceStub,
            "DeleteExchange",
            pb.DeleteExchangeRequest(exchange_id=served.exchange_id),
        ),
        user_caller="gateway",
        denied_callers=("engine", "sync", "recon", "operator"),
        user_id=ALICE,
        unchanged=still_there,
    )


async def test_get_exchange_tells_a_stranger_nothing(served: Served) -> None:
    probe = Probe(
        pb_grpc.BrokerServiceStub,
        "GetExchange",
        pb.GetExchangeRequest(exchange_id=served.exchange_id),
    )
    code = await refused_code(served.address, probe, "mesh", "gateway", as_user(BOB))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    # The engine acting for another user learns nothing of the account, not even that it exists.
    assert (
        await refused_code(served.address, probe, "mesh", "engine", as_user(BOB))
        == grpc.StatusCode.NOT_FOUND
    )
    channel = secure_channel(served.address, "engine")
    try:
        mine = await probe.call(channel, as_user(ALICE))
    finally:
        await channel.close()
    assert mine.exchange.exchange_id == served.exchange_id


async def test_the_health_port_answers_probes_without_a_certificate_and_nothing_else(
    tmp_path,
) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        health_port = spare.getsockname()[1]
    settings = Settings(
        encryption_key=os.urandom(32),
        grpc_port=0,
        metrics_port=0,
        health_port=health_port,
        database_url=f"sqlite:///{tmp_path}/broker.db",
        **mesh_trust("broker"),
    )
    running, release = await build_server(
        settings, Dependencies(venues=PaperVenues(PaperVenue("binance")))
    )
    probe = grpc.aio.insecure_channel(f"127.0.0.1:{running.health_port}")
    try:
        reply = await health_pb2_grpc.HealthStub(probe).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        # The broker's own RPCs are not on that listener, plaintext or not.
        code = await refused_code(
            f"127.0.0.1:{running.health_port}",
            Probe(pb_grpc.BrokerServiceStub, "PlaceOrder", _market_buy("x")),
            "plaintext",
        )
        assert code == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await probe.close()
        await running.stop(grace=None)
        await release()
