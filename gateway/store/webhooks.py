"""The webhook tables: ``webhooks``, ``webhook_deliveries`` (outbox and log), ``webhook_cursors``.

The same SQL runs on SQLite and PostgreSQL through :mod:`meshkit.db`; times are fixed-width
ISO text from :func:`meshkit.codec.to_iso`, so they compare as text. A webhook's creation and
deletion are written to the gateway's audit chain, in the same transaction; never its secret,
which is stored sealed (:mod:`gateway.webhooks.sealing`, under ``GATEWAY_WEBHOOK_SECRET_KEY``).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from gateway.ports import Fence
from gateway.store.gateway_store import AUDIT_TABLE
from gateway.webhooks.model import (
    MAX_WEBHOOKS_PER_USER,
    Delivery,
    Queued,
    TooManyWebhooks,
    Webhook,
    WebhookConflict,
    WebhooksNotConfigured,
    new_secret,
)
from gateway.webhooks.sealing import SecretBox, SecretUnavailable
from meshkit import db
from meshkit.audit import AuditEvent, AuditLog
from meshkit.codec import to_iso

log = logging.getLogger("gateway.webhooks")
_DELIVERY_COLUMNS = (
    "delivery_id, webhook_id, event_id, event, payload, status, attempts, next_attempt_at,"
    " last_status_code, last_error, created_at, updated_at"
)

_INSERT_DELIVERY = (
    f"INSERT INTO webhook_deliveries ({_DELIVERY_COLUMNS}, user_id)"
    " VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, NULL, '', ?, ?, ?)"
)


def _new_delivery(delivery_id: str, item: Queued, user_id: str, stamp: str) -> tuple[str, ...]:
    # The values of _INSERT_DELIVERY: a pending delivery of ``item``, due at once.
    return (
        delivery_id,
        item.webhook_id,
        item.event_id,
        item.event,
        item.payload,
        stamp,
        stamp,
        stamp,
        user_id,
    )


def _webhook(row: Mapping[str, Any]) -> Webhook:
    return Webhook(
        row["webhook_id"],
        row["user_id"],
        row["url"],
        tuple(json.loads(row["events"])),
        row["created_at"],
    )


def _delivery(row: Mapping[str, Any]) -> Delivery:
    code = row["last_status_code"]
    return Delivery(
        delivery_id=row["delivery_id"],
        webhook_id=row["webhook_id"],
        event_id=row["event_id"],
        event=row["event"],
        payload=row["payload"],
        status=row["status"],
        attempts=int(row["attempts"]),
        next_attempt_at=row["next_attempt_at"],
        last_status_code=int(code) if code is not None else None,
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class WebhookStore:
    """Webhooks, their deliveries and the dispatcher's cursors over a ``meshkit.db.Database``."""

    def __init__(self, database: db.Database, key: bytes = b"") -> None:
        self.database = database
        self.audit = AuditLog(database, AUDIT_TABLE, default_actor="service:gateway")
        # No key: no webhook can be created (its secret would have to be kept in clear).
        self._box = SecretBox(key) if key else None

    async def create(
        self,
        user_id: str,
        url: str,
        events: Sequence[str],
        now: datetime,
    ) -> tuple[Webhook, str | None]:
        """Create a webhook; return it and its secret, or the existing one and ``None``.

        Idempotent by (user, URL): the same URL with the same events returns the webhook
        already there (its secret is not shown again).

        Raises
        ------
        WebhookConflict
            The user has a webhook at ``url`` with other events.
        TooManyWebhooks
            The user has :data:`MAX_WEBHOOKS_PER_USER` webhooks already.
        WebhooksNotConfigured
            The gateway has no ``GATEWAY_WEBHOOK_SECRET_KEY`` to seal the secret with.
        """
        box = self._box
        if box is None:
            raise WebhooksNotConfigured()
        events_text = json.dumps(list(events))
        async with self.database.transaction() as tx:
            row = await tx.fetchone(
                "SELECT webhook_id, user_id, url, events, created_at FROM webhooks"
                " WHERE user_id = ? AND url = ?",
                (user_id, url),
            )
            if row is not None:
                existing = _webhook(row)
                if existing.events != tuple(events):
                    raise WebhookConflict(existing.webhook_id)
                return existing, None
            count = await tx.fetchone(
                "SELECT COUNT(*) AS n FROM webhooks WHERE user_id = ?", (user_id,)
            )
            if count is not None and int(count["n"]) >= MAX_WEBHOOKS_PER_USER:
                raise TooManyWebhooks()
            webhook = Webhook("wh_" + uuid.uuid4().hex, user_id, url, tuple(events), to_iso(now))
            secret = new_secret()
            sealed, nonce, sealed_by = box.seal(secret, webhook.webhook_id, user_id)
            await tx.execute(
                "INSERT INTO webhooks (webhook_id, user_id, url, events, secret, secret_nonce,"
                " secret_key_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    webhook.webhook_id,
                    user_id,
                    url,
                    events_text,
                    sealed,
                    nonce,
                    sealed_by,
                    webhook.created_at,
                ),
            )
            await self.audit.append(
                tx,
                AuditEvent(
                    user_id,
                    "webhook",
                    webhook.webhook_id,
                    "create",
                    None,
                    {"url": url, "events": list(events)},
                ),
                now,
                actor=f"user:{user_id}",
            )
        return webhook, secret

    async def of_user(self, user_id: str) -> list[Webhook]:
        """Return the user's webhooks, oldest first."""
        rows = await self.database.fetchall(
            "SELECT webhook_id, user_id, url, events, created_at FROM webhooks"
            " WHERE user_id = ? ORDER BY created_at, webhook_id",
            (user_id,),
        )
        return [_webhook(r) for r in rows]

    async def get(self, user_id: str, webhook_id: str) -> Webhook | None:
        """Return the user's webhook ``webhook_id``; ``None`` when it is not theirs or absent."""
        row = await self.database.fetchone(
            "SELECT webhook_id, user_id, url, events, created_at FROM webhooks"
            " WHERE webhook_id = ? AND user_id = ?",
            (webhook_id, user_id),
        )
        return _webhook(row) if row is not None else None

    async def delete(self, user_id: str, webhook_id: str, now: datetime) -> bool:
        """Delete the user's webhook and its deliveries; return whether it was there.

        With the user's last webhook, the dispatcher's read positions for the user go too.
        """
        async with self.database.transaction() as tx:
            row = await tx.fetchone(
                "SELECT webhook_id, user_id, url, events, created_at FROM webhooks"
                " WHERE webhook_id = ? AND user_id = ?",
                (webhook_id, user_id),
            )
            if row is None:
                return False
            webhook = _webhook(row)
            await tx.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?", (webhook_id,))
            await tx.execute("DELETE FROM webhooks WHERE webhook_id = ?", (webhook_id,))
            left = await tx.fetchone(
                "SELECT COUNT(*) AS n FROM webhooks WHERE user_id = ?", (user_id,)
            )
            if left is not None and int(left["n"]) == 0:
                # Nothing reads for this user any more: a later webhook starts afresh.
                await tx.execute("DELETE FROM webhook_cursors WHERE user_id = ?", (user_id,))
            await self.audit.append(
                tx,
                AuditEvent(
                    user_id,
                    "webhook",
                    webhook_id,
                    "delete",
                    {"url": webhook.url, "events": list(webhook.events)},
                    None,
                ),
                now,
                actor=f"user:{user_id}",
            )
        return True

    async def secret_of(self, webhook_id: str) -> str | None:
        """Return a webhook's signing secret (to sign a delivery), ``None`` once deleted.

        Raises
        ------
        SecretUnavailable
            The gateway's key does not open it (another key, or none).
        """
        row = await self.database.fetchone(
            "SELECT user_id, secret, secret_nonce, secret_key_id FROM webhooks"
            " WHERE webhook_id = ?",
            (webhook_id,),
        )
        if row is None:
            return None
        if not row["secret_key_id"]:
            return str(row["secret"])  # from before sealing: sealed at the next start with a key
        if self._box is None:
            raise SecretUnavailable("the gateway has no GATEWAY_WEBHOOK_SECRET_KEY")
        return self._box.open(
            row["secret"], row["secret_nonce"], row["secret_key_id"], webhook_id, row["user_id"]
        )

    async def seal_plaintext_secrets(self) -> int:
        """Seal every secret stored in clear (rows from before sealing); return how many.

        Nothing without a key. Each row on its own, compare-and-set on the empty key id, so
        two replicas starting together seal a row once.
        """
        if self._box is None:
            return 0
        rows = await self.database.fetchall(
            "SELECT webhook_id, user_id, secret FROM webhooks WHERE secret_key_id = ''"
        )
        sealed_now = 0
        for row in rows:
            sealed, nonce, sealed_by = self._box.seal(
                row["secret"], row["webhook_id"], row["user_id"]
            )
            sealed_now += await self.database.execute(
                "UPDATE webhooks SET secret = ?, secret_nonce = ?, secret_key_id = ?"
                " WHERE webhook_id = ? AND secret_key_id = ''",
                (sealed, nonce, sealed_by, row["webhook_id"]),
            )
        if sealed_now:
            log.info("sealed %d webhook secrets stored in clear", sealed_now)
        return sealed_now

    async def url_of(self, webhook_id: str) -> str | None:
        """Return a webhook's URL, ``None`` once deleted."""
        row = await self.database.fetchone(
            "SELECT url FROM webhooks WHERE webhook_id = ?", (webhook_id,)
        )
        return row["url"] if row is not None else None

    async def all_webhooks(self) -> list[Webhook]:
        """Return every user's webhooks (the dispatcher's view), by user."""
        rows = await self.database.fetchall(
            "SELECT webhook_id, user_id, url, events, created_at FROM webhooks"
            " ORDER BY user_id, created_at, webhook_id",
        )
        return [_webhook(r) for r in rows]

    async def cursor(self, user_id: str, chain: str) -> int | None:
        """Return the highest seq of ``chain`` whose events are queued for the user, if any."""
        row = await self.database.fetchone(
            "SELECT seq FROM webhook_cursors WHERE user_id = ? AND chain = ?",
            (user_id, chain),
        )
        return int(row["seq"]) if row is not None else None

    async def queue(
        self,
        user_id: str,
        chain: str,
        seq: int,
        queued: Sequence[Queued],
        now: datetime,
        fence: Fence | None = None,
    ) -> int:
        """Queue deliveries and move the user's cursor of ``chain`` to ``seq``, atomically.

        A delivery already queued (same webhook and event id) is not queued again. Returns
        how many were queued now.
        """
        stamp = to_iso(now)
        added = 0
        async with self.database.transaction() as tx:
            if fence is not None:
                await fence(tx)
            for item in queued:
                added += await tx.execute(
                    _INSERT_DELIVERY + " ON CONFLICT (webhook_id, event_id) DO NOTHING",
                    _new_delivery("dl_" + uuid.uuid4().hex, item, user_id, stamp),
                )
            await tx.execute(
                "INSERT INTO webhook_cursors (user_id, chain, seq) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id, chain) DO UPDATE SET seq = excluded.seq",
                (user_id, chain, seq),
            )
        return added

    async def queue_test(self, user_id: str, item: Queued, now: datetime) -> Delivery:
        """Queue one test delivery to the user's webhook; return it."""
        stamp = to_iso(now)
        delivery_id = "dl_" + uuid.uuid4().hex
        await self.database.execute(
            _INSERT_DELIVERY, _new_delivery(delivery_id, item, user_id, stamp)
        )
        found = await self.database.fetchone(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE delivery_id = ?",
            (delivery_id,),
        )
        assert found is not None
        return _delivery(found)

    async def due(self, now: datetime, limit: int = 50) -> list[Delivery]:
        """Return pending deliveries whose next try is due, oldest first."""
        rows = await self.database.fetchall(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries"
            " WHERE status = 'pending' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, created_at LIMIT ?",
            (to_iso(now), limit),
        )
        return [_delivery(r) for r in rows]

    async def next_due_at(self) -> str | None:
        """Return when the earliest pending delivery is due, ``None`` when none is pending."""
        row = await self.database.fetchone(
            "SELECT MIN(next_attempt_at) AS at FROM webhook_deliveries WHERE status = 'pending'",
        )
        return row["at"] if row is not None else None

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
        await self.database.execute(
            "UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?,"
            " last_status_code = ?, last_error = ?, updated_at = ?"
            " WHERE delivery_id = ? AND status = 'pending'",
            (
                status,
                attempts,
                to_iso(next_attempt_at) if next_attempt_at is not None else None,
                status_code,
                error,
                to_iso(now),
                delivery_id,
            ),
        )

    async def deliveries(self, user_id: str, webhook_id: str, limit: int) -> list[Delivery]:
        """Return the deliveries of the user's webhook, newest first."""
        rows = await self.database.fetchall(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries"
            " WHERE webhook_id = ? AND user_id = ? ORDER BY created_at DESC, delivery_id LIMIT ?",
            (webhook_id, user_id, limit),
        )
        return [_delivery(r) for r in rows]
