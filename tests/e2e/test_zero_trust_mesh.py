"""The mesh as ``copytrade up`` runs it, probed by a local process without its credentials.

Only the stubs in gen/ and what any process on the machine could make: plaintext, TLS with
its own CA, and (for an operator's tool that holds a mesh certificate) a valid identity
that no access table lets place an order. The venue is the judge: nothing reached it.
"""

from __future__ import annotations

import ssl

import aiohttp
import grpc
import pytest
from google.type import decimal_pb2

from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.broker.v1 import broker_service_pb2_grpc as pb_grpc
from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.engine.v1 import engine_service_pb2_grpc as engine_grpc
from meshctl.api import RestClient, SimAdmin
from meshctl.demo import create_user
from meshctl.launcher import Mesh, Ports, tls_settings
from meshkit import clients, pki
from meshkit.identity import USER_HEADER

CID = "5f0c2a52-8f6b-5d7e-9a55-3c9f1d2b7e42"


async def _code(channel: grpc.aio.Channel, call) -> grpc.StatusCode:
    try:
        await call(channel)
    except grpc.aio.AioRpcError as e:
        return e.code()
    finally:
        await channel.close()
    raise AssertionError("the call succeeded")


async def test_a_local_process_without_the_mesh_credentials_gets_no_internal_call(
    mesh: Mesh,
    api: RestClient,
    binance: SimAdmin,
    tmp_path,
) -> None:
    keys = await binance.create_account({"USDT": "10000"}, can_trade=True, can_withdraw=False)
    registered = await api.call(
        "POST",
        "/exchanges",
        {"exchange_name": "binance", "api_key": keys["api_key"], "api_secret": keys["api_secret"]},
    )
    exchange_id = registered["exchange"]["exchange_id"]
    owner = registered["exchange"].get("user_id", "")
    order = pb.PlaceOrderRequest(
        exchange_id=exchange_id,
        client_order_id=CID,
        symbol="BTC/USDT",
        side=types_pb2.ORDER_SIDE_BUY,
        type=types_pb2.ORDER_TYPE_MARKET,
        quantity=decimal_pb2.Decimal(value="0.01"),
    )
    forged = ((USER_HEADER, owner or "any-user"),)
    broker = f"127.0.0.1:{mesh.ports.broker}"
    engine = f"127.0.0.1:{mesh.ports.engine}"

    def place(channel: grpc.aio.Channel):
        return pb_grpc.BrokerServiceStub(channel).PlaceOrder(order, metadata=forged, timeout=5)

    def list_accounts(channel: grpc.aio.Channel):
        return pb_grpc.BrokerServiceStub(channel).ListExchanges(
            pb.ListExchangesRequest(), metadata=forged, timeout=5
        )

    def list_configs(channel: grpc.aio.Channel):
        return engine_grpc.EngineServiceStub(channel).ListConfigs(
            engine_pb.ListConfigsRequest(), metadata=forged, timeout=5
        )

    own_ca = tmp_path / "attacker"
    pki.ensure_mesh_credentials(own_ca)
    attacker = pki.identity_files(own_ca, "engine")
    mesh_ca = (mesh.ca_file).read_bytes()
    for call, address in ((place, broker), (list_accounts, broker), (list_configs, engine)):
        assert await _code(grpc.aio.insecure_channel(address), call) == grpc.StatusCode.UNAVAILABLE
        # Its own CA, even naming itself "engine": the mesh never issued that certificate.
        foreign = grpc.ssl_channel_credentials(
            mesh_ca, attacker.key.read_bytes(), attacker.cert.read_bytes()
        )
        assert (
            await _code(grpc.aio.secure_channel(address, foreign), call)
            == grpc.StatusCode.UNAVAILABLE
        )
        # The operator's certificate is the mesh's, yet no table lets it act for a user or trade.
        operator = clients.channel(address, tls=tls_settings(mesh.data_dir, "operator"))
        assert await _code(operator, call) == grpc.StatusCode.PERMISSION_DENIED
    assert await binance.orders(keys["api_key"]) == []
    # The REST flow still works, over mTLS inside.
    listed = await api.call("GET", "/exchanges")
    assert [a["exchange_id"] for a in listed["exchanges"]] == [exchange_id]


async def test_up_with_tls_serves_https_with_the_mesh_certificate(tmp_path) -> None:
    mesh = Mesh(tmp_path / "mesh", ports=Ports.free(), https=True, venues="sim")
    mesh.start()
    try:
        await mesh.wait_ready(timeout=60)
        assert mesh.gateway_url.startswith("https://")
        token = await create_user(mesh, "alice")
        trusting = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(mesh.ca_file)))
        async with aiohttp.ClientSession(connector=trusting) as session:
            listed = await RestClient(session, mesh.gateway_url, token).call("GET", "/exchanges")
            assert listed.get("exchanges", []) == []
        async with aiohttp.ClientSession() as session:
            # Without the CA the certificate is not trusted; plain HTTP gets no answer.
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(f"{mesh.gateway_url}/healthz")
            with pytest.raises(aiohttp.ClientError):
                await session.get(f"http://127.0.0.1:{mesh.ports.gateway}/healthz")
    finally:
        mesh.stop()
