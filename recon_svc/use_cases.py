"""Use-cases of the reconciliation service: run a reconciliation, list past reports.

They gather the three reports (sync's signals, the engine's intents, each follower venue's
orders and balances) through the ports, let the pure kernel judge them (copies, orders no
copy made, positions), optionally ask the engine to correct each drifting position, and store
the result in one transaction. Everything runs within one time budget: a service or venue
that fails or does not answer in time becomes an ERROR item naming it, and the report is
still stored (never a timeout at the caller).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeVar

from meshkit import audit, errors
from meshkit.audit import AuditEntry, AuditEvent
from meshkit.clock import SystemClock
from meshkit.codec import to_iso
from meshkit.vocabulary import Side
from recon_svc import metrics
from recon_svc.domain.model import (
    CopyConfig,
    Counts,
    Intent,
    Item,
    LeaderSignal,
    Outcome,
    Report,
    VenueFill,
    VenueHoldings,
    VenueOrder,
    VenueReport,
)
from recon_svc.domain.reconcile import (
    extra_orders,
    format_quantity,
    is_derivative,
    leader_positions_after,
    mirrored_fills,
    positions,
    read_error,
    reconcile,
)
from recon_svc.ports import BrokerPort, Clock, EnginePort, ReportStore, SyncPort

SIGNAL_PAGE_SIZE = 1000
INTENT_PAGE_SIZE = 5000
"""The engine's largest page of copied orders."""
DEFAULT_LIST_SIZE = 50
MAX_LIST_SIZE = 500
ITEMS_IN_REPLY = 10_000
"""A report with more items is answered with its counts (``items_paged``); its items are read
page by page (:meth:`Reconciler.list_items`)."""
DEFAULT_ITEM_PAGE = 1000
MAX_ITEM_PAGE = 10_000
ITEM_BATCH = 5000
"""Items are stored in batches of about this many while the report is made."""
ACCOUNTS_AT_ONCE = 2
"""Follower accounts read and judged at the same time: what recon holds at once is the window's
signals and this many accounts' copies and venue records, whatever the window's size."""
LEG_SLOTS = 4
"""Room for the items of one (signal, account) in the report's order: the copy and its
further legs."""
LOOK_BACK = timedelta(minutes=15)
"""How far before the window intents and venue orders are read: a leader venue's clock may run
ahead of ours, so an intent (or a follower order) may carry a time before its signal's event
time. Intents and orders of other signals are ignored, so reading more is always safe."""
MAX_ERROR_TEXT = 200
DEFAULT_BUDGET_SECONDS = 5.0
"""A reconciliation's whole time budget by default (``RECONCILE_BUDGET_MS``)."""

BROKER = "the broker"
"""Who a venue read that did not answer in time waited for (the venue is behind it)."""

T = TypeVar("T")


def _error_text(error: errors.ServiceError) -> str:
    text = f"{error.reason}: {error.message}"
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 3] + "..."


