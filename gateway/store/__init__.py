"""The gateway's storage (:class:`GatewayStore`) and token hashing, re-exported from its modules.

The user and token values it speaks in live in :mod:`gateway.model`; they are re-exported here
for the callers that import them from the store.
"""

from __future__ import annotations

from gateway.model import TokenStatus, User, UserSummary
from gateway.store.gateway_store import AUDIT_TABLE, SCHEMA_DIR, SERVICE, GatewayStore
from gateway.store.tokens import TOKEN_PREFIX, hash_token, new_token, token_id

__all__ = [
    "AUDIT_TABLE",
    "SCHEMA_DIR",
    "SERVICE",
    "TOKEN_PREFIX",
    "GatewayStore",
    "TokenStatus",
    "User",
    "UserSummary",
    "hash_token",
    "new_token",
    "token_id",
]
