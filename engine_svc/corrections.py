"""The CorrectPosition use-case: a correction intent through the risk gate and the intent path.

Reconciliation (recon, on the user's behalf, with ``auto_correct``) asks for it when a
follower's position in a symbol is off what the copies should have left. The engine reads the
account and the market, lets the risk gate decide the order (:mod:`engine_svc.domain.
corrections`), writes the intent and its audit entry in one transaction, and queues it on the
account's send queue like any copy. The client order id is derived from (configuration,
account, symbol, reconciliation id): a repeated request returns the intent already written.
Orders only ever leave through this durable path; recon never calls the broker's PlaceOrder.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any, Protocol

from engine_svc import metrics
from engine_svc.domain import corrections as rules
from engine_svc.domain.intents import UNRESOLVED
from engine_svc.domain.model import CopyConfig, FollowerSnapshot, Intent, IntentState
from engine_svc.ports import BrokerPort, Clock, SignalTransactionPort
from meshkit import errors
from meshkit.audit import AuditEvent
from meshkit.codec import format_decimal

log = logging.getLogger(__name__)

RATE_WINDOW = timedelta(seconds=60)
AUDIT_OBJECT = "copy_config"
IN_FLIGHT = frozenset(UNRESOLVED | {IntentState.PENDING})
"""States of a correction that may still change the position."""


class CorrectionStore(Protocol):
    """What writing a correction reads and writes."""

    async def intent_by_client_order_id(self, client_order_id: str) -> Intent | None:
        """Return the intent with ``client_order_id``."""
        ...

    async def intents_in_states(
        self,
        states: Iterable[IntentState],
        *,
        config_id: str | None = None,
        source_ids: Any = None,
        limit: int = 1000,
    ) -> list[Intent]:
        """Return intents in ``states`` (of one configuration), oldest first."""
        ...

    def signal_transaction(
        self, fence: tuple[str, int] | None = None
    ) -> AbstractAsyncContextManager[SignalTransactionPort]:
        """Open a transaction in which intents and audit entries are written."""
        ...


class Corrector:
    """Writes correction intents and queues them for sending.

    Parameters
    ----------
    store
        The intents.
    broker
        The follower's account and market, read before the gate.
    clock
        The current time.
    enqueue
        Queues PENDING intents on their account's send queue (the copier's).
    owned
        Returns the caller's configuration (NOT_FOUND for anyone else's).
    """

    def __init__(
        self,
        store: CorrectionStore,
        broker: BrokerPort,
        clock: Clock,
        enqueue: Callable[[Iterable[Intent]], None],
        owned: Callable[[str, str], Awaitable[CopyConfig]],
    ) -> None:
        self._store = store
        self._broker = broker
        self._clock = clock
        self._enqueue = enqueue
        self._owned = owned

    async def correct(self, user_id: str, correction: rules.Correction) -> Intent:
        """Write (or find) the correction intent; return it, PENDING and queued, or SKIPPED.

        Raises
        ------
        meshkit.errors.InvalidArgument
            The account is not one of the configuration's targets.
        meshkit.errors.FailedPrecondition
            ``CORRECTION_IN_FLIGHT``: an earlier correction of this account and symbol may
            still change the position.
        """
        config = await self._owned(user_id, correction.config_id)
        if correction.target_exchange_id not in config.target_exchange_ids:
            raise errors.invalid(
                "target_exchange_id", "is not a follower account of the configuration"
            )
        client_order_id, _ = rules.correction_key(
            config.config_id,
            correction.target_exchange_id,
            correction.symbol,
            correction.reconciliation_id,
        )
        existing = await self._store.intent_by_client_order_id(client_order_id)
        if existing is not None:
            return existing
        for intent in await self._store.intents_in_states(IN_FLIGHT, config_id=config.config_id):
            if (
                rules.is_correction(intent)
                and intent.target_exchange_id == correction.target_exchange_id
                and intent.symbol == correction.symbol
            ):
                raise errors.FailedPrecondition(
                    f"correction {intent.client_order_id} of {correction.symbol} at this"
                    f" account is still {intent.state.value}; reconcile again once it is done",
                    reason="CORRECTION_IN_FLIGHT",
                    metadata={"client_order_id": intent.client_order_id},
                )
        portfolio = await self._broker.get_portfolio(correction.target_exchange_id, user_id)
        try:
            market = await self._broker.get_market(
                correction.target_exchange_id, correction.symbol, user_id
            )
        except errors.NotFound:
            market = None
        snapshot = FollowerSnapshot.of(portfolio, market.base) if market is not None else None
        now = self._clock.now()
        async with self._store.signal_transaction() as tx:
            recent = await tx.orders_since(correction.target_exchange_id, now - RATE_WINDOW)
            decision = rules.decide(correction, config, snapshot, market, recent)
            intent = rules.new_intent(str(uuid.uuid4()), correction, config, decision, now)
            inserted = await tx.insert_intent(intent)
            if inserted:
                await tx.append_audit(_event(config, intent), now)
        if not inserted:
            found = await self._store.intent_by_client_order_id(client_order_id)
            if found is None:
                raise errors.Aborted("the correction was written meanwhile; ask again")
            return found
        metrics.INTENTS.labels(intent.state.value).inc()
        log.warning(
            "correction %s of %s at %s: %s %s (%s)",
            intent.client_order_id,
            intent.symbol,
            intent.target_exchange_id,
            intent.side.value,
            format_decimal(intent.quantity),
            intent.reason or intent.state.value,
        )
        self._enqueue([intent])
        return intent


def _event(config: CopyConfig, intent: Intent) -> AuditEvent:
    # The correction, audited with the configuration it corrects.
    return AuditEvent(
        config.user_id,
        AUDIT_OBJECT,
        config.config_id,
        "correct_position",
        None,
        {
            "reconciliation_id": intent.signal_id.removeprefix(rules.SIGNAL_PREFIX),
            "target_exchange_id": intent.target_exchange_id,
            "symbol": intent.symbol,
            "side": intent.side.value,
            "asked_quantity": format_decimal(intent.leader_quantity),
            "quantity": format_decimal(intent.quantity),
            "client_order_id": intent.client_order_id,
            "state": intent.state.value,
            "reason": intent.reason,
        },
    )
