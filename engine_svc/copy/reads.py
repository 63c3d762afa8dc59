"""What a signal's decisions read about the followers before its transaction.

The followers' portfolios, the markets a trade maps to at their venues and the candles the
correlation limit measures, read from the broker outside the signal's transaction, with
short-lived caches for markets and candles. While our own broker cannot be reached the reads
wait for it (see :meth:`FollowerReader.gather_waiting_for_broker`), so that a broker restart
does not turn a leader's trade into skipped copies; and a read the broker does not answer in
time (a broker slowed by load) is asked again while the signal is young enough to copy
(``max_signal_age_seconds``), so that load delays a copy and never skips it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Generic, TypeVar

from engine_svc import metrics
from engine_svc.domain import correlation, gate
from engine_svc.domain.decision import QUOTE_EQUIVALENTS, follower_symbols, pre_check
from engine_svc.domain.futures import counterpart, leader_reduces
from engine_svc.domain.model import (
    Candle,
    CopyConfig,
    FollowerSnapshot,
    MarketInfo,
    Portfolio,
    Signal,
    SkipReason,
)
from engine_svc.ports import BrokerPort, Clock
from meshkit import errors
from meshkit.tasks import cancel_and_wait

log = logging.getLogger(__name__)

BROKER_WAIT_SECONDS = 120.0
"""The longest one signal waits for an unreachable broker; its age skips it sooner (60 s)."""

_ABSENT = (errors.NotFound, errors.InvalidArgument)
"""Answers of GetMarket and ListCandles that mean "the venue has no such market"."""

MAX_PORTFOLIO_BATCH = 10_000
"""The most accounts one ``GetPortfolios`` call reads (the broker's limit)."""

SLOW_READ_PAUSE = 0.1
"""The first pause before a read the broker did not answer in time is asked again (doubling,
up to 2 s)."""


class BrokerUnreachable(Exception):
    """Our own broker could not be reached (down or restarting): no venue said anything."""


def _broker_down(error: Exception, *, accept_unreadable: bool) -> bool:
    # Only a transport failure (no service answered) means the broker is down; the broker's
    # own answers about a venue it cannot reach (VENUE_UNAVAILABLE) are definitive here.
    # With ``accept_unreadable`` (the last attempt) nothing counts as "down": it is skipped.
    return isinstance(error, errors.Unavailable) and error.from_transport and not accept_unreadable


def _broker_slow(error: Exception) -> float | None:
    # How long to pause before asking again when the broker is slow, not wrong: a read it did
    # not answer within its deadline (a timeout, no answer at all), or one it refused for now
    # (RESOURCE_EXHAUSTED, with the pause it asked for). None: the error is an answer.
    if isinstance(error, errors.OutcomeUnknown) and error.from_transport:
        return 0.0
    if isinstance(error, errors.ResourceExhausted):
        return error.retry_after or 0.0
    return None


V = TypeVar("V")
T = TypeVar("T")


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


Portfolios = dict[str, Portfolio | None]
"""Each follower account's portfolio, ``None`` when it could not be read."""
Reads = dict[tuple[str, str], FollowerRead]
"""What was read for each (configuration id, follower account) a signal may copy to."""


class FollowerReader:
    """Reads the followers' portfolios, markets and candles from the broker, with caches."""

    def __init__(
        self,
        broker: BrokerPort,
        clock: Clock,
        *,
        market_cache_seconds: float,
        candle_cache_seconds: float,
        broker_wait_seconds: float = BROKER_WAIT_SECONDS,
    ) -> None:
        self._broker = broker
        self._clock = clock
        self._broker_wait = broker_wait_seconds
        self._portfolios = PortfolioBatches(broker)
        self._markets: TtlCache[MarketInfo] = TtlCache(market_cache_seconds)
        self._candles: TtlCache[list[Candle]] = TtlCache(candle_cache_seconds)

    async def gather_waiting_for_broker(
        self, signal: Signal, candidates: list[CopyConfig]
    ) -> tuple[Portfolios, Reads]:
        """Read what the signal's decisions need, waiting while our broker is unreachable.

        A broker restart must not turn a leader's trade into skipped copies: the reads are
        tried again until the broker answers. The signal's age bounds the wait (a stale one
        needs no read and is skipped as stale), and the broker wait bounds it in any case:
        the last attempt accepts what is unreadable (and the decisions skip it).
        """
        started = time.monotonic()
        delay = 0.1
        while True:
            try:
                return await self.gather(signal, candidates, self._clock.now())
            except BrokerUnreachable as e:
                waited = time.monotonic() - started
                if waited >= self._broker_wait:
                    log.warning(
                        "broker still unreachable after %.0fs; deciding signal %s/%s without it",
                        waited,
                        signal.source_id,
                        signal.sequence,
                    )
                    return await self.gather(
                        signal, candidates, self._clock.now(), accept_unreadable=True
                    )
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

    async def gather(
        self,
        signal: Signal,
        configs: list[CopyConfig],
        now: datetime,
        *,
        accept_unreadable: bool = False,
    ) -> tuple[Portfolios, Reads]:
        """Read, for every follower account the signal may copy to, what its decision needs.

        Unless ``accept_unreadable``, a read that fails because our broker itself is down
        raises :class:`BrokerUnreachable` (so that the signal waits for the broker); with it,
        what is unreadable is left unknown and the decision skips it.
        """
        wanted: dict[str, list[CopyConfig]] = {}
        for config in configs:
            if pre_check(signal, config.status, config.settings.copy_settings, now) is None:
                for target in config.target_exchange_ids:
                    wanted.setdefault(target, []).append(config)
        fresh = signal.price is None or signal.price <= 0

        async def one(target: str, owners: list[CopyConfig]) -> tuple[str, Portfolio | None, Reads]:
            user_id = owners[0].user_id
            # A slow broker delays the copy while the signal is fresh enough for one of the
            # configurations reading this account; never longer than the broker wait.
            young = max(c.settings.copy_settings.max_signal_age_seconds for c in owners)
            patience = _Patience(
                self._clock,
                signal.event_time + timedelta(seconds=young),
                time.monotonic() + self._broker_wait,
            )
            portfolio_task = asyncio.ensure_future(
                self._portfolio(target, user_id, accept_unreadable, patience)
            )
            lookups: dict[str, MarketLookup] = {}
            try:
                for config in owners:
                    candidates = follower_symbols(signal.symbol, config.settings.copy_settings)
                    lookups[config.config_id] = await self._market(
                        target, candidates, config.user_id, fresh, accept_unreadable, patience
                    )
            except BaseException:
                await cancel_and_wait([portfolio_task])
                raise
            portfolio = await portfolio_task
            found: Reads = {}
            for config in owners:
                lookup = lookups[config.config_id]
                correlations = None
                if _needs_correlations(signal, config, lookup, portfolio):
                    assert lookup.market is not None and portfolio is not None
                    correlations = await self._correlations(
                        target,
                        config.user_id,
                        lookup.market,
                        portfolio,
                        accept_unreadable,
                        patience,
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
        reads: Reads = {}
        for _, _, found in results:
            reads.update(found)
        return portfolios, reads

    async def _portfolio(
        self, exchange_id: str, user_id: str, accept_unreadable: bool, patience: _Patience
    ) -> Portfolio | None:
        try:
            return await patience.read(lambda: self._portfolios.read(exchange_id, user_id))
        except Exception as e:
            if _broker_down(e, accept_unreadable=accept_unreadable):
                raise BrokerUnreachable(str(e)) from e
            log.warning("portfolio of %s unreadable: %s", exchange_id, getattr(e, "message", e))
            return None

    async def _market_for(
        self,
        exchange_id: str,
        symbol: str,
        user_id: str,
        fresh: bool,
        accept_unreadable: bool,
        patience: _Patience,
    ) -> tuple[bool, MarketInfo | None]:
        # (definitive, market): not definitive when the venue could not be asked.
        hit, market = self._markets.get(exchange_id, symbol)
        if hit and not (fresh and market is not None):
            return True, market
        try:
            market = await patience.read(
                lambda: self._broker.get_market(exchange_id, symbol, user_id)
            )
        except _ABSENT:
            self._markets.put(exchange_id, symbol, None)
            return True, None
        except Exception as e:
            if _broker_down(e, accept_unreadable=accept_unreadable):
                raise BrokerUnreachable(str(e)) from e
            log.warning(
                "market %s at %s unreadable: %s", symbol, exchange_id, getattr(e, "message", e)
            )
            return False, None
        self._markets.put(exchange_id, symbol, market)
        return True, market

    async def _market(
        self,
        exchange_id: str,
        candidates: list[str],
        user_id: str,
        fresh: bool,
        accept_unreadable: bool,
        patience: _Patience,
    ) -> MarketLookup:
        for symbol in candidates:
            definitive, market = await self._market_for(
                exchange_id, symbol, user_id, fresh, accept_unreadable, patience
            )
            if market is not None:
                return MarketLookup(market)
            if not definitive:
                return MarketLookup(None, SkipReason.MARKET_UNAVAILABLE)
        # No such market: if the venue has the market of the other type (a spot trade at a
        # futures venue, or the reverse), say so rather than that the symbol is missing.
        other = counterpart(candidates[0]) if candidates else ""
        if other and other not in candidates:
            _, market = await self._market_for(
                exchange_id, other, user_id, False, accept_unreadable, patience
            )
            if market is not None:
                return MarketLookup(None, SkipReason.MARKET_TYPE_MISMATCH)
        return MarketLookup(None, SkipReason.SYMBOL_NOT_ON_VENUE)

    async def _candles_of(
        self,
        exchange_id: str,
        symbols: list[str],
        user_id: str,
        accept_unreadable: bool,
        patience: _Patience,
    ) -> tuple[bool, list[Candle] | None]:
        # (definitive, candles) of the first of ``symbols`` the venue has.
        for symbol in symbols:
            hit, candles = self._candles.get(exchange_id, symbol)
            if not hit:
                try:
                    candles = await patience.read(
                        functools.partial(
                            self._broker.list_candles,
                            exchange_id,
                            symbol,
                            correlation.TIMEFRAME,
                            correlation.CANDLES,
                            user_id,
                        )
                    )
                except _ABSENT:
                    candles = None
                except Exception as e:
                    if _broker_down(e, accept_unreadable=accept_unreadable):
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
        accept_unreadable: bool,
        patience: _Patience,
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
        _, own = await self._candles_of(
            exchange_id, [market.symbol], user_id, accept_unreadable, patience
        )
        if own is None:
            return None
        found: dict[str, Decimal] = {}
        for asset in held:
            definitive, candles = await self._candles_of(
                exchange_id,
                [f"{asset}/{quote}" for quote in quotes],
                user_id,
                accept_unreadable,
                patience,
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


class PortfolioBatches:
    """Portfolio reads asked for in one turn of the event loop, sent as one batched call.

    A signal asks for every follower account's portfolio at once (each account's read starts
    in the same turn of the loop), and so do the accounts a slow broker did not answer in
    time when they ask again after the same pause: each group is one ``GetPortfolios`` call
    (:meth:`engine_svc.ports.BrokerPort.get_portfolios`) instead of a call per account, and
    each account still gets its own answer or error as soon as the broker streams it.
    """

    def __init__(self, broker: BrokerPort) -> None:
        self._broker = broker
        self._asked: list[tuple[str, str, asyncio.Future[Portfolio]]] = []
        self._calls: set[asyncio.Task[None]] = set()

    def read(self, exchange_id: str, user_id: str) -> asyncio.Future[Portfolio]:
        """Return the account's portfolio (or its error) once read, with the turn's others."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Portfolio] = loop.create_future()
        if not self._asked:
            loop.call_soon(self._send)  # after every read this turn of the loop starts
        self._asked.append((exchange_id, user_id, future))
        return future

    def _send(self) -> None:
        asked, self._asked = self._asked, []
        asked = [a for a in asked if not a[2].done()]  # a reader cancelled meanwhile
        for start in range(0, len(asked), MAX_PORTFOLIO_BATCH):
            call = asyncio.ensure_future(self._call(asked[start : start + MAX_PORTFOLIO_BATCH]))
            self._calls.add(call)
            call.add_done_callback(self._calls.discard)

    async def _call(self, asked: list[tuple[str, str, asyncio.Future[Portfolio]]]) -> None:
        try:
            answers = self._broker.get_portfolios([(e, u) for e, u, _ in asked])
            async for index, answer in answers:
                future = asked[index][2]
                if future.done():
                    continue  # its reader is gone
                if isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
        except asyncio.CancelledError:  # shutting down: so are its readers
            for _, _, future in asked:
                future.cancel()
            raise
        except Exception as e:  # the port answers every account; this is a safety net
            log.error("batched portfolio read failed", exc_info=e)
        for _, _, future in asked:
            if not future.done():
                future.set_exception(errors.ServiceError("the broker did not answer this read"))


class _Patience:
    """Asks the broker again while it is slow, as long as the signal is young enough.

    ``stale_at`` is when the signal gets too old for every configuration reading the account
    (the clock's time); ``give_up`` bounds the wait in any case (monotonic).
    """

    def __init__(self, clock: Clock, stale_at: datetime, give_up: float) -> None:
        self._clock = clock
        self._stale_at = stale_at
        self._give_up = give_up

    def _time_left(self) -> float:
        left = (self._stale_at - self._clock.now()).total_seconds()
        return min(left, self._give_up - time.monotonic())

    async def read(self, call: Callable[[], Awaitable[T]]) -> T:
        """Return ``call()``'s answer; a slow broker is asked again until the deadline.

        Past the deadline the last error is raised: the signal is stale by then, and its
        decision says so. A pause never runs past the deadline, and the last attempt is made
        at it, so a read given up on is never decided while the signal is still young
        (``portfolio_unavailable`` where it is ``stale``).
        """
        pause = SLOW_READ_PAUSE
        while True:
            try:
                return await call()
            except Exception as e:
                asked_for = _broker_slow(e)
                left = self._time_left()
                if asked_for is None or left <= 0:
                    raise
                wait = min(max(pause, asked_for), left)
                log.info("broker slow (%s); asking again in %.1fs", type(e).__name__, wait)
                metrics.SLOW_BROKER_READS.inc()
                await asyncio.sleep(wait)
                pause = min(pause * 2, 2.0)


def _needs_correlations(
    signal: Signal,
    config: CopyConfig,
    lookup: MarketLookup,
    portfolio: Portfolio | None,
) -> bool:
    # Only a buy that opens a position under a correlation limit needs the candles.
    if config.settings.risk_limits.correlation_limit is None or leader_reduces(signal):
        return False
    market = lookup.market
    if market is None or portfolio is None:
        return False
    price = signal.price if signal.price and signal.price > 0 else market.last_price
    if price is None or price <= 0:
        return False
    snapshot = FollowerSnapshot.of(portfolio, market.base, market.symbol)
    return gate.opens_position(snapshot, market, price)
