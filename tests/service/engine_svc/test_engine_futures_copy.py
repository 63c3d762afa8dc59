"""The copy path of a futures follower through the real engine (issue #18): the leverage is set
once per account and market before the first entry, exits go out reduce-only, and a leader's
reverse is copied as a reduce-only close and then an entry on the new side."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from engine_fakes import dec
from engine_harness import Harness

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2 as sync_pb
from engine_svc.domain.model import Intent, IntentState
from meshkit.codec import timestamp_to_proto
from meshkit.testing import eventually

PERP = "BTC/USDT:USDT"


def _signal(source: str, sequence: int, side: int, quantity: str, before: str, effect: int):
    signal = sync_pb.Signal(
        source_id=source,
        sequence=sequence,
        signal_id=f"t{sequence}",
        symbol=PERP,
        side=side,
        quantity=dec(quantity),
        price=dec("50000"),
        order_type=types_pb2.ORDER_TYPE_MARKET,
        exchange_name="binanceusdm",
        position_effect=effect,
        leader_equity=dec("10000"),
        leader_position=dec(before),
        leader_leverage=dec("10"),
    )
    now = timestamp_to_proto(datetime.now(UTC))
    signal.event_time.CopyFrom(now)
    signal.log_time.CopyFrom(now)
    return signal


async def _settled(harness: Harness, config_id: str, count: int) -> list[Intent]:
    async def done() -> list[Intent] | None:
        intents = await harness.store.list_intents(config_id, None, None, 1000)
        final = [i for i in intents if i.state in (IntentState.FILLED, IntentState.SKIPPED)]
        return sorted(intents, key=lambda i: (i.sequence, i.leg)) if len(final) >= count else None

    return await eventually(done, timeout=10)


async def test_a_reverse_closes_reduce_only_then_opens_the_other_side_at_the_set_leverage(
    harness: Harness,
) -> None:
    broker = harness.world.broker
    broker.add_market(PERP, "BTC", "USDT", price="50000", step="0.001", venue="binanceusdm")
    follower = broker.add_account(exchange_name="binanceusdm", equity=Decimal("10000"))
    follower.positions = [
        broker_pb.Position(symbol=PERP, side="long", contracts=dec("0.2"), contract_size=dec("1"))
    ]
    source = harness.world.sync.add_backtest()
    config_id = (
        await harness.call(
            "StartCopy",
            pb.StartCopyRequest(
                source_backtest_id=source,
                target_exchange_ids=[follower.exchange_id],
                risk_limits=pb.RiskLimits(max_leverage=dec("3")),
                copy_settings=pb.CopySettings(sizing_mode="multiplier", multiplier=dec("0.4")),
            ),
        )
    ).config_id

    # The leader, long 0.5, sells 1: it closes its long and opens a 0.5 short.
    harness.world.sync.append(
        _signal(source, 1, types_pb2.ORDER_SIDE_SELL, "1", "0.5", sync_pb.POSITION_EFFECT_REVERSE)
    )
    close, entry = await _settled(harness, config_id, 2)
    assert (close.leg, close.reduce_only, close.quantity) == (0, True, Decimal("0.2"))
    assert (entry.leg, entry.reduce_only, entry.quantity) == (1, False, Decimal("0.2"))
    assert entry.leverage == 3  # the leader's 10x, at most max_leverage
    listed = await harness.call("ListCopiedOrders", pb.ListCopiedOrdersRequest(config_id=config_id))
    assert sorted((o.leg, o.reduce_only, o.leverage) for o in listed.orders) == [
        (0, True, 0),
        (1, False, 3),
    ]
    sent = {c.client_order_id: c for c in broker.place_calls}
    assert sent[close.client_order_id].reduce_only
    assert not sent[entry.client_order_id].reduce_only
    assert broker.leverage_journal == [
        f"place {close.client_order_id}",
        "leverage 3",
        f"place {entry.client_order_id}",
    ]

    # The leader adds to its short: another entry, the leverage is not set again.
    follower.positions = [
        broker_pb.Position(symbol=PERP, side="short", contracts=dec("0.2"), contract_size=dec("1"))
    ]
    harness.world.sync.append(
        _signal(source, 2, types_pb2.ORDER_SIDE_SELL, "0.25", "-0.5", sync_pb.POSITION_EFFECT_OPEN)
    )
    *_, added = await _settled(harness, config_id, 3)
    assert (added.sequence, added.reduce_only, added.quantity) == (2, False, Decimal("0.1"))
    assert broker.leverage_calls == [(follower.exchange_id, PERP, 3)]
