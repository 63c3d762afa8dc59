"""The daily loss monitor: protection between leader trades.

The daily loss limit (``risk_limits.max_daily_loss``) is judged on every leader trade
(:mod:`engine_svc.copy.recorder`), but a price can fall with no trade at all. The monitor
re-values, about once a second, every follower account of the configurations that copy with
a daily loss limit, and takes their ``daily_loss_action`` on a breach
(:func:`engine_svc.domain.risk.evaluate_daily_loss`): REDUCING, PAUSED, or REDUCING with the
copied positions sold through the copy path's own durable intents (``close_all``). The move
also cancels the configuration's resting copies it no longer allows (order mirroring): on
REDUCING those that would add exposure (spot buys, futures orders that are not reduce-only),
on PAUSED every one, reason ``daily_loss_cancelled``, through the copy path's cancel (the
marks are durable: the resolver cancels any the venue could not cancel at once).

What it reads, bounded so that the copy path keeps the broker to itself:

- **balances** (``GetPortfolio``) of an account only when its orders changed since the last
  read (its fills move them), when none is held yet, and every ``BALANCE_REFRESH_SECONDS``
  (deposits, withdrawals, trades made by hand);
- **prices** (``GetMarket``'s last price) once per round for each market held, one read per
  (venue, symbol) whatever the number of accounts holding it;
- at most ``CONCURRENCY`` reads at once, each with the broker client's read deadline; a round
  that cannot read an account judges it on what it has (an account never read is not judged).

Only the replica holding a configuration's source acts on it, and what it writes (the status,
the day's start equity, the close orders, the cancel marks and the audit entry, in one
transaction) is fenced by
that lease, as a signal's writes are; the sends go through the same send queues and risk
check at send time (a sell may leave a reducing configuration).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from engine_svc import metrics
from engine_svc.copy.recorder import risk_action_event
from engine_svc.domain import risk
from engine_svc.domain.model import (
    CopyConfig,
    Intent,
    IntentState,
    MarketInfo,
    OrderType,
    Portfolio,
    Side,
    SkipReason,
)
from engine_svc.ports import BrokerPort, Clock, Ownership, RiskMonitorStore
from meshkit.leases import FENCED_WRITES, Fenced
from meshkit.tasks import run_every

log = logging.getLogger(__name__)

BALANCE_REFRESH_SECONDS = 30.0
"""How old an account's balances may get when none of its orders changed."""
CONCURRENCY = 8
"""The most broker reads the monitor has in flight at once."""


STATUS_MAX_AGE_SECONDS = 1.0
"""How old a follower account's portfolio may be for GET /status (about one monitor round)."""
_VALUATIONS_KEPT = 10_000


@dataclass(frozen=True)
class _Valued:
    portfolio: Portfolio
    read_at: float  # monotonic, when the read was asked for
    changes: str  # the account's intent change marker (intent_changes) before the read


