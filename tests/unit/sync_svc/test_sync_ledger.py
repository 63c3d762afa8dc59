"""The leader book: positions and equity from a cached snapshot, and balance changes on re-base."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sync_svc.domain.ledger import (
    MAX_HISTORY,
    BalanceChange,
    LeaderBook,
    LeaderState,
    Snapshot,
    asset_deltas,
    fee_value,
)
from sync_svc.domain.model import LeaderFill, Side

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _fill(
    trade_id: str,
    side: str,
    quantity: str,
    seconds: float,
    symbol: str = "BTC/USDT",
    price: str = "50000",
    fee: str | None = None,
    fee_currency: str = "",
) -> LeaderFill:
    return LeaderFill(
        trade_id=trade_id,
        symbol=symbol,
        side=Side(side),
        quantity=Decimal(quantity),
        price=Decimal(price),
        fee=Decimal(fee) if fee else None,
        fee_currency=fee_currency,
        order_type=None,
        trade_time=_at(seconds),
    )


def _book(totals: dict[str, str], seconds: float, equity: str | None = "10000") -> LeaderBook:
    book = LeaderBook()
    book.rebase(
        Snapshot(
            equity=Decimal(equity) if equity else None,
            totals={asset: Decimal(total) for asset, total in totals.items()},
            read_time=_at(seconds),
        )
    )
    return book


def _positions(
    book: LeaderBook, batch: list[LeaderFill], *, listed: bool = True
) -> list[Decimal | None]:
    # ``listed``: the batch comes from a backfill that listed the fills after the newest read
    # (every fill up to it is known); otherwise from the stream (fills may still be on it).
    snapshot = book.snapshot
    complete = snapshot.read_time if listed and snapshot is not None else None
    return [state.position for state in book.states(batch, complete)]


def test_fills_after_the_snapshot_are_walked_forward_from_it() -> None:
    book = _book({"BTC": "1"}, 0)
    batch = [
        _fill("a", "buy", "0.5", 1),
        _fill("b", "sell", "0.2", 2),
        _fill("c", "buy", "3", 3, symbol="ETH/USDT", price="3000"),
    ]
    assert _positions(book, batch) == [Decimal(1), Decimal("1.5"), Decimal(0)]


def test_fills_the_snapshot_already_holds_are_walked_back_from_it() -> None:
    book = _book({"BTC": "1.3"}, 10)
    batch = [_fill("a", "buy", "0.5", 1), _fill("b", "sell", "0.2", 2)]
    assert _positions(book, batch) == [Decimal("1.0"), Decimal("1.5")]


def test_a_fill_found_late_is_placed_by_its_trade_time() -> None:
    # The stream dropped A (traded before the read) and delivered B (after it).
    book = _book({"BTC": "2"}, 5)
    late_a = _fill("a", "buy", "1", 3)
    streamed_b = _fill("b", "buy", "0.5", 7)
    assert _positions(book, [streamed_b]) == [Decimal(2)]
    book.remember([streamed_b])
    assert _positions(book, [late_a]) == [Decimal(1)]
    # And one traded after the read but before a fill logged earlier.
    book = _book({"BTC": "1"}, 0)
    streamed_c = _fill("c", "buy", "1", 4)
    book.remember([streamed_c])
    assert _positions(book, [_fill("d", "sell", "0.5", 2)]) == [Decimal(1)]
    assert _positions(book, [_fill("e", "sell", "0.5", 6)]) == [Decimal(2)]


def test_fills_still_queued_when_a_newer_read_overtook_them_walk_from_the_read_before() -> None:
    book = _book({"BTC": "1"}, 0)
    # Read at 5 after two fills the stream has not delivered yet: it holds both.
    assert book.rebase(Snapshot(Decimal(1), {"BTC": Decimal("1.3")}, _at(5))) != []
    queued = [_fill("a", "buy", "0.5", 1), _fill("b", "sell", "0.2", 2)]
    assert _positions(book, queued[:1]) == [Decimal(1)]
    book.remember(queued[:1])
    assert _positions(book, queued[1:]) == [Decimal("1.5")]
    book.remember(queued[1:])
    # A fill after the newer read walks forward from it.
    assert _positions(book, [_fill("c", "sell", "1", 6)]) == [Decimal("1.3")]


def test_fills_at_the_same_time_count_in_log_order() -> None:
    book = _book({"BTC": "0"}, 0)
    batch = [_fill("a", "buy", "1", 1), _fill("b", "buy", "2", 1), _fill("c", "sell", "3", 1)]
    assert _positions(book, batch) == [Decimal(0), Decimal(1), Decimal(3)]
    held = _book({"BTC": "0"}, 2)  # a snapshot read after all three
    assert _positions(held, batch) == [Decimal(0), Decimal(1), Decimal(3)]


def test_a_read_holding_a_fill_still_on_the_stream_never_misstates_a_spot_position() -> None:
    # The leader held 1 BTC, sold 1 at 1 and bought 0.4 at 2; the first read (at 3) holds both
    # (1.4 - 1 = 0.4) and the stream delivered the sell alone: walked back over it only, the
    # position before the sell would be 0.4 + 1 = 1.4 (a proportional exit sized off 1.4).
    book = _book({"BTC": "0.4"}, 3)
    sell, buy = _fill("a", "sell", "1", 1), _fill("b", "buy", "0.4", 2)
    assert not book.placeable(sell)
    assert _positions(book, [sell], listed=False) == [None]
    # A backfill listing after the read finds both: 1 before the sell, 0 before the buy.
    assert book.placeable(sell, complete_until=_at(3))
    assert _positions(book, [sell, buy]) == [Decimal(1), Decimal(0)]


def test_a_position_is_never_negative() -> None:
    book = _book({"BTC": "1"}, 10)
    assert _positions(book, [_fill("a", "buy", "5", 1)]) == [Decimal(0)]


def test_without_a_snapshot_the_equity_is_the_last_known_and_the_position_unknown() -> None:
    book = LeaderBook(fallback_equity=Decimal(900))
    assert book.states([_fill("a", "buy", "1", 1)]) == [LeaderState(Decimal(900), None)]


def test_equity_is_the_snapshot_less_the_fees_paid_since() -> None:
    book = _book({"USDT": "10000"}, 0, equity="10000")
    book.remember([_fill("old", "buy", "0.1", -5, fee="7", fee_currency="USDT")])
    batch = [
        _fill("a", "buy", "0.1", 1, fee="2.5", fee_currency="USDT"),
        _fill("b", "buy", "0.1", 2, fee="0.0001", fee_currency="BTC"),
        _fill("c", "sell", "0.1", 3, fee="1", fee_currency="BNB"),
        _fill("d", "sell", "0.1", 4),
    ]
    equities = [state.equity for state in book.states(batch)]
    assert equities == [Decimal(10000), Decimal("9997.5"), Decimal("9992.5"), Decimal("9992.5")]


def test_fee_value_and_asset_deltas() -> None:
    buy = _fill("a", "buy", "0.1", 0, fee="0.0001", fee_currency="BTC")
    assert fee_value(buy) == Decimal("5.0000")
    assert asset_deltas(buy) == {"BTC": Decimal("0.0999"), "USDT": Decimal("-5000.0")}
    sell = _fill("b", "sell", "0.1", 0, fee="5", fee_currency="usdt")
    assert asset_deltas(sell) == {"BTC": Decimal("-0.1"), "USDT": Decimal("4995.0")}
    third = _fill("c", "sell", "1", 0, price="10", fee="0.01", fee_currency="BNB")
    assert asset_deltas(third) == {"BTC": Decimal(-1), "USDT": Decimal(10), "BNB": Decimal("-0.01")}
    assert fee_value(third) == 0


def test_a_deposit_is_a_balance_change_no_fill_explains() -> None:
    book = _book({"USDT": "10000"}, 0)
    trade = _fill("a", "buy", "0.1", 1, fee="5", fee_currency="USDT")
    book.remember([trade])
    changes = book.rebase(
        Snapshot(
            equity=Decimal(12000),
            totals={
                "USDT": Decimal("10000") - Decimal(5005) + Decimal(2000),
                "BTC": Decimal("0.1"),
            },
            read_time=_at(2),
        )
    )
    assert changes == [BalanceChange("USDT", Decimal(2000))]
    assert book.states([_fill("b", "sell", "0.05", 3)])[0] == LeaderState(
        Decimal(12000), Decimal("0.1")
    )


def test_balances_moved_only_by_fills_are_no_change() -> None:
    book = _book({"USDT": "10000", "BTC": "1"}, 0)
    book.remember([_fill("a", "sell", "0.5", 1), _fill("b", "buy", "0.25", 2, price="40000")])
    changes = book.rebase(
        Snapshot(
            equity=Decimal(10),
            totals={"USDT": Decimal(25000), "BTC": Decimal("0.75")},
            read_time=_at(3),
        )
    )
    assert changes == []


def test_a_fill_not_seen_yet_looks_like_a_balance_change_until_found() -> None:
    book = _book({"USDT": "10000"}, 0)
    changes = book.rebase(
        Snapshot(
            equity=Decimal(10000),
            totals={"USDT": Decimal(5000), "BTC": Decimal("0.1")},
            read_time=_at(2),
        )
    )
    assert {change.asset for change in changes} == {"BTC", "USDT"}
    # Found later by a backfill, it is placed inside the snapshot that holds it.
    assert _positions(book, [_fill("a", "buy", "0.1", 1)]) == [Decimal(0)]


def test_an_older_read_does_not_replace_a_newer_one() -> None:
    book = _book({"BTC": "2"}, 10)
    assert book.rebase(Snapshot(Decimal(1), {"BTC": Decimal(7)}, _at(5))) == []
    assert book.snapshot is not None and book.snapshot.totals == {"BTC": Decimal(2)}
    assert len(book.snapshots) == 1


def test_snapshots_are_bounded() -> None:
    book = _book({"BTC": "1"}, 0)
    for number in range(1, 100):
        book.rebase(Snapshot(Decimal(1), {"BTC": Decimal(1)}, _at(number)))
    assert len(book.snapshots) == 64 and book.snapshots[-1].read_time == _at(99)


def test_history_is_bounded_by_time_and_count() -> None:
    book = _book({"BTC": "1"}, 0)
    book.remember([_fill("old", "buy", "1", -7200), _fill("new", "buy", "1", -60)])
    book.rebase(Snapshot(Decimal(1), {"BTC": Decimal(1)}, _at(1)))
    assert [fill.trade_id for fill in book.fills] == ["new"]
    book.remember(_fill(str(n), "buy", "1", 2) for n in range(MAX_HISTORY + 5))
    assert len(book.fills) == MAX_HISTORY and book.fills[-1].trade_id == str(MAX_HISTORY + 4)


def test_judging_a_change_again_once_the_fills_of_its_window_arrived() -> None:
    book = _book({"USDT": "10000"}, 0)
    base = book.snapshot
    assert base is not None
    target = Snapshot(Decimal(10000), {"USDT": Decimal(4995), "BTC": Decimal("0.1")}, _at(2))
    assert book.rebase(target) != []
    # 2000 USDT deposited between the second and the third read.
    later = Snapshot(Decimal(12000), {"USDT": Decimal(1995), "BTC": Decimal("0.2")}, _at(4))
    book.rebase(later)
    # The fills of both windows arrive after the reads that hold them.
    book.remember(
        [_fill("a", "buy", "0.1", 1, fee="5", fee_currency="USDT"), _fill("b", "buy", "0.1", 3)]
    )
    assert book.judge(base, target) == ([], 1)
    assert book.judge(target, later) == ([BalanceChange("USDT", Decimal(2000))], 1)
