"""gRPC client metrics with go-grpc-middleware's names, by grpc.aio client interceptors.

:func:`meshkit.clients.channel` adds :func:`interceptors` to every channel it opens and creates
the OK series of every method of the service the channel talks to (:func:`preinitialize`), so
``rate(grpc_client_handled_total[5m])`` reads 0 before the first call, not nothing.

A unary call is counted when its answer (or error) arrives; a stream when it ends, with the code
it ended with (``CANCELLED`` when the caller closed it). The time is from the call's start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from prometheus_client import Counter, Histogram

from meshkit import metrics
from meshkit.metrics import HANDLING_BUCKETS

GRPC_CLIENT_STARTED = Counter(
    "grpc_client_started_total",
    "RPCs started by this process as a client.",
    ["grpc_type", "grpc_service", "grpc_method"],
)
GRPC_CLIENT_HANDLED = Counter(
    "grpc_client_handled_total",
    "RPCs this process made that completed, whatever their outcome.",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
GRPC_CLIENT_HANDLING = Histogram(
    "grpc_client_handling_seconds",
    "Time from a client RPC's start to its answer (a stream's: to its end).",
    ["grpc_type", "grpc_service", "grpc_method"],
    buckets=HANDLING_BUCKETS,
)

_finishing: set[asyncio.Task[None]] = set()


def preinitialize(service: str) -> None:
    """Create the OK series of every method of ``service`` (a full name such as
    ``copytrade.broker.v1.BrokerService``); a service whose descriptor is not loaded is skipped."""
    try:
        found = descriptor_pool.Default().FindServiceByName(service)
    except KeyError:
        return
    metrics.preinitialize(found, GRPC_CLIENT_STARTED, GRPC_CLIENT_HANDLED)


def interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Return the interceptors that count a channel's calls."""
    return [_UnaryUnary(), _UnaryStream(), _StreamUnary(), _StreamStream()]


def _names(details: grpc.aio.ClientCallDetails) -> tuple[str, str]:
    method = details.method
    path = method.decode() if isinstance(method, bytes) else str(method)
    service, _, name = path.lstrip("/").rpartition("/")
    return service, name


def _started(kind: str, details: grpc.aio.ClientCallDetails) -> tuple[str, str, str, float]:
    service, name = _names(details)
    GRPC_CLIENT_STARTED.labels(kind, service, name).inc()
    return kind, service, name, time.perf_counter()


def _handled(labels: tuple[str, str, str, float], code: grpc.StatusCode) -> None:
    kind, service, name, started = labels
    GRPC_CLIENT_HANDLED.labels(kind, service, name, code.name).inc()
    GRPC_CLIENT_HANDLING.labels(kind, service, name).observe(time.perf_counter() - started)


def _count_when_done(call: grpc.aio.Call, labels: tuple[str, str, str, float]) -> None:
    """Count a stream when it ends: its code is read in a task, as ``code()`` is a coroutine."""

    async def finish() -> None:
        _handled(labels, await call.code())

    def done(_: object) -> None:
        try:
            task = asyncio.get_running_loop().create_task(finish())
        except RuntimeError:  # the loop is closing: the stream's end goes uncounted
            return
        _finishing.add(task)
        task.add_done_callback(_finishing.discard)

    call.add_done_callback(done)


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        labels = _started("unary", client_call_details)
        call = await continuation(client_call_details, request)
        try:
            await call
        except grpc.aio.AioRpcError as e:
            # The caller awaits the same call and gets the same error from it.
            _handled(labels, e.code())
        except asyncio.CancelledError:
            _handled(labels, grpc.StatusCode.CANCELLED)
            raise
        else:
            _handled(labels, grpc.StatusCode.OK)
        return call


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        labels = _started("server_stream", client_call_details)
        call = await continuation(client_call_details, request)
        _count_when_done(call, labels)
        return call


class _StreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        labels = _started("client_stream", client_call_details)
        call = await continuation(client_call_details, request_iterator)
        _count_when_done(call, labels)
        return call


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        labels = _started("bidi_stream", client_call_details)
        call = await continuation(client_call_details, request_iterator)
        _count_when_done(call, labels)
        return call
