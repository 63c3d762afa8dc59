"""The copy path through the real engine: signal → intents → orders → resolved outcomes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from engine_fakes import Account
from engine_harness import Harness

from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as pb
from engine_svc.domain.ids import client_order_id
from engine_svc.domain.model import Intent, IntentState, OrderType, Side
from meshkit import errors
from meshkit.testing import eventually


async def _start(harness: Harness, *targets: Account, **kwargs: Any) -> tuple[str, str]:
    source = harness.world.sync.add_backtest()
    reply = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(
            source_backtest_id=source,
            target_exchange_ids=[t.exchange_id for t in targets],
            **kwargs,
        ),
    )
    return reply.config_id, source


async def _intents(harness: Harness, config_id: str) -> list[Intent]:
    return await harness.store.list_intents(config_id, None, None, 1000)


async def _settled(harness: Harness, config_id: str, count: int) -> list[Intent]:
    async def done() -> list[Intent] | None:
        intents = await _intents(harness, config_id)
        final = [
            i
            for i in intents
            if i.state
            in (
                IntentState.FILLED,
                IntentState.SKIPPED,
                IntentState.REJECTED,
                IntentState.CANCELED,
                IntentState.ACCEPTED,
            )
        ]
        return intents if len(final) >= count else None

    return await eventually(done, timeout=10)


async def test_signal_becomes_one_intent_per_target_sized_by_equity_and_one_order_each(
    harness: Harness,
) -> None:
    big = harness.world.broker.add_account(equity=Decimal("10000"))
    small = harness.world.broker.add_account(equity=Decimal("5000"), exchange_name="kraken")
    config_id, source = await _start(harness, big, small)
    harness.world.sync.publish(source, quantity="0.1", leader_equity="100000")

    intents = await _settled(harness, config_id, 2)
    by_target = {i.target_exchange_id: i for i in intents}
    assert len(intents) == 2
    assert by_target[big.exchange_id].quantity == Decimal("0.01")
    assert by_target[small.exchange_id].quantity == Decimal("0.005")
    calls = {c.client_order_id: c for c in harness.world.broker.place_calls}
    for target in (big, small):
        intent = by_target[target.exchange_id]
        assert intent.state is IntentState.FILLED
        assert intent.client_order_id == client_order_id(
            config_id, source, 1, target.exchange_id, 0
        )
        call = calls[intent.client_order_id]
        assert call.exchange_id == target.exchange_id
        assert call.type == types_pb2.ORDER_TYPE_MARKET
        assert Decimal(call.quantity.value) == intent.quantity
        assert intent.venue_order_id and intent.latency_ms > 0
    assert len(harness.world.broker.place_calls) == 2
    assert harness.world.sync.acks[-1] == (source, 1)
    # Both followers' portfolios were read in one batched call.
    batches = [sorted(batch) for batch in harness.world.broker.portfolio_batches]
    assert batches == [sorted([big.exchange_id, small.exchange_id])]


async def test_intent_is_committed_as_sent_before_the_broker_is_called(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    seen: list[IntentState | None] = []

    async def check(request) -> None:
        intent = await harness.store.intent_by_client_order_id(request.client_order_id)
        seen.append(intent.state if intent else None)

    harness.world.broker.on_place = check
    harness.world.sync.publish(source)
    await _settled(harness, config_id, 1)
    assert seen == [IntentState.SENT]


async def test_redelivered_signal_makes_no_second_order(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    signal = harness.world.sync.publish(source)
    await _settled(harness, config_id, 1)

    harness.world.sync.inject(signal)
    opened = harness.world.sync.streams_opened
    harness.world.sync.break_streams()
    await eventually(lambda: harness.world.sync.streams_opened > opened, timeout=10)
    await eventually(lambda: (source, 1) in harness.world.sync.subscriptions, timeout=10)
    harness.world.sync.publish(source)
    await _settled(harness, config_id, 2)

    assert len(await _intents(harness, config_id)) == 2
    assert sorted(harness.world.broker.placed.values()) == [1, 1]
    assert len(harness.world.broker.place_calls) == 2


async def test_gap_in_the_stream_resubscribes_from_the_last_stored_sequence(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    first = harness.world.sync.publish(source)
    await _settled(harness, config_id, 1)

    ahead = type(first)()
    ahead.CopyFrom(first)
    ahead.sequence = 5
    harness.world.sync.inject(ahead)
    await eventually(lambda: harness.world.sync.subscriptions.count((source, 1)) >= 1, timeout=10)
    harness.world.sync.publish(source)
    intents = await _settled(harness, config_id, 2)
    assert sorted(i.sequence for i in intents) == [1, 2]


async def test_history_before_the_start_is_never_copied(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    source = harness.world.sync.add_backtest()
    harness.world.sync.publish(source)
    harness.world.sync.publish(source)
    reply = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(source_backtest_id=source, target_exchange_ids=[target.exchange_id]),
    )
    harness.world.sync.publish(source)
    intents = await _settled(harness, reply.config_id, 1)
    assert [i.sequence for i in intents] == [3]
    assert (source, 2) in harness.world.sync.subscriptions


async def test_outcome_unknown_is_resolved_by_looking_the_order_up(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    harness.world.broker.place_script = ["unknown_placed"]
    harness.world.sync.publish(source)

    [intent] = await _settled(harness, config_id, 1)
    assert intent.state is IntentState.FILLED
    assert intent.client_order_id in harness.world.broker.get_order_calls
    assert len(harness.world.broker.place_calls) == 1


async def test_order_never_received_is_resent_with_the_same_id_only_after_the_lag(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    harness.world.broker.place_script = ["unknown_lost"]
    harness.world.sync.publish(source)

    async def unknown_and_not_found() -> Intent | None:
        intents = await _intents(harness, config_id)
        ok = intents and intents[0].state is IntentState.UNKNOWN and intents[0].not_found_count >= 4
        return intents[0] if ok else None

    intent = await eventually(unknown_and_not_found, timeout=10)
    assert len(harness.world.broker.place_calls) == 1  # three not-founds are not enough alone

    harness.clock.advance(11)
    [resolved] = await _settled(harness, config_id, 1)
    assert resolved.state is IntentState.FILLED
    assert [c.client_order_id for c in harness.world.broker.place_calls] == [
        intent.client_order_id
    ] * 2
    assert resolved.attempts == 2
    assert harness.world.broker.placed[intent.client_order_id] == 1
    # The API says the order was sent twice (same id), so a user can see why it came late.
    listed = await harness.call("ListCopiedOrders", pb.ListCopiedOrdersRequest(config_id=config_id))
    assert [o.attempts for o in listed.orders] == [2]


async def test_venue_refusal_is_rejected_with_the_reason_and_not_retried(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    harness.world.broker.place_script = ["insufficient_funds"]
    harness.world.sync.publish(source)
    [intent] = await _settled(harness, config_id, 1)
    assert intent.state is IntentState.REJECTED
    assert intent.reason.startswith("insufficient_funds")
    await asyncio.sleep(0.2)
    assert len(harness.world.broker.place_calls) == 1


async def test_rate_limited_send_stays_pending_and_is_retried(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    harness.world.broker.place_script = ["rate_limited"]
    harness.world.sync.publish(source)
    [intent] = await _settled(harness, config_id, 1)
    assert intent.state is IntentState.FILLED
    assert len(harness.world.broker.place_calls) == 2
    assert harness.world.broker.placed[intent.client_order_id] == 1


@pytest.mark.parametrize(
    ("publish", "reason"),
    [
        ({"quantity": "0.0001"}, "below_min_notional"),
        ({"event_time": datetime.now(UTC) - timedelta(minutes=5)}, "stale"),
        ({"symbol": "DOGE/USDT"}, "symbol_not_on_venue"),
        ({"leader_equity": None}, "leader_equity_unknown"),
        ({"side": types_pb2.ORDER_SIDE_SELL}, "no_position_to_reduce"),
    ],
)
async def test_copy_that_cannot_be_placed_is_skipped_with_its_reason(
    harness: Harness,
    publish: dict,
    reason: str,
) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    harness.world.sync.publish(source, **publish)
    [intent] = await _settled(harness, config_id, 1)
    assert (intent.state, intent.reason) == (IntentState.SKIPPED, reason)
    assert harness.world.broker.place_calls == []


async def test_paused_config_skips_signals_until_resumed(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    paused = await harness.call("PauseCopy", pb.PauseCopyRequest(config_id=config_id))
    assert paused.status == pb.COPY_STATUS_PAUSED
    harness.world.sync.publish(source)
    [skipped] = await _settled(harness, config_id, 1)
    assert (skipped.state, skipped.reason) == (IntentState.SKIPPED, "paused")

    resumed = await harness.call("ResumeCopy", pb.ResumeCopyRequest(config_id=config_id))
    assert resumed.status == pb.COPY_STATUS_ACTIVE
    harness.world.sync.publish(source)
    intents = await _settled(harness, config_id, 2)
    assert [i.state for i in intents] == [IntentState.SKIPPED, IntentState.FILLED]
    assert len(harness.world.broker.place_calls) == 1


async def test_pending_intent_found_at_restart_is_sent_exactly_once(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    await harness.stop()
    now = harness.clock.now()
    coid = client_order_id(config_id, source, 1, target.exchange_id, 0)
    await harness.store.insert_intent(
        Intent(
            intent_id="00000000-0000-4000-8000-000000000001",
            config_id=config_id,
            source_id=source,
            sequence=1,
            signal_id="t1",
            target_exchange_id=target.exchange_id,
            leg=0,
            client_order_id=coid,
            symbol="BTC/USDT",
            side=Side.BUY,
            type=OrderType.MARKET,
            quantity=Decimal("0.01"),
            price=None,
            state=IntentState.PENDING,
            reason="",
            leader_quantity=Decimal("0.1"),
            leader_price=Decimal("50000"),
            leader_event_time=now,
            created_at=now,
            updated_at=now,
        )
    )
    await harness.start()
    [intent] = await _settled(harness, config_id, 1)
    await asyncio.sleep(0.2)
    assert intent.state is IntentState.FILLED
    assert [c.client_order_id for c in harness.world.broker.place_calls] == [coid]


async def test_kill_switch_halts_at_once_and_cancels_resting_orders(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    harness.world.broker.place_script = ["open"]
    harness.world.sync.publish(source)
    [resting] = await _settled(harness, config_id, 1)
    assert resting.state is IntentState.ACCEPTED

    reply = await harness.call("KillSwitch", pb.KillSwitchRequest(config_id=config_id))
    assert list(reply.config_ids) == [config_id]
    assert reply.cancelled_orders == 1
    harness.world.sync.publish(source)
    intents = await _settled(harness, config_id, 2)
    assert [(i.state, i.reason) for i in intents] == [
        (IntentState.CANCELED, ""),
        (IntentState.SKIPPED, "halted"),
    ]
    assert len(harness.world.broker.place_calls) == 1
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.config.status == pb.COPY_STATUS_HALTED
    assert not status.config.is_active


async def test_a_cancel_whose_answer_is_lost_stays_resting_until_the_venue_proves_it(
    harness: Harness,
) -> None:
    # T16: the broker dies inside a cancel. The engine does not guess: the order stays as last
    # proven (resting) until a lookup at the venue shows what the cancel did.
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    broker = harness.world.broker
    broker.place_script = ["open"]
    broker.get_order_error = errors.Unavailable("venue busy", reason="VENUE_UNAVAILABLE")
    harness.world.sync.publish(source)
    [resting] = await _settled(harness, config_id, 1)
    assert resting.state is IntentState.ACCEPTED

    broker.cancel_answer_lost = True
    reply = await harness.call("KillSwitch", pb.KillSwitchRequest(config_id=config_id))
    assert reply.cancelled_orders == 0
    await asyncio.sleep(0.3)  # resolver rounds that cannot reach the venue change nothing
    [still] = await _intents(harness, config_id)
    assert still.state is IntentState.ACCEPTED

    broker.get_order_error = None  # the venue answers lookups again: it cancelled the order

    async def cancelled() -> Intent | None:
        [intent] = await _intents(harness, config_id)
        return intent if intent.state is IntentState.CANCELED else None

    await eventually(cancelled, timeout=10)
    assert broker.cancel_calls == [resting.client_order_id]
    assert len(broker.place_calls) == 1


@pytest.mark.parametrize("keep_open_orders", [False, True])
async def test_a_stop_whose_cancel_fails_cancels_once_the_venue_can_be_reached(
    harness: Harness, keep_open_orders: bool
) -> None:
    # The user stopped the copy: a resting copy must not stay live because the venue (or the
    # broker) was down at that moment. Unless the user asked to keep open orders.
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    broker = harness.world.broker
    broker.place_script = ["open"]
    harness.world.sync.publish(source)
    [resting] = await _settled(harness, config_id, 1)
    assert resting.state is IntentState.ACCEPTED

    broker.cancel_error = errors.Unavailable("venue down", reason="VENUE_UNAVAILABLE")
    reply = await harness.call(
        "StopCopy", pb.StopCopyRequest(config_id=config_id, keep_open_orders=keep_open_orders)
    )
    assert reply.cancelled_orders == 0
    broker.cancel_error = None
    if keep_open_orders:
        await asyncio.sleep(0.5)
        [intent] = await _intents(harness, config_id)
        assert intent.state is IntentState.ACCEPTED and not intent.cancel_wanted
        assert broker.cancel_calls == []
        return

    async def cancelled() -> Intent | None:
        [intent] = await _intents(harness, config_id)
        return intent if intent.state is IntentState.CANCELED else None

    intent = await eventually(cancelled, timeout=10)
    assert intent.cancel_wanted
    assert broker.cancel_calls[0] == broker.cancel_calls[-1] == resting.client_order_id
    assert broker.orders[resting.client_order_id].status == types_pb2.ORDER_STATUS_CANCELED
    await asyncio.sleep(0.3)  # cancelled once: no more cancels once the venue proved it
    calls = len(broker.cancel_calls)
    await asyncio.sleep(0.3)
    assert len(broker.cancel_calls) == calls


async def test_kill_switch_stops_a_pending_order_from_leaving(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    harness.world.broker.place_script = ["rate_limited"] * 10_000
    harness.world.sync.publish(source)
    await eventually(lambda: len(harness.world.broker.place_calls) >= 2, timeout=10)

    await harness.call("KillSwitch", pb.KillSwitchRequest(all=True))
    [intent] = await _settled(harness, config_id, 1)
    assert (intent.state, intent.reason) == (IntentState.SKIPPED, "halted")
    calls = len(harness.world.broker.place_calls)
    await asyncio.sleep(0.2)
    assert len(harness.world.broker.place_calls) == calls
    assert harness.world.broker.placed == {}


async def test_status_counts_outcomes_and_shows_recent_orders_and_positions(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account(balances={"USDT": (Decimal("9000"), Decimal("9000"))})
    config_id, source = await _start(harness, target)
    harness.world.sync.publish(source)
    harness.world.sync.publish(source, quantity="0.00001")
    await _settled(harness, config_id, 2)

    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    counters = status.counters
    assert (counters.signals, counters.intents, counters.filled, counters.skipped) == (2, 2, 1, 1)
    assert [o.sequence for o in status.recent_orders] == [2, 1]
    assert status.recent_orders[0].reason == "below_min_notional"
    assert [(p.asset, p.quantity.value) for p in status.positions] == [("USDT", "9000")]
    assert status.positions_error == ""
    assert (
        status.sync_mode == pb.copytrade_dot_sync_dot_v1_dot_sync__service__pb2.SYNC_MODE_PUBLISHED
    )


async def test_a_signal_waits_for_a_broker_that_is_down_instead_of_skipping_the_copy(
    harness: Harness,
) -> None:
    # A broker restart (kill, deploy) must not turn a leader's trade into skipped copies.
    # The wait is inside the signal's processing: the stream to sync is not broken by it.
    target = harness.world.broker.add_account(equity=Decimal("10000"))
    config_id, source = await _start(harness, target)
    broker, sync = harness.world.broker, harness.world.sync
    broker.down = True
    broker.portfolio_delay = 0.05  # the market read fails while the portfolio read is under way
    streams_opened = sync.streams_opened
    sync.publish(source, quantity="0.1", leader_equity="100000")
    await asyncio.sleep(1.0)
    assert await _intents(harness, config_id) == []  # neither decided nor skipped yet
    broker.down = False
    [intent] = await _settled(harness, config_id, 1)
    assert intent.state is IntentState.FILLED
    assert intent.quantity == Decimal("0.01")
    assert sync.streams_opened == streams_opened


async def test_a_broker_too_slow_to_answer_delays_the_copy_instead_of_skipping_it(
    harness: Harness,
) -> None:
    # Under load the broker may not answer a portfolio read within the engine's read deadline.
    # That is no answer about the follower: the copy waits for it (the signal is young).
    harness.read_timeout_ms = 200
    await harness.restart()
    target = harness.world.broker.add_account(equity=Decimal("10000"))
    config_id, source = await _start(harness, target)
    broker = harness.world.broker
    broker.portfolio_delay = 0.6  # three times the read deadline: every read times out
    harness.world.sync.publish(source, quantity="0.1", leader_equity="100000")
    await asyncio.sleep(1.5)
    assert await _intents(harness, config_id) == []  # neither decided nor skipped yet
    broker.portfolio_delay = 0.0
    [intent] = await _settled(harness, config_id, 1)
    assert (intent.state, intent.reason) == (IntentState.FILLED, "")
    assert intent.quantity == Decimal("0.01")


async def test_a_signal_that_grows_stale_while_the_broker_is_slow_is_skipped_as_stale(
    harness: Harness,
) -> None:
    # The wait for a slow broker ends when the trade is too old to copy: then the copy is
    # skipped for its age, the honest reason, not as an unreadable portfolio.
    harness.read_timeout_ms = 200
    await harness.restart()
    target = harness.world.broker.add_account(equity=Decimal("10000"))
    config_id, source = await _start(harness, target)
    harness.world.broker.portfolio_delay = 0.6
    harness.world.sync.publish(source, quantity="0.1", leader_equity="100000")
    await asyncio.sleep(0.5)
    harness.clock.advance(61)  # past the default max_signal_age (60 s)
    [intent] = await _settled(harness, config_id, 1)
    assert (intent.state, intent.reason) == (IntentState.SKIPPED, "stale")


async def test_a_broker_answer_that_the_venue_is_down_still_skips_at_once(
    harness: Harness,
) -> None:
    from meshkit import errors

    # The broker answered: the follower's venue is unreachable. That account is skipped with
    # its reason; other signals are not held up behind it.
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    target.portfolio_error = errors.Unavailable("venue down", reason="VENUE_UNAVAILABLE")
    harness.world.sync.publish(source)
    [intent] = await _settled(harness, config_id, 1)
    assert (intent.state, intent.reason) == (IntentState.SKIPPED, "portfolio_unavailable")


async def test_status_reports_unreadable_positions_instead_of_failing(harness: Harness) -> None:
    from meshkit import errors

    target = harness.world.broker.add_account()
    config_id, _ = await _start(harness, target)
    target.portfolio_error = errors.Unavailable("venue down")
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert "venue down" in status.positions_error
    assert status.config.config_id == config_id


async def test_a_source_sync_refuses_does_not_stop_the_others(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    lost_config, lost_source = await _start(harness, target)
    config_id, source = await _start(harness, target)
    del harness.world.sync.sources[lost_source]
    opened = harness.world.sync.streams_opened
    harness.world.sync.break_streams()
    await eventually(lambda: harness.world.sync.streams_opened >= opened + 2, timeout=10)

    harness.world.sync.publish(source)
    [intent] = await _settled(harness, config_id, 1)
    assert intent.state is IntentState.FILLED
    assert await _intents(harness, lost_config) == []


async def test_pending_intent_left_behind_while_running_is_swept_and_sent_once(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    now = harness.clock.now()
    coid = client_order_id(config_id, source, 1, target.exchange_id, 0)
    await harness.store.insert_intent(
        Intent(
            intent_id="00000000-0000-4000-8000-000000000002",
            config_id=config_id,
            source_id=source,
            sequence=1,
            signal_id="t1",
            target_exchange_id=target.exchange_id,
            leg=0,
            client_order_id=coid,
            symbol="BTC/USDT",
            side=Side.BUY,
            type=OrderType.MARKET,
            quantity=Decimal("0.01"),
            price=None,
            state=IntentState.PENDING,
            reason="",
            leader_quantity=Decimal("0.1"),
            leader_price=Decimal("50000"),
            leader_event_time=now,
            created_at=now,
            updated_at=now,
        )
    )
    [intent] = await _settled(harness, config_id, 1)
    await asyncio.sleep(0.2)
    assert intent.state is IntentState.FILLED
    assert [c.client_order_id for c in harness.world.broker.place_calls] == [coid]


async def test_daily_loss_breach_moves_the_config_to_reducing_and_skips_buys(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account(
        equity=Decimal("10000"), balances={"BTC": (Decimal("0.02"), Decimal("0.02"))}
    )
    config_id, source = await _start(
        harness, target, risk_limits=pb.RiskLimits(max_daily_loss={"value": "0.05"})
    )
    harness.world.sync.publish(source)
    await _settled(harness, config_id, 1)
    target.equity = Decimal("9400")
    harness.world.sync.publish(source)
    harness.world.sync.publish(source, side=types_pb2.ORDER_SIDE_SELL, quantity="0.05")
    intents = await _settled(harness, config_id, 3)
    assert [(i.state, i.reason) for i in intents] == [
        (IntentState.FILLED, ""),
        (IntentState.SKIPPED, "reducing"),
        (IntentState.FILLED, ""),
    ]
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.config.status == pb.COPY_STATUS_REDUCING
    assert status.config.status_reason == (
        f"max_daily_loss: account {target.exchange_id} lost 6.00% since 00:00 UTC (limit 5%);"
        " only exits are copied until resumed"
    )


async def test_a_sell_right_after_a_buy_is_sized_from_the_position_the_buy_built(
    harness: Harness,
) -> None:
    # The leader buys, then closes at once: the close reaches the engine while the copy of the
    # buy is still on its way to the venue. The follower's close must see the position that
    # the buy builds, not the empty one read before it landed.
    target = harness.world.broker.add_account(equity=Decimal("10000"))
    config_id, source = await _start(harness, target)

    async def slow_fill(request) -> None:
        await asyncio.sleep(0.3)
        if request.side == types_pb2.ORDER_SIDE_BUY:
            quantity = Decimal(request.quantity.value)
            target.balances["BTC"] = (quantity, quantity)

    harness.world.broker.on_place = slow_fill
    harness.world.sync.publish(source, quantity="0.1", leader_position="0")
    harness.world.sync.publish(
        source,
        side=types_pb2.ORDER_SIDE_SELL,
        quantity="0.1",
        leader_position="0.1",
    )
    intents = await _settled(harness, config_id, 2)
    by_sequence = {i.sequence: i for i in intents}
    assert by_sequence[1].state is IntentState.FILLED
    assert by_sequence[2].state is IntentState.FILLED, by_sequence[2].reason
    assert by_sequence[2].quantity == by_sequence[1].quantity == Decimal("0.01")
