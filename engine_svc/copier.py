"""The copy path: signal → intents (one transaction) → orders → resolved outcomes.

``Copier.record`` writes the inbox row and every intent of a signal in one transaction,
after reading the followers' accounts and markets outside it. ``Copier.place`` sends one
PENDING intent (SENT is committed before the broker call). ``Copier.resolve`` looks up every
order whose outcome is not final and re-sends, with the same client order id, only what the
venue has proved it never received.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Generic, TypeVar

from engine_svc import metrics
from engine_svc.domain import correlation, gate, risk
from engine_svc.domain import intents as rules
from engine_svc.domain.decision import (
    QUOTE_EQUIVALENTS,
    Decision,
    decide,
    follower_symbols,
    pre_check,
)
from engine_svc.domain.model import (
    Candle,
    CopyConfig,
    CopyStatus,
    FollowerSnapshot,
    Intent,
    IntentState,
    MarketInfo,
    OrderSide,
    Portfolio,
    Signal,
    SkipReason,
    VenueOrder,
)
from engine_svc.ports import BrokerPort, Clock
from engine_svc.store import EngineStore
from meshkit import errors
from meshkit.audit import AuditEvent
from meshkit.faultpoints import afaultpoint
from meshkit.tasks import cancel_and_wait

log = logging.getLogger("engine_svc.copier")

# How long a decision for an account waits for that account's orders still on their way to the
# venue (their fills change the position it sizes from); then it sizes from what the venue has.
SETTLE_SECONDS = 2.0

S = IntentState
DECISION_FAILED = "decision_failed"
_DEFINITIVE = (
    errors.InvalidArgument,
    errors.FailedPrecondition,
    errors.NotFound,
    errors.Unauthenticated,
    errors.PermissionDenied,
    errors.Unimplemented,
)
_PROVES_EXISTENCE = frozenset({"DUPLICATE_CLIENT_ORDER_ID"})
_ABSENT = (errors.NotFound, errors.InvalidArgument)
"""Answers of GetMarket and ListCandles that mean "the venue has no such market"."""
RATE_WINDOW = timedelta(seconds=60)


def _reason(error: errors.ServiceError) -> str:
    return error.reason.lower()


class BrokerUnreachable(Exception):
    """Our own broker could not be reached (down or restarting): no venue said anything."""


# While False (the default), a follower read that fails because the broker itself is down
# raises BrokerUnreachable, so that the signal waits for the broker instead of being skipped.
# The last attempt (after BROKER_WAIT_SECONDS) sets it True: what is unreadable then skips.
_ACCEPT_UNREADABLE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "accept_unreadable", default=False
)
BROKER_WAIT_SECONDS = 120.0
"""The longest one signal waits for an unreachable broker; its age skips it sooner (60 s)."""


def _broker_down(error: Exception) -> bool:
    # Only a transport failure (no service answered) means the broker is down; the broker's
    # own answers about a venue it cannot reach (VENUE_UNAVAILABLE) are definitive here.
    return (
        isinstance(error, errors.Unavailable)
        and error.from_transport
        and not _ACCEPT_UNREADABLE.get()
    )


V = TypeVar("V")


class TtlCache(Generic[V]):
    """Values by key for a while; an absence (``None``) is cached too."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[tuple[str, str], tuple[float, V | None]] = {}

    def get(self, exchange_id: str, symbol: str) -> tuple[bool, V | None]:
        """Return ``(hit, value)``."""
        entry = self._entries.get((exchange_id, symbol))
        if entry is None or time.monotonic() - entry[0] > self._ttl:
            return False, None
        return True, entry[1]

    def put(self, exchange_id: str, symbol: str, value: V | None) -> None:
        """Remember the value (or its absence)."""
        if self._ttl > 0:
            self._entries[(exchange_id, symbol)] = (time.monotonic(), value)


