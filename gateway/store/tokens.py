"""API tokens as the gateway issues them and keeps them: only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "ct_"


def hash_token(token: str) -> str:
    """Return the hex SHA-256 of a token: what the store keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id(token: str) -> str:
    """Return the name of a token in the audit trail: 16 hex digits of its hash (not usable)."""
    return hash_token(token)[:16]


def new_token() -> str:
    """Return a fresh API token: a prefix and 32 random bytes, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)
