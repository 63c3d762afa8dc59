"""Recording what became of an intent: the venue's answer, a refusal, an unknown outcome, a skip.

Every change is a compare-and-set on the state the intent was read in, and counted in the
engine's metrics only when it happened.
"""

from __future__ import annotations

import logging
from datetime import datetime

from engine_svc import metrics
from engine_svc.domain import intents as rules
from engine_svc.domain.model import (
    CANCELED_AT_VENUE,
    Intent,
    IntentState,
    SkipReason,
    VenueOrder,
)
from engine_svc.ports import Clock, IntentStore

log = logging.getLogger(__name__)

S = IntentState


class Outcomes:
    """Writes an intent's outcome to the store and counts it."""

    def __init__(self, store: IntentStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def apply(self, intent: Intent, order: VenueOrder, venue: str, now: datetime) -> bool:
        """Apply the venue's view of the order to the intent; return whether it changed."""
        state, reason = rules.outcome_of(intent, order.status)
        if reason == CANCELED_AT_VENUE:
            # A cancel nobody asked for, as far as this copy of the intent knows: a stop or the
            # kill switch may have asked since it was read. Only the stored intent can tell.
            stored = await self._store.get_intent(intent.intent_id)
            if stored is not None and stored.cancel_wanted:
                intent = stored
                state, reason = rules.outcome_of(intent, order.status)
        if not rules.can_transition(intent.state, state):
            log.warning("ignoring %s for intent %s in %s", state, intent.intent_id, intent.state)
            return False
        changes: dict[str, object] = {
            "state": state,
            "venue_order_id": order.venue_order_id or intent.venue_order_id,
            "filled_quantity": order.filled_quantity,
            "average_price": order.average_price,
            "not_found_count": 0,
            "updated_at": now,
        }
        first_proof = intent.state in (S.SENT, S.UNKNOWN) and rules.venue_has_order(state)
        if first_proof and not intent.latency_ms:
            changes["latency_ms"] = max(
                (now - intent.leader_event_time).total_seconds() * 1000, 0.0
            )
        if reason is not None:
            changes["reason"] = reason
        if not await self._store.update_intent(intent.intent_id, intent.state, **changes):
            return False
        if state is not intent.state:
            metrics.INTENTS.labels(state.value).inc()
        if first_proof:
            metrics.COPY_TRADES_EXECUTED.labels(venue).inc()
        if state is S.REJECTED and intent.state is not S.REJECTED:
            metrics.COPY_TRADES_FAILED.labels(venue, "venue_rejected").inc()
        return True

    async def unknown(self, intent: Intent, reason: str) -> None:
        """Record that the send's outcome is unknown (the resolver will look the order up)."""
        if await self._store.update_intent(
            intent.intent_id,
            intent.state,
            state=S.UNKNOWN,
            reason=reason,
            updated_at=self._clock.now(),
        ):
            metrics.INTENTS.labels(S.UNKNOWN.value).inc()

    async def rejected(self, intent: Intent, venue: str, reason: str, message: str) -> None:
        """Record a definitive refusal of the order (by the broker or the venue)."""
        text = f"{reason}: {message}"[:200] if message and message != reason else reason
        if await self._store.update_intent(
            intent.intent_id,
            intent.state,
            state=S.REJECTED,
            reason=text,
            updated_at=self._clock.now(),
        ):
            metrics.INTENTS.labels(S.REJECTED.value).inc()
            metrics.COPY_TRADES_FAILED.labels(venue, metrics.failure_reason(reason)).inc()

    async def skipped(self, intent: Intent, reason: SkipReason, detail: str = "") -> bool:
        """Record that the intent will never leave (its configuration may not send it, its
        re-send would come too late, or the broker refused it before any venue call);
        return whether it changed. ``detail`` says more, after the reason."""
        if await self._store.update_intent(
            intent.intent_id,
            intent.state,
            state=S.SKIPPED,
            reason=f"{reason.value}: {detail}"[:200] if detail else reason.value,
            updated_at=self._clock.now(),
        ):
            metrics.INTENTS.labels(S.SKIPPED.value).inc()
            return True
        return False

    async def rate_limited(self, intent: Intent, reason: str) -> None:
        """Put a SENT intent the broker refused for its rate limit back to PENDING."""
        await self._store.update_intent(
            intent.intent_id,
            S.SENT,
            state=S.PENDING,
            reason=reason,
            updated_at=self._clock.now(),
        )
