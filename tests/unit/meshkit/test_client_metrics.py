"""gRPC client metrics (go-grpc-middleware names) on every channel meshkit.clients opens.

A real in-process grpc.aio server answers a unary call, refuses one with NOT_FOUND and sends a
stream each way; the client's counters and histogram must say what happened, by method and code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from prometheus_client import REGISTRY

import gen.copytrade.broker.v1.broker_service_pb2  # noqa: F401 - loads the descriptor
from meshkit import clients

SERVICE = "test.metrics.v1.Echo"


def value(name: str, **labels: str) -> float:
    found = REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "condition not met within 10 s"
        await asyncio.sleep(0.01)


def _handler() -> grpc.GenericRpcHandler:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    async def missing(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        return b""

    async def count(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        for i in range(3):
            yield bytes([i])

    async def chat(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        async for request in requests:
            yield request

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Missing": grpc.unary_unary_rpc_method_handler(missing),
            "Count": grpc.unary_stream_rpc_method_handler(count),
            "Chat": grpc.stream_stream_rpc_method_handler(chat),
        },
    )


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with clients.channel(f"127.0.0.1:{port}") as opened:
        yield opened
    await server.stop(None)


async def test_a_unary_call_is_started_handled_ok_and_timed(channel: grpc.aio.Channel) -> None:
    labels = {"grpc_type": "unary", "grpc_service": SERVICE, "grpc_method": "Echo"}
    started = value("grpc_client_started_total", **labels)
    ok = value("grpc_client_handled_total", grpc_code="OK", **labels)
    timed = value("grpc_client_handling_seconds_count", **labels)

    echo = channel.unary_unary(f"/{SERVICE}/Echo")
    assert await echo(b"hi") == b"hi"

    assert value("grpc_client_started_total", **labels) == started + 1
    assert value("grpc_client_handled_total", grpc_code="OK", **labels) == ok + 1
    assert value("grpc_client_handling_seconds_count", **labels) == timed + 1


async def test_a_refused_call_is_counted_with_its_code_and_still_raises(
    channel: grpc.aio.Channel,
) -> None:
    labels = {"grpc_type": "unary", "grpc_service": SERVICE, "grpc_method": "Missing"}
    before = value("grpc_client_handled_total", grpc_code="NOT_FOUND", **labels)

    missing = channel.unary_unary(f"/{SERVICE}/Missing")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await missing(b"x")

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "no such thing"
    assert value("grpc_client_handled_total", grpc_code="NOT_FOUND", **labels) == before + 1
    assert value("grpc_client_handled_total", grpc_code="OK", **labels) == 0


async def test_streams_are_counted_when_they_end_with_their_code(
    channel: grpc.aio.Channel,
) -> None:
    server_stream = {"grpc_type": "server_stream", "grpc_service": SERVICE, "grpc_method": "Count"}
    bidi = {"grpc_type": "bidi_stream", "grpc_service": SERVICE, "grpc_method": "Chat"}
    ok_before = value("grpc_client_handled_total", grpc_code="OK", **server_stream)
    cancelled_before = value("grpc_client_handled_total", grpc_code="CANCELLED", **bidi)

    count = channel.unary_stream(f"/{SERVICE}/Count")
    assert [m async for m in count(b"")] == [b"\x00", b"\x01", b"\x02"]
    await until(lambda: value("grpc_client_handled_total", grpc_code="OK", **server_stream) > 0)
    assert value("grpc_client_handled_total", grpc_code="OK", **server_stream) == ok_before + 1
    assert value("grpc_client_handling_seconds_count", **server_stream) >= 1

    # A stream read and written (as the engine's signal stream is), then closed by the caller.
    started = value("grpc_client_started_total", **bidi)
    chat = channel.stream_stream(f"/{SERVICE}/Chat")()
    await chat.write(b"a")
    assert await chat.read() == b"a"
    assert value("grpc_client_started_total", **bidi) == started + 1
    assert value("grpc_client_handled_total", grpc_code="CANCELLED", **bidi) == cancelled_before
    chat.cancel()
    await until(
        lambda: (
            value("grpc_client_handled_total", grpc_code="CANCELLED", **bidi)
            == cancelled_before + 1
        )
    )


def test_a_channel_to_a_mesh_service_has_its_methods_ok_series_at_zero() -> None:
    service = "copytrade.broker.v1.BrokerService"

    async def open_and_close() -> None:
        await clients.channel("127.0.0.1:1", service=service).close()

    asyncio.run(open_and_close())
    for method, kind in (("PlaceOrder", "unary"), ("WatchFills", "server_stream")):
        labels = {"grpc_type": kind, "grpc_service": service, "grpc_method": method}
        assert REGISTRY.get_sample_value("grpc_client_started_total", labels) is not None
        assert (
            REGISTRY.get_sample_value("grpc_client_handled_total", {"grpc_code": "OK", **labels})
            is not None
        )
