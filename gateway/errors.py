"""Errors as HTTP answers: a ``google.rpc.Status`` as JSON with the HTTP code of its gRPC code.

The mapping is the one of ``google/rpc/code.proto`` (and grpc-gateway's
``HTTPStatusFromCode``). Errors the gateway raises itself carry an ``ErrorInfo`` in
the ``gateway.copytrade`` domain; a backend's rich status passes through unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import grpc
from google.protobuf import any_pb2, duration_pb2, json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from meshkit.errors import FieldViolation

DOMAIN = "gateway.copytrade"

HTTP_STATUS_BY_CODE: dict[int, int] = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
    code_pb2.UNAUTHENTICATED: 401,
}


def http_status(code: int) -> int:
    """Return the HTTP status of a ``google.rpc.Code`` number (500 for an unknown one)."""
    return HTTP_STATUS_BY_CODE.get(code, 500)


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def build_status(
    code: int,
    message: str,
    *,
    reason: str,
    metadata: Mapping[str, str] | None = None,
    violations: Sequence[FieldViolation] = (),
    retry_after: float | None = None,
    domain: str = DOMAIN,
) -> status_pb2.Status:
    """Build a status with an ``ErrorInfo`` and, when given, ``BadRequest`` and ``RetryInfo``."""
    details = [_pack(error_details_pb2.ErrorInfo(reason=reason, domain=domain, metadata=metadata))]
    if violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in violations
                    ]
                )
            )
        )
    if retry_after is not None:
        seconds = max(retry_after, 0.0)
        delay = duration_pb2.Duration(
            seconds=int(seconds),
            nanos=round((seconds - int(seconds)) * 1e9),
        )
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=code, message=message, details=details)


class HttpError(Exception):
    """An error the gateway answers itself, before or instead of calling a backend."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str,
        metadata: Mapping[str, str] | None = None,
        violations: Sequence[FieldViolation] = (),
        retry_after: float | None = None,
        http_code: int | None = None,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        # Close the connection after answering (what is left of the request is not read).
        self.close = close
        self.status = build_status(
            code,
            message,
            reason=reason,
            metadata=metadata,
            violations=violations,
            retry_after=retry_after,
        )
        self.http_code = http_code if http_code is not None else http_status(code)
        self.headers = dict(headers or {})


def invalid_argument(
    violations: Sequence[FieldViolation],
    *,
    reason: str = "INVALID_ARGUMENT",
) -> HttpError:
    """Return a 400 naming every bad field."""
    message = "; ".join(
        f"{v.field}: {v.description}" if v.field else v.description for v in violations
    )
    return HttpError(code_pb2.INVALID_ARGUMENT, message, reason=reason, violations=violations)


def status_to_json(status: status_pb2.Status) -> dict[str, object]:
    """Render a status as grpc-gateway does: ``{"code", "message", "details": [...]}``."""
    details: list[object] = []
    for detail in status.details:
        try:
            details.append(json_format.MessageToDict(detail, preserving_proto_field_name=True))
        except (TypeError, KeyError, json_format.Error):
            # A detail type this process does not know: keep its name, drop its bytes.
            details.append({"@type": detail.type_url})
    return {"code": status.code, "message": status.message, "details": details}


def retry_after_seconds(status: status_pb2.Status) -> int | None:
    """Return the whole seconds of the status's ``RetryInfo`` (at least 1), or ``None``."""
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            seconds = info.retry_delay.seconds + info.retry_delay.nanos / 1e9
            return max(1, math.ceil(seconds))
    return None


def _service_label(service_full_name: str) -> str:
    return service_full_name.rsplit(".", 1)[-1]


def status_from_rpc_error(
    error: grpc.aio.AioRpcError,
    service_full_name: str,
    timeout_ms: int,
) -> status_pb2.Status:
    """Return the status to show for a failed backend call.

    A backend's rich status passes through. A bare transport failure becomes a
    gateway status that names the service but not its address; an unexpected bare
    INTERNAL or UNKNOWN says nothing of its cause.
    """
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        status = None
    if status is not None:
        return status
    code = error.code()
    number = code.value[0]
    service = _service_label(service_full_name)
    metadata = {"service": service_full_name}
    if code == grpc.StatusCode.UNAVAILABLE:
        return build_status(
            number,
            f"the {service} backend is unavailable",
            reason="BACKEND_UNAVAILABLE",
            metadata=metadata,
            retry_after=1.0,
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return build_status(
            number,
            f"the {service} backend did not answer within {timeout_ms} ms; the outcome is unknown",
            reason="BACKEND_TIMEOUT",
            metadata=metadata,
        )
    if code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DATA_LOSS):
        return build_status(number, "internal error", reason="BACKEND_ERROR", metadata=metadata)
    return build_status(
        number,
        error.details() or code.name,
        reason=code.name,
        metadata=metadata,
    )
