"""Recording a signal: the inbox row and every intent it makes, in one transaction.

The followers are read first, outside the transaction (:mod:`engine_svc.copy.reads`); inside
it each configuration's daily loss state is rolled forward (which may make it reducing), and
for each of its follower accounts the copy is decided (filter, size, risk gate) and written
as a PENDING or SKIPPED intent.

An exit is sized from the follower's position, so a sell first waits for the outcome of every
earlier intent of the same configuration on the same follower market that is not known yet
(queued, on its way, or UNKNOWN after a timeout or a broker killed mid-order): the entry it
closes may be at the venue. It waits at most until the signal is older than that
configuration's ``max_signal_age`` (then it is skipped as ``stale``, never sized from a position
that may be missing its entry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from engine_svc import metrics
from engine_svc.copy.dispatch import Dispatcher
from engine_svc.copy.reads import FollowerRead, FollowerReader, MarketLookup, Portfolios
from engine_svc.domain import intents as rules
from engine_svc.domain import risk
from engine_svc.domain.decision import (
    Decision,
    SignalAction,
    decide,
    follower_symbols,
    pre_check,
    signal_action,
)
from engine_svc.domain.futures import leader_reduces, reverse_entry
from engine_svc.domain.model import (
    CopyConfig,
    CopyStatus,
    DailyRisk,
    FollowerSnapshot,
    Intent,
    IntentState,
    Portfolio,
    Signal,
    SkipReason,
)
from engine_svc.ports import (
    Clock,
    ConfigStore,
    InboxStore,
    IntentStore,
    Ownership,
    SignalTransactionPort,
)
from meshkit.audit import AuditEvent
from meshkit.codec import format_decimal
from meshkit.faultpoints import afaultpoint
from meshkit.leases import FENCED_WRITES, Fenced

log = logging.getLogger(__name__)

SETTLE_SECONDS = 2.0
"""How long a decision for an account waits for that account's orders still on their way to
the venue (their fills change the position it sizes from); then it sizes from what it has."""
DECISION_FAILED = "decision_failed"
RATE_WINDOW = timedelta(seconds=60)
_DECIDED = frozenset({SignalAction.COPY, SignalAction.SKIP_MIRRORED, SignalAction.REPLACE})
"""The actions that write an intent for each follower account (order mirroring aside)."""
_READ = frozenset({SignalAction.COPY, SignalAction.SKIP_MIRRORED, SignalAction.REPLACE})
"""The actions that decide an order, so read the follower's account and market first."""
_CANCELS = {
    SignalAction.CANCEL: SkipReason.LEADER_ORDER_CANCELLED.value,
    SignalAction.REPLACE: SkipReason.LEADER_ORDER_AMENDED.value,
}
"""The actions that cancel the copies of a leader order, and the reason they record."""
LOSS_PLACES = Decimal("0.000001")
"""The precision of a loss (a fraction) in the audit trail."""
OUTCOME_NOT_KNOWN = (IntentState.PENDING, IntentState.SENT, IntentState.UNKNOWN)
"""States of an earlier intent whose effect on the follower's position is not known yet."""
OUTCOME_POLL_SECONDS = 0.5
"""The longest pause between two looks at the earlier intents an exit waits for."""


class RecorderStore(ConfigStore, InboxStore, IntentStore, Protocol):
    """What recording a signal reads and writes."""


