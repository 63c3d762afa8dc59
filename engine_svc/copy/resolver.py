"""The resolver: looks up every order whose outcome is not final, and re-sends only the proved lost.

An order the venue answers for gets the venue's state. One the venue keeps saying it does not
have is sent again, with the same client order id, once :func:`engine_svc.domain.intents.
may_resend` (the one re-send rule) allows it; the store only selects the candidates (the
intents in :data:`~engine_svc.domain.intents.UNRESOLVED` states) and makes the SENT transition
atomic (:meth:`engine_svc.copy.sender.Sender.start_send`).

A send whose outcome became unknown (a timeout, a broker killed mid-order) is not left to the
next round: :meth:`Resolver.chase` asks the venue at once, then again at growing delays
(:data:`CHASE_DELAYS`, longer when the broker asks for a pause), so an order the venue has is
known in seconds. A re-send that the resend rule allows but that would copy a trade older than
its configuration's ``max_signal_age`` is never sent: the intent ends SKIPPED
(``stale_on_resend``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from prometheus_client import Histogram

from engine_svc import metrics
from engine_svc.copy.cancels import Canceller
from engine_svc.copy.dispatch import Dispatcher
from engine_svc.copy.outcomes import Outcomes
from engine_svc.copy.sender import Sender
from engine_svc.domain import intents as rules
from engine_svc.domain.model import CopyConfig, Intent, IntentState, SkipReason
from engine_svc.ports import BrokerPort, Clock, CopyStore, Ownership
from meshkit import errors
from meshkit.tasks import cancel_and_wait

log = logging.getLogger(__name__)

S = IntentState

CHASE_DELAYS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
"""The pauses before each lookup of an order whose send just became unknown (the first at
once); after the last one the resolver's rounds go on looking it up. A broker that refuses a
lookup for now (RESOURCE_EXHAUSTED, the venue's rate limit) lengthens the pause to what it
asks for."""
_OUTCOME_UNKNOWN = (S.SENT, S.UNKNOWN)


class Resolver:
    """Finds out what became of orders whose outcome is not final."""

    def __init__(
        self,
        store: CopyStore,
        broker: BrokerPort,
        clock: Clock,
        outcomes: Outcomes,
        sender: Sender,
        canceller: Canceller,
        dispatcher: Dispatcher,
        *,
        resend_lag_seconds: float,
        concurrency: int,
        ownership: Ownership | None = None,
    ) -> None:
        self._store = store
        self._broker = broker
        self._clock = clock
        self._outcomes = outcomes
        self._sender = sender
        self._canceller = canceller
        self._dispatcher = dispatcher
        self._lag = resend_lag_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._ownership = ownership
        self._chasing: set[str] = set()
        self._chases: set[asyncio.Task[None]] = set()

    def chase(self, intent_id: str) -> None:
        """Look up at once, then at growing delays, an order whose send became unknown."""
        if intent_id in self._chasing:
            return
        self._chasing.add(intent_id)
        task = asyncio.create_task(self._chase(intent_id), name=f"engine-chase-{intent_id}")
        self._chases.add(task)
        task.add_done_callback(self._chases.discard)

    async def _chase(self, intent_id: str) -> None:
        try:
            for delay in CHASE_DELAYS:
                await asyncio.sleep(delay)
                intent = await self._store.get_intent(intent_id)
                if intent is None or intent.state not in _OUTCOME_UNKNOWN:
                    return  # resolved (here, by a round, or by a re-send's answer)
                if self._sender.in_flight(intent_id):
                    continue  # being re-sent right now: its answer will tell
                error = await self.resolve_bounded(intent)
                if isinstance(error, errors.ResourceExhausted) and error.retry_after:
                    await asyncio.sleep(error.retry_after)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("looking up intent %s after its send failed", intent_id)
        finally:
            self._chasing.discard(intent_id)

    async def stop(self) -> None:
        """Cancel the lookups under way; the rounds of the next start take them up."""
        await cancel_and_wait(list(self._chases))
        self._chases.clear()
        self._chasing.clear()

    def _sources(self) -> set[str] | None:
        # With leases, only the sources this replica holds; without, every one.
        return self._ownership.sources() if self._ownership is not None else None

    async def resolve(self) -> None:
        """Look up every order whose outcome is not final, once; queue PENDING ones left behind.

        A PENDING intent nobody holds (its send failed before reaching the broker, or the
        consumer stopped between commit and queueing) is queued again here, so recovery is
        continuous and not only at start-up.
        """
        sources = self._sources()
        for pending in await self._store.intents_in_states(
            [S.PENDING], source_ids=sources, limit=500
        ):
            if not self._sender.in_flight(pending.intent_id):
                self._dispatcher.enqueue(pending.target_exchange_id, pending.intent_id)
        intents = [
            i
            for i in await self._store.intents_in_states(
                rules.UNRESOLVED, source_ids=sources, limit=500
            )
            if not self._sender.in_flight(i.intent_id) and i.intent_id not in self._chasing
        ]
        await asyncio.gather(*(self.resolve_bounded(i) for i in intents))

    async def resolve_bounded(self, intent: Intent) -> errors.ServiceError | None:
        """Look one order up (a bounded number at a time); return why the lookup failed."""
        async with self._slots:
            try:
                return await self._resolve_one(intent)
            except asyncio.CancelledError:
                raise
            except errors.ServiceError as e:
                return e
            except Exception as e:
                log.exception("resolving intent %s failed", intent.intent_id)
                return errors.ServiceError(str(e))

    async def _resolve_one(self, intent: Intent) -> errors.ServiceError | None:
        # Look the order up once; return the failure when the venue (or broker) did not answer.
        config = await self._store.get_config(intent.config_id)
        if config is None:
            return None
        venue = config.venue_of(intent.target_exchange_id)
        try:
            order = await self._broker.get_order(
                intent.target_exchange_id,
                intent.client_order_id,
                intent.symbol,
                config.user_id,
            )
        except errors.NotFound as e:
            await self._not_found(intent, config, e.metadata.get("never_placed") == "true")
            return None
        except errors.ServiceError as e:
            log.info("looking up %s failed: %s", intent.client_order_id, e.reason)
            return e
        now = self._clock.now()
        if (
            await self._outcomes.apply(intent, order, venue, now)
            and intent.state in _OUTCOME_UNKNOWN
            and rules.state_from_order(order.status) is not S.UNKNOWN
        ):
            _observe_resolved(intent, now, metrics.UNKNOWN_RESOLVE_SECONDS.labels("venue"))
        if intent.cancel_wanted and rules.state_from_order(order.status) in rules.OPEN_AT_VENUE:
            # A cancel asked for earlier did not happen (it failed, or came while the order
            # was on its way): the venue shows the order resting, so cancel it now.
            current = await self._store.get_intent(intent.intent_id)
            if current is not None and not self._sender.in_flight(current.intent_id):
                await self._canceller.cancel_one(current, config)
        return None

    async def _not_found(self, intent: Intent, config: CopyConfig, never_placed: bool) -> None:
        # The venue says it has no such order: count it, and re-send once that is proved,
        # unless the copy would now come too late (then it is skipped, never sent).
        if intent.state not in _OUTCOME_UNKNOWN:
            return  # venues drop old orders from lookups; what we know stays
        now = self._clock.now()
        count = intent.not_found_count + 1
        if not rules.may_resend(
            count,
            intent.last_sent_at,
            now,
            self._lag,
            fenced_never_placed=never_placed and self._sent_by_a_fenced_holder(intent),
        ):
            await self._store.update_intent(
                intent.intent_id,
                intent.state,
                not_found_count=count,
                updated_at=now,
            )
            return
        max_age = config.settings.copy_settings.max_signal_age_seconds
        if rules.resend_is_stale(intent, now, max_age):
            if await self._outcomes.skipped(intent, SkipReason.STALE_ON_RESEND):
                _observe_resolved(intent, now, metrics.UNKNOWN_RESOLVE_SECONDS.labels("stale"))
                log.warning(
                    "not re-sending %s: the venue never had it, and its leader trade is older"
                    " than max_signal_age (%ss)",
                    intent.client_order_id,
                    max_age,
                )
            return
        _observe_resolved(intent, now, metrics.UNKNOWN_RESOLVE_SECONDS.labels("resent"))
        if await self._sender.resend(intent) is not None:
            self._dispatcher.enqueue(intent.target_exchange_id, intent.intent_id)

    def _sent_by_a_fenced_holder(self, intent: Intent) -> bool:
        # Sent under a lease (so the broker recorded its attempts) whose token this replica
        # has since superseded: the takeover fenced the broker at its own token before any
        # lookup, so the broker's "never placed" is final.
        if self._ownership is None or intent.sent_token <= 0:
            return False
        token = self._ownership.token(intent.source_id)
        return token is not None and intent.sent_token < token


def _observe_resolved(intent: Intent, now: datetime, series: Histogram) -> None:
    # From the send whose answer was lost to what settled it (``series``: the outcome's).
    if intent.last_sent_at is not None:
        series.observe(max((now - intent.last_sent_at).total_seconds(), 0.0))
