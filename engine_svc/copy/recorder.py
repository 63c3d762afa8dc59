"""Recording a signal: the inbox row and every intent it makes, in one transaction.

The followers are read first, outside the transaction (:mod:`engine_svc.copy.reads`); inside
it each configuration's daily loss state is rolled forward (which may make it reducing), and
for each of its follower accounts the copy is decided (filter, size, risk gate) and written
as a PENDING or SKIPPED intent.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from engine_svc import metrics
from engine_svc.copy.dispatch import Dispatcher
from engine_svc.copy.reads import FollowerRead, FollowerReader, MarketLookup, Portfolios
from engine_svc.domain import intents as rules
from engine_svc.domain import risk
from engine_svc.domain.decision import Decision, decide
from engine_svc.domain.model import (
    CopyConfig,
    CopyStatus,
    DailyRisk,
    FollowerSnapshot,
    Intent,
    Portfolio,
    Signal,
)
from engine_svc.ports import Clock, ConfigStore, InboxStore, Ownership, SignalTransactionPort
from meshkit.audit import AuditEvent
from meshkit.faultpoints import afaultpoint
from meshkit.leases import FENCED_WRITES, Fenced

log = logging.getLogger(__name__)

SETTLE_SECONDS = 2.0
"""How long a decision for an account waits for that account's orders still on their way to
the venue (their fills change the position it sizes from); then it sizes from what it has."""
DECISION_FAILED = "decision_failed"
RATE_WINDOW = timedelta(seconds=60)


class RecorderStore(ConfigStore, InboxStore, Protocol):
    """What recording a signal reads and writes."""


@dataclass(frozen=True)
class RiskState:
    """A configuration's status and daily loss state as this signal finds them."""

    status: CopyStatus
    reason: str
    daily: DailyRisk


def roll_daily_risk(config: CopyConfig, portfolios: Portfolios, now: datetime) -> RiskState:
    """Return the configuration's risk state once the day's equities are known.

    A new UTC day starts the day's equity afresh; an active configuration whose follower
    accounts lost more than its daily limit since the day began becomes REDUCING.
    """
    status, reason, daily = config.status, config.status_reason, config.daily_risk
    equities = {
        target: portfolio.equity
        for target in config.target_exchange_ids
        if (portfolio := portfolios.get(target)) is not None and portfolio.equity is not None
    }
    limit = config.settings.risk_limits.max_daily_loss
    if status.copies and equities and limit is not None:
        daily = risk.roll(daily, risk.utc_day(now), equities)
        breached = risk.breached_accounts(daily, equities, limit)
        if status is CopyStatus.ACTIVE and breached:
            status = CopyStatus.REDUCING
            reason = risk.breach_reason(daily, equities, limit, breached)
    return RiskState(status, reason, daily)


