"""Reading watched exchange accounts: a fill stream with REST backfill, or polling alone.

Each exchange source has a :class:`SourceSync` with up to three tasks:

- the *watcher* (when ``enable_websocket``) consumes the broker's ``WatchFills`` and logs each
  fill at once through the :class:`~sync_svc.ingest.FillIngestor` (the same path backfills use);
  it reconnects with backoff, and reports the stream's state as the source's mode;
- the *backfiller* lists fills since the source's cursor (``ListFills``) on every CONNECTED
  event, on a suspected gap (a GAP_SUSPECTED event, a silent stream, a balance change no fill
  explains), on the ``sync_interval`` timer (while the stream is down, or always when
  ``enable_polling``), and on request;
- the *refresher* reads the leader's portfolio on a timer and after each batch of new fills, and
  re-bases the cached snapshot the ingestor sizes signals from.

Only backfills move the cursor: a fill the stream delivers never advances it, so one the stream
dropped is still in the next backfill's window. Two finds of one fill are logged once.

With several replicas on one database, each exchange source is a lease (``meshkit.leases``):
:class:`ExchangeSync` reads a source only while this replica holds its lease, starts its
reader (with a backfill) when the lease is acquired and stops it when the lease is lost. Every
append the reader makes carries the lease's token; an append under a token that is no longer
current is refused (fenced), and the reader stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from meshkit import errors, tracing
from meshkit.leases import FENCED_WRITES, Fenced
from meshkit.tasks import cancel_and_wait
from sync_svc import metrics
from sync_svc.domain.ledger import HISTORY_WINDOW, BalanceChange, Snapshot
from sync_svc.domain.model import (
    LeaderFill,
    Source,
    SourceKind,
    SyncMode,
    SyncSettings,
    WatchEvent,
    WatchItem,
    WatchState,
)
from sync_svc.domain.orders import changes as order_changes
from sync_svc.ingest import FillIngestor
from sync_svc.ports import BrokerPort, Clock, LeasesPort, SyncStorePort
from sync_svc.signal_log import SignalLog

log = logging.getLogger("sync_svc.exchange_sync")

OVERLAP = timedelta(seconds=5)
ORDER_WINDOW = timedelta(days=1)
"""How far back each backfill lists the leader's orders (order mirroring): an order resting
longer is not announced any more, and its end is not seen (its copy stays as it is)."""
MAX_BALANCE_CHECKS = 30


@dataclass(frozen=True)
class SyncTiming:
    """How the source readers pace themselves, in seconds (shortened in tests).

    ``retry_base_seconds`` doubles per failed attempt up to ``retry_max_seconds`` (reads and
    stream reconnects); after ``max_retries`` failed reconnects the stream is tried again only
    every ``stream_cooldown_seconds`` (the source keeps polling meanwhile). A connected stream
    silent for ``stream_silence_seconds`` is backfilled. The portfolio is read every
    ``equity_refresh_seconds`` and after new fills, at most once per ``equity_min_gap_seconds``.
    A balance change no logged fill explains is judged ``balance_grace_seconds`` later, and
    again while fills traded in its window keep arriving (fills still on the stream explain it).
    """

    retry_base_seconds: float = 0.5
    retry_max_seconds: float = 10.0
    equity_refresh_seconds: float = 60.0
    equity_min_gap_seconds: float = 2.0
    error_pause_seconds: float = 1.0
    stream_silence_seconds: float = 30.0
    stream_cooldown_seconds: float = 60.0
    balance_grace_seconds: float = 2.0


def describe_error(error: BaseException) -> str:
    """Return a short, secret-free description of a failed venue read for ``last_error``."""
    if isinstance(error, errors.ServiceError):
        return f"{error.reason}: {error.message}"[:300]
    if isinstance(error, TimeoutError):
        return "TIMEOUT: the broker did not answer in time"
    return f"INTERNAL: {type(error).__name__}"


class SourceSync:
    """Reads one exchange source: its fill stream, backfills and portfolio."""

    def __init__(
        self,
        source: Source,
        store: SyncStorePort,
        ingestor: FillIngestor,
        broker: BrokerPort,
        clock: Clock,
        timing: SyncTiming,
        *,
        token: int | None = None,
        on_fenced: Callable[[str, int], None] | None = None,
    ) -> None:
        self._source = source
        self._token = token
        self._on_fenced = on_fenced
        self._fenced = False
        self._store = store
        self._ingestor = ingestor
        self._broker = broker
        self._clock = clock
        self._timing = timing
        self._exchange = source.exchange_name or "unknown"
        self._backfill_wanted = asyncio.Event()
        self._backfilling = False
        self._triggers: set[str] = set()
        self._refresh_wanted = asyncio.Event()
        self._refreshed_once = asyncio.Event()
        self._state_lock = asyncio.Lock()
        self._connected = False
        self._stream_error = ""
        self._poll_error = ""
        # The outage (no stream, last poll failed) goes on across a restart or a takeover.
        self._poll_failed = source.down_since is not None
        self._down_since: datetime | None = source.down_since
        self._gauge_mode: SyncMode | None = None
        self._last_activity = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._watcher: asyncio.Task[None] | None = None
        self._balance_check: asyncio.Task[None] | None = None
        self._more_changes = False
        # Streamed fills older than every portfolio read kept: the next backfill logs them.
        self._held: dict[tuple[str, str], LeaderFill] = {}

    @property
    def source_id(self) -> str:
        """Return the id of the source read."""
        return self._source.source_id

    @property
    def token(self) -> int | None:
        """Return the lease token the source is read under (None: no lease, one replica)."""
        return self._token

    @property
    def settings(self) -> SyncSettings:
        """Return the sync settings in force."""
        return self._source.sync_settings

    @property
    def connected(self) -> bool:
        """Return whether the fill stream is up (the source is in WEBSOCKET mode)."""
        return self._connected

    @property
    def running(self) -> bool:
        """Return whether the source is being read."""
        return any(not task.done() for task in self._tasks)

    @property
    def held_fills(self) -> int:
        """Return how many streamed fills wait for a backfill to tell the position before them."""
        return len(self._held)

    @property
    def backfill_idle(self) -> bool:
        """Return whether no backfill is running or asked for (every trigger so far is served)."""
        return not self._backfilling and not self._backfill_wanted.is_set()

    async def start(self) -> None:
        """Load what the source needs from the store and start its tasks."""
        now = self._clock.now()
        await self._ingestor.prime(self._source, now - HISTORY_WINDOW)
        await self._publish_state()
        self._refresh_wanted.set()
        self.request_backfill("start")
        self._spawn(self._refresh_forever(), "refresh")
        self._spawn(self._backfill_forever(), "backfill")
        if self.settings.enable_websocket:
            self._watcher = self._spawn(self._watch_forever(), "watch")

    def _spawn(self, coroutine: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        with tracing.detached():  # its polls are not part of the call that started it
            task = asyncio.create_task(coroutine, name=f"{what}-{self.source_id}")
        self._tasks = [*(t for t in self._tasks if not t.done()), task]
        return task

    async def apply(self, source: Source) -> None:
        """Take new sync settings: start or stop the stream as asked, and backfill now."""
        previous = self.settings
        self._source = source
        if previous.enable_websocket != source.sync_settings.enable_websocket:
            await self._stop_watcher()
            if source.sync_settings.enable_websocket:
                self._watcher = self._spawn(self._watch_forever(), "watch")
        self.request_backfill("settings")

    async def _stop_watcher(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await cancel_and_wait([watcher])
        self._connected = False
        self._stream_error = ""
        await self._publish_state()

    async def stop(self) -> None:
        """Stop every task of the source."""
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        self._watcher = None
        if self._gauge_mode is not None:
            metrics.REALTIME_SYNC_CONNECTIONS.labels(self._exchange, self._gauge_mode.value).dec()
            self._gauge_mode = None

    async def _ingest(
        self,
        source: Source,
        fills: list[LeaderFill],
        path: str,
        *,
        complete_until: datetime | None = None,
    ) -> list[LeaderFill]:
        try:
            return await self._ingestor.ingest(
                source, fills, path, token=self._token, complete_until=complete_until
            )
        except Fenced:
            FENCED_WRITES.labels("sync", "append").inc()
            if not self._fenced:
                self._fenced = True
                log.warning(
                    "the lease on %s (token %s) has moved on: its append was refused; stopping",
                    self.source_id,
                    self._token,
                )
                if self._on_fenced is not None and self._token is not None:
                    self._on_fenced(self.source_id, self._token)
            raise

    def request_backfill(self, trigger: str) -> None:
        """Ask for a backfill as soon as the one running (if any) is over."""
        self._triggers.add(trigger)
        self._backfill_wanted.set()

    def request_refresh(self) -> None:
        """Ask for a fresh read of the leader's portfolio."""
        self._refresh_wanted.set()

    # State reporting.

    def _last_error(self) -> str:
        parts = [self._poll_error]
        if self.settings.enable_websocket:
            parts.append(self._stream_error)
        return "; ".join(part for part in parts if part)

    def _mode(self) -> SyncMode:
        return SyncMode.WEBSOCKET if self._connected else SyncMode.POLLING

    async def _publish_state(self) -> None:
        async with self._state_lock:
            mode = self._mode()
            if mode is not self._gauge_mode:
                if self._gauge_mode is not None:
                    metrics.REALTIME_SYNC_CONNECTIONS.labels(
                        self._exchange,
                        self._gauge_mode.value,
                    ).dec()
                metrics.REALTIME_SYNC_CONNECTIONS.labels(self._exchange, mode.value).inc()
                self._gauge_mode = mode
            await self._store.update_sync_state(self.source_id, mode, self._last_error())
            await self._record_down()

    async def _record_down(self) -> None:
        # Under the state lock. The venue cannot be read when the fill stream is not up and
        # the last poll failed: record when that starts and when it ends, once per outage
        # (the engine alerts the configurations copying the source when it lasts).
        down = not self._connected and self._poll_failed
        if down == (self._down_since is not None):
            return
        self._down_since = self._clock.now() if down else None
        if down:
            log.warning("%s cannot be read: no fill stream and polling fails", self.source_id)
        else:
            log.info("%s is read again", self.source_id)
        await self._store.record_down_since(self.source_id, self._down_since)

    # The backfiller.

    def _timer_seconds(self) -> float | None:
        settings = self.settings
        if settings.enable_polling or not settings.enable_websocket or not self._connected:
            return float(settings.sync_interval)
        return None

    async def _backfill_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._backfill_wanted.wait(), self._timer_seconds())
            except TimeoutError:
                self._triggers.add("timer")
            self._backfill_wanted.clear()
            triggers, self._triggers = self._triggers, set()
            for trigger in triggers:
                metrics.BACKFILLS_TOTAL.labels(self._exchange, trigger).inc()
            self._backfilling = True
            try:
                await self.backfill_with_retries()
            except asyncio.CancelledError:
                raise
            except Fenced:
                return  # the lease moved on: the reader is being stopped
            except Exception as e:
                log.error("backfill of %s failed; continuing", self.source_id, exc_info=e)
                await asyncio.sleep(self._timing.error_pause_seconds)
            finally:
                self._backfilling = False

    async def backfill_with_retries(self) -> bool:
        """Backfill once, retrying a failure with backoff; record the outcome. Return success."""
        settings = self.settings
        last_error: BaseException | None = None
        for attempt in range(settings.max_retries + 1):
            try:
                await self.backfill_once()
                return True
            except (asyncio.CancelledError, Fenced):
                raise
            except Exception as e:
                last_error = e
                log.warning(
                    "backfill of %s failed (attempt %d of %d): %s",
                    self.source_id,
                    attempt + 1,
                    settings.max_retries + 1,
                    describe_error(e),
                )
                if attempt < settings.max_retries:
                    await asyncio.sleep(self._backoff(attempt))
        assert last_error is not None
        async with self._state_lock:
            self._poll_error = describe_error(last_error)
            self._poll_failed = True
            await self._store.record_poll_failure(self.source_id, self._last_error())
            await self._record_down()
        return False

    def _backoff(self, attempt: int) -> float:
        return min(self._timing.retry_base_seconds * (2**attempt), self._timing.retry_max_seconds)

    async def backfill_once(self) -> int:
        """List the account's fills since the cursor and log the new ones; return how many."""
        source = await self._store.get_source(self.source_id)
        if source is None:
            return 0
        timeout = float(source.sync_settings.timeout)
        if not self._ingestor.has_snapshot(self.source_id):
            # Not latency-bound here: size the batch from a real read if there is none yet.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._refreshed_once.wait(), timeout)
            if not self._ingestor.has_snapshot(self.source_id):
                await self._refresh_quietly()
        cursor = source.cursor_time or source.start_time
        held = list(self._held.values())
        if held:
            # A held fill may have traded while every read kept was being taken (none tells its
            # position): a read now, with the listing after it, does.
            await self._refresh_quietly()
        # Every fill the newest read holds is in the listing that follows it (or logged before):
        # a fill older than every read is walked back from one, over every fill up to it.
        read = self._ingestor.latest_snapshot(self.source_id)
        fills = await self._broker.list_fills(source.exchange_id, cursor - OVERLAP, timeout=timeout)
        logged = await self._ingest(
            source,
            [*fills, *held],
            "backfill",
            complete_until=read.read_time if read is not None else None,
        )
        for fill in held:
            self._held.pop(fill.key, None)
        if logged:
            self.request_refresh()
        await self._mirror_orders(source, timeout)
        now = self._clock.now()
        relevant = [fill.trade_time for fill in fills if fill.trade_time >= source.start_time]
        # The cursor follows the newest fill listed, never past our own clock: one fill stamped
        # in the future by a skewed venue clock must not blind the following backfills.
        newest = min(max(relevant, default=cursor), now)
        async with self._state_lock:
            self._poll_error = ""
            self._poll_failed = False
            await self._store.record_poll_success(
                self.source_id,
                max(newest, cursor),
                now,
                self._last_error(),
            )
            await self._record_down()
        return len(logged)

    async def _mirror_orders(self, source: Source, timeout: float) -> None:  # noqa: ASYNC109 - the broker call's deadline
        """List the leader's orders and log what changed (order mirroring).

        A failure is logged and left for the next backfill: it never holds the fills back.
        """
        now = self._clock.now()
        since = max(source.start_time, now - ORDER_WINDOW)
        try:
            listing = await self._broker.list_orders(source.exchange_id, since, timeout=timeout)
            mirrored = await self._store.open_leader_orders(self.source_id)
            changes, closed = order_changes(mirrored, listing)
            if closed:
                await self._store.close_leader_orders(self.source_id, closed)
            if changes:
                await self._ingestor.log_order_changes(source, changes, now, token=self._token)
        except (asyncio.CancelledError, Fenced):
            raise
        except Exception as e:
            log.warning("listing the orders of %s failed: %s", self.source_id, describe_error(e))

    # The refresher.

    async def _refresh_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._refresh_wanted.wait(),
                    self._timing.equity_refresh_seconds,
                )
            self._refresh_wanted.clear()
            await self._refresh_quietly()
            await asyncio.sleep(self._timing.equity_min_gap_seconds)

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("portfolio read of %s failed: %s", self.source_id, describe_error(e))
        finally:
            self._refreshed_once.set()

    async def refresh(self) -> None:
        """Read the leader's portfolio, re-base the cached snapshot and store the equity.

        A balance change no logged fill explains re-bases the snapshot at once and never
        becomes a signal; if logged fills still leave it open after a grace period it is a
        deposit or a withdrawal (or a fill the stream lost): it is counted, and backfilled.
        """
        sent = self._clock.now()
        portfolio = await self._broker.get_portfolio(
            self._source.exchange_id,
            timeout=float(self.settings.timeout),
        )
        snapshot = Snapshot(
            equity=portfolio.equity,
            totals=dict(portfolio.totals),
            read_time=portfolio.read_time or sent,
            positions=dict(portfolio.positions),
            leverages=dict(portfolio.leverages),
            positions_since=portfolio.positions_since if portfolio.read_time else None,
        )
        previous = self._ingestor.latest_snapshot(self.source_id)
        changes = await self._ingestor.rebase(self.source_id, snapshot)
        await self._store.update_equity(self.source_id, portfolio.equity)
        if not changes or previous is None:
            return
        if self._balance_check is None or self._balance_check.done():
            self._more_changes = False
            self._balance_check = self._spawn(
                self._check_balances(previous, snapshot),
                "balances",
            )
        else:
            self._more_changes = True  # judged once the window being judged is done

    async def _check_balances(self, base: Snapshot, target: Snapshot) -> None:
        while True:
            changes = await self._judge(base, target)
            if changes:
                metrics.BALANCE_CHANGES_TOTAL.labels(self._exchange).inc()
                log.info(
                    "balances of %s moved without a fill (%s): a deposit or withdrawal, or a"
                    " fill not seen yet; equity re-based, backfilling",
                    self.source_id,
                    ", ".join(f"{change.asset} {change.amount:+f}" for change in changes),
                )
                self.request_backfill("balance")
            latest = self._ingestor.latest_snapshot(self.source_id)
            if not self._more_changes or latest is None:
                return
            self._more_changes = False
            base, target = target, latest

    async def _judge(self, base: Snapshot, target: Snapshot) -> list[BalanceChange]:
        arrived = -1
        changes: list[BalanceChange] = []
        for _ in range(MAX_BALANCE_CHECKS):
            await asyncio.sleep(self._timing.balance_grace_seconds)
            changes, known = await self._ingestor.judge(self.source_id, base, target)
            if not changes or known == arrived:
                return changes
            arrived = known  # fills of the window are still arriving: look again
        return changes

    # The watcher.

    async def _watch_forever(self) -> None:
        with contextlib.suppress(TimeoutError):
            # Size the first streamed fills from a real read when one can be had.
            await asyncio.wait_for(self._refreshed_once.wait(), float(self.settings.timeout))
        failures = 0
        while True:
            error, was_up, retryable = await self._watch_once()
            await self._stream_down(error)
            failures = 1 if was_up else failures + 1
            if not retryable or failures > self.settings.max_retries:
                delay = self._timing.stream_cooldown_seconds
                failures = 0
                log.warning(
                    "fill stream of %s is down (%s); polling, next try in %.3g s",
                    self.source_id,
                    error,
                    delay,
                )
            else:
                delay = self._backoff(failures - 1)
            await asyncio.sleep(delay)

    async def _watch_once(self) -> tuple[str, bool, bool]:
        stream = self._broker.watch_fills(self._source.exchange_id)
        monitor: asyncio.Task[None] | None = None
        was_up = False
        try:
            try:
                first = await asyncio.wait_for(_next(stream), float(self.settings.timeout))
            except TimeoutError:
                return "TIMEOUT: the fill stream did not open in time", False, True
            if first is None:
                return "STREAM_ENDED: the broker ended the fill stream", False, True
            was_up = True
            monitor = asyncio.create_task(self._watch_silence())
            await self._on_item(first)
            async for item in stream:
                await self._on_item(item)
            return "STREAM_ENDED: the broker ended the fill stream", True, True
        except asyncio.CancelledError:
            raise
        except errors.Unimplemented as e:
            return describe_error(e), was_up, False
        except Exception as e:
            return describe_error(e), was_up, True
        finally:
            if monitor is not None:
                monitor.cancel()
                await asyncio.gather(monitor, return_exceptions=True)
            close = getattr(stream, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    async def _watch_silence(self) -> None:
        silence = self._timing.stream_silence_seconds
        while True:
            await asyncio.sleep(min(silence / 4, 1.0))
            if self._connected and time.monotonic() - self._last_activity > silence:
                self._last_activity = time.monotonic()
                self.request_backfill("silence")

    async def _on_item(self, item: WatchItem) -> None:
        self._last_activity = time.monotonic()
        if isinstance(item, WatchEvent):
            if item.state is WatchState.CONNECTED:
                await self._stream_up()
            elif item.state is WatchState.DISCONNECTED:
                detail = item.detail or "the venue stream dropped"
                await self._stream_down(f"DISCONNECTED: {detail}")
            else:
                self.request_backfill("gap")
            return
        if not self._connected:
            # A fill without a CONNECTED before it: the stream is up, and may have missed some.
            await self._stream_up()
        await self._log_streamed(item)

    async def _log_streamed(self, fill: LeaderFill) -> None:
        try:
            if not await self._ingestor.placeable(self.source_id, fill):
                # Traded before every portfolio read kept: a read may hold fills traded since
                # that are still on the stream, so only a backfill listing them all (after a
                # read) can tell the position before it. It logs this one too.
                self._held[fill.key] = fill
                self.request_backfill("unplaced")
                return
            logged = await self._ingest(self._source, [fill], "stream")
        except asyncio.CancelledError:
            raise
        except Fenced:
            return  # the lease moved on: the reader is being stopped
        except Exception as e:
            log.error("streamed fill of %s was not logged; backfilling", self.source_id, exc_info=e)
            self.request_backfill("ingest_failure")
            return
        if logged:
            self.request_refresh()

    async def _stream_up(self) -> None:
        metrics.STREAM_CONNECTS_TOTAL.labels(self._exchange).inc()
        self._connected = True
        self._stream_error = ""
        await self._publish_state()
        # Events may have been missed before any (re)connection: backfill the window.
        self.request_backfill("connected")

    async def _stream_down(self, error: str) -> None:
        was_up = self._connected
        self._connected = False
        self._stream_error = f"WEBSOCKET_DOWN: {error}"
        await self._publish_state()
        if was_up:
            self.request_backfill("disconnected")  # poll at once, then on the timer


async def _next(stream: AsyncIterator[WatchItem]) -> WatchItem | None:
    try:
        return await anext(stream)
    except StopAsyncIteration:
        return None


class ExchangeSync:
    """Runs a :class:`SourceSync` for every exchange source this replica is to read.

    Without leases (:meth:`use_leases` not called) that is every watched exchange source.
    With leases, the keeper's rounds decide: :meth:`wanted_sources` names the sources that need
    a reader, :meth:`on_acquired` starts one under the lease's token and :meth:`on_lost` stops
    it. A watch that adds a source runs a round at once so the source is read without waiting
    for the next one, and an unwatch runs one to let its lease go.
    """

    def __init__(
        self,
        store: SyncStorePort,
        signal_log: SignalLog,
        broker: BrokerPort,
        clock: Clock,
        timing: SyncTiming | None = None,
    ) -> None:
        self._store = store
        self._broker = broker
        self._clock = clock
        self._timing = timing or SyncTiming()
        self.ingestor = FillIngestor(store, signal_log)
        self._sources: dict[str, SourceSync] = {}
        self._ensuring = asyncio.Lock()
        self._stopped = False
        self._leases: LeasesPort | None = None
        self._fenced: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def use_leases(self, leases: LeasesPort) -> None:
        """Read only the sources whose lease ``leases`` holds (call before :meth:`start`)."""
        self._leases = leases

    async def start(self) -> None:
        """Resume reading every exchange source (with leases: those this replica holds)."""
        if self._leases is None:
            for source in await self._store.list_exchange_sources():
                await self.ensure(source)
            return
        await self._leases.start()
        # The first round's acquisitions start their readers in tasks of their own: start
        # them here as well, so a source is read when start-up is over (the second is a no-op).
        for source_id in await self._store_sources():
            token = self._leases.token(source_id)
            if token is not None:
                await self._start_leased(source_id, token)

    async def _store_sources(self) -> list[str]:
        return [source.source_id for source in await self._store.list_exchange_sources()]

    # The lease keeper's callbacks.

    async def wanted_sources(self) -> set[str]:
        """Return every source that needs a reader; take new settings into running readers."""
        sources = await self._store.list_exchange_sources()
        async with self._ensuring:
            for source in sources:
                runner = self._sources.get(source.source_id)
                if (
                    runner is not None
                    and runner.running
                    and runner.settings != source.sync_settings
                ):
                    await runner.apply(source)  # changed through another replica
        return {source.source_id for source in sources}

    async def on_acquired(self, source_id: str, token: int) -> None:
        """Start reading a source whose lease this replica just took (with a backfill)."""
        await self._start_leased(source_id, token)

    async def on_lost(self, source_id: str, token: int) -> None:
        """Stop reading a source whose lease (under ``token``) this replica no longer holds."""
        async with self._ensuring:
            runner = self._sources.get(source_id)
            if runner is None or runner.token != token:
                return
            del self._sources[source_id]
        await runner.stop()
        log.info("no longer reading %s here (its lease, token %d, is gone)", source_id, token)

    def _on_fenced(self, source_id: str, token: int) -> None:
        self._fenced[source_id] = token
        task = asyncio.create_task(self.on_lost(source_id, token), name=f"fenced-{source_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _runner(self, source: Source, token: int | None = None) -> SourceSync:
        # A reader of ``source``; under a lease, its appends carry ``token``.
        return SourceSync(
            source,
            self._store,
            self.ingestor,
            self._broker,
            self._clock,
            self._timing,
            token=token,
            on_fenced=self._on_fenced if token is not None else None,
        )

    async def _start_leased(self, source_id: str, token: int) -> None:
        assert self._leases is not None
        async with self._ensuring:
            if self._stopped or self._leases.token(source_id) != token:
                return
            if self._fenced.get(source_id) == token:
                return  # refused under this token already: wait for the lease to move
            current = self._sources.get(source_id)
            if current is not None and current.running and current.token == token:
                return
            source = await self._store.get_source(source_id)
            if source is None or source.kind is not SourceKind.EXCHANGE or not source.watched:
                return
            if current is not None:
                await current.stop()
            if current is None or current.token != token:
                # Another replica may have logged its fills meanwhile: read them again.
                self.ingestor.forget(source_id)
            runner = self._runner(source, token)
            self._sources[source_id] = runner
            await runner.start()
        log.info("reading %s here (lease token %d)", source_id, token)

    async def _round(self) -> None:
        if self._leases is None or self._stopped:
            return
        try:
            await self._leases.round()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("lease round failed (the next one retries): %s", describe_error(e))

    # Callers.

    async def ensure(self, source: Source) -> None:
        """Make sure the source is read with its current settings, and backfill it now.

        With leases the source is read here only when this replica holds (or now takes) its
        lease; the holder elsewhere takes the new settings at its next round.
        """
        if source.kind is not SourceKind.EXCHANGE:
            return
        if self._leases is not None:
            async with self._ensuring:
                current = self._sources.get(source.source_id)
                if current is not None and current.running:
                    await current.apply(source)
                    return
            if self._leases.token(source.source_id) is None:
                await self._round()
            token = self._leases.token(source.source_id)
            if token is not None:
                await self._start_leased(source.source_id, token)
            return
        async with self._ensuring:  # two watch calls at once must not start two readers
            if self._stopped:
                return
            current = self._sources.get(source.source_id)
            if current is not None and current.running:
                await current.apply(source)
                return
            if current is not None:
                await current.stop()
            runner = self._runner(source)
            self._sources[source.source_id] = runner
            await runner.start()

    async def drop(self, source_id: str) -> None:
        """Stop reading the source (its stream and its timers); nothing if it is not read.

        With leases, a round runs at once and lets the source's lease go.
        """
        async with self._ensuring:
            runner = self._sources.pop(source_id, None)
        if runner is not None:
            await runner.stop()
        await self._round()

    def source(self, source_id: str) -> SourceSync | None:
        """Return the reader of a source, if it has one."""
        return self._sources.get(source_id)

    def is_running(self, source_id: str) -> bool:
        """Return whether the source is being read."""
        runner = self._sources.get(source_id)
        return runner is not None and runner.running

    def running_sources(self) -> set[str]:
        """Return the sources read here now."""
        return {source_id for source_id, runner in self._sources.items() if runner.running}

    def wake(self, source_id: str) -> None:
        """Backfill the source now instead of at the end of its interval."""
        runner = self._sources.get(source_id)
        if runner is not None:
            runner.request_backfill("manual")

    async def backfill_once(self, source_id: str) -> int:
        """Backfill the source once, now; return how many fills were new."""
        runner = self._sources.get(source_id)
        if runner is None:
            return 0
        return await runner.backfill_once()

    async def stop(self) -> None:
        """Stop reading every source; with leases, then hand them over to the other replicas."""
        async with self._ensuring:
            self._stopped = True
        runners = list(self._sources.values())
        await asyncio.gather(*(runner.stop() for runner in runners), return_exceptions=True)
        self._sources.clear()
        await cancel_and_wait(list(self._tasks))
        if self._leases is not None:
            await self._leases.stop(release=True)