class Reconciler:
    """Run reconciliations and list their reports.

    Parameters
    ----------
    store
        Where reports are kept.
    engine, sync, broker
        The other services, read only.
    clock
        The current time; the system clock by default.
    timeout
        Seconds each call to another service may take (never more than what is left of the
        budget).
    budget
        Seconds a whole reconciliation may take: what is not read by then is an ERROR item.
    """

    def __init__(
        self,
        store: ReportStore,
        engine: EnginePort,
        sync: SyncPort,
        broker: BrokerPort,
        clock: Clock | None = None,
        *,
        timeout: float = 15.0,
        budget: float = DEFAULT_BUDGET_SECONDS,
    ) -> None:
        self.store = store
        self.engine = engine
        self.sync = sync
        self.broker = broker
        self.clock: Clock = clock or SystemClock()
        self.timeout = timeout
        self.budget = budget

    async def reconcile(
        self,
        user_id: str,
        config_id: str,
        start_time: datetime,
        end_time: datetime | None,
        *,
        auto_correct: bool = False,
    ) -> Report:
        """Reconcile a configuration over ``[start_time, end_time)`` and store the report.

        Within the time budget: what could not be read by then (a service or a venue that
        fails or does not answer) is an ERROR item naming it, and the report is stored.

        Parameters
        ----------
        user_id
            The calling user; another user's configuration is NOT_FOUND.
        config_id
            The configuration.
        start_time, end_time
            The window of leader event times; ``end_time`` ``None`` means now.
        auto_correct
            Ask the engine for a correction intent for every position that drifted.

        Returns
        -------
        Report
            The stored report with its items.
        """
        now = self.clock.now()
        if end_time is None:
            if start_time >= now:
                raise errors.invalid("start_time", "must be before end_time (now)")
            end_time = now
        elif end_time <= start_time:
            raise errors.invalid("end_time", "must be after start_time")
        budget = _Budget(self.budget, self.timeout)
        reconciliation_id = str(uuid.uuid4())
        header = Report(
            reconciliation_id=reconciliation_id,
            config_id=config_id,
            user_id=user_id,
            start_time=start_time,
            end_time=end_time,
            created_at=now,
            counts=Counts(),
        )
        writer = _ReportWriter(self.store, header)
        base, tail = await self._items(
            budget,
            writer,
            user_id,
            config_id,
            start_time,
            end_time,
            reconciliation_id,
            auto_correct,
        )
        # Orders no copy made and positions (few: per account and symbol) follow the copies.
        await writer.add([(base + index, item) for index, item in enumerate(tail)])
        await writer.flush()
        counts = writer.counts
        report = replace(header, counts=counts)
        corrections = [i.correction_client_order_id for i in tail if i.correction_client_order_id]
        stored = await self.store.finish_report(
            report,
            audit=AuditEvent(
                user_id,
                "reconciliation",
                report.reconciliation_id,
                "reconcile",
                None,
                {
                    "config_id": config_id,
                    "start_time": to_iso(start_time),
                    "end_time": to_iso(end_time),
                    "auto_correct": auto_correct,
                    "total_count": counts.total,
                    "matched_count": counts.matched,
                    "mismatched_count": counts.mismatched,
                    "missing_count": counts.missing,
                    "duplicate_count": counts.duplicate,
                    "error_count": counts.error,
                    "extra_count": counts.extra,
                    "corrections": corrections,
                },
            ),
        )
        metrics.REPORTS.inc()
        for outcome, count in writer.by_outcome.items():
            if count:
                metrics.RECONCILIATION_CHECKS.labels(outcome.value).inc(count)
        if stored.counts.total > ITEMS_IN_REPLY:
            return replace(stored, items_paged=True)
        full = await self.store.get_report(reconciliation_id)
        assert full is not None
        return full

    async def _items(
        self,
        budget: _Budget,
        writer: _ReportWriter,
        user_id: str,
        config_id: str,
        start_time: datetime,
        end_time: datetime,
        reconciliation_id: str,
        auto_correct: bool,
    ) -> tuple[int, list[Item]]:
        # Writes the copy items as each account is judged; returns where the other items
        # start in the report's order, and those items (orders no copy made, positions; or
        # the one ERROR item of a service that could not be read).
        try:
            config = await budget.read(
                lambda t: self.engine.get_config(config_id, user_id=user_id, timeout=t),
                user_errors=True,
            )
        except _Unreadable as e:
            return 0, [read_error("the engine (the configuration)", e.problem)]
        try:
            signals = await budget.read(lambda t: self._signals(config, start_time, end_time, t))
        except _Unreadable as e:
            return 0, [read_error("the sync service (the leader's signals)", e.problem)]
        since = start_time - LOOK_BACK
        sequences = sorted({s.sequence for s in signals})
        rank = {sequence: index for index, sequence in enumerate(sequences)}
        accounts = sorted(set(config.target_exchange_ids))
        wanted = {(s.source_id, s.sequence): s for s in signals}
        # The mirrored copies of the window's fills of mirrored leader orders are their copies.
        mirrored = mirrored_fills(signals)
        mirror_keys = {(source, opened) for (source, _), opened in mirrored.items()}
        leader_after = leader_positions_after(signals)
        at_once = asyncio.Semaphore(ACCOUNTS_AT_ONCE)

        async def judge(position: int, account: str) -> tuple[list[Item], list[Item]]:
            # One follower account: its copies, its venue, its items; then it is let go.
            async with at_once:
                try:
                    intents = await budget.read(
                        lambda t: self._intents(config, account, since, user_id, t)
                    )
                except _Unreadable as e:
                    if e.asked:
                        raise _IntentsUnreadable(e.problem) from None
                    # The budget ran out on earlier accounts' reads: this one's copies are
                    # unknown, the others' stand.
                    copies = reconcile(signals, [account], [], {})
                    await writer.add(
                        _indexed(
                            [
                                replace(
                                    i,
                                    outcome=Outcome.ERROR,
                                    detail=f"the copies at this account could not be read:"
                                    f" {e.problem}",
                                )
                                for i in copies
                            ],
                            rank,
                            len(accounts),
                            position,
                        )
                    )
                    return [], []
                relevant = [
                    i
                    for i in intents
                    if (i.source_id, i.sequence) in wanted
                    or (i.source_id, i.sequence) in mirror_keys
                ]
                corrections = [i for i in intents if i.is_correction]
                symbols = _symbols(config, relevant + corrections, wanted)
                venues = await self._venues(budget, symbols, since, user_id)
                known = {i.client_order_id for i in intents if i.client_order_id}
                del intents
                copies = reconcile(signals, [account], relevant, venues)
                await writer.add(_indexed(copies, rank, len(accounts), position))
                del copies
                extras = extra_orders(venues, known, start_time, end_time)
                found = positions(
                    symbols,
                    relevant + corrections,
                    venues,
                    known,
                    start_time,
                    end_time,
                    leader_after=leader_after,
                    mirrored=mirrored,
                )
                return extras, found

        outcomes = await asyncio.gather(
            *(judge(position, account) for position, account in enumerate(accounts)),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, _IntentsUnreadable):
                raise outcome
        for outcome in outcomes:
            if isinstance(outcome, _IntentsUnreadable):
                await writer.discard()
                return 0, [read_error("the engine (the copied orders)", outcome.problem)]
        extras: list[Item] = []
        found: list[Item] = []
        for outcome in outcomes:
            assert not isinstance(outcome, BaseException)
            extras += outcome[0]
            found += outcome[1]
        if auto_correct:
            found = await self._correct(budget, config, found, reconciliation_id, user_id)
        return len(sequences) * len(accounts) * LEG_SLOTS, extras + found

    async def _correct(
        self,
        budget: _Budget,
        config: CopyConfig,
        found: list[Item],
        reconciliation_id: str,
        user_id: str,
    ) -> list[Item]:
        # Ask the engine for one correction per drifting position (it gates and sends it).
        async def one(item: Item) -> Item:
            drift = item.drift
            if item.outcome is not Outcome.MISMATCHED or drift is None or drift == 0:
                return item
            if is_derivative(item.symbol):
                # The engine's correction is a spot order (no leverage set, never reduce-only):
                # not sent to a futures position, which is corrected by hand.
                return replace(
                    item,
                    detail=f"{item.detail}; not corrected: a futures position is not"
                    " corrected automatically",
                )
            side = Side.SELL if drift > 0 else Side.BUY
            try:
                intent = await budget.read(
                    lambda t: self.engine.correct_position(
                        config.config_id,
                        item.target_exchange_id,
                        item.symbol,
                        side,
                        abs(drift),
                        reconciliation_id,
                        user_id=user_id,
                        timeout=t,
                    ),
                    user_errors=True,
                    mutating=True,
                )
            except errors.ServiceError as e:
                return replace(item, detail=f"{item.detail}; not corrected: {_error_text(e)}")
            except _Unreadable as e:
                return replace(item, detail=f"{item.detail}; not corrected: {e.problem}")
            state = intent.state.value if intent.state else "unknown"
            what = f"{state} ({intent.reason})" if intent.reason else state
            return replace(
                item,
                detail=f"{item.detail}; correction {side.value} {item.symbol}"
                f" {format_quantity(intent.quantity)}: {what}",
                correction_client_order_id=intent.client_order_id,
            )

        return list(await asyncio.gather(*(one(item) for item in found)))

    async def list_items(
        self,
        user_id: str,
        reconciliation_id: str,
        page_size: int,
        after_index: int,
    ) -> tuple[list[tuple[int, Item]], bool]:
        """Return one page of a stored report's items in the report's order, each with its
        index, and whether more follow.

        Parameters
        ----------
        user_id
            The calling user; another user's report (or one not finished) is NOT_FOUND.
        reconciliation_id
            The report.
        page_size
            At most this many; 0 means 1,000, more than 10,000 is INVALID_ARGUMENT.
        after_index
            The index of the previous page's last item; -1 for the first page.
        """
        if not 0 <= page_size <= MAX_ITEM_PAGE:
            raise errors.invalid("page_size", f"must be between 0 and {MAX_ITEM_PAGE}")
        report = await self.store.get_report(reconciliation_id, with_items=False)
        if report is None or report.user_id != user_id or not report.complete:
            raise errors.NotFound(
                f"reconciliation {reconciliation_id} not found",
                reason="RECONCILIATION_NOT_FOUND",
                metadata={"reconciliation_id": reconciliation_id},
            )
        size = page_size or DEFAULT_ITEM_PAGE
        page = await self.store.list_items(reconciliation_id, after_index, size + 1)
        return page[:size], len(page) > size

    async def audit_entries(
        self,
        user_id: str,
        before_seq: int,
        page_size: int,
    ) -> list[AuditEntry]:
        """Return the caller's entries of the reconciliation audit trail, newest first.

        Only entries below ``before_seq`` when it is above 0; ``page_size`` 0 means 50.
        """
        size = audit.page_size_of(before_seq, page_size)
        return await self.store.list_audit_entries(user_id, before_seq, size)

    async def list_reports(self, user_id: str, config_id: str, page_size: int) -> list[Report]:
        """Return the configuration's reports, newest first, without items.

        Parameters
        ----------
        user_id
            The calling user; another user's configuration is NOT_FOUND.
        config_id
            The configuration.
        page_size
            At most this many; 0 means 50 and more than 500 means 500.

        Returns
        -------
        list[Report]
            The reports, newest first.

        Raises
        ------
        meshkit.errors.Unavailable
            No report is stored and the engine (which proves the configuration is the caller's)
            did not answer within the time budget: UNAVAILABLE, not to be retried by the
            caller's channel (the budget is spent), never a timeout at the caller.
        """
        limit = min(page_size or DEFAULT_LIST_SIZE, MAX_LIST_SIZE)
        # Reports made for the caller prove the configuration is theirs: reading them needs no
        # other service (a frozen engine must not hide them).
        stored = await self.store.list_reports(config_id, user_id, limit)
        if stored:
            return stored
        budget = _Budget(self.budget, self.timeout)
        try:
            await budget.read(
                lambda t: self.engine.get_config(config_id, user_id=user_id, timeout=t),
                user_errors=True,
            )
        except _Unreadable as e:
            raise errors.Unavailable(
                f"the engine could not be read: {e.problem}",
                reason="UPSTREAM_UNAVAILABLE",
                retryable=False,
            ) from None
        return stored

    async def _signals(
        self,
        config: CopyConfig,
        start_time: datetime,
        end_time: datetime,
        timeout: float,  # noqa: ASYNC109 - each call's gRPC deadline, not an asyncio timeout
    ) -> list[LeaderSignal]:
        # Signals logged before the configuration existed were never meant to be copied.
        start = max(start_time, config.create_time) if config.create_time else start_time
        if start >= end_time:
            return []
        signals: list[LeaderSignal] = []
        after = 0
        while True:
            page = await self.sync.list_signals(
                config.source_id,
                after_sequence=after,
                start_time=start,
                end_time=end_time,
                page_size=SIGNAL_PAGE_SIZE,
                timeout=timeout,
            )
            if not page:
                return signals
            for signal in page:
                if signal.sequence <= after or signal.source_id != config.source_id:
                    raise errors.ServiceError(
                        "the sync service returned signals out of order or of another source",
                        reason="MALFORMED_UPSTREAM_REPLY",
                    )
                after = signal.sequence
                if signal.is_fill:  # an order change is no trade: its copies are orders
                    signals.append(signal)

    async def _intents(
        self,
        config: CopyConfig,
        account: str,
        since: datetime,
        user_id: str,
        timeout: float,  # noqa: ASYNC109 - each call's gRPC deadline, not an asyncio timeout
    ) -> list[Intent]:
        # One follower account's copies written since ``since``, page after page.
        intents: list[Intent] = []
        token = ""
        while True:
            page, token = await self.engine.list_copied_orders(
                config.config_id,
                since,
                target_exchange_id=account,
                page_token=token,
                page_size=INTENT_PAGE_SIZE,
                user_id=user_id,
                timeout=timeout,
            )
            for intent in page:
                if intent.create_time is None:
                    raise errors.ServiceError(
                        "the engine returned a copied order without create_time",
                        reason="MALFORMED_UPSTREAM_REPLY",
                    )
                if intent.target_exchange_id != account:
                    raise errors.ServiceError(
                        "the engine returned another account's copied order",
                        reason="MALFORMED_UPSTREAM_REPLY",
                    )
            intents += page
            if not token:
                if len(page) >= INTENT_PAGE_SIZE:
                    raise errors.ServiceError(
                        "the engine returned a full page of copied orders and no next page",
                        reason="UPSTREAM_PAGING_STUCK",
                    )
                return intents

    async def _venues(
        self,
        budget: _Budget,
        symbols: dict[str, set[str]],
        since: datetime,
        user_id: str,
    ) -> dict[str, VenueReport]:
        reports = await asyncio.gather(
            *(self._venue(budget, t, sorted(symbols[t]), since, user_id) for t in symbols),
        )
        return {report.exchange_id: report for report in reports}

    async def _venue(
        self,
        budget: _Budget,
        exchange_id: str,
        symbols: list[str],
        since: datetime,
        user_id: str,
    ) -> VenueReport:
        # The orders and the balances, read at once; each may fail on its own.
        async def orders() -> list[VenueOrder]:
            return await budget.read(
                lambda t: self.broker.list_orders(
                    exchange_id, symbols, since, user_id=user_id, timeout=t
                ),
                who=BROKER,
            )

        async def fills() -> list[VenueFill]:
            return await budget.read(
                lambda t: self.broker.list_fills(
                    exchange_id, symbols, since, user_id=user_id, timeout=t
                ),
                who=BROKER,
            )

        async def balances() -> VenueHoldings:
            return await budget.read(
                lambda t: self.broker.get_holdings(exchange_id, user_id=user_id, timeout=t),
                who=BROKER,
            )

        listed, traded, held = await asyncio.gather(
            orders(), fills(), balances(), return_exceptions=True
        )
        for outcome in (listed, traded, held):
            if isinstance(outcome, BaseException) and not isinstance(outcome, _Unreadable):
                raise outcome
        if isinstance(listed, _Unreadable):
            return VenueReport(exchange_id, error=listed.problem)
        assert not isinstance(listed, BaseException)
        report = VenueReport(exchange_id, orders=tuple(listed))
        if isinstance(traded, _Unreadable):
            report = replace(report, fills=None, fills_error=traded.problem)
        else:
            assert not isinstance(traded, BaseException)
            report = replace(report, fills=tuple(traded))
        if isinstance(held, _Unreadable):
            return replace(report, balance_error=held.problem)
        assert not isinstance(held, BaseException)
        return replace(report, balances=held.balances, positions=held.positions)