class Recorder:
    """Turns a signal into intents, in one transaction with its inbox row."""

    def __init__(
        self,
        store: RecorderStore,
        reader: FollowerReader,
        dispatcher: Dispatcher,
        clock: Clock,
        ownership: Ownership | None = None,
    ) -> None:
        self._store = store
        self._reader = reader
        self._dispatcher = dispatcher
        self._clock = clock
        self._ownership = ownership

    async def record(self, signal: Signal) -> list[Intent]:
        """Write the signal and every intent it makes in one transaction.

        Returns
        -------
        list[Intent]
            The intents written now, PENDING and SKIPPED; empty when the inbox held the
            signal already (a redelivery changes nothing).

        Raises
        ------
        meshkit.leases.Fenced
            With leases, when this replica does not hold the signal's source (any more):
            nothing is written.
        """
        fence: tuple[str, int] | None = None
        if self._ownership is not None:
            token = self._ownership.token(signal.source_id)
            if token is None:
                raise Fenced(signal.source_id, 0)
            fence = (signal.source_id, token)
        if await self._store.has_signal(signal.source_id, signal.sequence):
            return []
        candidates = [
            c
            for c in await self._store.configs_of_source(signal.source_id)
            if c.start_sequence < signal.sequence
        ]
        targets = {t for config in candidates for t in config.target_exchange_ids}
        if not await self._dispatcher.wait_idle(targets, SETTLE_SECONDS):
            log.warning(
                "orders of %s still in flight after %ss; sizing from the venue as is",
                sorted(targets),
                SETTLE_SECONDS,
            )
        portfolios, reads = await self._reader.gather_waiting_for_broker(signal, candidates)
        await afaultpoint("engine.before_risk")
        now = self._clock.now()
        created: list[Intent] = []
        corrections: list[AuditEvent] = []
        async with _fenced_transaction(self._store.signal_transaction, fence) as tx:
            if not await tx.insert_inbox(signal, now):
                return []
            for config in await tx.configs_copying(signal.source_id, signal.sequence):
                state = roll_daily_risk(config, portfolios, now)
                for target in config.target_exchange_ids:
                    read = reads.get((config.config_id, target))
                    # Only a target read for this signal can get an order: count only for it.
                    recent = await tx.orders_since(target, now - RATE_WINDOW) if read else 0
                    decision = _decide(
                        signal, config, state.status, portfolios.get(target), read, recent, now
                    )
                    intent = rules.new_intent(
                        str(uuid.uuid4()),
                        config.config_id,
                        signal,
                        target,
                        decision,
                        now,
                    )
                    if await tx.insert_intent(intent):
                        created.append(intent)
                if (state.status, state.reason, state.daily) != (
                    config.status,
                    config.status_reason,
                    config.daily_risk,
                ):
                    moved = await tx.record_progress(
                        config, state.status, state.reason, state.daily, now
                    )
                    if moved and state.status is not config.status:
                        corrections.append(_reduce_event(config, state))
            await tx.advance_source(signal, signal.log_time or now)
            for correction in corrections:
                await tx.append_audit(correction, now)
        await afaultpoint("engine.after_inbox_commit")
        for intent in created:
            metrics.INTENTS.labels(intent.state.value).inc()
        return created


@contextlib.asynccontextmanager
async def _fenced_transaction(
    open_transaction: Callable[..., contextlib.AbstractAsyncContextManager[SignalTransactionPort]],
    fence: tuple[str, int] | None,
) -> AsyncIterator[SignalTransactionPort]:
    # The signal's transaction, under the lease when there is one; a stale lease is counted.
    try:
        transaction = open_transaction(fence) if fence is not None else open_transaction()
        async with transaction as tx:
            yield tx
    except Fenced:
        FENCED_WRITES.labels("engine", "record").inc()
        raise


def _reduce_event(config: CopyConfig, state: RiskState) -> AuditEvent:
    # An automatic correction: the daily loss limit was breached.
    return AuditEvent(
        config.user_id,
        "copy_config",
        config.config_id,
        "reduce",
        {"status": config.status.value, "status_reason": config.status_reason},
        {"status": state.status.value, "status_reason": state.reason},
    )


def _decide(
    signal: Signal,
    config: CopyConfig,
    status: CopyStatus,
    portfolio: Portfolio | None,
    read: FollowerRead | None,
    orders_last_minute: int,
    now: datetime,
) -> Decision:
    settings = config.settings
    lookup = read.lookup if read is not None else MarketLookup(None)
    market = lookup.market
    try:
        snapshot = FollowerSnapshot.of(portfolio, market.base) if portfolio and market else None
        return decide(
            signal,
            status,
            settings.risk_limits,
            settings.copy_settings,
            snapshot,
            market,
            now,
            market_problem=lookup.problem,
            orders_last_minute=orders_last_minute,
            correlations=read.correlations if read is not None else None,
        )
    except Exception:
        log.exception(
            "deciding signal %s/%s for %s failed",
            signal.source_id,
            signal.sequence,
            config.config_id,
        )
        return Decision(symbol=signal.symbol, quantity=Decimal(0), reason=DECISION_FAILED)
