"""A channel over a list of replicas reaches a live one, over mutual TLS, when one stops."""

from __future__ import annotations

import contextlib

from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from meshkit import clients
from meshkit.server import Registration
from meshkit.testing import inprocess_server, tls_for


def test_one_address_is_its_own_target_and_a_list_is_balanced() -> None:
    assert clients.target_of("sync:50053") == ("sync:50053", [])
    target, options = clients.target_of("127.0.0.1:1, 127.0.0.1:2")
    assert target == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert ("grpc.lb_policy_name", "round_robin") in options
    assert ("grpc.default_authority", "127.0.0.1") in options


async def _check(stub: health_pb2_grpc.HealthStub) -> int:
    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5, wait_for_ready=True)
    return int(reply.status)


async def test_calls_go_on_through_the_live_replica_when_one_stops() -> None:
    registrations = [
        Registration(health_pb2_grpc.add_HealthServicer_to_server, health.aio.HealthServicer(), "")
    ]
    async with contextlib.AsyncExitStack() as stack:
        first, _ = await stack.enter_async_context(inprocess_server(registrations))
        second, _ = await stack.enter_async_context(inprocess_server(registrations))
        channel = clients.channel(
            f"127.0.0.1:{first.port},127.0.0.1:{second.port}", tls=tls_for("engine")
        )
        stack.push_async_callback(channel.close)
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(4):
            assert await _check(stub) == health_pb2.HealthCheckResponse.SERVING
        await first.server.stop(grace=None)
        for _ in range(10):
            assert await _check(stub) == health_pb2.HealthCheckResponse.SERVING
