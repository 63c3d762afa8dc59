"""Pure bookkeeping of a leader's portfolio between two reads of it.

The broker is read now and then (on a timer and after each batch of fills); a fill that reaches
the service in between must carry the leader's equity and position *without* another read, so
a read (a snapshot) is adjusted by the fills logged since. Venue times decide which fills a
snapshot already holds: a fill traded at or before its read time is in its totals, a later one
is not. A fill's position is walked forward from the newest snapshot read before the fill
traded (every fill between the two traded earlier, so it has been logged unless the stream lost
it), even when a newer read has overtaken fills still queued on the stream. Only a fill older
than every snapshot kept is walked back from the oldest one, and only when every fill traded up
to that read is known (``complete_until``: a backfill listed the fills after the read): a read
may hold fills traded after this one that are still on the stream or not listed yet, and a walk
back that does not take them out misstates the position (a buy from flat taken for a reverse).
Such a fill's position is unknown (:meth:`LeaderBook.placeable` says so beforehand, so the
stream hands it to a backfill instead). A derivatives read is not used for a market where a
known fill traded while its positions were being read (``Snapshot.positions_since`` to
``read_time``): the venue took them at some instant in between, with or without that fill, so
no single read time says which fills they hold. Equity comes from the newest read.

A new snapshot re-bases the book. Whatever its totals differ by from the old snapshot plus the
fills known in between is a balance change no fill explains (a deposit, a withdrawal, or a fill
not seen yet): it is reported, never turned into a trade.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sync_svc.domain.model import LeaderFill, Side
from sync_svc.domain.positions import base_asset, base_delta, is_derivative, signed_delta

ZERO = Decimal(0)
HISTORY_WINDOW = timedelta(hours=1)
MAX_HISTORY = 10_000
MAX_SNAPSHOTS = 64
RELATIVE_TOLERANCE = Decimal("0.000001")
ABSOLUTE_TOLERANCE = Decimal("0.00000001")


def quote_asset(symbol: str) -> str:
    """Return the quote asset of a unified symbol: ``BTC/USDT`` → ``USDT``."""
    parts = symbol.split("/", 1)
    return parts[1].split(":", 1)[0] if len(parts) == 2 else ""


def asset_deltas(fill: LeaderFill) -> dict[str, Decimal]:
    """Return how the fill moved each asset's total: base, quote and the fee's asset.

    A derivatives fill moves no asset but its fee (its realised P&L is not known here).
    """
    base, quote = base_asset(fill.symbol), quote_asset(fill.symbol)
    if is_derivative(fill.symbol):
        if fill.fee and fill.fee_currency:
            return {
                quote
                if fill.fee_currency.upper() == quote.upper()
                else fill.fee_currency: -fill.fee
            }
        return {}
    notional = fill.quantity * fill.price
    deltas: dict[str, Decimal] = {base: base_delta(fill)}
    if quote:
        deltas[quote] = deltas.get(quote, ZERO) + (-notional if fill.side is Side.BUY else notional)
    fee_asset = fill.fee_currency.upper()
    if fill.fee and fee_asset and fee_asset != base.upper():
        key = quote if fee_asset == quote.upper() else fill.fee_currency
        deltas[key] = deltas.get(key, ZERO) - fill.fee
    return deltas


def fee_value(fill: LeaderFill) -> Decimal:
    """Return the fill's fee valued in its quote asset (0 when paid in a third asset)."""
    if not fill.fee:
        return ZERO
    fee_asset = fill.fee_currency.upper()
    if fee_asset == quote_asset(fill.symbol).upper():
        return fill.fee
    if fee_asset == base_asset(fill.symbol).upper():
        return fill.fee * fill.price
    return ZERO


@dataclass(frozen=True)
class Snapshot:
    """One read of the leader's portfolio: equity, each asset's total, and when it was read."""

    equity: Decimal | None
    totals: Mapping[str, Decimal]
    read_time: datetime
    # Derivatives: each open position in signed contracts by symbol, and its leverage.
    positions: Mapping[str, Decimal] = field(default_factory=dict)
    leverages: Mapping[str, Decimal] = field(default_factory=dict)
    # When the positions were asked for: the venue took them at some instant between this and
    # ``read_time``, so whether a fill traded in between is in them is unknown (None: at once).
    positions_since: datetime | None = None

    def tells(self, fill: LeaderFill, known: Iterable[LeaderFill]) -> bool:
        """Return whether this read tells the position of ``fill``'s market: no known fill of
        that derivatives market traded while its positions were being read (such a fill may or
        may not be in them, and guessing either misstates the position by its quantity)."""
        since = self.positions_since
        if since is None or not is_derivative(fill.symbol):
            return True
        return not any(
            other.symbol == fill.symbol and since <= other.trade_time <= self.read_time
            for other in known
        )


