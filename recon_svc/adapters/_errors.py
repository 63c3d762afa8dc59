"""Translation of upstream failures for read-only calls."""

from __future__ import annotations

import grpc

from meshkit import clients, errors


def translate_read(error: grpc.aio.AioRpcError, service: str) -> errors.ServiceError:
    """Turn a failed read into a service error; a read that timed out changed nothing."""
    if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.Unavailable(
            f"the {service} service did not answer in time",
            reason="UPSTREAM_TIMEOUT",
        )
    return clients.translate(error)
