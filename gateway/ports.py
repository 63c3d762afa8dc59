"""Interfaces the gateway's user management (:mod:`gateway.users`) and webhooks depend on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

from gateway.model import User, UserSummary
from gateway.webhooks.model import Delivery, Queued, Webhook
from meshkit import db

Fence = Callable[[db.Executor], Awaitable[None]]
"""Raises inside a transaction when this replica no longer runs the webhook dispatcher."""


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


class WebhookStorePort(Protocol):
    """Where webhooks, their deliveries (outbox and log) and the dispatcher's cursors are kept."""

    async def create(
        self, user_id: str, url: str, events: Sequence[str], now: datetime
    ) -> tuple[Webhook, str | None]:
        """Create a webhook; return it and its secret, or the existing one and ``None``."""
        ...

    async def of_user(self, user_id: str) -> list[Webhook]:
        """Return the user's webhooks, oldest first."""
        ...

    async def get(self, user_id: str, webhook_id: str) -> Webhook | None:
        """Return the user's webhook ``webhook_id``; ``None`` when it is not theirs or absent."""
        ...

    async def delete(self, user_id: str, webhook_id: str, now: datetime) -> bool:
        """Delete the user's webhook and its deliveries; return whether it was there."""
        ...

    async def secret_of(self, webhook_id: str) -> str | None:
        """Return a webhook's signing secret, ``None`` once deleted.

        Raises ``gateway.webhooks.sealing.SecretUnavailable`` when the key does not open it.
        """
        ...

    async def seal_plaintext_secrets(self) -> int:
        """Seal every secret stored in clear (from before sealing); return how many."""
        ...

    async def url_of(self, webhook_id: str) -> str | None:
        """Return a webhook's URL, ``None`` once deleted."""
        ...

    async def all_webhooks(self) -> list[Webhook]:
        """Return every user's webhooks, by user."""
        ...

    async def cursor(self, user_id: str, chain: str) -> int | None:
        """Return the highest seq of ``chain`` whose events are queued for the user, if any."""
        ...

    async def queue(
        self,
        user_id: str,
        chain: str,
        seq: int,
        queued: Sequence[Queued],
        now: datetime,
        fence: Fence | None = None,
    ) -> int:
        """Queue deliveries and move the user's cursor of ``chain`` to ``seq``, atomically."""
        ...

    async def queue_test(self, user_id: str, item: Queued, now: datetime) -> Delivery:
        """Queue one test delivery to the user's webhook; return it."""
        ...

    async def due(self, now: datetime, limit: int = 50) -> list[Delivery]:
        """Return pending deliveries whose next try is due, oldest first."""
        ...

    async def next_due_at(self) -> str | None:
        """Return when the earliest pending delivery is due, ``None`` when none is pending."""
        ...

    async def record_attempt(
        self,
        delivery_id: str,
        *,
        status: str,
        attempts: int,
        next_attempt_at: datetime | None,
        status_code: int | None,
        error: str,
        now: datetime,
    ) -> None:
        """Record how a try went: the new status, the count of tries, when the next is due."""
        ...

    async def deliveries(self, user_id: str, webhook_id: str, limit: int) -> list[Delivery]:
        """Return the deliveries of the user's webhook, newest first."""
        ...
