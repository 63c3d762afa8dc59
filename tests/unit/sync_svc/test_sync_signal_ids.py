"""How a leader fill's signal is named when another symbol's fill holds its trade id."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sync_svc.domain.model import LeaderFill, OrderType, Side, SignalDraft
from sync_svc.domain.signal_ids import named_by_symbol, symbol_signal_id

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _fill(trade_id: str, symbol: str) -> LeaderFill:
    return LeaderFill(
        trade_id=trade_id,
        symbol=symbol,
        side=Side.BUY,
        quantity=Decimal("0.5"),
        price=Decimal("2000"),
        fee=None,
        fee_currency="",
        order_type=None,
        trade_time=T0,
    )


def _draft(signal_id: str, symbol: str) -> SignalDraft:
    return SignalDraft(
        source_id="source",
        signal_id=signal_id,
        symbol=symbol,
        side=Side.BUY,
        quantity=Decimal("0.5"),
        price=Decimal("2000"),
        order_type=OrderType.MARKET,
        event_time=T0,
    )


def test_symbol_signal_id_names_the_symbol_and_the_trade() -> None:
    assert symbol_signal_id(_fill("42", "ETH/USDT")) == "ETH/USDT:42"


def test_named_by_symbol_changes_only_the_signal_id() -> None:
    draft = _draft("42", "ETH/USDT")
    renamed = named_by_symbol(draft, _fill("42", "ETH/USDT"))
    assert renamed.signal_id == "ETH/USDT:42"
    assert renamed == SignalDraft(**{**vars(draft), "signal_id": "ETH/USDT:42"})
    assert draft.signal_id == "42"
