"""The webhook dispatcher: turns the services' audit entries into events and delivers them.

Each round it (1) reads, for every user with a webhook, the audit entries of the chains those
webhooks need (engine, recon, broker) above the user's durable cursor, queues one delivery per event
and subscribed webhook and moves the cursor in the same transaction (so a restart neither
loses nor repeats an event), then (2) sends the deliveries that are due, signed, and records
each try: delivered on a 2xx, otherwise retried after the next wait of the schedule (a longer
``Retry-After`` wins) and dropped, with the record, once the schedule is spent.

Only one dispatcher runs: on PostgreSQL under the lease ``webhook-dispatcher``
(:mod:`meshkit.leases`, the queueing transaction fenced by its token); on SQLite (one
replica) it just runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from gateway.ports import Fence, WebhookStorePort
from gateway.webhooks import model
from gateway.webhooks.model import Delivery, Queued, Webhook
from gateway.webhooks.sealing import SecretUnavailable
from meshkit.codec import utcnow
from meshkit.tasks import cancel_and_wait

log = logging.getLogger("gateway.webhooks")

ReadEntries = Callable[[str, str, int, int], Awaitable[list[dict[str, Any]]]]
"""``(user_id, chain, before_seq, page_size)``: the user's entries of a chain, newest first."""

CHAIN_EVENTS = {
    "engine": (
        model.CONFIG_HALTED,
        model.RISK_ACTION,
        model.LEADER_STREAM_DOWN,
        model.LEADER_STREAM_UP,
    ),
    "recon": (model.RECONCILIATION_DISCREPANCY,),
    "broker": (model.CREDENTIALS_REJECTED,),
}
"""Which chain's entries can mean which events (a chain nobody needs is not read)."""
PAGE_SIZE = 200
MAX_PAGES = 50
SEND_CONCURRENCY = 8
USER_AGENT = "copytrade-webhooks/1"


@dataclass(frozen=True)
class DispatchSettings:
    """How the dispatcher polls and retries (from the gateway's ``GATEWAY_WEBHOOK_*``)."""

    poll_interval_seconds: float = 2.0
    retry_schedule_ms: Sequence[int] = model.DEFAULT_RETRY_SCHEDULE_MS
    timeout_seconds: float = 5.0


def _retry_after_ms(value: str | None, now: datetime) -> int | None:
    # Retry-After: delay-seconds or an HTTP date.
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value) * 1000
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0, int((when - now).total_seconds() * 1000))


