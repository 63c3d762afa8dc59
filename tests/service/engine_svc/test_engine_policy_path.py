"""Copy policy through the real engine: slippage bands, cross-venue symbols, risk limits."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from engine_fakes import Account, dec
from engine_harness import Harness

from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as pb
from engine_svc.domain.ids import client_order_id
from engine_svc.domain.model import CopyStatus, Intent, IntentState, OrderType, Side
from meshkit import errors
from meshkit.testing import eventually

FINAL = (
    IntentState.FILLED,
    IntentState.SKIPPED,
    IntentState.REJECTED,
    IntentState.CANCELED,
    IntentState.EXPIRED,
    IntentState.ACCEPTED,
)


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


async def _settled(harness: Harness, config_id: str, count: int) -> list[Intent]:
    async def done() -> list[Intent] | None:
        intents = await harness.store.list_intents(config_id, None, None, 1000)
        return intents if sum(i.state in FINAL for i in intents) >= count else None

    return await eventually(done, timeout=10)


def _outcomes(intents: list[Intent]) -> list[tuple[IntentState, str]]:
    return [(i.state, i.reason) for i in intents]


async def test_a_market_copy_under_max_slippage_goes_out_as_a_limit_ioc_inside_the_band(
    harness: Harness,
) -> None:
    harness.world.broker.add_market("BTC/USDT", "BTC", "USDT", price="50000", tick="0.01")
    target = harness.world.broker.add_account()
    config_id, source = await _start(
        harness, target, risk_limits=pb.RiskLimits(max_slippage=dec("0.0123"))
    )
    harness.world.sync.publish(source, price="50000.37")
    [intent] = await _settled(harness, config_id, 1)

    [call] = harness.world.broker.place_calls
    assert (call.type, call.time_in_force) == (
        types_pb2.ORDER_TYPE_LIMIT,
        types_pb2.TIME_IN_FORCE_IOC,
    )
    assert call.price.value == "50615.37"  # 50000.37 x 1.0123 = 50615.374…, down to the tick
    assert (intent.type, intent.price, intent.state) == (
        OrderType.LIMIT,
        Decimal("50615.37"),
        IntentState.FILLED,
    )


async def test_what_the_band_does_not_fill_expires_with_its_filled_part_and_is_not_chased(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(
        harness, target, risk_limits=pb.RiskLimits(max_slippage=dec("0.01"))
    )
    harness.world.broker.place_script = ["expired_half", "canceled_half"]
    harness.world.sync.publish(source)
    harness.world.sync.publish(source)
    intents = await _settled(harness, config_id, 2)

    assert _outcomes(intents) == [(IntentState.EXPIRED, "slippage_band")] * 2
    assert [i.filled_quantity for i in intents] == [Decimal("0.005")] * 2
    await asyncio.sleep(0.2)
    assert len(harness.world.broker.place_calls) == 2
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.counters.cancelled == 2
    assert {o.reason for o in status.recent_orders} == {"slippage_band"}


async def test_a_follower_venue_without_the_leaders_market_trades_the_quote_equivalent(
    harness: Harness,
) -> None:
    broker = harness.world.broker
    broker.add_market("BTC/USD", "BTC", "USD", price="50010", venue="kraken")
    kraken = broker.add_account(exchange_name="kraken")
    binance = broker.add_account()
    config_id, source = await _start(harness, binance, kraken)
    harness.world.sync.publish(source)
    intents = await _settled(harness, config_id, 2)

    symbols = {i.target_exchange_id: (i.symbol, i.state) for i in intents}
    assert symbols == {
        binance.exchange_id: ("BTC/USDT", IntentState.FILLED),
        kraken.exchange_id: ("BTC/USD", IntentState.FILLED),
    }


async def test_without_quote_equivalence_a_missing_market_is_not_on_the_venue(
    harness: Harness,
) -> None:
    broker = harness.world.broker
    broker.add_market("BTC/USD", "BTC", "USD", price="50010", venue="kraken")
    kraken = broker.add_account(exchange_name="kraken")
    config_id, source = await _start(
        harness, kraken, copy_settings=pb.CopySettings(allow_quote_equivalence=False)
    )
    harness.world.sync.publish(source)
    [intent] = await _settled(harness, config_id, 1)
    assert (intent.state, intent.reason, intent.symbol) == (
        IntentState.SKIPPED,
        "symbol_not_on_venue",
        "BTC/USDT",
    )
    assert broker.place_calls == []


async def test_symbol_map_picks_the_followers_market_where_the_leaders_is_missing(
    harness: Harness,
) -> None:
    broker = harness.world.broker
    broker.add_market("BTC/EUR", "BTC", "EUR", price="46000", venue="kraken")
    kraken = broker.add_account(exchange_name="kraken")
    config_id, source = await _start(
        harness,
        kraken,
        copy_settings=pb.CopySettings(symbol_map={"BTC/USDT": "BTC/EUR"}),
    )
    harness.world.sync.publish(source)
    [intent] = await _settled(harness, config_id, 1)
    assert (intent.state, intent.symbol) == (IntentState.FILLED, "BTC/EUR")


async def test_an_unreadable_market_is_unavailable_not_absent(harness: Harness) -> None:
    harness.world.broker.market_errors["BTC/USDT"] = errors.Unavailable("venue down")
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    harness.world.sync.publish(source)
    [intent] = await _settled(harness, config_id, 1)
    assert (intent.state, intent.reason) == (IntentState.SKIPPED, "market_unavailable")


def _zigzag(n: int, low: str, high: str, *, flip: bool = False) -> list[str]:
    return [high if (i % 2 == 0) == flip else low for i in range(n)]


async def test_a_new_position_correlated_with_a_held_one_is_skipped(harness: Harness) -> None:
    broker = harness.world.broker
    broker.add_market("ETH/USDT", "ETH", "USDT", price="3000")
    broker.set_closes("BTC/USDT", _zigzag(48, "50000", "51000"))
    broker.set_closes("ETH/USDT", _zigzag(48, "3000", "3060"))
    target = broker.add_account(balances={"ETH": (Decimal("1"), Decimal("1"))})
    config_id, source = await _start(
        harness, target, risk_limits=pb.RiskLimits(correlation_limit=dec("0.8"))
    )
    harness.world.sync.publish(source)
    [intent] = await _settled(harness, config_id, 1)
    assert (intent.state, intent.reason) == (IntentState.SKIPPED, "correlation_limit")
    assert broker.place_calls == []


async def test_a_new_hedging_position_or_an_add_to_a_held_one_is_not_blocked(
    harness: Harness,
) -> None:
    broker = harness.world.broker
    broker.add_market("ETH/USDT", "ETH", "USDT", price="3000")
    broker.set_closes("BTC/USDT", _zigzag(48, "50000", "51000", flip=True))
    broker.set_closes("ETH/USDT", _zigzag(48, "3000", "3060"))
    broker.set_closes("SOL/USDT", _zigzag(48, "100", "102"))
    hedger = broker.add_account(balances={"ETH": (Decimal("1"), Decimal("1"))})
    adder = broker.add_account(
        balances={
            "SOL": (Decimal("10"), Decimal("10")),
            "BTC": (Decimal("0.01"), Decimal("0.01")),
        }
    )
    broker.add_market("SOL/USDT", "SOL", "USDT", price="100")
    config_id, source = await _start(
        harness, hedger, adder, risk_limits=pb.RiskLimits(correlation_limit=dec("0.8"))
    )
    harness.world.sync.publish(source)
    intents = await _settled(harness, config_id, 2)
    assert _outcomes(intents) == [(IntentState.FILLED, "")] * 2
    # The adder already holds BTC: its add is not a new position, nothing was measured for it.
    assert "BTC/USDT" in {symbol for _, symbol, _ in broker.candle_calls}
    assert {account for account, _, _ in broker.candle_calls} == {hedger.exchange_id}


async def test_candles_are_read_once_and_cached_across_signals(harness: Harness) -> None:
    broker = harness.world.broker
    broker.add_market("ETH/USDT", "ETH", "USDT", price="3000")
    broker.set_closes("BTC/USDT", _zigzag(48, "50000", "51000", flip=True))
    broker.set_closes("ETH/USDT", _zigzag(48, "3000", "3060"))
    target = broker.add_account(balances={"ETH": (Decimal("1"), Decimal("1"))})
    config_id, source = await _start(
        harness, target, risk_limits=pb.RiskLimits(correlation_limit=dec("0.8"))
    )
    harness.world.sync.publish(source, quantity="0.0001")  # too small: still measured first
    harness.world.sync.publish(source)
    intents = await _settled(harness, config_id, 2)
    assert _outcomes(intents) == [
        (IntentState.SKIPPED, "below_min_notional"),
        (IntentState.FILLED, ""),
    ]
    assert sorted(symbol for _, symbol, _ in broker.candle_calls) == ["BTC/USDT", "ETH/USDT"]
    assert {limit for _, _, limit in broker.candle_calls} == {48}


async def test_unreadable_candles_make_the_correlation_unknown_and_skip_the_entry(
    harness: Harness,
) -> None:
    broker = harness.world.broker
    broker.add_market("ETH/USDT", "ETH", "USDT", price="3000")
    broker.candle_error = errors.Unavailable("venue down")
    target = broker.add_account(balances={"ETH": (Decimal("1"), Decimal("1"))})
    config_id, source = await _start(
        harness, target, risk_limits=pb.RiskLimits(correlation_limit=dec("0.8"))
    )
    harness.world.sync.publish(source)
    [intent] = await _settled(harness, config_id, 1)
    assert (intent.state, intent.reason) == (IntentState.SKIPPED, "correlation_unknown")


async def test_orders_over_the_accounts_rate_are_skipped_until_the_minute_passes(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(
        harness, target, risk_limits=pb.RiskLimits(max_orders_per_minute=2)
    )
    for _ in range(3):
        harness.world.sync.publish(source)
    intents = await _settled(harness, config_id, 3)
    assert _outcomes(intents) == [
        (IntentState.FILLED, ""),
        (IntentState.FILLED, ""),
        (IntentState.SKIPPED, "order_rate_limit"),
    ]
    harness.clock.advance(61)
    harness.world.sync.publish(source, event_time=harness.clock.now())
    intents = await _settled(harness, config_id, 4)
    assert intents[3].state is IntentState.FILLED


async def test_a_full_close_sells_the_whole_free_position_down_to_the_step(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account(
        balances={"BTC": (Decimal("0.0123456789"), Decimal("0.0123456789"))}
    )
    config_id, source = await _start(harness, target)
    harness.world.sync.publish(
        source, side=types_pb2.ORDER_SIDE_SELL, quantity="2.5", leader_position="2.5"
    )
    [intent] = await _settled(harness, config_id, 1)
    [call] = harness.world.broker.place_calls
    assert (intent.state, call.quantity.value) == (IntentState.FILLED, "0.01234")


async def test_a_partial_exit_sells_the_leaders_fraction_of_the_followers_position(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account(balances={"BTC": (Decimal("0.05"), Decimal("0.05"))})
    config_id, source = await _start(harness, target)
    harness.world.sync.publish(
        source, side=types_pb2.ORDER_SIDE_SELL, quantity="0.4", leader_position="1"
    )
    await _settled(harness, config_id, 1)
    [call] = harness.world.broker.place_calls
    assert call.quantity.value == "0.02"


async def _pending(
    harness: Harness, config_id: str, source: str, target: Account, side: Side
) -> str:
    now = harness.clock.now()
    intent = Intent(
        intent_id="00000000-0000-4000-8000-0000000000aa",
        config_id=config_id,
        source_id=source,
        sequence=1,
        signal_id="t1",
        target_exchange_id=target.exchange_id,
        leg=0,
        client_order_id=client_order_id(config_id, source, 1, target.exchange_id, 0),
        symbol="BTC/USDT",
        side=side,
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
    await harness.store.insert_intent(intent)
    return intent.intent_id


async def test_a_buy_written_before_a_loss_breach_never_leaves_a_reducing_config(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    config = await harness.store.get_config(config_id)
    assert config is not None
    now = harness.clock.now()
    assert await harness.store.change_status(
        config_id, config.status, CopyStatus.REDUCING, "max_daily_loss", now
    )
    intent_id = await _pending(harness, config_id, source, target, Side.BUY)
    [intent] = await _settled(harness, config_id, 1)
    assert (intent.intent_id, intent.state, intent.reason) == (
        intent_id,
        IntentState.SKIPPED,
        "reducing",
    )
    assert harness.world.broker.place_calls == []


async def test_pausing_skips_the_intents_still_waiting_to_be_sent(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    harness.world.broker.place_script = ["rate_limited"] * 10_000
    harness.world.sync.publish(source)
    await eventually(lambda: len(harness.world.broker.place_calls) >= 2, timeout=10)

    await harness.call("PauseCopy", pb.PauseCopyRequest(config_id=config_id))
    [intent] = await _settled(harness, config_id, 1)
    assert (intent.state, intent.reason) == (IntentState.SKIPPED, "paused")
    calls = len(harness.world.broker.place_calls)
    await asyncio.sleep(0.2)
    assert len(harness.world.broker.place_calls) == calls
    assert harness.world.broker.placed == {}


async def test_the_start_of_day_equity_survives_a_restart_and_still_trips_the_loss_limit(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account(equity=Decimal("10000"))
    config_id, source = await _start(
        harness, target, risk_limits=pb.RiskLimits(max_daily_loss={"value": "0.05"})
    )
    harness.world.sync.publish(source)
    await _settled(harness, config_id, 1)
    await harness.restart()

    target.equity = Decimal("9400")
    harness.world.sync.publish(source)
    intents = await _settled(harness, config_id, 2)
    assert _outcomes(intents)[1] == (IntentState.SKIPPED, "reducing")
    config = await harness.store.get_config(config_id)
    assert config is not None
    assert config.daily_risk.start_equity == {target.exchange_id: Decimal("10000")}
    assert config.status_reason.startswith("max_daily_loss: ")
