"""Client channels between services, and translation of their errors back into service errors.

Every call sets a timeout. Read-only methods retry on UNAVAILABLE through the
channel's service config; mutating methods are never retried here (an order
whose outcome is unknown must be looked up, not resent).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from meshkit import errors
from meshkit.settings import TlsSettings

_BY_CODE: dict[grpc.StatusCode, type[errors.ServiceError]] = {
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.UNIMPLEMENTED: errors.Unimplemented,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.OutcomeUnknown,
}

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
) -> grpc.aio.Channel:
    """Open a channel to ``address`` with keepalive, retries for reads, and mTLS when configured."""
    options: list[tuple[str, object]] = list(KEEPALIVE_OPTIONS)
    if service and read_methods:
        options.append(("grpc.service_config", service_config(service, read_methods)))
        options.append(("grpc.enable_retries", 1))
    if tls is not None and tls.enabled:
        with open(tls.ca, "rb") as ca, open(tls.key, "rb") as key, open(tls.cert, "rb") as cert:
            credentials = grpc.ssl_channel_credentials(ca.read(), key.read(), cert.read())
        return grpc.aio.secure_channel(address, credentials, options=options)
    return grpc.aio.insecure_channel(address, options=options)


def translate(error: grpc.aio.AioRpcError) -> errors.ServiceError:
    """Turn an upstream failure into the matching service error, keeping reason and details."""
    status = rpc_status.from_call(error)
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
    translated = _translate(error, reason, metadata, violations, retry_after)
    translated.from_transport = status is None
    return translated


def _translate(
    error: grpc.aio.AioRpcError,
    reason: str,
    metadata: dict[str, str],
    violations: list[errors.FieldViolation],
    retry_after: float | None,
) -> errors.ServiceError:
    message = error.details() or error.code().name
    code = error.code()
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
            message, retry_after=retry_after, reason=reason or None, metadata=metadata
        )
    cls = _BY_CODE.get(code)
    if cls is None:
        return errors.ServiceError(message, reason=reason or "UPSTREAM_ERROR", metadata=metadata)
    return cls(message, reason=reason or None, metadata=metadata)
