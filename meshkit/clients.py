"""Client channels between services, the one way to call them, and translation of their errors.

Every call goes through :func:`call`, which sets a deadline and turns a failed call into the
matching :mod:`meshkit.errors` type. Read-only methods retry on UNAVAILABLE through the
channel's service config; mutating methods are never retried here (an order whose outcome is
unknown must be looked up, not resent).

Deadlines: a read defaults to :data:`READ_TIMEOUT`, a mutating call to :data:`WRITE_TIMEOUT`.
A caller whose deadline comes from configuration, or from its own caller, passes it as
``timeout``; a call site that needs another deadline passes it with a comment saying why.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from meshkit import client_metrics, errors
from meshkit.settings import TlsSettings

_BY_CODE: dict[grpc.StatusCode, type[errors.ServiceError]] = {
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.ABORTED: errors.Aborted,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.UNIMPLEMENTED: errors.Unimplemented,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.OutcomeUnknown,
}

READ_TIMEOUT = 5.0
"""Seconds a read-only call may take by default: a peer slower than this is as good as down."""

WRITE_TIMEOUT = 20.0
"""Seconds a mutating call may take by default. It must exceed the broker's own venue timeout,
so that the broker answers "outcome unknown" itself before the caller gives up waiting."""

Metadata = Sequence[tuple[str, str]]
"""Call metadata: what :func:`meshkit.identity.forward_metadata` returns."""

TimedOut = Callable[[], errors.ServiceError]
"""What a read that ran out of time means to a caller (see :func:`call`)."""

ResponseT = TypeVar("ResponseT")

KEEPALIVE_OPTIONS = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # gRPC's default reconnect backoff grows to 120 s; a peer back after an outage is
    # found within 5 s instead.
    ("grpc.max_reconnect_backoff_ms", 5000),
)


def service_config(service: str, read_methods: Sequence[str]) -> str:
    """Return a service config that retries the read-only methods on UNAVAILABLE."""
    config = {
        "methodConfig": [
            {
                "name": [{"service": service, "method": m} for m in read_methods],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            },
        ],
    }
    return json.dumps(config)


def channel(
    address: str,
    *,
    tls: TlsSettings | None = None,
    service: str = "",
    read_methods: Sequence[str] = (),
    max_receive_bytes: int = 0,
) -> grpc.aio.Channel:
    """Open a channel to ``address`` with keepalive, retries for reads, and mTLS when configured.

    ``address`` may list several replicas, ``"127.0.0.1:50051,127.0.0.1:50061"``: the channel
    then spreads calls over the live ones (round robin) and a call or stream opened after one
    dies goes to another (:func:`target_of`). ``max_receive_bytes`` raises gRPC's 4 MB limit
    on one reply (0: the limit stays).
    """
    target, balancing = target_of(address)
    options: list[tuple[str, object]] = list(KEEPALIVE_OPTIONS) + balancing
    if max_receive_bytes:
        options.append(("grpc.max_receive_message_length", max_receive_bytes))
    if service and read_methods:
        options.append(("grpc.service_config", service_config(service, read_methods)))
        options.append(("grpc.enable_retries", 1))
    if service:
        client_metrics.preinitialize(service)
    interceptors = client_metrics.interceptors()
    if tls is not None and tls.enabled:
        with open(tls.ca, "rb") as ca, open(tls.key, "rb") as key, open(tls.cert, "rb") as cert:
            credentials = grpc.ssl_channel_credentials(ca.read(), key.read(), cert.read())
        return grpc.aio.secure_channel(
            target, credentials, options=options, interceptors=interceptors
        )
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)


def target_of(address: str) -> tuple[str, list[tuple[str, object]]]:
    """Return the gRPC target of ``address`` and the channel options it needs.

    One address is the target itself (a host name, or a Kubernetes Service). A comma-separated
    list of IP addresses (replicas started side by side) becomes one ``ipv4:`` target
    balanced round robin; its TLS authority is the first address's host, which every
    certificate of the mesh names (the services' certificates carry 127.0.0.1 and their name).
    """
    parts = [part.strip() for part in address.split(",") if part.strip()]
    if len(parts) <= 1:
        return address.strip(), []
    host = parts[0].rsplit(":", 1)[0]
    return "ipv4:" + ",".join(parts), [
        ("grpc.lb_policy_name", "round_robin"),
        ("grpc.default_authority", host),
    ]


async def call(
    method: Callable[..., Awaitable[ResponseT]],
    request: object,
    *,
    mutating: bool,
    metadata: Metadata,
    timeout: float | None = None,  # noqa: ASYNC109 - the gRPC call's deadline, not asyncio's
    timed_out: TimedOut | None = None,
) -> ResponseT:
    """Call the unary ``method`` of a stub and return its response, or raise a service error.

    ``timeout`` defaults to :data:`WRITE_TIMEOUT` when ``mutating``, else :data:`READ_TIMEOUT`.
    ``metadata`` is sent as given (the caller's :func:`meshkit.identity.forward_metadata`).
    ``timed_out`` says what a read that ran out of time means to this caller, typically
    ``Unavailable`` (a read changed nothing); without it a DEADLINE_EXCEEDED is
    ``OutcomeUnknown``, and a mutating call that timed out always is.
    """
    if mutating and timed_out is not None:
        raise ValueError("a mutating call that timed out has an unknown outcome")
    if timeout is None:
        timeout = WRITE_TIMEOUT if mutating else READ_TIMEOUT
    with translated(timed_out=timed_out):
        return await method(request, timeout=timeout, metadata=metadata)


@contextlib.contextmanager
def translated(*, timed_out: TimedOut | None = None) -> Iterator[None]:
    """Raise a failed gRPC call inside the block as the matching service error.

    For what :func:`call` cannot wrap: reads and writes of a stream. ``timed_out`` is as for
    :func:`call`.
    """
    try:
        yield
    except grpc.aio.AioRpcError as e:
        raise translate(e, timed_out=timed_out) from None


def unavailable_when_timed_out(message: str, reason: str) -> TimedOut:
    """Return a :data:`TimedOut` that makes a timed-out read ``Unavailable(message, reason)``.

    It is not retryable: this service waited its whole deadline already, and its caller's
    channel retrying the call would wait again (a frozen peer behind it turned one read into
    four, past the gateway's deadline).
    """

    def error() -> errors.ServiceError:
        return errors.Unavailable(message, reason=reason, retryable=False)

    return error


def translate(
    error: grpc.aio.AioRpcError,
    *,
    timed_out: TimedOut | None = None,
) -> errors.ServiceError:
    """Turn an upstream failure into the matching service error, keeping reason and details.

    A DEADLINE_EXCEEDED becomes ``timed_out()`` when given, else ``OutcomeUnknown``.
    """
    if timed_out is not None and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return timed_out()
    status = rpc_status.from_call(error)
    translated = _build(
        error.code(),
        error.details() or error.code().name,
        *_parts(status),
        retryable=not _no_retry(error),
    )
    translated.from_transport = status is None
    return translated


def from_status(status: status_pb2.Status) -> errors.ServiceError:
    """Turn a ``google.rpc.Status`` a service answered with inside a response into its error.

    For the answers that carry one error per item (the broker's ``GetPortfolios``): the
    same error, reason, metadata, violations and retry delay as :func:`translate` gives for a
    call that failed with that status. A service answered it, so it is never
    ``from_transport``.
    """
    code = _CODES.get(status.code, grpc.StatusCode.UNKNOWN)
    return _build(code, status.message or code.name, *_parts(status), retryable=True)


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _parts(
    status: status_pb2.Status | None,
) -> tuple[str, dict[str, str], list[errors.FieldViolation], float | None]:
    # (reason, metadata, violations, retry delay) from a status's details.
    reason = ""
    metadata: dict[str, str] = {}
    violations: list[errors.FieldViolation] = []
    retry_after: float | None = None
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = [
                    errors.FieldViolation(v.field, v.description) for v in bad.field_violations
                ]
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info_retry = error_details_pb2.RetryInfo()
                detail.Unpack(info_retry)
                retry_after = info_retry.retry_delay.seconds + info_retry.retry_delay.nanos / 1e9
    return reason, metadata, violations, retry_after


def _no_retry(error: grpc.aio.AioRpcError) -> bool:
    # The peer said not to retry (errors.NO_RETRY_METADATA): pass it on to our own caller.
    key, _ = errors.NO_RETRY_METADATA
    for item_key, value in error.trailing_metadata() or ():
        if item_key == key:
            try:
                return int(value) < 0
            except (TypeError, ValueError):
                return True
    return False


def _build(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: dict[str, str],
    violations: list[errors.FieldViolation],
    retry_after: float | None,
    *,
    retryable: bool,
) -> errors.ServiceError:
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return errors.InvalidArgument(
            violations or [errors.FieldViolation("", message)],
            reason=reason or None,
            metadata=metadata,
        )
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return errors.ResourceExhausted(
            message, retry_after=retry_after, reason=reason or None, metadata=metadata
        )
    if code == grpc.StatusCode.UNAVAILABLE:
        return errors.Unavailable(
            message,
            retry_after=retry_after,
            reason=reason or None,
            metadata=metadata,
            retryable=retryable,
        )
    cls = _BY_CODE.get(code)
    if cls is None:
        return errors.ServiceError(message, reason=reason or "UPSTREAM_ERROR", metadata=metadata)
    return cls(message, reason=reason or None, metadata=metadata)
