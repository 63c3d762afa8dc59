"""The core's in-place amend (Kraken ``AmendOrder``, Coinbase ``orders/edit``): the same order
id, the hold re-taken for the new remainder, nothing changed when the venue refuses."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange_sim.core import (
    ExecutionType,
    InsufficientBalance,
    OrderNotFound,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
)
from exchange_sim.core.errors import InvalidOrderRequest
from tests.sim.test_sim_core_engine import BTC, KEY, engine, req

D = Decimal


def test_an_amend_keeps_the_id_and_re_takes_the_hold_or_changes_nothing() -> None:
    eng = engine(USDT="10000")
    placed = eng.place_order(KEY, req(Side.BUY, OrderType.LIMIT, "0.1", "40000"))
    events: list[object] = []
    eng.subscribe(events.append)
    amended = eng.amend_order(KEY, BTC, placed.order_id, price=D("41000"))
    assert (amended.order_id, amended.price, amended.status) == (
        placed.order_id,
        D("41000"),
        OrderStatus.NEW,
    )
    assert eng.accounts.get(KEY).balance("USDT").locked == amended.locked_amount > D("4100")
    assert [e.execution for e in events if isinstance(e, OrderUpdate)] == [ExecutionType.AMENDED]
    with pytest.raises(InsufficientBalance):  # 0.3 at 41000 is more than the account holds
        eng.amend_order(KEY, BTC, placed.order_id, quantity=D("0.3"))
    after = eng.get_order(KEY, BTC, order_id=placed.order_id)
    assert (after.quantity, after.locked_amount) == (D("0.1"), amended.locked_amount)
    assert eng.accounts.get(KEY).balance("USDT").locked == amended.locked_amount
    with pytest.raises(InvalidOrderRequest):  # nothing to change
        eng.amend_order(KEY, BTC, placed.order_id, price=D("41000"))


def test_an_amend_below_the_filled_quantity_or_of_an_ended_order_is_refused() -> None:
    eng = engine(USDT="100000")
    partial = eng.place_order(KEY, req(Side.BUY, OrderType.LIMIT, "1", "50025"))
    assert partial.status is OrderStatus.PARTIALLY_FILLED and partial.executed_qty == D("0.5")
    with pytest.raises(InvalidOrderRequest):
        eng.amend_order(KEY, BTC, partial.order_id, quantity=D("0.5"))
    grown = eng.amend_order(KEY, BTC, partial.order_id, quantity=D("0.8"), price=D("40000"))
    assert grown.remaining == D("0.3") and grown.status is OrderStatus.PARTIALLY_FILLED
    eng.cancel_order(KEY, BTC, order_id=partial.order_id)
    with pytest.raises(OrderNotFound):
        eng.amend_order(KEY, BTC, partial.order_id, price=D("39000"))
    maker = eng.place_order(KEY, req(Side.BUY, OrderType.LIMIT_MAKER, "0.01", "30000", cid="m"))
    with pytest.raises(InvalidOrderRequest):  # only GTC limit orders are amended
        eng.amend_order(KEY, BTC, maker.order_id, price=D("31000"))