def _symbols(
    config: CopyConfig,
    intents: Sequence[Intent],
    signals: dict[tuple[str, int], LeaderSignal],
) -> dict[str, set[str]]:
    # The symbols to read at each follower account: those of the copies and corrections there
    # (a copy skipped before its symbol was known counts with the leader's symbol).
    symbols: dict[str, set[str]] = {}
    for intent in intents:
        signal = signals.get((intent.source_id, intent.sequence))
        symbol = intent.symbol or (signal.symbol if signal is not None else "")
        if symbol and intent.target_exchange_id in config.target_exchange_ids:
            symbols.setdefault(intent.target_exchange_id, set()).add(symbol)
    return symbols


class _Unreadable(Exception):
    """A read that failed or did not answer within the budget; ``problem`` says which.

    ``asked`` is false when it was not even asked: the budget had run out before it.
    """

    def __init__(self, problem: str, *, asked: bool = True) -> None:
        super().__init__(problem)
        self.problem = problem
        self.asked = asked


class _IntentsUnreadable(Exception):
    """An account's copies could not be read: the report is that one ERROR item."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _indexed(
    items: Sequence[Item], rank: dict[int, int], accounts: int, position: int
) -> list[tuple[int, Item]]:
    # Each copy item's place in the report: by sequence, then account, then leg, whatever
    # order the accounts are judged in.
    indexed: list[tuple[int, Item]] = []
    slot = 0
    previous = None
    for item in items:
        slot = slot + 1 if item.sequence == previous else 0
        previous = item.sequence
        if slot >= LEG_SLOTS:
            raise errors.ServiceError(
                f"more than {LEG_SLOTS} items for one signal and account",
                reason="TOO_MANY_LEGS",
            )
        indexed.append(((rank[item.sequence] * accounts + position) * LEG_SLOTS + slot, item))
    return indexed


class _ReportWriter:
    """A report written as it is made: its row when the first items come, items in batches,
    counted as they go."""

    def __init__(self, store: ReportStore, header: Report) -> None:
        self.store = store
        self.header = header
        self.started = False
        self.by_outcome: dict[Outcome, int] = dict.fromkeys(Outcome, 0)
        self._pending: list[tuple[int, Item]] = []
        self._lock = asyncio.Lock()  # the report's row before any item, one batch at a time

    @property
    def counts(self) -> Counts:
        """The counts of every item added (and not discarded)."""
        by = self.by_outcome
        return Counts(
            total=sum(by.values()),
            matched=by[Outcome.MATCHED],
            mismatched=by[Outcome.MISMATCHED],
            missing=by[Outcome.MISSING],
            duplicate=by[Outcome.DUPLICATE],
            error=by[Outcome.ERROR],
            extra=by[Outcome.EXTRA],
        )

    async def add(self, items: Sequence[tuple[int, Item]]) -> None:
        """Add items at their indexes; a full batch is stored."""
        for _, item in items:
            self.by_outcome[item.outcome] += 1
        self._pending.extend(items)
        if len(self._pending) >= ITEM_BATCH:
            await self.flush()

    async def flush(self) -> None:
        """Store what is pending (and the report's row, first)."""
        batch, self._pending = self._pending, []
        async with self._lock:
            if not self.started:
                await self.store.start_report(self.header)
                self.started = True
            if batch:
                await self.store.add_items(self.header.reconciliation_id, batch)

    async def discard(self) -> None:
        """Forget every item added so far, stored or not."""
        self._pending = []
        self.by_outcome = dict.fromkeys(Outcome, 0)
        async with self._lock:
            if self.started:
                await self.store.discard_items(self.header.reconciliation_id)


_USER_ERRORS = (
    errors.NotFound,
    errors.InvalidArgument,
    errors.PermissionDenied,
    errors.Unauthenticated,
)


class _Budget:
    """One reconciliation's time budget: every call gets what is left of it, and no more."""

    def __init__(self, seconds: float, call_timeout: float) -> None:
        self.seconds = seconds
        self._call_timeout = call_timeout
        self._deadline = time.monotonic() + seconds

    def left(self) -> float:
        """Return the seconds left."""
        return self._deadline - time.monotonic()

    async def read(
        self,
        call: Callable[[float], Awaitable[T]],
        *,
        user_errors: bool = False,
        mutating: bool = False,
        who: str = "",
    ) -> T:
        """Run ``call(deadline)`` within what is left of the budget.

        A service error becomes :class:`_Unreadable` naming it, and so does running out of
        time (naming ``who`` did not answer, when given); with ``user_errors`` the errors that
        are the caller's (NOT_FOUND and the like) are raised as they are. A ``mutating`` call
        that ran out of time has an unknown outcome, and says so.
        """
        left = self.left()
        if left <= 0:
            raise _Unreadable(
                f"not asked: the time budget of {self.seconds:g}s ran out", asked=False
            )
        try:
            async with asyncio.timeout(left):
                return await call(min(self._call_timeout, left))
        except TimeoutError:
            if mutating:
                raise _Unreadable(
                    f"no answer within the time budget of {self.seconds:g}s;"
                    " its outcome is unknown (a later reconciliation shows it)"
                ) from None
            source = f" from {who}" if who else ""
            raise _Unreadable(
                f"no answer{source} within the time budget of {self.seconds:g}s"
            ) from None
        except errors.ServiceError as e:
            if user_errors and isinstance(e, _USER_ERRORS):
                raise
            raise _Unreadable(_error_text(e)) from None
