"""GetCopyStatus's profit and loss from a kept ledger: the intents that can no longer change
(terminal, written over 10 s ago) are folded once per configuration, later calls read only
the newer ones, and the figures stay those of folding every intent."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from engine_harness import Harness

from copytrade.engine.v1 import engine_service_pb2 as pb
from engine_svc.domain import performance
from engine_svc.domain.model import Intent, IntentState, OrderType, Side


def _intent(
    harness: Harness,
    config_id: str,
    source_id: str,
    target: str,
    sequence: int,
    side: Side,
    quantity: str,
    price: str,
    state: IntentState = IntentState.FILLED,
) -> Intent:
    now = harness.clock.now()
    return Intent(
        intent_id=str(uuid.uuid4()),
        config_id=config_id,
        source_id=source_id,
        sequence=sequence,
        signal_id=f"sig-{sequence}",
        target_exchange_id=target,
        leg=0,
        client_order_id=f"c{sequence}-{uuid.uuid4().hex[:8]}",
        symbol="BTC/USDT",
        side=side,
        type=OrderType.MARKET,
        quantity=Decimal(quantity),
        price=None,
        state=state,
        reason="",
        leader_quantity=Decimal(quantity),
        leader_price=Decimal(price),
        leader_event_time=now,
        created_at=now,
        updated_at=now,
        filled_quantity=Decimal(quantity) if state is IntentState.FILLED else Decimal(0),
        average_price=Decimal(price) if state is IntentState.FILLED else None,
    )


async def test_status_folds_settled_intents_once_and_keeps_the_figures(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    config_id = (
        await harness.call(
            "StartCopy",
            pb.StartCopyRequest(
                source_backtest_id=harness.world.sync.add_backtest(),
                target_exchange_ids=[target.exchange_id],
            ),
        )
    ).config_id
    source = (await harness.store.get_config(config_id)).source_id
    read: list[int] = []
    real = harness.store.list_intents

    async def counting(*args: Any, **kwargs: Any) -> list[Intent]:
        found = await real(*args, **kwargs)
        read.append(len(found))
        return found

    harness.store.list_intents = counting  # type: ignore[method-assign]
    written: list[Intent] = []

    async def write(sequence: int, side: Side, quantity: str, price: str, **kw: Any) -> Intent:
        intent = _intent(
            harness, config_id, source, target.exchange_id, sequence, side, quantity, price, **kw
        )
        assert await harness.store.insert_intent(intent)
        written.append(intent)
        harness.clock.advance(1)
        return intent

    async def realized() -> str:
        read.clear()
        status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
        [account] = status.accounts
        return account.realized_pnl.value

    def folded() -> Decimal:
        [account] = performance.accounts_pnl([target.exchange_id], written, {})
        return account.realized

    await write(1, Side.BUY, "2", "100")
    await write(2, Side.SELL, "1", "110")
    assert Decimal(await realized()) == folded() == Decimal("10")
    assert sum(read) == 2  # nothing settled yet: every intent read

    harness.clock.advance(11)
    assert Decimal(await realized()) == folded()  # this call settles the two
    await write(3, Side.SELL, "1", "120")
    await write(4, Side.BUY, "1", "90", state=IntentState.ACCEPTED)  # open: never settled
    assert Decimal(await realized()) == folded() == Decimal("30")
    assert sum(read) == 2  # the two settled ones were not read again

    harness.clock.advance(11)
    await realized()  # settles the third; the open fourth stops the run there
    await write(5, Side.SELL, "1", "95")
    assert Decimal(await realized()) == folded()
    assert sum(read) == 2  # the open one and the newest