def blocking_exit(
    signal: Signal, configs: list[CopyConfig], earlier: list[Intent], now: datetime
) -> list[Intent]:
    """Return the intents of ``earlier`` that the exit ``signal`` must wait for at ``now``.

    Those of a configuration in ``configs`` that would size this exit now (one that skips it
    anyway, as paused, halted, filtered or stale, waits for nothing: so the wait ends once the
    signal is older than that configuration's ``max_signal_age``), on a market the signal
    maps to for it, made from an earlier signal, and not known yet
    (:data:`OUTCOME_NOT_KNOWN`). A buy waits for none.
    """
    if not leader_reduces(signal):
        return []
    live = {
        c.config_id: c
        for c in configs
        if pre_check(signal, c.status, c.settings.copy_settings, now) is None
    }
    waiting: list[Intent] = []
    for intent in earlier:
        config = live.get(intent.config_id)
        if (
            config is not None
            and intent.state in OUTCOME_NOT_KNOWN
            and intent.sequence < signal.sequence
            and intent.source_id == signal.source_id
            and intent.target_exchange_id in config.target_exchange_ids
            and intent.symbol in follower_symbols(signal.symbol, config.settings.copy_settings)
        ):
            waiting.append(intent)
    return waiting


@dataclass(frozen=True)
class RiskState:
    """A configuration's status and daily loss state as this signal finds them."""

    status: CopyStatus
    reason: str
    daily: DailyRisk
    verdict: risk.DailyLossVerdict | None = None


