"""Slippage of a copy and the profit and loss of a follower account's copies."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from engine_svc.domain.model import AssetBalance, Intent, IntentState, Portfolio
from engine_svc.domain.performance import account_pnl, slippage
from meshkit.vocabulary import OrderType, Side

NOW = datetime(2026, 12, 4, tzinfo=UTC)


def _intent(
    side: Side,
    filled: str,
    price: str | None,
    leader_price: str | None = "100",
    *,
    symbol: str = "BTC/USDT",
    target: str = "acct",
) -> Intent:
    return Intent(
        intent_id=f"i{id(object())}",
        config_id="c",
        source_id="s",
        sequence=1,
        signal_id="sig",
        target_exchange_id=target,
        leg=0,
        client_order_id="coid",
        symbol=symbol,
        side=side,
        type=OrderType.MARKET,
        quantity=Decimal(filled),
        price=None,
        state=IntentState.FILLED,
        reason="",
        leader_quantity=Decimal(1),
        leader_price=None if leader_price is None else Decimal(leader_price),
        leader_event_time=NOW,
        created_at=NOW,
        updated_at=NOW,
        filled_quantity=Decimal(filled),
        average_price=None if price is None else Decimal(price),
    )


@pytest.mark.parametrize(
    ("side", "fill", "expected"),
    [
        (Side.BUY, "101", Decimal("0.01")),
        (Side.BUY, "99", Decimal("-0.01")),
        (Side.SELL, "99", Decimal("0.01")),
        (Side.SELL, "101", Decimal("-0.01")),
    ],
)
def test_slippage_is_positive_when_the_follower_did_worse_than_the_leader(side, fill, expected):
    assert slippage(_intent(side, "1", fill)) == expected


@pytest.mark.parametrize(
    "intent",
    [
        _intent(Side.BUY, "0", None),
        _intent(Side.BUY, "1", "101", leader_price=None),
        _intent(Side.BUY, "1", None),
    ],
)
def test_slippage_is_unknown_without_a_fill_or_a_leader_price(intent):
    assert slippage(intent) is None


def test_account_pnl_realizes_sells_at_average_cost_and_values_the_rest_at_the_mark():
    intents = [
        _intent(Side.BUY, "1", "100"),
        _intent(Side.BUY, "1", "200"),  # average cost 150
        _intent(Side.SELL, "0.5", "180"),  # realizes 0.5 * 30 = 15
        _intent(Side.BUY, "5", "1", target="other"),  # another account: ignored
    ]
    portfolio = Portfolio(
        equity=Decimal("10000"),
        quote_currency="USD",  # a dollar equivalent of USDT: counted in the totals
        balances=(AssetBalance("BTC", Decimal("2"), Decimal("2"), Decimal("320")),),
    )
    account = account_pnl("acct", intents, portfolio)
    assert account.equity == Decimal("10000")
    assert account.realized == Decimal("15")
    # 1.5 open at 150, marked at 160: +15.
    assert account.unrealized == Decimal("15")
    (position,) = account.positions
    assert position.quantity == Decimal("1.5")
    assert position.average_cost == Decimal("150")
    assert position.mark_price == Decimal("160")


def test_a_sell_beyond_what_the_copies_bought_closes_only_their_quantity():
    intents = [_intent(Side.BUY, "1", "100"), _intent(Side.SELL, "3", "110")]
    account = account_pnl("acct", intents, None)
    assert account.realized == Decimal("10")
    assert account.unrealized == Decimal("0")
    assert account.equity is None
    assert account.quote_currency == "USDT"
    assert account.positions[0].quantity == Decimal("0")


def test_an_open_quantity_without_a_valuation_has_unknown_unrealized_pnl():
    account = account_pnl("acct", [_intent(Side.BUY, "1", "100")], None)
    assert account.unrealized is None
    assert account.positions[0].unrealized is None