@dataclass(frozen=True)
class MarketLookup:
    """The follower's market for a trade, or why there is none."""

    market: MarketInfo | None
    problem: SkipReason = SkipReason.MARKET_UNAVAILABLE


@dataclass(frozen=True)
class FollowerRead:
    """What was read about one (configuration, follower account) before the transaction."""

    lookup: MarketLookup
    correlations: dict[str, Decimal] | None = None


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

    async def wait_idle(self, exchange_ids: Iterable[str], timeout: float) -> bool:
        """Wait until no order of these accounts waits or is being sent; False on timeout.

        Sizing reads the follower's portfolio at the venue; an order still on its way there
        is not in it yet, so the next decision for that account waits for its answer.
        """
        events = [self._idle[e] for e in exchange_ids if self._waiting.get(e)]
        if not events:
            return True
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            _, pending = await asyncio.wait(waiters, timeout=timeout)
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
            self._workers[exchange_id] = asyncio.create_task(
                self._work(exchange_id, queue),
                name=f"engine-dispatch-{exchange_id}",
            )
        self._queued.add(intent_id)
        self._waiting[exchange_id] = self._waiting.get(exchange_id, 0) + 1
        self._idle.setdefault(exchange_id, asyncio.Event()).clear()
        queue.put_nowait(intent_id)

    def _done(self, exchange_id: str, intent_id: str) -> None:
        self._queued.discard(intent_id)
        self._waiting[exchange_id] -= 1
        if not self._waiting[exchange_id]:
            self._idle[exchange_id].set()

    async def _work(self, exchange_id: str, queue: asyncio.Queue[str]) -> None:
        while True:
            intent_id = await queue.get()
            try:
                while True:
                    try:
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