class Dispatcher:
    """Queues events from the audit trails and delivers them to the users' webhooks."""

    def __init__(
        self,
        store: WebhookStorePort,
        read_entries: ReadEntries,
        settings: DispatchSettings | None = None,
        *,
        now: Callable[[], datetime] = utcnow,
        epoch_seconds: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.read_entries = read_entries
        self.settings = settings or DispatchSettings()
        self.now = now
        self.epoch_seconds = epoch_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ running

    def start(self, fence: Fence | None = None) -> None:
        """Run rounds until :meth:`stop` (``fence`` guards each queueing transaction)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(fence), name="webhook-dispatcher")

    async def stop(self) -> None:
        """Stop the rounds and close the HTTP session."""
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait([task])
        if self._session is not None:
            await self._session.close()
            self._session = None

    def wake(self) -> None:
        """Start the next round now (a test delivery was queued)."""
        self._wake.set()

    async def _run(self, fence: Fence | None) -> None:
        while True:
            try:
                await self.round(fence)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook dispatch round failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(await self._pause()):
                    await self._wake.wait()

    async def _pause(self) -> float:
        # Until the next poll, or sooner when a retry falls due before it.
        pause = self.settings.poll_interval_seconds
        due = await self.store.next_due_at()
        if due is not None:
            until = (datetime.fromisoformat(due) - self.now()).total_seconds()
            pause = min(pause, max(until, 0.0))
        return max(pause, 0.01)

    async def round(self, fence: Fence | None = None) -> None:
        """Queue the new events, then send what is due."""
        await self.collect(fence)
        await self.send_due()

    # ------------------------------------------------------------------ events

    async def collect(self, fence: Fence | None = None) -> int:
        """Queue a delivery for every new event of every user with a webhook; return how many."""
        by_user: dict[str, list[Webhook]] = {}
        for webhook in await self.store.all_webhooks():
            by_user.setdefault(webhook.user_id, []).append(webhook)
        queued = 0
        for user_id, webhooks in by_user.items():
            wanted = {e for w in webhooks for e in w.events}
            for chain, events in CHAIN_EVENTS.items():
                if not wanted.intersection(events):
                    continue
                try:
                    queued += await self._collect_chain(user_id, chain, webhooks, fence)
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # one backend down must not stop the others
                    log.warning(
                        "webhook events of the %s chain could not be read: %s",
                        chain,
                        type(e).__name__,
                    )
        return queued

    async def _newer_entries(self, user_id: str, chain: str, cursor: int | None) -> list[Any]:
        # Entries above the cursor, oldest first. Without a cursor (a new subscriber) only
        # the newest page: older entries predate the webhook.
        found: list[dict[str, Any]] = []
        before = 0
        for _ in range(MAX_PAGES):
            page = await self.read_entries(user_id, chain, before, PAGE_SIZE)
            newer = [e for e in page if cursor is None or e["seq"] > cursor]
            found += newer
            if cursor is None or len(newer) < len(page) or len(page) < PAGE_SIZE:
                break
            before = page[-1]["seq"]
        else:
            log.warning("webhook events: more than %d entries behind", MAX_PAGES * PAGE_SIZE)
        return sorted(found, key=lambda e: e["seq"])

    async def _collect_chain(
        self,
        user_id: str,
        chain: str,
        webhooks: Sequence[Webhook],
        fence: Fence | None,
    ) -> int:
        cursor = await self.store.cursor(user_id, chain)
        entries = await self._newer_entries(user_id, chain, cursor)
        if not entries and cursor is not None:
            return 0
        items: list[Queued] = []
        for entry in entries:
            for event in model.events_of(entry):
                for webhook in webhooks:
                    if event.event in webhook.events and entry["time"] >= webhook.created_at:
                        body = model.payload(
                            event.event_id, event.event, event.time, user_id, event.data
                        )
                        items.append(Queued(webhook.webhook_id, event.event_id, event.event, body))
        top = max([cursor or 0, *(e["seq"] for e in entries)])
        return await self.store.queue(user_id, chain, top, items, self.now(), fence)

    # ------------------------------------------------------------------ sending

    async def send_due(self) -> int:
        """Send every delivery due now (a few at a time); return how many were tried."""
        due = await self.store.due(self.now())
        if not due:
            return 0
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_seconds),
                headers={"User-Agent": USER_AGENT},
            )
        limit = asyncio.Semaphore(SEND_CONCURRENCY)

        async def one(delivery: Delivery) -> None:
            async with limit:
                await self.send(delivery)

        await asyncio.gather(*(one(d) for d in due))
        return len(due)

    async def send(self, delivery: Delivery) -> None:
        """Try one delivery once; record the outcome (delivered, retry later, or dropped)."""
        assert self._session is not None
        try:
            secret = await self.store.secret_of(delivery.webhook_id)
        except SecretUnavailable as e:
            # Never sent unsigned, nor retried in vain: dropped, with the reason on record.
            log.error("webhook delivery %s cannot be signed: %s", delivery.delivery_id, e)
            await self.store.record_attempt(
                delivery.delivery_id,
                status="dropped",
                attempts=delivery.attempts,
                next_attempt_at=None,
                status_code=None,
                error="cannot be signed: the gateway's key does not open the webhook's secret",
                now=self.now(),
            )
            return
        url = await self.store.url_of(delivery.webhook_id)
        if secret is None or url is None:  # deleted meanwhile: its deliveries went with it
            return
        body = delivery.payload.encode("utf-8")
        timestamp = str(int(self.epoch_seconds()))
        headers = {
            "Content-Type": "application/json",
            model.SIGNATURE_HEADER: model.signature(secret, timestamp, body),
            model.TIMESTAMP_HEADER: timestamp,
            model.EVENT_HEADER: delivery.event,
            model.EVENT_ID_HEADER: delivery.event_id,
        }
        status_code: int | None = None
        retry_after: str | None = None
        try:
            async with self._session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status_code = response.status
                retry_after = response.headers.get("Retry-After")
                await response.read()
            error = "" if 200 <= status_code < 300 else f"HTTP {status_code}"
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            error = f"no answer within {self.settings.timeout_seconds:g} s"
        except aiohttp.ClientError as e:
            # The class only: a message may quote the URL, which can hold a token.
            error = f"connection failed ({type(e).__name__})"
        await self._record(delivery, status_code, error, retry_after)

    async def _record(
        self,
        delivery: Delivery,
        status_code: int | None,
        error: str,
        retry_after: str | None,
    ) -> None:
        now = self.now()
        attempts = delivery.attempts + 1
        if not error:
            await self.store.record_attempt(
                delivery.delivery_id,
                status="delivered",
                attempts=attempts,
                next_attempt_at=None,
                status_code=status_code,
                error="",
                now=now,
            )
            return
        wait = model.retry_delay_ms(
            attempts, self.settings.retry_schedule_ms, _retry_after_ms(retry_after, now)
        )
        if wait is None:
            log.warning(
                "webhook delivery %s dropped after %d tries: %s",
                delivery.delivery_id,
                attempts,
                error,
            )
        await self.store.record_attempt(
            delivery.delivery_id,
            status="pending" if wait is not None else "dropped",
            attempts=attempts,
            next_attempt_at=now + timedelta(milliseconds=wait) if wait is not None else None,
            status_code=status_code,
            error=error,
            now=now,
        )


def delivery_json(delivery: Delivery) -> Mapping[str, Any]:
    """Return a delivery as the API shows it (the payload as sent, parsed)."""
    return {
        "delivery_id": delivery.delivery_id,
        "event_id": delivery.event_id,
        "event": delivery.event,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "updated_at": delivery.updated_at,
        "payload": json.loads(delivery.payload),
    }