@dataclass(frozen=True)
class BalanceChange:
    """An asset whose total moved by ``amount`` without a known fill to explain it."""

    asset: str
    amount: Decimal


@dataclass(frozen=True)
class LeaderState:
    """What a signal carries about its leader: equity and base position before the trade
    (derivatives: signed contracts of the symbol), and its leverage there when known."""

    equity: Decimal | None
    position: Decimal | None
    leverage: Decimal | None = None


@dataclass
class LeaderBook:
    """A leader's recent portfolio snapshots and the fills logged around them (mutable, pure)."""

    snapshots: list[Snapshot] = field(default_factory=list)
    fallback_equity: Decimal | None = None
    fills: list[LeaderFill] = field(default_factory=list)
    # Every fill the leader made at or before this (venue) time is in ``fills``.
    complete_until: datetime | None = None

    @property
    def snapshot(self) -> Snapshot | None:
        """Return the newest snapshot, or None before the first read."""
        return self.snapshots[-1] if self.snapshots else None

    def remember(self, fills: Iterable[LeaderFill]) -> None:
        """Record fills that are in the log now (in the order they were logged)."""
        self.fills.extend(fills)
        if len(self.fills) > MAX_HISTORY:
            del self.fills[: len(self.fills) - MAX_HISTORY]

    def mark_complete(self, until: datetime | None) -> None:
        """Record that every fill traded at or before ``until`` is in ``fills`` now."""
        if until is not None and (self.complete_until is None or until > self.complete_until):
            self.complete_until = until

    def placeable(self, fill: LeaderFill, complete_until: datetime | None = None) -> bool:
        """Return whether the position before ``fill`` can be told from the reads kept.

        Walking forward from a read before the fill always can. Walking back from a read after
        it needs every fill traded between the two: only when every fill up to that read is in
        ``fills`` (or in a batch listed after the read: ``complete_until``). Without a read the
        position is unknown whatever waits, so the fill is placeable (as unknown). When no read
        kept tells the fill's market (a fill traded while each was read), a later read can: not
        placeable either.
        """
        if not self.snapshots:
            return True
        base = self._base_for(fill, [*self.fills, fill])
        return base is not None and self._walkable(base, fill, complete_until)

    def _walkable(
        self, base: Snapshot, fill: LeaderFill, complete_until: datetime | None = None
    ) -> bool:
        if base.read_time < fill.trade_time:
            return True
        complete = self.complete_until
        if complete_until is not None and (complete is None or complete_until > complete):
            complete = complete_until
        return complete is not None and complete >= base.read_time

    def states(
        self,
        batch: Sequence[LeaderFill],
        complete_until: datetime | None = None,
    ) -> list[LeaderState]:
        """Return the leader's state before each fill of ``batch`` (logged in that order).

        ``complete_until``: every fill traded at or before it is in ``fills`` or ``batch`` (a
        backfill listed them after a read at that time). A fill that only a walk back from a
        later read could place, when fills up to that read may be missing, gets an unknown
        position (see :meth:`placeable`); so does one whose market no read kept tells (see
        :meth:`Snapshot.tells`); nothing is recorded. Without a snapshot the equity is the last
        one known and the position is unknown.
        """
        if not self.snapshots:
            return [LeaderState(self.fallback_equity, None) for _ in batch]
        ordered = [*self.fills, *batch]
        first = len(self.fills)
        states = []
        for offset in range(len(batch)):
            fill = ordered[first + offset]
            base = self._base_for(fill, ordered)
            states.append(
                LeaderState(
                    equity=self._equity(ordered[: first + offset]),
                    position=position_before(ordered, first + offset, base)
                    if base is not None and self._walkable(base, fill, complete_until)
                    else None,
                    leverage=self.snapshots[-1].leverages.get(fill.symbol),
                )
            )
        return states

    def _base_for(self, fill: LeaderFill, known: Sequence[LeaderFill]) -> Snapshot | None:
        """Return the read to walk ``fill``'s position from: the newest one before it that
        tells its market, else the oldest one after it that does; None if none does."""
        telling = [s for s in self.snapshots if s.tells(fill, known)]
        for snapshot in reversed(telling):
            if snapshot.read_time < fill.trade_time:
                return snapshot
        return telling[0] if telling else None

    def _equity(self, known: Sequence[LeaderFill]) -> Decimal | None:
        latest = self.snapshots[-1]
        if latest.equity is None:
            return self.fallback_equity
        fees = sum((fee_value(f) for f in known if f.trade_time > latest.read_time), ZERO)
        return latest.equity - fees

    def rebase(self, snapshot: Snapshot) -> list[BalanceChange]:
        """Adopt a newer snapshot; return the balance changes no known fill explains.

        A read older than the newest one (reads that overtook each other) is ignored.
        """
        previous = self.snapshot
        if previous is not None and snapshot.read_time <= previous.read_time:
            return []
        horizon = snapshot.read_time - HISTORY_WINDOW
        self.snapshots = [s for s in self.snapshots if s.read_time >= horizon][-MAX_SNAPSHOTS + 1 :]
        self.snapshots.append(snapshot)
        if snapshot.equity is not None:
            self.fallback_equity = snapshot.equity
        oldest = self.snapshots[0].read_time - HISTORY_WINDOW
        self.fills = [f for f in self.fills if f.trade_time >= oldest]
        if previous is None:
            return []
        return unexplained_changes(previous, snapshot, self.fills)

    def judge(self, base: Snapshot, target: Snapshot) -> tuple[list[BalanceChange], int]:
        """Return what ``target`` differs from ``base`` by beyond the known fills, and how many
        known fills traded between the two reads.

        Fills still on their way when ``target`` was read explain their share once logged: a
        change that stays open while that count stops growing is a deposit or a withdrawal
        (or a fill the stream lost).
        """
        between = sum(
            1 for fill in self.fills if base.read_time < fill.trade_time <= target.read_time
        )
        return unexplained_changes(base, target, self.fills), between


