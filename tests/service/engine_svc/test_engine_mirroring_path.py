"""Order mirroring through the real engine: one copy per leader order, whichever way it comes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from engine_fakes import Account, dec
from engine_harness import Harness

from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2 as sync_pb
from engine_svc.domain.model import Intent, IntentState, OrderType
from meshkit.codec import timestamp_to_proto
from meshkit.testing import eventually

ORDERS = pb.CopySettings(
    copy_mode="orders", sizing_mode="fixed_quantity", fixed_quantity=dec("0.01")
)


async def _start(harness: Harness, source: str, target: Account) -> str:
    reply = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(
            source_backtest_id=source,
            target_exchange_ids=[target.exchange_id],
            copy_settings=ORDERS,
        ),
    )
    return str(reply.config_id)


def _signal(source: str, sequence: int, **fields: object) -> sync_pb.Signal:
    now = timestamp_to_proto(datetime.now(UTC))
    signal = sync_pb.Signal(
        source_id=source,
        sequence=sequence,
        signal_id=f"s{sequence}",
        symbol="BTC/USDT",
        side=types_pb2.ORDER_SIDE_BUY,
        quantity=dec("0.1"),
        price=dec("40000"),
        exchange_name="binance",
        leader_order_id="L1",
        event_time=now,
        log_time=now,
        **fields,  # type: ignore[arg-type]  # the test's signal fields
    )
    return signal


async def _intents(harness: Harness, config_id: str, count: int) -> list[Intent]:
    async def enough() -> list[Intent] | None:
        intents = await harness.store.list_intents(config_id, None, None, 100)
        return intents if len(intents) >= count else None

    return sorted(await eventually(enough, timeout=10), key=lambda i: i.sequence)


async def test_a_mirrored_fill_is_skipped_only_where_the_order_was_mirrored(
    harness: Harness,
) -> None:
    source = harness.world.sync.add_backtest()
    early = harness.world.broker.add_account()
    late = harness.world.broker.add_account()
    mirrored = await _start(harness, source, early)
    harness.world.sync.append(
        _signal(
            source,
            1,
            kind=sync_pb.SIGNAL_KIND_ORDER_OPEN,
            order_type=types_pb2.ORDER_TYPE_LIMIT,
            time_in_force=types_pb2.TIME_IN_FORCE_GTC,
        )
    )
    (opened,) = await _intents(harness, mirrored, 1)
    assert (opened.type, opened.price, opened.quantity) == (
        OrderType.LIMIT,
        Decimal("40000"),
        Decimal("0.01"),
    )
    # A configuration started after the order opened has no copy of it: it copies the fill.
    after = await _start(harness, source, late)
    harness.world.sync.append(
        _signal(
            source,
            2,
            kind=sync_pb.SIGNAL_KIND_FILL,
            order_type=types_pb2.ORDER_TYPE_LIMIT,
            order_mirrored=True,
            opened_sequence=1,
        )
    )
    _, fill = await _intents(harness, mirrored, 2)
    assert (fill.state, fill.reason) == (IntentState.SKIPPED, "order_mirrored")
    (copied,) = await _intents(harness, after, 1)
    assert copied.sequence == 2 and copied.state is not IntentState.SKIPPED, copied
    assert [c.exchange_id for c in harness.world.broker.place_calls].count(early.exchange_id) == 1


async def test_an_order_type_the_venue_cannot_take_is_skipped_with_its_reason(
    harness: Harness,
) -> None:
    source = harness.world.sync.add_backtest()
    follower = harness.world.broker.add_account(exchange_name="coinbase")
    config_id = await _start(harness, source, follower)
    harness.world.broker.place_script = ["order_type_unsupported"]
    harness.world.sync.append(
        _signal(
            source,
            1,
            kind=sync_pb.SIGNAL_KIND_ORDER_OPEN,
            order_type=types_pb2.ORDER_TYPE_STOP_MARKET,
            stop_price=dec("39000"),
        )
    )

    async def skipped() -> Intent | None:
        (copy,) = await _intents(harness, config_id, 1)
        return copy if copy.state is IntentState.SKIPPED else None

    copy = await eventually(skipped, timeout=10)
    assert copy.type is OrderType.STOP_MARKET  # sent as the leader's type, never another
    assert copy.reason.startswith("order_type_unsupported: "), copy.reason

    # The leader's stop triggers and fills: no copy rests for it at this venue, so the
    # follower gets the fill copied (as in fills mode) rather than missing the trade.
    harness.world.sync.append(
        _signal(
            source,
            2,
            kind=sync_pb.SIGNAL_KIND_FILL,
            order_type=types_pb2.ORDER_TYPE_STOP_MARKET,
            order_mirrored=True,
            opened_sequence=1,
        )
    )
    _, fill = await _intents(harness, config_id, 2)
    assert fill.sequence == 2 and fill.reason != "order_mirrored", fill
    assert fill.type is OrderType.MARKET, fill


async def test_a_daily_loss_breach_on_a_leader_trade_cancels_the_resting_entry_copies(
    harness: Harness,
) -> None:
    # Left resting, the buy copy would fill later and re-open what the limit reduces.
    source = harness.world.sync.add_backtest()
    follower = harness.world.broker.add_account(equity=Decimal("10000"))
    reply = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(
            source_backtest_id=source,
            target_exchange_ids=[follower.exchange_id],
            copy_settings=ORDERS,
            risk_limits=pb.RiskLimits(max_daily_loss=dec("0.05"), daily_loss_action="close_all"),
        ),
    )
    config_id = str(reply.config_id)
    harness.world.broker.place_script = ["open"]
    harness.world.sync.append(
        _signal(
            source,
            1,
            kind=sync_pb.SIGNAL_KIND_ORDER_OPEN,
            order_type=types_pb2.ORDER_TYPE_LIMIT,
            time_in_force=types_pb2.TIME_IN_FORCE_GTC,
        )
    )

    async def copy_in(state: IntentState, reason: str = "") -> Intent | None:
        (copy, *_) = await _intents(harness, config_id, 1)
        return copy if (copy.state, copy.reason) == (state, reason) else None

    resting = await eventually(lambda: copy_in(IntentState.ACCEPTED), timeout=10)
    follower.equity = Decimal("9400")  # 6 % down: the next leader trade breaches the limit
    fill = _signal(source, 2, kind=sync_pb.SIGNAL_KIND_FILL)
    fill.leader_order_id = "L2"  # another leader order's fill
    harness.world.sync.append(fill)
    await eventually(lambda: copy_in(IntentState.CANCELED, "daily_loss_cancelled"), timeout=10)
    assert harness.world.broker.cancel_calls == [resting.client_order_id]
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.config.status == pb.COPY_STATUS_REDUCING


async def test_a_copied_order_shows_its_time_in_force_and_stop_price(harness: Harness) -> None:
    source = harness.world.sync.add_backtest()
    follower = harness.world.broker.add_account()
    config_id = await _start(harness, source, follower)
    harness.world.broker.place_script = ["open"]
    harness.world.sync.append(
        _signal(
            source,
            1,
            kind=sync_pb.SIGNAL_KIND_ORDER_OPEN,
            order_type=types_pb2.ORDER_TYPE_STOP_LIMIT,
            time_in_force=types_pb2.TIME_IN_FORCE_GTC,
            stop_price=dec("39500"),
        )
    )
    await _intents(harness, config_id, 1)
    reply = await harness.call("ListCopiedOrders", pb.ListCopiedOrdersRequest(config_id=config_id))
    (copy,) = reply.orders
    assert copy.type == types_pb2.ORDER_TYPE_STOP_LIMIT
    assert copy.time_in_force == types_pb2.TIME_IN_FORCE_GTC
    assert (copy.stop_price.value, copy.price.value) == ("39500", "40000")
    assert copy.leverage == 0  # spot: none set