class Valuations:
    """The latest portfolio of each follower account, read by the monitor or for a status.

    GET /status values an account from here when the read was asked for at most ``max_age``
    seconds ago and no intent of the account changed since (its fills move the balances;
    ``intent_changes``); otherwise it reads the venue, and concurrent status calls of one
    account share that one read. So a status is never older than a copy it shows, nor than
    ``max_age``, and a configuration's status costs the venue at most one read per account per
    ``max_age`` however often it is asked for.
    """

    def __init__(
        self,
        max_age: float = STATUS_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age
        self._clock = clock
        self._latest: dict[tuple[str, str], _Valued] = {}
        self._reading: dict[tuple[str, str, str], asyncio.Future[Portfolio]] = {}

    def put(
        self, exchange_id: str, user_id: str, portfolio: Portfolio, changes: str, read_at: float
    ) -> None:
        """Keep a portfolio read asked for at ``read_at`` with the account's marker then."""
        key = (exchange_id, user_id)
        known = self._latest.get(key)
        if known is not None and known.read_at > read_at:
            return
        if len(self._latest) >= _VALUATIONS_KEPT:
            now = self._clock()
            self._latest = {
                k: v for k, v in self._latest.items() if now - v.read_at <= self.max_age
            }
        self._latest[key] = _Valued(portfolio, read_at, changes)

    def fresh(self, exchange_id: str, user_id: str, changes: str) -> Portfolio | None:
        """Return the account's portfolio if read within ``max_age`` and unchanged since."""
        known = self._latest.get((exchange_id, user_id))
        if known is None or known.changes != changes:
            return None
        if self._clock() - known.read_at > self.max_age:
            return None
        return known.portfolio

    async def read(
        self,
        exchange_id: str,
        user_id: str,
        changes: str,
        load: Callable[[], Awaitable[Portfolio]],
    ) -> Portfolio:
        """Return a fresh portfolio of the account, or ``load`` one (shared with concurrent
        callers of the same account and marker); ``load``'s error is every waiter's."""
        portfolio = self.fresh(exchange_id, user_id, changes)
        if portfolio is not None:
            return portfolio
        key = (exchange_id, user_id, changes)
        reading = self._reading.get(key)
        if reading is None:
            asked = self._clock()

            async def once() -> Portfolio:
                try:
                    found = await load()
                finally:
                    self._reading.pop(key, None)
                self.put(exchange_id, user_id, found, changes, asked)
                return found

            reading = asyncio.ensure_future(once())
            self._reading[key] = reading
        return await asyncio.shield(reading)


@dataclass
class _Account:
    # What the monitor knows of one follower account.
    exchange_id: str
    user_id: str
    venue: str
    portfolio: Portfolio | None = None
    read_at: float = 0.0
    changes_seen: str = ""


class RiskMonitor:
    """Re-values follower accounts between trades and takes the daily loss action on a breach."""

    def __init__(
        self,
        store: RiskMonitorStore,
        broker: BrokerPort,
        clock: Clock,
        enqueue: Callable[[Iterable[Intent]], None],
        ownership: Ownership | None = None,
        *,
        interval_seconds: float = 1.0,
        balance_refresh_seconds: float = BALANCE_REFRESH_SECONDS,
        concurrency: int = CONCURRENCY,
        on_status_change: Callable[[], None] = lambda: None,
        cancel_copies: Callable[[list[tuple[Intent, CopyConfig]]], Awaitable[None]] | None = None,
        valuations: Valuations | None = None,
    ) -> None:
        self._valuations = valuations  # where GET /status finds the portfolios read here
        self._store = store
        self._broker = broker
        self._clock = clock
        self._enqueue = enqueue
        self._ownership = ownership
        self._interval = interval_seconds
        self._balance_refresh = balance_refresh_seconds
        self._reads = asyncio.Semaphore(concurrency)
        self._on_status_change = on_status_change
        self._cancel_copies = cancel_copies
        self._accounts: dict[str, _Account] = {}
        self._closed: set[tuple[str, str]] = set()

    async def run(self) -> None:
        """Judge every monitored configuration about once per interval, until cancelled."""
        await run_every(self.round, self._interval, "risk monitor")

    async def round(self) -> list[str]:
        """Re-value the accounts once and act on every breach; return the configurations moved."""
        configs = [
            c
            for c in await self._store.daily_loss_configs()
            if c.settings.risk_limits.max_daily_loss is not None and self._holds(c.source_id)
        ]
        wanted: dict[str, _Account] = {}
        for config in configs:
            for target in config.target_exchange_ids:
                account = self._accounts.get(target) or _Account(
                    target, config.user_id, config.target_venues.get(target) or target
                )
                wanted[target] = account
        self._accounts = wanted
        if not wanted:
            return []
        equities = await self._equities(list(wanted.values()))
        acted: list[str] = []
        for config in configs:
            try:
                if await self._judge(config, equities):
                    acted.append(config.config_id)
            except Fenced:
                FENCED_WRITES.labels("engine", "record").inc()
                log.warning("risk action on %s not taken: its source was taken over", config)
        return acted

    def _holds(self, source_id: str) -> bool:
        return self._ownership is None or self._ownership.token(source_id) is not None

    async def _read(self, call: Callable[[], Awaitable[object]]) -> object | None:
        async with self._reads:
            try:
                return await call()
            except Exception as e:
                log.info("risk monitor read failed: %s", getattr(e, "message", e))
                return None

    async def _equities(self, accounts: list[_Account]) -> dict[str, Decimal]:
        # Balances where they may have moved, then one price per (venue, symbol) held.
        changes = await self._store.intent_changes([a.exchange_id for a in accounts])
        now = time.monotonic()
        stale = [
            a
            for a in accounts
            if a.portfolio is None
            or changes.get(a.exchange_id, "") != a.changes_seen
            or now - a.read_at >= self._balance_refresh
        ]

        async def balances(account: _Account) -> None:
            seen = changes.get(account.exchange_id, "")
            asked = time.monotonic()
            portfolio = await self._read(
                lambda: self._broker.get_portfolio(account.exchange_id, account.user_id)
            )
            if isinstance(portfolio, Portfolio):
                account.portfolio, account.read_at, account.changes_seen = (
                    portfolio,
                    time.monotonic(),
                    seen,
                )
                if self._valuations is not None:
                    self._valuations.put(
                        account.exchange_id, account.user_id, portfolio, seen, asked
                    )

        await asyncio.gather(*(balances(a) for a in stale))
        fresh = {a.exchange_id for a in stale}
        markets: dict[tuple[str, str], _Account] = {}
        for account in accounts:
            if account.portfolio is None or account.exchange_id in fresh:
                continue
            for symbol in _held_symbols(account.portfolio):
                markets.setdefault((account.venue, symbol), account)

        async def price(key: tuple[str, str], account: _Account) -> tuple[tuple[str, str], object]:
            symbol = key[1]
            market = await self._read(
                lambda: self._broker.get_market(account.exchange_id, symbol, account.user_id)
            )
            return key, market

        prices: dict[tuple[str, str], Decimal] = {}
        for key, market in await asyncio.gather(*(price(k, a) for k, a in markets.items())):
            if isinstance(market, MarketInfo) and market.last_price and market.last_price > 0:
                prices[key] = market.last_price
        equities: dict[str, Decimal] = {}
        for account in accounts:
            portfolio = account.portfolio
            if portfolio is None:
                continue
            venue = account.venue
            by_asset = {
                symbol.split("/")[0]: prices[(venue, symbol)]
                for symbol in _held_symbols(portfolio)
                if (venue, symbol) in prices
            }
            equity = risk.revalued_equity(portfolio, by_asset)
            if equity is not None:
                equities[account.exchange_id] = equity
        return equities

    async def _judge(self, config: CopyConfig, equities: dict[str, Decimal]) -> bool:
        # One configuration: its verdict, and what it takes written in one fenced transaction.
        now = self._clock.now()
        day = risk.utc_day(now)
        known = {t: equities[t] for t in config.target_exchange_ids if t in equities}
        verdict = risk.evaluate_daily_loss(
            config.status,
            config.status_reason,
            config.daily_risk,
            config.settings.risk_limits,
            known,
            day,
        )
        moves = verdict.status_changes(config.status)
        closes: list[Intent] = []
        complete = False
        if verdict.close_positions and (config.config_id, day) not in self._closed:
            closes, complete = await self._close_orders(config, day, now)
        if not moves and not closes and verdict.daily == config.daily_risk:
            if complete:
                self._closed.add((config.config_id, day))
            return False
        fence: tuple[str, int] | None = None
        if self._ownership is not None:
            token = self._ownership.token(config.source_id)
            if token is None:
                return False
            fence = (config.source_id, token)
        created: list[Intent] = []
        cancels: list[Intent] = []
        transaction = (
            self._store.signal_transaction(fence)
            if fence is not None
            else self._store.signal_transaction()
        )
        async with transaction as tx:
            if not await tx.record_progress(
                config, verdict.status, verdict.reason, verdict.daily, now
            ):
                return False  # it changed meanwhile (a pause, a signal): judged next round
            for intent in closes:
                if await tx.insert_intent(intent):
                    created.append(intent)
            if moves and verdict.action is not None:
                cancels = await tx.cancel_on_status(
                    config.config_id, verdict.status, SkipReason.DAILY_LOSS_CANCELLED.value
                )
            if moves or created:
                await tx.append_audit(risk_action_event(config, verdict), now)
        if complete:
            self._closed = {key for key in self._closed if key[1] == day}  # today's only
            self._closed.add((config.config_id, day))
        for intent in created:
            metrics.INTENTS.labels(intent.state.value).inc()
        self._enqueue(created)
        if cancels and self._cancel_copies is not None:
            await self._cancel_copies([(intent, config) for intent in cancels])
        if moves:
            self._on_status_change()
        if (moves or created) and verdict.action is not None:
            metrics.RISK_ACTIONS.labels(verdict.action.value).inc()
            log.warning(
                "daily loss action %s on %s (%d close orders): %s",
                verdict.action.value,
                config.config_id,
                len(created),
                verdict.reason,
            )
        return bool(moves or created)

    async def _close_orders(
        self, config: CopyConfig, day: str, now: datetime
    ) -> tuple[list[Intent], bool]:
        # The market sells that flatten what the configuration copied, at each of its accounts,
        # and whether everything they need could be read (else the next round tries again).
        orders: list[Intent] = []
        complete = True
        for target in config.target_exchange_ids:
            account = self._accounts.get(target)
            portfolio = account.portfolio if account is not None else None
            fills = await self._store.copied_fills(config.config_id, target)
            positions = risk.copied_positions(fills)
            if positions and portfolio is None:
                complete = False
            for symbol, copied in sorted(positions.items()):
                found = await self._read(
                    functools.partial(self._broker.get_market, target, symbol, config.user_id)
                )
                market = found if isinstance(found, MarketInfo) else None
                if market is None:
                    complete = False
                quantity = risk.close_quantity(copied, portfolio, market)
                if quantity <= 0:
                    continue
                client_order_id, leg = risk.close_key(config.config_id, target, symbol, day)
                orders.append(
                    Intent(
                        intent_id=str(uuid.uuid4()),
                        config_id=config.config_id,
                        source_id=config.source_id,
                        sequence=0,
                        signal_id=f"{risk.CLOSE_SIGNAL_PREFIX}{day}",
                        target_exchange_id=target,
                        leg=leg,
                        client_order_id=client_order_id,
                        symbol=symbol,
                        side=Side.SELL if copied > 0 else Side.BUY,  # a copied short: buy back
                        type=OrderType.MARKET,
                        quantity=quantity,
                        price=None,
                        state=IntentState.PENDING,
                        reason=risk.CLOSE_ALL_REASON,
                        leader_quantity=Decimal(0),
                        leader_price=None,
                        leader_event_time=now,
                        created_at=now,
                        updated_at=now,
                        reduce_only=market is not None and market.derivative,
                    )
                )
        return orders, complete


def _held_symbols(portfolio: Portfolio) -> list[str]:
    # The markets that price what the account holds: each valued asset against its quote.
    return [
        f"{item.asset}/{portfolio.quote_currency}"
        for item in portfolio.balances
        if item.value is not None and item.total > 0 and item.asset != portfolio.quote_currency
    ]
