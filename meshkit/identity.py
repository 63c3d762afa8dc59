"""Who is calling: the user id the gateway authenticated, carried in gRPC metadata.

The gateway strips any ``x-copytrade-user-id`` a client sends and sets it from the
bearer token it verified. Services read it here; internal callers forward it with
:func:`forward_metadata` when they act for a user.
"""

from __future__ import annotations

import grpc

from meshkit.errors import Unauthenticated
from meshkit.interceptors import REQUEST_ID_HEADER, request_id_var

USER_HEADER = "x-copytrade-user-id"


def user_id_or_empty(context: grpc.aio.ServicerContext) -> str:
    """Return the calling user's id, or ``""`` for an internal call made for nobody."""
    for item in context.invocation_metadata() or ():
        if item.key == USER_HEADER:
            return item.value if isinstance(item.value, str) else item.value.decode()
    return ""


def require_user(context: grpc.aio.ServicerContext) -> str:
    """Return the calling user's id, or fail with UNAUTHENTICATED."""
    user_id = user_id_or_empty(context)
    if not user_id:
        raise Unauthenticated("no authenticated user on this call", reason="USER_REQUIRED")
    return user_id


def forward_metadata(user_id: str = "") -> tuple[tuple[str, str], ...]:
    """Return metadata for a downstream call: the request id and, when given, the user."""
    metadata: list[tuple[str, str]] = []
    request_id = request_id_var.get()
    if request_id:
        metadata.append((REQUEST_ID_HEADER, request_id))
    if user_id:
        metadata.append((USER_HEADER, user_id))
    return tuple(metadata)