class Copier:
    """Turns signals into intents and intents into orders; resolves unknown outcomes."""

    def __init__(
        self,
        store: EngineStore,
        broker: BrokerPort,
        clock: Clock,
        *,
        resend_lag_seconds: float = 90.0,
        market_cache_seconds: float = 30.0,
        candle_cache_seconds: float = 300.0,
        resolver_concurrency: int = 8,
        broker_wait_seconds: float = BROKER_WAIT_SECONDS,
    ) -> None:
        self._store = store
        self._broker_wait = broker_wait_seconds
        self._broker = broker
        self._clock = clock
        self._lag = resend_lag_seconds
        self._markets: TtlCache[MarketInfo] = TtlCache(market_cache_seconds)
        self._candles: TtlCache[list[Candle]] = TtlCache(candle_cache_seconds)
        self._in_flight: set[str] = set()
        self._resolver_slots = asyncio.Semaphore(resolver_concurrency)
        self.dispatcher = Dispatcher(self.place)

    # ------------------------------------------------------------------ signal → intents

    async def _portfolio(self, exchange_id: str, user_id: str) -> Portfolio | None:
        try:
            return await self._broker.get_portfolio(exchange_id, user_id)
        except Exception as e:
            if _broker_down(e):
                raise BrokerUnreachable(str(e)) from e
            log.warning("portfolio of %s unreadable: %s", exchange_id, getattr(e, "message", e))
            return None

    async def _market_for(
        self, exchange_id: str, symbol: str, user_id: str, *, fresh: bool = False
    ) -> tuple[bool, MarketInfo | None]:
        # (definitive, market): not definitive when the venue could not be asked.
        hit, market = self._markets.get(exchange_id, symbol)
        if hit and not (fresh and market is not None):
            return True, market
        try:
            market = await self._broker.get_market(exchange_id, symbol, user_id)
        except _ABSENT:
            self._markets.put(exchange_id, symbol, None)
            return True, None
        except Exception as e:
            if _broker_down(e):
                raise BrokerUnreachable(str(e)) from e
            log.warning(
                "market %s at %s unreadable: %s", symbol, exchange_id, getattr(e, "message", e)
            )
            return False, None
        self._markets.put(exchange_id, symbol, market)
        return True, market

    async def _market(
        self, exchange_id: str, candidates: list[str], user_id: str, *, fresh: bool
    ) -> MarketLookup:
        for symbol in candidates:
            definitive, market = await self._market_for(exchange_id, symbol, user_id, fresh=fresh)
            if market is not None:
                return MarketLookup(market)
            if not definitive:
                return MarketLookup(None, SkipReason.MARKET_UNAVAILABLE)
        return MarketLookup(None, SkipReason.SYMBOL_NOT_ON_VENUE)

    async def _candles_of(
        self, exchange_id: str, symbols: list[str], user_id: str
    ) -> tuple[bool, list[Candle] | None]:
        # (definitive, candles) of the first of ``symbols`` the venue has.
        for symbol in symbols:
            hit, candles = self._candles.get(exchange_id, symbol)
            if not hit:
                try:
                    candles = await self._broker.list_candles(
                        exchange_id,
                        symbol,
                        correlation.TIMEFRAME,
                        correlation.CANDLES,
                        user_id,
                    )
                except _ABSENT:
                    candles = None
                except Exception as e:
                    if _broker_down(e):
                        raise BrokerUnreachable(str(e)) from e
                    log.warning(
                        "candles of %s at %s unreadable: %s",
                        symbol,
                        exchange_id,
                        getattr(e, "message", e),
                    )
                    return False, None
                self._candles.put(exchange_id, symbol, candles)
            if candles is not None:
                return True, candles
        return True, None

    async def _correlations(
        self,
        exchange_id: str,
        user_id: str,
        market: MarketInfo,
        portfolio: Portfolio,
    ) -> dict[str, Decimal] | None:
        # The correlation of ``market`` with each held symbol; None when unknown. A held asset
        # without a market against the same (or an equivalent) quote at the venue cannot be
        # measured and is left out; anything unreadable, or too short a history, makes the
        # answer unknown, and the gate then refuses the new position (it fails closed).
        held = correlation.held_assets(
            portfolio, market.base, market.quote, market.min_notional or Decimal(0)
        )
        if not held:
            return {}
        quotes = [market.quote, *(q for q in QUOTE_EQUIVALENTS if q != market.quote)]
        _, own = await self._candles_of(exchange_id, [market.symbol], user_id)
        if own is None:
            return None
        found: dict[str, Decimal] = {}
        for asset in held:
            definitive, candles = await self._candles_of(
                exchange_id, [f"{asset}/{quote}" for quote in quotes], user_id
            )
            if not definitive:
                return None
            if candles is None:
                continue  # not traded there against a dollar: nothing to measure
            r = correlation.return_correlation(own, candles)
            if r is None:
                return None
            found[f"{asset}/{market.quote}"] = r
        return found

    def _needs_correlations(
        self,
        signal: Signal,
        config: CopyConfig,
        lookup: MarketLookup,
        portfolio: Portfolio | None,
    ) -> bool:
        if config.settings.risk_limits.correlation_limit is None or signal.side is OrderSide.SELL:
            return False
        market = lookup.market
        if market is None or portfolio is None:
            return False
        price = signal.price if signal.price and signal.price > 0 else market.last_price
        if price is None or price <= 0:
            return False
        return gate.opens_position(FollowerSnapshot.of(portfolio, market.base), market, price)

    async def _gather(
        self,
        signal: Signal,
        configs: list[CopyConfig],
        now: datetime,
    ) -> tuple[dict[str, Portfolio | None], dict[tuple[str, str], FollowerRead]]:
        wanted: dict[str, list[CopyConfig]] = {}
        for config in configs:
            if pre_check(signal, config.status, config.settings.copy_settings, now) is None:
                for target in config.target_exchange_ids:
                    wanted.setdefault(target, []).append(config)
        fresh = signal.price is None or signal.price <= 0

        async def one(
            target: str, owners: list[CopyConfig]
        ) -> tuple[str, Portfolio | None, dict[tuple[str, str], FollowerRead]]:
            user_id = owners[0].user_id
            portfolio_task = asyncio.ensure_future(self._portfolio(target, user_id))
            lookups: dict[str, MarketLookup] = {}
            try:
                for config in owners:
                    candidates = follower_symbols(signal.symbol, config.settings.copy_settings)
                    lookups[config.config_id] = await self._market(
                        target, candidates, config.user_id, fresh=fresh
                    )
            except BaseException:
                await cancel_and_wait([portfolio_task])
                raise
            portfolio = await portfolio_task
            found: dict[tuple[str, str], FollowerRead] = {}
            for config in owners:
                lookup = lookups[config.config_id]
                correlations = None
                if self._needs_correlations(signal, config, lookup, portfolio):
                    assert lookup.market is not None and portfolio is not None
                    correlations = await self._correlations(
                        target, config.user_id, lookup.market, portfolio
                    )
                found[(config.config_id, target)] = FollowerRead(lookup, correlations)
            return target, portfolio, found

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(t, owners)) for t, owners in wanted.items()]
        except* BrokerUnreachable as unreachable:
            raise unreachable.exceptions[0] from None
        results = [task.result() for task in tasks]
        portfolios = {target: portfolio for target, portfolio, _ in results}
        reads: dict[tuple[str, str], FollowerRead] = {}
        for _, _, found in results:
            reads.update(found)
        return portfolios, reads

    def _decide(
        self,
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

    async def _gather_waiting_for_broker(
        self, signal: Signal, candidates: list[CopyConfig]
    ) -> tuple[dict[str, Portfolio | None], dict[tuple[str, str], FollowerRead]]:
        # A broker restart must not turn a leader's trade into skipped copies: the reads are
        # tried again until the broker answers. The signal's age bounds the wait (a stale one
        # needs no read and is skipped as stale), and BROKER_WAIT_SECONDS bounds it in any case.
        started = time.monotonic()
        delay = 0.1
        while True:
            try:
                return await self._gather(signal, candidates, self._clock.now())
            except BrokerUnreachable as e:
                waited = time.monotonic() - started
                if waited >= self._broker_wait:
                    log.warning(
                        "broker still unreachable after %.0fs; deciding signal %s/%s without it",
                        waited,
                        signal.source_id,
                        signal.sequence,
                    )
                    token = _ACCEPT_UNREADABLE.set(True)
                    try:
                        return await self._gather(signal, candidates, self._clock.now())
                    finally:
                        _ACCEPT_UNREADABLE.reset(token)
                if delay == 0.1:
                    log.warning(
                        "broker unreachable (%s); signal %s/%s waits for it",
                        e,
                        signal.source_id,
                        signal.sequence,
                    )
                metrics.BROKER_WAITS.inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def record(self, signal: Signal) -> list[Intent]:
        """Write the signal and every intent it makes in one transaction.

        Returns
        -------
        list[Intent]
            The intents written now, PENDING and SKIPPED; empty when the inbox held the
            signal already (a redelivery changes nothing).
        """
        if await self._store.has_signal(signal.source_id, signal.sequence):
            return []
        now = self._clock.now()
        candidates = [
            c
            for c in await self._store.configs_of_source(signal.source_id)
            if c.start_sequence < signal.sequence
        ]
        targets = {t for config in candidates for t in config.target_exchange_ids}
        if not await self.dispatcher.wait_idle(targets, SETTLE_SECONDS):
            log.warning(
                "orders of %s still in flight after %ss; sizing from the venue as is",
                sorted(targets),
                SETTLE_SECONDS,
            )
        portfolios, reads = await self._gather_waiting_for_broker(signal, candidates)
        await afaultpoint("engine.before_risk")
        now = self._clock.now()
        created: list[Intent] = []
        corrections: list[AuditEvent] = []
        async with self._store.signal_transaction() as tx:
            if not await tx.insert_inbox(signal, now):
                return []
            for config in await tx.configs_copying(signal.source_id, signal.sequence):
                status, reason, daily = config.status, config.status_reason, config.daily_risk
                equities = {
                    target: portfolio.equity
                    for target in config.target_exchange_ids
                    if (portfolio := portfolios.get(target)) is not None
                    and portfolio.equity is not None
                }
                limit = config.settings.risk_limits.max_daily_loss
                if status.copies and equities and limit is not None:
                    daily = risk.roll(daily, risk.utc_day(now), equities)
                    breached = risk.breached_accounts(daily, equities, limit)
                    if status is CopyStatus.ACTIVE and breached:
                        status = CopyStatus.REDUCING
                        reason = risk.breach_reason(daily, equities, limit, breached)
                for target in config.target_exchange_ids:
                    read = reads.get((config.config_id, target))
                    # Only a target read for this signal can get an order: count only for it.
                    recent = await tx.orders_since(target, now - RATE_WINDOW) if read else 0
                    decision = self._decide(
                        signal, config, status, portfolios.get(target), read, recent, now
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
                if (status, reason, daily) != (
                    config.status,
                    config.status_reason,
                    config.daily_risk,
                ):
                    moved = await tx.record_progress(config, status, reason, daily, now)
                    if moved and status is not config.status:
                        # An automatic correction: the daily loss limit was breached.
                        corrections.append(
                            AuditEvent(
                                config.user_id,
                                "copy_config",
                                config.config_id,
                                "reduce",
                                {
                                    "status": config.status.value,
                                    "status_reason": config.status_reason,
                                },
                                {"status": status.value, "status_reason": reason},
                            )
                        )
            await tx.advance_source(signal, signal.log_time or now)
            for correction in corrections:
                await tx.append_audit(correction, now)
        await afaultpoint("engine.after_inbox_commit")
        for intent in created:
            metrics.INTENTS.labels(intent.state.value).inc()
        return created

    def enqueue(self, intents: Iterable[Intent]) -> None:
        """Queue the PENDING intents for sending, each on its account's queue."""
        for intent in intents:
            if intent.state is S.PENDING:
                self.dispatcher.enqueue(intent.target_exchange_id, intent.intent_id)

    async def recover(self) -> int:
        """Queue every PENDING intent found at start-up (a crash between commit and send)."""
        pending = await self._store.intents_in_states([S.PENDING], limit=100_000)
        self.enqueue(pending)
        return len(pending)

    # ------------------------------------------------------------------ intents → orders

    async def _skip_for_status(self, intent: Intent, reason: SkipReason) -> None:
        if await self._store.update_intent(
            intent.intent_id,
            intent.state,
            state=S.SKIPPED,
            reason=reason.value,
            updated_at=self._clock.now(),
        ):
            metrics.INTENTS.labels(S.SKIPPED.value).inc()

    async def _mark_sent_or_skip(self, intent: Intent) -> tuple[bool, CopyConfig | None]:
        # SENT only if the configuration may send it now (checked in the same statement);
        # otherwise the configuration is read again to record why it will never leave.
        now = self._clock.now()
        if await self._store.mark_sent(intent, now):
            return True, await self._store.get_config(intent.config_id)
        config = await self._store.get_config(intent.config_id)
        if config is None:
            return False, None
        blocked = rules.send_block(intent.side, config.status)
        if blocked is not None:
            await self._skip_for_status(intent, blocked)
        return False, config

    async def place(self, intent_id: str) -> float | None:
        """Send one PENDING intent; return the delay before a retry if rate limited, else None."""
        intent = await self._store.get_intent(intent_id)
        if intent is None or intent.state is not S.PENDING:
            return None
        sent_ok, config = await self._mark_sent_or_skip(intent)
        if not sent_ok or config is None:
            return None
        now = self._clock.now()
        sent = dataclasses.replace(
            intent,
            state=S.SENT,
            attempts=intent.attempts + 1,
            last_sent_at=now,
            not_found_count=0,
        )
        metrics.INTENTS.labels(S.SENT.value).inc()
        retry_after = await self._send(sent, config)
        await afaultpoint("engine.fanout_after_k")
        return retry_after

    async def _send(self, intent: Intent, config: CopyConfig) -> float | None:
        venue = config.venue_of(intent.target_exchange_id)
        self._in_flight.add(intent.intent_id)
        try:
            try:
                order = await self._broker.place_order(intent, config.user_id)
            except errors.ResourceExhausted as e:
                await self._store.update_intent(
                    intent.intent_id,
                    S.SENT,
                    state=S.PENDING,
                    reason=_reason(e),
                    updated_at=self._clock.now(),
                )
                return max(e.retry_after or 1.0, 0.05)
            except _DEFINITIVE as e:
                if e.reason in _PROVES_EXISTENCE:
                    await self._become_unknown(intent, _reason(e))
                    return None
                await self._reject(intent, venue, _reason(e), e.message)
                return None
            except errors.AlreadyExists as e:
                await self._become_unknown(intent, _reason(e))
                return None
            except errors.ServiceError as e:
                await afaultpoint("engine.after_broker_timeout")
                await self._become_unknown(intent, _reason(e))
                return None
            except Exception:
                log.exception("placing %s failed in transport", intent.client_order_id)
                await self._become_unknown(intent, "outcome_unknown")
                return None
            await afaultpoint("engine.after_broker_ack")
            answered = self._clock.now()
            seconds = (answered - intent.leader_event_time).total_seconds()
            metrics.TRADE_EXECUTION_TIME.observe(max(seconds, 0.0))
            await self._apply(intent, order, venue, answered)
            return None
        finally:
            self._in_flight.discard(intent.intent_id)

    async def _become_unknown(self, intent: Intent, reason: str) -> None:
        if await self._store.update_intent(
            intent.intent_id,
            intent.state,
            state=S.UNKNOWN,
            reason=reason,
            updated_at=self._clock.now(),
        ):
            metrics.INTENTS.labels(S.UNKNOWN.value).inc()

    async def _reject(self, intent: Intent, venue: str, reason: str, message: str) -> None:
        text = f"{reason}: {message}"[:200] if message and message != reason else reason
        if await self._store.update_intent(
            intent.intent_id,
            intent.state,
            state=S.REJECTED,
            reason=text,
            updated_at=self._clock.now(),
        ):
            metrics.INTENTS.labels(S.REJECTED.value).inc()
            metrics.COPY_TRADES_FAILED.labels(venue, reason).inc()

    async def _apply(self, intent: Intent, order: VenueOrder, venue: str, now: datetime) -> bool:
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

    # ------------------------------------------------------------------ resolver

    async def resolve(self) -> None:
        """Look up every order whose outcome is not final, once; queue PENDING ones left behind.

        A PENDING intent nobody holds (its send failed before reaching the broker, or the
        consumer stopped between commit and queueing) is queued again here, so recovery is
        continuous and not only at start-up.
        """
        for pending in await self._store.intents_in_states([S.PENDING], limit=500):
            if pending.intent_id not in self._in_flight:
                self.dispatcher.enqueue(pending.target_exchange_id, pending.intent_id)
        intents = [
            i
            for i in await self._store.intents_in_states(rules.UNRESOLVED, limit=500)
            if i.intent_id not in self._in_flight
        ]
        await asyncio.gather(*(self._resolve_bounded(i) for i in intents))

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
        except errors.NotFound:
            await self._not_found(intent, config)
            return None
        except errors.ServiceError as e:
            log.info("looking up %s failed: %s", intent.client_order_id, e.reason)
            return e
        await self._apply(intent, order, venue, self._clock.now())
        if intent.cancel_wanted and rules.state_from_order(order.status) in rules.OPEN_AT_VENUE:
            # A cancel asked for earlier did not happen (it failed, or came while the order
            # was on its way): the venue shows the order resting, so cancel it now.
            current = await self._store.get_intent(intent.intent_id)
            if current is not None and current.intent_id not in self._in_flight:
                await self._cancel_one(current, config)
        return None

    async def reconcile_at_start(
        self,
        *,
        rounds: int = 3,
        round_pause: float = 1.0,
    ) -> dict[str, str]:
        """Ask the venues about every order the previous run left without a final outcome.

        Runs once at start-up, before any new signal is taken (crash-only restart): each SENT,
        UNKNOWN or resting order is looked up by its client order id and its state applied,
        exactly as the resolver does. An order whose lookup fails is asked again in up to
        ``rounds`` rounds, ``round_pause`` seconds apart and growing; while the broker itself
        cannot be reached the rounds wait for it (at most the broker wait) instead of counting.

        Returns
        -------
        dict[str, str]
            For each configuration with an order the venue could not be asked about, why (the
            caller halts it: queries and cancels only, until the user resumes it).
        """
        unresolved = await self._store.intents_in_states(rules.UNRESOLVED, limit=100_000)
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
                for i in await self._store.intents_in_states(rules.UNRESOLVED, limit=100_000)
                if i.intent_id in todo
            ]
            results = await asyncio.gather(*(self._resolve_bounded(i) for i in intents))
            failures = {i.intent_id: (i, e) for i, e in zip(intents, results) if e is not None}
            todo = set(failures)
            if not todo:
                break
            broker_down = all(e.from_transport for _, e in failures.values())
            waited = time.monotonic() - started
            if broker_down and waited < self._broker_wait:
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

    async def _resolve_bounded(self, intent: Intent) -> errors.ServiceError | None:
        async with self._resolver_slots:
            try:
                return await self._resolve_one(intent)
            except asyncio.CancelledError:
                raise
            except errors.ServiceError as e:
                return e
            except Exception as e:
                log.exception("resolving intent %s failed", intent.intent_id)
                return errors.ServiceError(str(e))

    async def _not_found(self, intent: Intent, config: CopyConfig) -> None:
        if intent.state not in (S.SENT, S.UNKNOWN):
            return  # venues drop old orders from lookups; what we know stays
        now = self._clock.now()
        count = intent.not_found_count + 1
        if not rules.may_resend(count, intent.last_sent_at, now, self._lag):
            await self._store.update_intent(
                intent.intent_id,
                intent.state,
                not_found_count=count,
                updated_at=now,
            )
            return
        if intent.intent_id in self._in_flight:
            return
        sent_ok, current = await self._mark_sent_or_skip(intent)
        if not sent_ok or current is None:
            return
        config = current
        log.warning("re-sending %s: the venue proved it never received it", intent.client_order_id)
        sent = dataclasses.replace(
            intent,
            state=S.SENT,
            attempts=intent.attempts + 1,
            last_sent_at=now,
            not_found_count=0,
        )
        metrics.INTENTS.labels(S.SENT.value).inc()
        retry_after = await self._send(sent, config)
        if retry_after is not None:
            self.dispatcher.enqueue(intent.target_exchange_id, intent.intent_id)

    # ------------------------------------------------------------------ cancels

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
            if intent.intent_id in self._in_flight:
                continue
            if await self._cancel_one(intent, config):
                cancelled += 1
        return cancelled

    async def _cancel_one(self, intent: Intent, config: CopyConfig) -> bool:
        # Ask the venue to cancel; apply what it answers. True when the order is cancelled.
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
        await self._apply(
            intent, order, config.venue_of(intent.target_exchange_id), self._clock.now()
        )
        return rules.state_from_order(order.status) is S.CANCELED

    async def stop(self) -> None:
        """Stop sending; what was queued stays in the store for the next start."""
        await self.dispatcher.stop()