def position_before(ordered: Sequence[LeaderFill], index: int, snapshot: Snapshot) -> Decimal:
    """Return the leader's base-asset total just before ``ordered[index]``.

    Parameters
    ----------
    ordered
        Every fill known, in log order; a fill is before another when it traded earlier, or
        at the same time and was logged first.
    index
        The position in ``ordered`` of the fill asked about.
    snapshot
        The last read of the portfolio.

    Returns
    -------
    Decimal
        Never negative (a spot account cannot hold less than nothing). On a derivatives
        market: the signed contracts of the fill's symbol (negative: short).
    """
    fill = ordered[index]
    if is_derivative(fill.symbol):
        return _contracts_before(ordered, index, snapshot)
    base = base_asset(fill.symbol)
    read_time = snapshot.read_time
    position = snapshot.totals.get(base, ZERO)
    if fill.trade_time <= read_time:
        # The snapshot holds this fill and every fill traded after it up to the read: walk back.
        position -= base_delta(fill)
        for number, other in enumerate(ordered):
            if (
                number != index
                and base_asset(other.symbol) == base
                and other.trade_time <= read_time
                and not _before(other, number, fill, index)
            ):
                position -= base_delta(other)
    else:
        # The snapshot holds neither this fill nor the fills traded since the read: walk forward.
        for number, other in enumerate(ordered):
            if (
                number != index
                and base_asset(other.symbol) == base
                and other.trade_time > read_time
                and _before(other, number, fill, index)
            ):
                position += base_delta(other)
    return max(position, ZERO)


def _contracts_before(ordered: Sequence[LeaderFill], index: int, snapshot: Snapshot) -> Decimal:
    fill = ordered[index]
    read_time = snapshot.read_time
    position = snapshot.positions.get(fill.symbol, ZERO)
    if fill.trade_time <= read_time:
        position -= signed_delta(fill)
        for number, other in enumerate(ordered):
            if (
                number != index
                and other.symbol == fill.symbol
                and other.trade_time <= read_time
                and not _before(other, number, fill, index)
            ):
                position -= signed_delta(other)
    else:
        for number, other in enumerate(ordered):
            if (
                number != index
                and other.symbol == fill.symbol
                and other.trade_time > read_time
                and _before(other, number, fill, index)
            ):
                position += signed_delta(other)
    return position


def _before(other: LeaderFill, other_index: int, fill: LeaderFill, index: int) -> bool:
    if other.trade_time != fill.trade_time:
        return other.trade_time < fill.trade_time
    return other_index < index


def unexplained_changes(
    before: Snapshot,
    after: Snapshot,
    known: Iterable[LeaderFill],
) -> list[BalanceChange]:
    """Return how each asset's total moved between two snapshots beyond what fills explain.

    The margin asset of a derivatives position held (or traded) across the two reads is left
    out: it moves with unrealised and realised P&L and funding, which no fill explains.
    """
    expected: dict[str, Decimal] = dict(before.totals)
    margin = {quote_asset(symbol) for symbol in (*before.positions, *after.positions)}
    for fill in known:
        if before.read_time < fill.trade_time <= after.read_time:
            if is_derivative(fill.symbol):
                margin.add(quote_asset(fill.symbol))
            for asset, delta in asset_deltas(fill).items():
                expected[asset] = expected.get(asset, ZERO) + delta
    changes: list[BalanceChange] = []
    for asset in sorted((set(expected) | set(after.totals)) - margin):
        now = after.totals.get(asset, ZERO)
        difference = now - expected.get(asset, ZERO)
        tolerance = max(ABSOLUTE_TOLERANCE, RELATIVE_TOLERANCE * abs(now))
        if abs(difference) > tolerance:
            changes.append(BalanceChange(asset, difference))
    return changes
