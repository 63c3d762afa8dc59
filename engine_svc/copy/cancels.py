"""Cancelling copied orders that may rest at a venue (stop and kill switch)."""

from __future__ import annotations

import logging

from engine_svc.copy.outcomes import Outcomes
from engine_svc.copy.sender import Sender
from engine_svc.domain import intents as rules
from engine_svc.domain.model import CopyConfig, Intent, IntentState
from engine_svc.ports import BrokerPort, Clock, IntentStore
from meshkit import errors

log = logging.getLogger(__name__)


class Canceller:
    """Asks the venues to cancel a configuration's resting orders and records the answers."""

    def __init__(
        self,
        store: IntentStore,
        broker: BrokerPort,
        clock: Clock,
        outcomes: Outcomes,
        sender: Sender,
    ) -> None:
        self._store = store
        self._broker = broker
        self._clock = clock
        self._outcomes = outcomes
        self._sender = sender

    async def cancel_resting(self, config: CopyConfig) -> int:
        """Cancel the configuration's copied orders that may rest at a venue; return the count.

        Each is first marked ``cancel_wanted`` (durably): one whose cancel fails now (the
        broker or venue down), or whose send is still under way, is cancelled by the resolver
        whenever it finds the order resting at the venue.
        """
        await self._store.want_cancel(config.config_id, rules.RESTING)
        cancelled = 0
        intents = await self._store.intents_in_states(
            rules.RESTING,
            config_id=config.config_id,
            limit=10_000,
        )
        for intent in intents:
            if self._sender.in_flight(intent.intent_id):
                continue
            if await self.cancel_one(intent, config):
                cancelled += 1
        return cancelled

    async def cancel_copies(self, copies: list[tuple[Intent, CopyConfig]]) -> None:
        """Cancel mirrored copies whose leader order was cancelled or amended (order mirroring).

        They are marked ``cancel_wanted`` already: one whose send is still under way, or whose
        cancel fails now, is cancelled by the resolver once the venue shows it resting.
        """
        for intent, config in copies:
            if self._sender.in_flight(intent.intent_id):
                continue
            try:
                await self.cancel_one(intent, config)
            except Exception as e:  # the resolver retries it: the mark is durable
                log.warning("cancelling copy %s failed: %s", intent.client_order_id, e)

    async def cancel_one(self, intent: Intent, config: CopyConfig) -> bool:
        """Ask the venue to cancel; apply what it answers. True when the order is cancelled."""
        try:
            order = await self._broker.cancel_order(
                intent.target_exchange_id,
                intent.client_order_id,
                intent.symbol,
                config.user_id,
            )
        except errors.ServiceError as e:
            log.info("cancelling %s failed: %s", intent.client_order_id, e.reason)
            return False
        await self._outcomes.apply(
            intent, order, config.venue_of(intent.target_exchange_id), self._clock.now()
        )
        return rules.state_from_order(order.status) is IntentState.CANCELED
