"""The copies' profit and loss on a derivatives market: a signed position (a sell opens a short),
closes realized against the average entry, a flip, and the venue's mark of the position."""

from __future__ import annotations

from decimal import Decimal

from engine_svc.domain.model import Portfolio, VenuePosition
from engine_svc.domain.performance import account_pnl
from meshkit.vocabulary import Side
from tests.unit.engine_svc.test_engine_performance import _intent

PERP = "BTC/USDT:USDT"
D = Decimal


def _portfolio(mark: str | None) -> Portfolio:
    positions = () if mark is None else (VenuePosition(PERP, "short", D("1"), mark_price=D(mark)),)
    return Portfolio(equity=D("10000"), quote_currency="USDT", positions=positions)


def test_a_short_opened_by_a_sell_gains_as_the_mark_falls() -> None:
    intents = [
        _intent(Side.SELL, "2", "100", symbol=PERP),
        _intent(Side.BUY, "0.5", "90", symbol=PERP),  # a reduce-only close of a quarter
    ]

    account = account_pnl("acct", intents, _portfolio("80"))

    [position] = account.positions
    assert (position.side, position.quantity, position.average_cost) == ("short", D("1.5"), D(100))
    assert position.realized == D("5")  # 0.5 * (100 - 90)
    assert position.mark_price == D(80) and position.unrealized == D("30")  # 1.5 * (100 - 80)
    assert (account.realized, account.unrealized) == (D("5"), D("30"))


def test_a_fill_through_flat_closes_and_opens_the_other_side_at_its_price() -> None:
    intents = [
        _intent(Side.BUY, "1", "100", symbol=PERP),
        _intent(Side.SELL, "3", "110", symbol=PERP),
    ]

    [position] = account_pnl("acct", intents, _portfolio(None)).positions

    assert (position.side, position.quantity, position.average_cost) == ("short", D(2), D(110))
    assert position.realized == D("10") and position.unrealized is None  # no mark read


def test_a_closed_position_is_flat_and_spot_keeps_no_side() -> None:
    intents = [
        _intent(Side.BUY, "1", "100", symbol=PERP),
        _intent(Side.SELL, "1", "95", symbol=PERP),
        _intent(Side.BUY, "1", "100"),
    ]

    perp, spot = sorted(
        account_pnl("acct", intents, _portfolio("90")).positions, key=lambda p: p.symbol
    )[::-1]

    assert (perp.symbol, perp.side, perp.quantity, perp.unrealized) == (PERP, "flat", 0, 0)
    assert perp.realized == D("-5")
    assert (spot.symbol, spot.side) == ("BTC/USDT", "")
