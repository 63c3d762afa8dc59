"""Crash-only start-up: prove with the venues what the previous run left unknown, then resume.

Runs before any new signal is taken: :func:`reconcile_at_start` looks up every order left
without a final outcome, :func:`recover` queues every intent left PENDING.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection

from engine_svc import metrics
from engine_svc.copy.dispatch import Dispatcher
from engine_svc.copy.resolver import Resolver
from engine_svc.domain import intents as rules
from engine_svc.domain.model import Intent, IntentState
from engine_svc.ports import IntentStore
from meshkit import errors

log = logging.getLogger(__name__)


async def reconcile_at_start(
    store: IntentStore,
    resolver: Resolver,
    *,
    broker_wait_seconds: float,
    rounds: int = 3,
    round_pause: float = 1.0,
    source_ids: Collection[str] | None = None,
) -> dict[str, str]:
    """Ask the venues about every order the previous run left without a final outcome.

    ``source_ids`` limits it to those sources (a replica taking some over). Each SENT,
    UNKNOWN or resting order is looked up by its client order id and its state
    applied, exactly as the resolver does. An order whose lookup fails is asked again in up
    to ``rounds`` rounds, ``round_pause`` seconds apart and growing; while the broker itself
    cannot be reached the rounds wait for it (at most ``broker_wait_seconds``) instead of
    counting.

    Returns
    -------
    dict[str, str]
        For each configuration with an order the venue could not be asked about, why (the
        caller halts it: queries and cancels only, until the user resumes it).
    """
    unresolved = await store.intents_in_states(
        rules.UNRESOLVED, source_ids=source_ids, limit=100_000
    )
    todo = {i.intent_id for i in unresolved}
    if not todo:
        return {}
    log.info("reconciling %d orders with the venues before taking new signals", len(todo))
    started = time.monotonic()
    failures: dict[str, tuple[Intent, errors.ServiceError]] = {}
    done_rounds = 0
    pause = round_pause
    while todo:
        intents = [
            i
            for i in await store.intents_in_states(
                rules.UNRESOLVED, source_ids=source_ids, limit=100_000
            )
            if i.intent_id in todo
        ]
        results = await asyncio.gather(*(resolver.resolve_bounded(i) for i in intents))
        failures = {
            i.intent_id: (i, e) for i, e in zip(intents, results, strict=True) if e is not None
        }
        todo = set(failures)
        if not todo:
            break
        broker_down = all(e.from_transport for _, e in failures.values())
        waited = time.monotonic() - started
        if broker_down and waited < broker_wait_seconds:
            # Our own broker is restarting: nothing was asked; wait for it, not a round.
            metrics.BROKER_WAITS.inc()
            await asyncio.sleep(min(pause, 2.0))
            pause = min(pause * 2, 2.0)
            continue
        done_rounds += 1
        if done_rounds >= rounds:
            break
        await asyncio.sleep(round_pause * done_rounds)
    unproven: dict[str, str] = {}
    for intent, error in failures.values():
        account = intent.target_exchange_id
        unproven.setdefault(
            intent.config_id,
            f"order {intent.client_order_id} on account {account} could not be looked up"
            f" ({error.reason.lower() or 'unavailable'}: {error.message[:120]})",
        )
    log.info(
        "start-up reconciliation done in %.1fs: %d orders the venues could not answer for",
        time.monotonic() - started,
        len(failures),
    )
    return unproven


async def recover(
    store: IntentStore, dispatcher: Dispatcher, source_ids: Collection[str] | None = None
) -> int:
    """Queue every PENDING intent found at start-up or takeover (a crash before the send)."""
    pending = await store.intents_in_states(
        [IntentState.PENDING], source_ids=source_ids, limit=100_000
    )
    dispatcher.enqueue_pending(pending)
    return len(pending)
