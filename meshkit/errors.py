"""Typed service errors and their translation to a rich ``google.rpc.Status``.

Domain code and adapters raise these; one server interceptor
(:mod:`meshkit.interceptors`) turns them into a gRPC status whose details hold an
``ErrorInfo`` and, where it applies, a ``BadRequest``, ``RetryInfo`` or
``PreconditionFailure``. Nothing else sets status codes by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path (``risk_limits.max_slippage``) and what is wrong."""

    field: str
    description: str


class ServiceError(Exception):
    """Base of every error a service reports to its callers."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    default_reason: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})
        # True when no service answered: gRPC itself failed the call (the peer is down or
        # unreachable), so the status carries no ErrorInfo. Set by ``clients.translate``.
        self.from_transport = False

    def details(self) -> list[object]:
        """Return the extra detail messages beyond ``ErrorInfo``."""
        return []


class InvalidArgument(ServiceError):
    """The request is malformed; ``violations`` name the bad fields."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: Sequence[FieldViolation] | FieldViolation,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(violations, FieldViolation):
            violations = [violations]
        self.violations = list(violations)
        message = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(message or "invalid argument", reason=reason, metadata=metadata)

    def details(self) -> list[object]:
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field,
                        description=v.description,
                    )
                    for v in self.violations
                ],
            ),
        ]


def invalid(field: str, description: str) -> InvalidArgument:
    """Build an :class:`InvalidArgument` for one field."""
    return InvalidArgument(FieldViolation(field, description))


class NotFound(ServiceError):
    """The named object does not exist, or belongs to somebody else."""

    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(ServiceError):
    """The object to create exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class Aborted(ServiceError):
    """The request conflicts with the object's use now (an account copy configurations use)."""

    code = grpc.StatusCode.ABORTED
    default_reason = "ABORTED"


class FailedPrecondition(ServiceError):
    """The system is not in a state where the request can run (funds, state, credentials)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class Unauthenticated(ServiceError):
    """The caller did not say who it is."""

    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(ServiceError):
    """The caller may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class Unimplemented(ServiceError):
    """The venue or the service does not support this."""

    code = grpc.StatusCode.UNIMPLEMENTED
    default_reason = "UNIMPLEMENTED"


NO_RETRY_METADATA = ("grpc-retry-pushback-ms", "-1")
"""Trailing metadata telling the caller's channel not to retry (gRPC's server pushback)."""


class _Retryable(ServiceError):
    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retryable: bool = True,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_after = retry_after
        # False when the service already spent its time budget waiting for what is unavailable
        # (an upstream that did not answer): a channel's automatic retry would only wait again,
        # adding up to the caller's deadline. Sent as NO_RETRY_METADATA; the caller still may
        # ask again later.
        self.retryable = retryable

    def details(self) -> list[object]:
        if self.retry_after is None:
            return []
        seconds = max(self.retry_after, 0.0)
        delay = duration_pb2.Duration(
            seconds=int(seconds),
            nanos=round((seconds - int(seconds)) * 1e9),
        )
        return [error_details_pb2.RetryInfo(retry_delay=delay)]


class ResourceExhausted(_Retryable):
    """A rate limit or quota was hit; ``retry_after`` says when to try again."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "RATE_LIMITED"


class Unavailable(_Retryable):
    """A dependency (a venue, another service) cannot be reached now."""

    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


class OutcomeUnknown(ServiceError):
    """A mutating call timed out or got an ambiguous answer: it may or may not have happened.

    The caller must find out from the venue (look the order up by its client
    order id) and must never resend blindly.
    """

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    default_reason = "ORDER_OUTCOME_UNKNOWN"


_CODE_NUMBERS = {code: code.value[0] for code in grpc.StatusCode}


def to_status(error: ServiceError, domain: str) -> status_pb2.Status:
    """Build the ``google.rpc.Status`` for ``error`` with an ``ErrorInfo`` in ``domain``."""
    info = error_details_pb2.ErrorInfo(
        reason=error.reason,
        domain=domain,
        metadata=error.metadata,
    )
    details = []
    for message in [info, *error.details()]:
        packed = any_pb2.Any()
        packed.Pack(message)
        details.append(packed)
    return status_pb2.Status(
        code=_CODE_NUMBERS[error.code],
        message=error.message,
        details=details,
    )


def internal_status(domain: str) -> status_pb2.Status:
    """Return the generic status for an unexpected error: nothing of the cause leaks."""
    return to_status(ServiceError("internal error"), domain)


def code_name(code: int) -> str:
    """Return the name of a ``google.rpc.Code`` number, for example ``NOT_FOUND``."""
    return code_pb2.Code.Name(code)
