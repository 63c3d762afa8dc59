"""A futures leader's fills (pure): the signed position before each, what the fill did to it,
its leverage, liquidations, and the money they move (their fee only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.common.v1 import types_pb2
from sync_svc.codec import fill_from_proto, portfolio_from_proto
from sync_svc.domain.ledger import LeaderBook, Snapshot, asset_deltas
from sync_svc.domain.model import LeaderFill, PositionEffect, Side
from sync_svc.domain.positions import is_liquidation, position_effect
from sync_svc.domain.validation import RawPublishedSignal, check_published_signal

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PERP = "BTC/USDT:USDT"


def _fill(trade_id: str, side: str, quantity: str, seconds: float) -> LeaderFill:
    return LeaderFill(
        trade_id=trade_id,
        symbol=PERP,
        side=Side(side),
        quantity=Decimal(quantity),
        price=Decimal("50000"),
        fee=Decimal("1.25"),
        fee_currency="USDT",
        order_type=None,
        trade_time=T0 + timedelta(seconds=seconds),
    )


@pytest.mark.parametrize(
    ("before", "side", "quantity", "effect"),
    [
        ("0", "buy", "1", PositionEffect.OPEN),
        ("1", "buy", "1", PositionEffect.OPEN),
        ("-1", "sell", "1", PositionEffect.OPEN),
        ("1", "sell", "0.4", PositionEffect.REDUCE),
        ("-1", "buy", "1", PositionEffect.CLOSE),
        ("1", "sell", "3", PositionEffect.REVERSE),
        (None, "sell", "1", PositionEffect.UNSPECIFIED),
    ],
)
def test_what_a_fill_does_to_the_position(
    before: str | None, side: str, quantity: str, effect: PositionEffect
) -> None:
    start = Decimal(before) if before is not None else None
    assert position_effect(start, Side(side), Decimal(quantity)) is effect


def test_the_signed_position_walks_from_the_snapshot_and_may_be_short() -> None:
    book = LeaderBook()
    book.rebase(
        Snapshot(
            equity=Decimal("10000"),
            totals={"USDT": Decimal("10000")},
            read_time=T0,
            positions={PERP: Decimal("0.5")},
            leverages={PERP: Decimal("10")},
        )
    )
    states = book.states([_fill("1", "sell", "0.5", 1), _fill("2", "sell", "0.3", 2)])
    assert [s.position for s in states] == [Decimal("0.5"), Decimal("0")]
    assert {s.leverage for s in states} == {Decimal("10")}
    book.remember([_fill("1", "sell", "0.5", 1), _fill("2", "sell", "0.3", 2)])
    (after,) = book.states([_fill("3", "buy", "0.3", 3)])
    assert after.position == Decimal("-0.3")  # a short, not floored at zero as on spot


def test_a_futures_fill_moves_only_its_fee() -> None:
    assert asset_deltas(_fill("1", "buy", "1", 0)) == {"USDT": Decimal("-1.25")}


def test_binance_liquidations_are_recognised_by_their_client_order_id() -> None:
    assert is_liquidation("autoclose-1700000000000")
    assert is_liquidation("", "LIQUIDATION")
    assert not is_liquidation("x-abc")
    message = types_pb2.Fill(
        trade_id="9", symbol=PERP, side=types_pb2.ORDER_SIDE_SELL, client_order_id="autoclose-1"
    )
    message.quantity.value, message.price.value = "0.5", "30000"
    message.trade_time.FromDatetime(T0)
    assert fill_from_proto(message).liquidation


def test_the_portfolio_gives_signed_positions_and_leverage() -> None:
    reply = broker_pb.GetPortfolioResponse()
    short = reply.positions.add(symbol=PERP, side="short")
    short.contracts.value, short.leverage.value = "0.3", "5"
    portfolio = portfolio_from_proto(reply)
    assert portfolio.positions == {PERP: Decimal("-0.3")}
    assert portfolio.leverages == {PERP: Decimal("5")}


def test_the_portfolio_gives_the_leverage_of_markets_without_a_position() -> None:
    # The broker's leverages (include_leverages): every market's setting, flat ones too; an
    # open position's own leverage, when the venue reports one, is the same setting.
    reply = broker_pb.GetPortfolioResponse()
    reply.leverages.add(symbol=PERP, margin_mode="cross").leverage.value = "10"
    reply.leverages.add(symbol="ETH/USDT:USDT").leverage.value = "20"
    portfolio = portfolio_from_proto(reply)
    assert portfolio.positions == {}
    assert portfolio.leverages == {PERP: Decimal("10"), "ETH/USDT:USDT": Decimal("20")}
    # A first entry from flat: position 0 before it, the leverage set on the market.
    book = LeaderBook()
    book.rebase(
        Snapshot(
            equity=Decimal("10000"),
            totals={"USDT": Decimal("10000")},
            read_time=T0,
            positions=portfolio.positions,
            leverages=portfolio.leverages,
        )
    )
    (state,) = book.states([_fill("1", "buy", "0.1", 1)])
    assert (state.position, state.leverage) == (Decimal("0"), Decimal("10"))


def test_a_strategy_may_publish_a_perpetual_symbol() -> None:
    raw = RawPublishedSignal("s1", PERP, "buy", "1", "50000", "market", "", "")
    published, violations = check_published_signal(0, raw)
    assert not violations and published is not None and published.symbol == PERP


def test_a_futures_margin_balance_moving_with_pnl_is_no_unexplained_change() -> None:
    book = LeaderBook()
    book.rebase(Snapshot(Decimal("10000"), {"USDT": Decimal("10000")}, T0, {PERP: Decimal("1")}))
    later = T0 + timedelta(seconds=60)
    moved = Snapshot(Decimal("9000"), {"USDT": Decimal("9000")}, later, {PERP: Decimal("1")})
    assert book.rebase(moved) == []
    deposit = Snapshot(
        Decimal("9000"), {"USDT": Decimal("9000"), "BNB": Decimal("1")}, later + (later - T0)
    )
    assert [c.asset for c in book.rebase(deposit)] == ["BNB"]


def test_a_read_holding_a_later_fill_the_batch_lacks_does_not_turn_an_open_into_a_reverse() -> None:
    # Issue #18 chaos (kill -9 sync, seed 431390772): the leader bought 0.051 from flat at 1 and
    # sold it at 2; the first read (at 3) holds both, the stream delivered the buy alone. Walked
    # back over the buy only, the read's flat position made it a reverse from -0.051.
    book = LeaderBook()
    read = T0 + timedelta(seconds=3)
    book.rebase(Snapshot(Decimal("10000"), {"USDT": Decimal("10000")}, read, {}))
    buy, sell = _fill("1", "buy", "0.051", 1), _fill("2", "sell", "0.051", 2)
    assert not book.placeable(buy)  # the stream hands it to a backfill
    (streamed,) = book.states([buy])
    assert streamed.position is None  # unknown, never -0.051
    # The backfill listed after the read finds both: an open from flat, then a close.
    assert book.placeable(buy, complete_until=read)
    states = book.states([buy, sell], complete_until=read)
    assert [s.position for s in states] == [Decimal(0), Decimal("0.051")]
    assert [
        position_effect(s.position, f.side, f.quantity)
        for s, f in zip(states, (buy, sell), strict=True)
    ] == [PositionEffect.OPEN, PositionEffect.CLOSE]
    # Once a backfill vouched for every fill up to the read, the stream may walk back again.
    book.remember([buy, sell])
    book.mark_complete(read)
    late = _fill("0", "buy", "0.01", 0.5)
    assert book.placeable(late)
    # A fill traded after a read walks forward from it: the stream never waits for those.
    assert book.placeable(_fill("3", "buy", "0.01", 4))


def test_a_read_taken_while_the_leader_traded_never_places_a_buy_from_flat_as_short() -> None:
    # CI demo: the leader bought 6 from flat in 3 fills (at 1, 2, 3). The venue took the
    # positions at some instant while the read was on its way (asked at 1.5, back at 3.5): they
    # hold 2 of the 3 fills (4), the read's stamp is after all 3. Walked back from the stamp,
    # the first buy came out from -2 (a short being reduced) and the sell later opened a short.
    book = LeaderBook()
    buys = [_fill(str(n), "buy", "2", n) for n in (1, 2, 3)]
    racing = Snapshot(
        Decimal("10000"),
        {"USDT": Decimal("10000")},
        T0 + timedelta(seconds=3.5),
        {PERP: Decimal("4")},
        positions_since=T0 + timedelta(seconds=1.5),
    )
    book.rebase(racing)
    assert not book.placeable(buys[0])  # the stream hands it to a backfill, which reads again
    listed = T0 + timedelta(seconds=3.5)
    states = book.states(buys, complete_until=listed)
    assert [s.position for s in states] == [None, None, None]  # unknown, never -2
    # The portfolio read again once the leader is idle holds all 3: an open from flat.
    book.rebase(
        Snapshot(
            Decimal("10000"),
            {"USDT": Decimal("10000")},
            T0 + timedelta(seconds=5),
            {PERP: Decimal("6")},
            positions_since=T0 + timedelta(seconds=4.5),
        )
    )
    states = book.states(buys, complete_until=T0 + timedelta(seconds=5))
    assert [s.position for s in states] == [Decimal(0), Decimal(2), Decimal(4)]
    book.remember(buys)
    sell = _fill("4", "sell", "3", 6)
    (before_sell,) = book.states([sell])
    assert before_sell.position == Decimal(6)
    assert position_effect(before_sell.position, sell.side, sell.quantity) is PositionEffect.REDUCE


def test_a_read_taken_while_the_leader_traded_is_skipped_for_an_earlier_one() -> None:
    # Same race with a read before the trades: the fills walk forward from it instead.
    book = LeaderBook()
    book.rebase(Snapshot(Decimal("10000"), {"USDT": Decimal("10000")}, T0, {}, positions_since=T0))
    book.rebase(
        Snapshot(
            Decimal("10000"),
            {"USDT": Decimal("10000")},
            T0 + timedelta(seconds=3.5),
            {PERP: Decimal("4")},
            positions_since=T0 + timedelta(seconds=1.5),
        )
    )
    buys = [_fill(str(n), "buy", "2", n) for n in (1, 2, 3)]
    assert book.placeable(buys[0])
    states = book.states(buys)
    assert [s.position for s in states] == [Decimal(0), Decimal(2), Decimal(4)]


def test_the_portfolio_says_when_its_positions_were_asked_for() -> None:
    reply = broker_pb.GetPortfolioResponse()
    reply.read_time.FromDatetime(T0 + timedelta(seconds=1))
    reply.positions_request_time.FromDatetime(T0)
    assert portfolio_from_proto(reply).positions_since == T0
    assert portfolio_from_proto(broker_pb.GetPortfolioResponse()).positions_since is None
