"""Interfaces the gateway's user management depends on (:mod:`gateway.users`)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from gateway.model import User, UserSummary


class UserStore(Protocol):
    """Where users and their API tokens (as hashes) are kept."""

    async def migrate(self) -> list[int]:
        """Apply the gateway's schema files not applied yet."""
        ...

    async def create_user(
        self,
        name: str,
        plan: str,
        expires_at: datetime | None = None,
        now: datetime | None = None,
        *,
        actor: str = "",
    ) -> tuple[User, str]:
        """Insert a user and its first token (with the audit entry by ``actor``) in one
        transaction; return both, the token in clear."""
        ...

    async def list_users(self, now: datetime | None = None) -> list[UserSummary]:
        """Return every user, oldest first, with the state of its tokens."""
        ...

    async def users_named(self, name_or_id: str) -> list[User]:
        """Return the user whose id is ``name_or_id``, else every user with that name."""
        ...

    async def revoke_user_tokens(self, user_id: str, *, actor: str = "") -> int:
        """Revoke every live token of a user at once; return how many were revoked now."""
        ...

    async def revoke_token(self, token: str, *, actor: str = "") -> bool:
        """Revoke a token; return whether a live token was revoked now."""
        ...