def roll_daily_risk(config: CopyConfig, portfolios: Portfolios, now: datetime) -> RiskState:
    """Return the configuration's risk state once the day's equities are known.

    A new UTC day starts the day's equity afresh; an active configuration whose follower
    accounts lost more than its daily limit since the day began takes its daily loss action
    (:func:`engine_svc.domain.risk.evaluate_daily_loss`): REDUCING, or PAUSED for
    ``disable`` (the recorder then cancels the resting copies the new status no longer
    allows, reason ``daily_loss_cancelled``). The sells of ``close_all`` are the risk monitor's
    (:mod:`engine_svc.risk_monitor`).
    """
    equities = {
        target: portfolio.equity
        for target in config.target_exchange_ids
        if (portfolio := portfolios.get(target)) is not None and portfolio.equity is not None
    }
    verdict = risk.evaluate_daily_loss(
        config.status,
        config.status_reason,
        config.daily_risk,
        config.settings.risk_limits,
        equities,
        risk.utc_day(now),
    )
    return RiskState(verdict.status, verdict.reason, verdict.daily, verdict)


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
        self.cancel_copies: Callable[[list[tuple[Intent, CopyConfig]]], Awaitable[None]] | None = (
            None
        )
        """Cancels at the venue the copies a leader's cancel or amend marked (the copier's)."""

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
            and signal_action(signal, c.settings.copy_settings.copy_mode) in _READ
        ]
        targets = {t for config in candidates for t in config.target_exchange_ids}
        if not await self._dispatcher.wait_idle(targets, SETTLE_SECONDS):
            log.warning(
                "orders of %s still in flight after %ss; sizing from the venue as is",
                sorted(targets),
                SETTLE_SECONDS,
            )
        await self._await_earlier_outcomes(signal, candidates)
        portfolios, reads = await self._reader.gather_waiting_for_broker(signal, candidates)
        await afaultpoint("engine.before_risk")
        now = self._clock.now()
        created: list[Intent] = []
        cancels: list[tuple[Intent, CopyConfig]] = []
        corrections: list[AuditEvent] = []
        taken: list[risk.DailyLossAction] = []
        async with _fenced_transaction(self._store.signal_transaction, fence) as tx:
            if not await tx.insert_inbox(signal, now):
                return []
            for config in await tx.configs_copying(signal.source_id, signal.sequence):
                state = roll_daily_risk(config, portfolios, now)
                action = signal_action(signal, config.settings.copy_settings.copy_mode)
                for target in config.target_exchange_ids:
                    if action in _CANCELS:  # the leader cancelled or amended a mirrored order
                        copies = await tx.cancel_copies(
                            config.config_id,
                            signal.source_id,
                            signal.opened_sequence,
                            target,
                            _CANCELS[action],
                            now,
                        )
                        cancels += [(copy, config) for copy in copies]
                    if action not in _DECIDED:
                        continue
                    read = reads.get((config.config_id, target))
                    # Only a target read for this signal can get an order: count only for it.
                    recent = await tx.orders_since(target, now - RATE_WINDOW) if read else 0
                    if action is SignalAction.SKIP_MIRRORED and await tx.has_copies(
                        config.config_id, signal.source_id, signal.opened_sequence, target
                    ):  # the copy of the fill's order rests (or was decided) already
                        mapped = config.settings.copy_settings.symbol_map.get(signal.symbol)
                        decision = Decision.skip(mapped or signal.symbol, SkipReason.ORDER_MIRRORED)
                    else:
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
                    opening = reverse_entry(signal) if action is SignalAction.COPY else None
                    market = read.lookup.market if read is not None else None
                    if opening is not None and market is not None and market.derivative:
                        # A leader's reverse: after the close (leg 0), the other side opens.
                        sent = recent + (0 if decision.skipped else 1)
                        second = _decide(
                            opening, config, state.status, portfolios.get(target), read, sent, now
                        )
                        intent = rules.new_intent(
                            str(uuid.uuid4()), config.config_id, signal, target, second, now, leg=1
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
                        if state.verdict is not None and state.verdict.action is not None:
                            taken.append(state.verdict.action)
                            # Resting copies it no longer allows (entries; all when paused).
                            stranded = await tx.cancel_on_status(
                                config.config_id,
                                state.status,
                                SkipReason.DAILY_LOSS_CANCELLED.value,
                            )
                            cancels += [(copy, config) for copy in stranded]
            await tx.advance_source(signal, signal.log_time or now)
            for correction in corrections:
                await tx.append_audit(correction, now)
        await afaultpoint("engine.after_inbox_commit")
        if cancels and self.cancel_copies is not None:
            await self.cancel_copies(cancels)
        for intent in created:
            metrics.INTENTS.labels(intent.state.value).inc()
        for risk_action in taken:
            metrics.RISK_ACTIONS.labels(risk_action.value).inc()
        return created

    async def _await_earlier_outcomes(self, signal: Signal, configs: list[CopyConfig]) -> None:
        # An exit sizes from the follower's position: wait until every earlier intent of
        # its configurations on that market is known (see the module's docstring).
        if not leader_reduces(signal) or not configs:
            return
        pause = 0.05
        announced = False
        while True:
            earlier = await self._store.intents_in_states(
                OUTCOME_NOT_KNOWN, source_ids=[signal.source_id], limit=1000
            )
            waiting = blocking_exit(signal, configs, earlier, self._clock.now())
            if not waiting:
                return
            if not announced:
                announced = True
                log.warning(
                    "exit %s/%s waits for %d earlier copies whose outcome is not known yet",
                    signal.source_id,
                    signal.sequence,
                    len(waiting),
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, OUTCOME_POLL_SECONDS)


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
    assert state.verdict is not None
    return risk_action_event(config, state.verdict)


def risk_action_event(config: CopyConfig, verdict: risk.DailyLossVerdict) -> AuditEvent:
    """Return the audit entry of a daily loss action taken (``risk.daily_loss_action``).

    Its ``after`` holds the new status and reason and the details a reader (the user's
    webhooks) needs: configuration, user, account, action, loss and limit (fractions).
    """
    return AuditEvent(
        config.user_id,
        "copy_config",
        config.config_id,
        risk.AUDIT_ACTION,
        {"status": config.status.value, "status_reason": config.status_reason},
        {
            "status": verdict.status.value,
            "status_reason": verdict.reason,
            "config_id": config.config_id,
            "user_id": config.user_id,
            "account": verdict.account,
            "action": verdict.action.value if verdict.action is not None else "",
            "loss": format_decimal(verdict.loss.quantize(LOSS_PLACES)),
            "limit": format_decimal(verdict.limit),
        },
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
        snapshot = (
            FollowerSnapshot.of(portfolio, market.base, market.symbol)
            if portfolio and market
            else None
        )
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
