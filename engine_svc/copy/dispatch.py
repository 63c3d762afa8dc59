"""The send queues: one ordered queue per follower account, accounts served in parallel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from engine_svc.domain.model import Intent, IntentState
from meshkit import tracing
from meshkit.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class Dispatcher:
    """One ordered queue per follower account: accounts in parallel, orders of one in order.

    An intent is queued at most once at a time; a rate-limited one is retried in place, so the
    account's later orders wait behind it.
    """

    def __init__(self, place: Callable[[str], Awaitable[float | None]]) -> None:
        self._place = place
        self._queues: dict[str, asyncio.Queue[str]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._queued: set[str] = set()
        self._waiting: dict[str, int] = {}
        self._idle: dict[str, asyncio.Event] = {}
        # The trace each queued intent was decided in (meshkit.tracing; empty while off).
        self._traces: dict[str, tracing.Captured] = {}

    async def wait_idle(self, exchange_ids: Iterable[str], seconds: float) -> bool:
        """Wait until no order of these accounts waits or is being sent; False on timeout.

        Sizing reads the follower's portfolio at the venue; an order still on its way there
        is not in it yet, so the next decision for that account waits for its answer.
        """
        events = [self._idle[e] for e in exchange_ids if self._waiting.get(e)]
        if not events:
            return True
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            _, pending = await asyncio.wait(waiters, timeout=seconds)
        finally:
            await cancel_and_wait(waiters)
        return not pending

    def is_queued(self, intent_id: str) -> bool:
        """Return whether the intent waits in (or is being handled by) a queue."""
        return intent_id in self._queued

    def enqueue(self, exchange_id: str, intent_id: str) -> None:
        """Queue an intent for sending on its account, unless it is queued already."""
        if intent_id in self._queued:
            return
        queue = self._queues.get(exchange_id)
        if queue is None:
            queue = self._queues[exchange_id] = asyncio.Queue()
            with tracing.detached():  # each intent's own trace is restored as it is sent
                self._workers[exchange_id] = asyncio.create_task(
                    self._work(exchange_id, queue),
                    name=f"engine-dispatch-{exchange_id}",
                )
        self._queued.add(intent_id)
        if (trace := tracing.capture()) is not None:
            self._traces[intent_id] = trace
        self._waiting[exchange_id] = self._waiting.get(exchange_id, 0) + 1
        self._idle.setdefault(exchange_id, asyncio.Event()).clear()
        queue.put_nowait(intent_id)

    def enqueue_pending(self, intents: Iterable[Intent]) -> None:
        """Queue the PENDING ones of ``intents``, each on its account's queue."""
        for intent in intents:
            if intent.state is IntentState.PENDING:
                self.enqueue(intent.target_exchange_id, intent.intent_id)

    def _done(self, exchange_id: str, intent_id: str) -> None:
        self._queued.discard(intent_id)
        self._traces.pop(intent_id, None)
        self._waiting[exchange_id] -= 1
        if not self._waiting[exchange_id]:
            self._idle[exchange_id].set()

    async def _work(self, exchange_id: str, queue: asyncio.Queue[str]) -> None:
        while True:
            intent_id = await queue.get()
            try:
                while True:
                    try:
                        with tracing.restored(self._traces.get(intent_id)):
                            retry_after = await self._place(intent_id)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("sending intent %s failed; the sweep will retry", intent_id)
                        retry_after = None
                    if retry_after is None:
                        break
                    await asyncio.sleep(retry_after)
            finally:
                self._done(exchange_id, intent_id)

    async def stop(self) -> None:
        """Cancel every worker; intents they held stay PENDING or SENT for the next start."""
        await cancel_and_wait(self._workers.values())
        self._workers.clear()
        self._queues.clear()
        self._queued.clear()
        self._waiting.clear()
        for event in self._idle.values():
            event.set()
        self._idle.clear()
        self._traces.clear()
