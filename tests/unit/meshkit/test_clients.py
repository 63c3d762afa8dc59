"""meshkit.clients.call: one deadline policy, metadata as given, failures as service errors."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from meshkit import clients, errors
from meshkit.interceptors import ServiceInterceptor

METADATA = (("x-copytrade-user-assertion", "signed"), ("x-request-id", "r1"))


def _rpc_error(
    code: grpc.StatusCode, message: str, reason: str | None = None
) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata()
    if reason is not None:  # a rich status, as a service sends it
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.ErrorInfo(reason=reason, metadata={"k": "v"}))
        status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
        trailing = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=message)


class _Method:
    """A stub method that records its call and answers or fails as told."""

    def __init__(self, failure: grpc.aio.AioRpcError | None = None) -> None:
        self.failure = failure
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, request: Any, *, timeout: float, metadata: Any) -> str:  # noqa: ASYNC109 - a stub's signature
        self.calls.append({"request": request, "timeout": timeout, "metadata": metadata})
        if self.failure is not None:
            raise self.failure
        return f"reply to {request}"


async def test_the_response_comes_back_with_timeout_and_metadata_passed() -> None:
    method = _Method()
    reply = await clients.call(method, "req", mutating=False, metadata=METADATA, timeout=1.5)
    assert reply == "reply to req"
    assert method.calls == [{"request": "req", "timeout": 1.5, "metadata": METADATA}]


@pytest.mark.parametrize(
    ("mutating", "deadline"), [(False, clients.READ_TIMEOUT), (True, clients.WRITE_TIMEOUT)]
)
async def test_without_a_timeout_reads_and_writes_take_their_defaults(
    mutating: bool, deadline: float
) -> None:
    method = _Method()
    await clients.call(method, "req", mutating=mutating, metadata=())
    assert method.calls[0]["timeout"] == deadline
    assert clients.READ_TIMEOUT < clients.WRITE_TIMEOUT


async def test_a_rich_status_becomes_the_matching_service_error() -> None:
    method = _Method(_rpc_error(grpc.StatusCode.NOT_FOUND, "no such order", "ORDER_NOT_FOUND"))
    with pytest.raises(errors.NotFound) as caught:
        await clients.call(method, "req", mutating=False, metadata=METADATA)
    assert caught.value.reason == "ORDER_NOT_FOUND"
    assert caught.value.metadata == {"k": "v"}
    assert not caught.value.from_transport
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_a_bare_transport_failure_is_marked_as_such() -> None:
    method = _Method(_rpc_error(grpc.StatusCode.UNAVAILABLE, "connection refused"))
    with pytest.raises(errors.Unavailable) as caught:
        await clients.call(method, "req", mutating=True, metadata=())
    assert caught.value.from_transport


async def test_a_timed_out_call_is_an_unknown_outcome_unless_the_reader_says_otherwise() -> None:
    timed_out = clients.unavailable_when_timed_out("the peer did not answer", "PEER_TIMEOUT")
    deadline = _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    with pytest.raises(errors.OutcomeUnknown):
        await clients.call(_Method(deadline), "req", mutating=True, metadata=())
    with pytest.raises(errors.OutcomeUnknown):
        await clients.call(_Method(deadline), "req", mutating=False, metadata=())
    with pytest.raises(errors.Unavailable) as caught:
        await clients.call(
            _Method(deadline), "req", mutating=False, metadata=(), timed_out=timed_out
        )
    assert caught.value.reason == "PEER_TIMEOUT"
    assert str(caught.value) == "the peer did not answer"
    # Only a deadline is the reader's to interpret; other failures translate as usual.
    refused = _rpc_error(grpc.StatusCode.PERMISSION_DENIED, "not yours", "NOT_OWNER")
    with pytest.raises(errors.PermissionDenied):
        await clients.call(
            _Method(refused), "req", mutating=False, metadata=(), timed_out=timed_out
        )


async def test_a_write_cannot_claim_that_its_timeout_changed_nothing() -> None:
    timed_out = clients.unavailable_when_timed_out("x", "X")
    with pytest.raises(ValueError):
        await clients.call(_Method(), "req", mutating=True, metadata=(), timed_out=timed_out)


async def test_translated_covers_stream_reads_and_writes() -> None:
    paused = _rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "paused", "CONFIG_PAUSED")
    with pytest.raises(errors.FailedPrecondition) as caught, clients.translated():
        raise paused
    assert caught.value.reason == "CONFIG_PAUSED"
    late = clients.unavailable_when_timed_out("late", "LATE")
    with pytest.raises(errors.Unavailable), clients.translated(timed_out=late):
        raise _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    with pytest.raises(KeyError), clients.translated():  # anything else passes through
        raise KeyError("x")


@pytest.mark.parametrize(("retryable", "attempts"), [(True, 4), (False, 1)])
async def test_an_unavailable_given_after_waiting_is_not_retried_by_the_callers_channel(
    retryable: bool, attempts: int
) -> None:
    # A read-only method is retried on UNAVAILABLE (up to 4 attempts); an answer given after
    # the service spent its budget waiting says not to (grpc-retry-pushback-ms -1), and the
    # caller's error carries that on.
    calls = 0

    async def frozen_upstream(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        nonlocal calls
        calls += 1
        raise errors.Unavailable("the engine did not answer in time", retryable=retryable)

    server = grpc.aio.server(interceptors=[ServiceInterceptor("test.example")])
    handler = grpc.unary_unary_rpc_method_handler(frozen_upstream)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("t.Svc", {"Read": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = clients.channel(f"127.0.0.1:{port}", service="t.Svc", read_methods=["Read"])
    try:
        with pytest.raises(errors.Unavailable) as caught:
            await clients.call(channel.unary_unary("/t.Svc/Read"), b"", mutating=False, metadata=())
    finally:
        await channel.close()
        await server.stop(grace=None)
    assert calls == attempts
    assert caught.value.retryable is retryable
    late = clients.unavailable_when_timed_out("late", "PEER_TIMEOUT")()
    assert isinstance(late, errors.Unavailable) and not late.retryable
