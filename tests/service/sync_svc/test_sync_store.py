"""The sync store on SQLite and PostgreSQL: gap-free sequences, dedupe, fills, acks, sources."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sync_svc.domain.model import (
    AppendEntry,
    LeaderFill,
    OrderType,
    PositionEffect,
    Side,
    SignalDraft,
    Source,
    SourceKind,
    SyncMode,
    SyncSettings,
)
from sync_svc.signal_log import SignalLog
from sync_svc.store import SyncStore
from tests.fakes.clock import FakeClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _draft(
    source_id: str,
    signal_id: str,
    minute: int = 0,
    symbol: str = "BTC/USDT",
) -> SignalDraft:
    return SignalDraft(
        source_id=source_id,
        signal_id=signal_id,
        symbol=symbol,
        side=Side.BUY,
        quantity=Decimal("0.25"),
        price=Decimal("50000.5"),
        order_type=OrderType.LIMIT,
        event_time=T0 + timedelta(minutes=minute),
        leader_equity=Decimal("1000"),
    )


def _fill(trade_id: str, symbol: str = "BTC/USDT") -> LeaderFill:
    return LeaderFill(
        trade_id=trade_id,
        symbol=symbol,
        side=Side.SELL,
        quantity=Decimal("1"),
        price=Decimal("10"),
        fee=Decimal("0.01"),
        fee_currency="USDT",
        order_type=OrderType.MARKET,
        trade_time=T0,
    )


def _backtest(user_id: str = "u1", request_id: str = "") -> Source:
    return Source(
        source_id=str(uuid.uuid4()),
        kind=SourceKind.BACKTEST,
        user_id=user_id,
        name="alpha",
        public=False,
        exchange_id="",
        exchange_name="",
        sync_settings=SyncSettings(),
        equity=Decimal("2500.50"),
        mode=SyncMode.PUBLISHED,
        start_time=T0,
        created_at=T0,
        request_id=request_id,
    )


async def test_concurrent_appends_take_sequences_one_to_n_without_gaps(store: SyncStore) -> None:
    source_id = str(uuid.uuid4())

    async def append(number: int) -> None:
        await store.append(source_id, [AppendEntry(_draft(source_id, f"s{number}"))], T0)

    await asyncio.gather(*(append(n) for n in range(25)))
    signals = await store.list_signals(source_id)
    assert [s.sequence for s in signals] == list(range(1, 26))
    assert sorted(s.signal_id for s in signals) == sorted(f"s{n}" for n in range(25))


async def test_concurrent_appends_through_the_signal_log_notify_in_log_order(
    store: SyncStore,
) -> None:
    source_id = str(uuid.uuid4())

    signal_log = SignalLog(store, FakeClock(T0))
    listener = signal_log.hub.listen(source_id)
    await asyncio.gather(
        *(
            signal_log.append(
                source_id, [AppendEntry(_draft(source_id, f"s{n}"))], SourceKind.BACKTEST
            )
            for n in range(15)
        )
    )
    heard = [listener.queue.get_nowait().sequence for _ in range(15)]
    assert heard == list(range(1, 16))
    assert listener.queue.empty()


async def test_repeated_signal_id_is_not_logged_again_and_keeps_its_sequence(
    store: SyncStore,
) -> None:
    source_id = str(uuid.uuid4())
    first = await store.append(
        source_id, [AppendEntry(_draft(source_id, "a")), AppendEntry(_draft(source_id, "b"))], T0
    )
    again = await store.append(
        source_id,
        [
            AppendEntry(_draft(source_id, "b")),
            AppendEntry(_draft(source_id, "c")),
            AppendEntry(_draft(source_id, "c")),
        ],
        T0,
    )
    assert [(r.signal.sequence, r.created) for r in first if r.signal] == [(1, True), (2, True)]
    assert [(r.signal.sequence, r.created) for r in again if r.signal] == [
        (2, False),
        (3, True),
        (3, False),
    ]
    assert await store.last_sequence(source_id) == 3


async def test_each_source_has_its_own_sequence(store: SyncStore) -> None:
    one, two = str(uuid.uuid4()), str(uuid.uuid4())
    await store.append(one, [AppendEntry(_draft(one, "x"))], T0)
    await store.append(two, [AppendEntry(_draft(two, "x"))], T0)
    await store.append(one, [AppendEntry(_draft(one, "y"))], T0)
    assert [s.sequence for s in await store.list_signals(one)] == [1, 2]
    assert [s.sequence for s in await store.list_signals(two)] == [1]


async def test_signal_fields_round_trip_exactly(store: SyncStore) -> None:
    source_id = str(uuid.uuid4())
    draft = _draft(source_id, "exact")
    await store.append(source_id, [AppendEntry(draft)], T0 + timedelta(seconds=1))
    (signal,) = await store.list_signals(source_id)
    assert signal.quantity == Decimal("0.25") and signal.price == Decimal("50000.5")
    assert signal.order_type is OrderType.LIMIT and signal.side is Side.BUY
    assert signal.event_time == draft.event_time
    assert signal.log_time == T0 + timedelta(seconds=1)
    assert signal.leader_equity == Decimal("1000") and signal.leader_position is None


async def test_a_futures_signals_position_fields_round_trip(store: SyncStore) -> None:
    source_id = str(uuid.uuid4())
    draft = dataclasses.replace(
        _draft(source_id, "perp", symbol="BTC/USDT:USDT"),
        leader_position=Decimal("-0.5"),
        position_effect=PositionEffect.CLOSE,
        liquidation=True,
        leader_leverage=Decimal("10"),
    )
    await store.append(source_id, [AppendEntry(draft)], T0 + timedelta(seconds=1))
    (signal,) = await store.list_signals(source_id)
    assert signal.leader_position == Decimal("-0.5")
    assert signal.position_effect is PositionEffect.CLOSE and signal.liquidation
    assert signal.leader_leverage == Decimal("10")


async def test_stored_fill_is_skipped_and_a_trade_id_reused_on_another_symbol_is_kept(
    store: SyncStore,
) -> None:
    source_id = str(uuid.uuid4())
    btc = AppendEntry(_draft(source_id, "42"), _fill("42"))
    eth = AppendEntry(_draft(source_id, "42", symbol="ETH/USDT"), _fill("42", "ETH/USDT"))
    first = await store.append(source_id, [btc], T0)
    second = await store.append(source_id, [btc, eth], T0)
    assert first[0].created and not second[0].created
    assert second[0].signal is not None and second[0].signal.sequence == 1
    assert second[1].created and second[1].signal is not None
    assert second[1].signal.signal_id == "ETH/USDT:42"
    known = await store.known_fills(
        source_id, [("BTC/USDT", "42"), ("ETH/USDT", "42"), ("BTC/USDT", "43")]
    )
    assert known == {("BTC/USDT", "42"), ("ETH/USDT", "42")}


async def test_a_failed_append_writes_nothing(store: SyncStore) -> None:
    source_id = str(uuid.uuid4())
    good = AppendEntry(_draft(source_id, "good"))
    foreign = AppendEntry(_draft(str(uuid.uuid4()), "foreign"))
    try:
        await store.append(source_id, [good, foreign], T0)
    except ValueError:
        pass
    else:
        raise AssertionError("an entry of another source was accepted")
    assert await store.list_signals(source_id) == []


async def test_list_signals_filters_by_sequence_event_time_and_limit(store: SyncStore) -> None:
    source_id = str(uuid.uuid4())
    await store.append(
        source_id,
        [AppendEntry(_draft(source_id, f"s{m}", minute=m)) for m in range(6)],
        T0,
    )
    after = await store.list_signals(source_id, after_sequence=4)
    assert [s.sequence for s in after] == [5, 6]
    window = await store.list_signals(
        source_id,
        start_time=T0 + timedelta(minutes=1),
        end_time=T0 + timedelta(minutes=4),
    )
    assert [s.sequence for s in window] == [2, 3, 4]
    assert [s.sequence for s in await store.list_signals(source_id, limit=2)] == [1, 2]


async def test_ack_keeps_the_highest_sequence_per_consumer_and_source(store: SyncStore) -> None:
    source_id = str(uuid.uuid4())
    await store.record_ack("engine", source_id, 3, T0)
    await store.record_ack("engine", source_id, 2, T0)
    await store.record_ack("engine", source_id, 5, T0)
    await store.record_ack("other", source_id, 1, T0)
    assert await store.acked_sequence("engine", source_id) == 5
    assert await store.acked_sequence("other", source_id) == 1
    assert await store.acked_sequence("engine", str(uuid.uuid4())) == 0


async def test_source_round_trips_and_request_id_is_unique_per_user(store: SyncStore) -> None:
    source = _backtest(request_id="key-1")
    assert await store.create_source(source)
    assert not await store.create_source(_backtest(request_id="key-1"))
    assert await store.create_source(_backtest(user_id="u2", request_id="key-1"))
    assert await store.create_source(_backtest())
    assert await store.create_source(_backtest())
    stored = await store.get_source(source.source_id)
    assert stored == source
    assert await store.find_by_request("u1", "key-1") == source


async def test_poll_cursor_only_moves_forward_and_success_clears_the_error(
    store: SyncStore,
) -> None:
    source = Source(
        source_id=str(uuid.uuid4()),
        kind=SourceKind.EXCHANGE,
        user_id="u1",
        name="",
        public=False,
        exchange_id="e",
        exchange_name="binance",
        sync_settings=SyncSettings(),
        equity=None,
        mode=SyncMode.POLLING,
        start_time=T0,
        created_at=T0,
        cursor_time=T0,
    )
    await store.create_source(source)
    await store.record_poll_failure(source.source_id, "EXCHANGE_UNAVAILABLE: down")
    failed = await store.get_source(source.source_id)
    assert failed is not None and failed.last_error == "EXCHANGE_UNAVAILABLE: down"
    await store.record_poll_success(source.source_id, T0 + timedelta(minutes=2), T0)
    await store.record_poll_success(source.source_id, T0 + timedelta(minutes=1), T0)
    await store.update_equity(source.source_id, Decimal("123.45"))
    stored = await store.get_source(source.source_id)
    assert stored is not None
    assert stored.cursor_time == T0 + timedelta(minutes=2)
    assert stored.last_error == "" and stored.last_sync_at == T0
    assert stored.equity == Decimal("123.45")
    assert [s.source_id for s in await store.list_exchange_sources()] == [source.source_id]
