"""The engine's tables on SQLite and PostgreSQL: uniqueness, compare-and-set, JSON round trips."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from engine_svc.domain.ids import client_order_id
from engine_svc.domain.model import (
    ConfigSettings,
    CopyConfig,
    CopySettings,
    CopyStatus,
    DailyRisk,
    Intent,
    IntentState,
    OrderType,
    RiskLimits,
    Side,
    Signal,
    SourceKind,
    SyncSettings,
    TimeInForce,
)
from engine_svc.store import EngineStore
from meshkit import db

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
SETTINGS = ConfigSettings(
    risk_limits=RiskLimits(max_slippage=D("0.01"), max_position_size=D("0.25")),
    copy_settings=CopySettings(
        exclude_symbols=("DOGE/USDT",),
        symbol_map={"BTC/USDT": "BTC/USD"},
        max_trade_size=D("1000.50"),
        copy_all_trades=False,
    ),
    sync_settings=SyncSettings(sync_interval=2, enable_websocket=False),
)


@pytest.fixture
async def store(database: db.Database) -> EngineStore:
    store = EngineStore(database)
    await store.migrate()
    return store


def config(
    config_id: str = "c1", user_id: str = "u1", request_id: str | None = None, **changes: object
) -> CopyConfig:
    base = CopyConfig(
        config_id=config_id,
        user_id=user_id,
        source_kind=SourceKind.EXCHANGE,
        source_id="src",
        target_exchange_ids=("t1", "t2"),
        settings=SETTINGS,
        status=CopyStatus.ACTIVE,
        status_reason="",
        start_sequence=4,
        last_sequence=4,
        sync_status="websocket",
        last_sync_at=None,
        created_at=NOW,
        updated_at=NOW,
        request_id=request_id,
        target_venues={"t1": "binance", "t2": "kraken"},
    )
    return dataclasses.replace(base, **changes)


def signal(sequence: int = 5) -> Signal:
    return Signal(
        source_id="src",
        sequence=sequence,
        signal_id=f"t{sequence}",
        symbol="BTC/USDT",
        side=Side.BUY,
        quantity=D("0.1"),
        price=D("50000.5"),
        order_type=OrderType.MARKET,
        event_time=NOW,
        leader_equity=D("100000"),
    )


def intent(
    intent_id: str = "i1", target: str = "t1", sequence: int = 5, **changes: object
) -> Intent:
    base = Intent(
        intent_id=intent_id,
        config_id="c1",
        source_id="src",
        sequence=sequence,
        signal_id="t5",
        target_exchange_id=target,
        leg=0,
        client_order_id=client_order_id("c1", "src", sequence, target, 0),
        symbol="BTC/USDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        quantity=D("0.01"),
        price=None,
        state=IntentState.PENDING,
        reason="",
        leader_quantity=D("0.1"),
        leader_price=D("50000"),
        leader_event_time=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    return dataclasses.replace(base, **changes)


async def test_config_table_has_the_seed_columns_first(store: EngineStore) -> None:
    await store.insert_config(config())
    row = await store.database.fetchone("SELECT * FROM copy_trading_configs")
    assert row is not None
    assert list(row)[:11] == [
        "id",
        "user_id",
        "source",
        "target_exchange_ids",
        "risk_limits",
        "copy_settings",
        "sync_status",
        "last_sync_at",
        "is_active",
        "created_at",
        "updated_at",
    ]
    assert '"max_slippage": "0.01"' in row["risk_limits"]
    assert row["source"] == '{"kind": "exchange", "id": "src"}'


async def test_config_round_trips_with_its_settings(store: EngineStore) -> None:
    stored = await store.insert_config(config())
    assert await store.get_config("c1") == stored


async def test_repeated_request_id_returns_the_first_config(store: EngineStore) -> None:
    first = await store.insert_config(config("c1", request_id="r"))
    second = await store.insert_config(config("c2", request_id="r"))
    assert second.config_id == first.config_id
    other_user = await store.insert_config(config("c3", user_id="u2", request_id="r"))
    assert other_user.config_id == "c3"
    assert [c.config_id for c in await store.list_configs("u1")] == ["c1"]


async def test_inbox_holds_a_signal_once(store: EngineStore) -> None:
    async with store.signal_transaction() as tx:
        assert await tx.insert_inbox(signal(), NOW)
    async with store.signal_transaction() as tx:
        assert not await tx.insert_inbox(signal(), NOW)
    assert await store.inbox_max("src") == 5
    assert await store.get_signal("src", 5) == signal()


async def test_one_intent_per_config_signal_target_and_leg(store: EngineStore) -> None:
    await store.insert_config(config())
    async with store.signal_transaction() as tx:
        assert await tx.insert_intent(intent("i1"))
        assert not await tx.insert_intent(intent("i2"))
        assert await tx.insert_intent(intent("i3", target="t2"))
    assert await store.get_intent("i2") is None
    assert await store.get_intent("i1") == intent("i1")


async def test_a_failed_signal_transaction_writes_nothing(store: EngineStore) -> None:
    await store.insert_config(config())
    with pytest.raises(RuntimeError):
        async with store.signal_transaction() as tx:
            await tx.insert_inbox(signal(), NOW)
            await tx.insert_intent(intent())
            raise RuntimeError("crash before commit")
    assert not await store.has_signal("src", 5)
    assert await store.get_intent("i1") is None


async def test_configs_copying_a_signal_exclude_stopped_and_earlier_starts(
    store: EngineStore,
) -> None:
    await store.insert_config(config("c1"))
    await store.insert_config(config("c2", status=CopyStatus.STOPPED))
    await store.insert_config(config("c3", start_sequence=9))
    await store.insert_config(config("c4", status=CopyStatus.PAUSED))
    async with store.signal_transaction() as tx:
        copying = await tx.configs_copying("src", 5)
    assert sorted(c.config_id for c in copying) == ["c1", "c4"]


async def test_subscriptions_resume_after_the_inbox_or_the_start(store: EngineStore) -> None:
    await store.insert_config(config("c1", start_sequence=4))
    assert await store.subscriptions() == {"src": 4}
    async with store.signal_transaction() as tx:
        await tx.insert_inbox(signal(7), NOW)
    assert await store.subscriptions() == {"src": 7}
    assert await store.subscription_of("src") == 7
    assert await store.subscription_of("other") is None


async def test_mark_sent_is_a_compare_and_set_that_respects_the_config_status(
    store: EngineStore,
) -> None:
    await store.insert_config(config())
    await store.insert_intent(intent())
    assert await store.mark_sent(intent(), NOW)
    assert not await store.mark_sent(intent(), NOW)  # it is SENT now, no second send
    sent = await store.get_intent("i1")
    assert sent is not None and (sent.state, sent.attempts, sent.last_sent_at) == (
        IntentState.SENT,
        1,
        NOW,
    )

    await store.insert_intent(intent("i2", target="t2"))
    assert await store.change_status("c1", CopyStatus.ACTIVE, CopyStatus.HALTED, "kill switch", NOW)
    assert not await store.mark_sent(intent("i2", target="t2"), NOW)


async def test_halting_skips_pending_intents_in_the_same_transaction(store: EngineStore) -> None:
    await store.insert_config(config())
    await store.insert_intent(intent())
    assert await store.change_status(
        "c1",
        CopyStatus.ACTIVE,
        CopyStatus.HALTED,
        "kill switch",
        NOW,
        skip_pending="halted",
    )
    skipped = await store.get_intent("i1")
    assert skipped is not None and (skipped.state, skipped.reason) == (
        IntentState.SKIPPED,
        "halted",
    )
    assert not await store.change_status("c1", CopyStatus.ACTIVE, CopyStatus.PAUSED, "", NOW)
    halted = await store.get_config("c1")
    assert halted is not None and not halted.is_active


async def test_update_intent_changes_only_from_the_expected_state(store: EngineStore) -> None:
    await store.insert_config(config())
    await store.insert_intent(intent())
    assert not await store.update_intent("i1", IntentState.SENT, state=IntentState.FILLED)
    assert await store.update_intent(
        "i1",
        IntentState.PENDING,
        state=IntentState.SKIPPED,
        reason="x",
        latency_ms=12.5,
        average_price=D("50000.25"),
        updated_at=NOW + timedelta(seconds=1),
    )
    changed = await store.get_intent("i1")
    assert changed is not None
    assert (changed.state, changed.latency_ms, changed.average_price) == (
        IntentState.SKIPPED,
        12.5,
        D("50000.25"),
    )
    with pytest.raises(ValueError, match="not updatable"):
        await store.update_intent("i1", IntentState.SKIPPED, client_order_id="other")


async def test_counts_and_listing_of_intents(store: EngineStore) -> None:
    await store.insert_config(config())
    await store.insert_intent(intent("i1", created_at=NOW))
    await store.insert_intent(intent("i2", target="t2", state=IntentState.SKIPPED, created_at=NOW))
    await store.insert_intent(intent("i3", sequence=6, created_at=NOW + timedelta(seconds=1)))
    counts, signals = await store.state_counts("c1")
    assert counts == {IntentState.PENDING: 2, IntentState.SKIPPED: 1}
    assert signals == 2
    assert [i.intent_id for i in await store.recent_intents("c1", 2)] == ["i3", "i2"]
    listed = await store.list_intents("c1", NOW, NOW + timedelta(seconds=1), 10)
    assert sorted(i.intent_id for i in listed) == ["i1", "i2"]
    pending = await store.intents_in_states([IntentState.PENDING])
    assert [i.intent_id for i in pending] == ["i1", "i3"]


async def test_limit_ioc_intent_round_trips_with_its_price_and_time_in_force(
    store: EngineStore,
) -> None:
    await store.insert_config(config())
    banded = intent(type=OrderType.LIMIT, price=D("50500.5"), time_in_force=TimeInForce.IOC)
    await store.insert_intent(banded)
    assert await store.get_intent("i1") == banded
    await store.insert_intent(intent("i2", target="t2"))
    plain = await store.get_intent("i2")
    assert plain is not None and (plain.type, plain.price, plain.time_in_force) == (
        OrderType.MARKET,
        None,
        None,
    )


async def test_order_rate_and_its_default_round_trip(store: EngineStore) -> None:
    limits = RiskLimits(max_orders_per_minute=7, correlation_limit=D("0.8"))
    await store.insert_config(config(settings=dataclasses.replace(SETTINGS, risk_limits=limits)))
    stored = await store.get_config("c1")
    assert stored is not None and stored.settings.risk_limits == limits


async def test_orders_since_counts_an_accounts_unskipped_intents_in_the_window(
    store: EngineStore,
) -> None:
    await store.insert_config(config())
    minute_ago = NOW - timedelta(seconds=60)
    before = minute_ago - timedelta(seconds=1)
    await store.insert_intent(intent("i1", sequence=1, created_at=before))
    await store.insert_intent(intent("i2", sequence=2, created_at=minute_ago))
    await store.insert_intent(intent("i3", sequence=3, state=IntentState.FILLED))
    await store.insert_intent(intent("i4", sequence=4, state=IntentState.SKIPPED))
    await store.insert_intent(intent("i5", sequence=5, target="t2"))
    async with store.signal_transaction() as tx:
        assert await tx.orders_since("t1", minute_ago) == 2
        assert await tx.orders_since("t2", minute_ago) == 1
        assert await tx.orders_since("t3", minute_ago) == 0


@pytest.mark.parametrize(
    ("status", "side", "sendable"),
    [
        (CopyStatus.ACTIVE, Side.BUY, True),
        (CopyStatus.ACTIVE, Side.SELL, True),
        (CopyStatus.REDUCING, Side.SELL, True),
        (CopyStatus.REDUCING, Side.BUY, False),
        (CopyStatus.PAUSED, Side.SELL, False),
        (CopyStatus.HALTED, Side.SELL, False),
        (CopyStatus.STOPPED, Side.SELL, False),
    ],
)
async def test_mark_sent_lets_only_what_the_config_state_allows_leave(
    store: EngineStore, status: CopyStatus, side: Side, sendable: bool
) -> None:
    await store.insert_config(config(status=status))
    await store.insert_intent(intent(side=side))
    assert await store.mark_sent(intent(side=side), NOW) is sendable
    stored = await store.get_intent("i1")
    assert stored is not None
    assert stored.state is (IntentState.SENT if sendable else IntentState.PENDING)


async def test_start_of_day_equity_survives_a_restart_of_the_store(
    database: db.Database,
) -> None:
    first = EngineStore(database)
    await first.migrate()
    await first.insert_config(config())
    daily = DailyRisk("2026-03-01", {"t1": D("10000.5"), "t2": D("250")})
    async with first.signal_transaction() as tx:
        await tx.record_progress(config(), CopyStatus.REDUCING, "max_daily_loss: t1", daily, NOW)
    second = EngineStore(database)
    await second.migrate()
    stored = await second.get_config("c1")
    assert stored is not None
    assert (stored.status, stored.daily_risk) == (CopyStatus.REDUCING, daily)


async def test_a_leader_cancel_skips_an_unsent_copy_and_marks_a_resting_one(
    store: EngineStore,
) -> None:
    # Order mirroring: the copies of the leader order opened at sequence 5, on t1 (not sent
    # yet) and t2 (resting at the venue); another signal's copy is left alone.
    await store.insert_config(config())
    sent = intent("i2", target="t2", state=IntentState.ACCEPTED, venue_order_id="v2")
    async with store.signal_transaction() as tx:
        await tx.insert_intent(intent("i1"))
        await tx.insert_intent(sent)
        await tx.insert_intent(intent("i3", sequence=6))
    async with store.signal_transaction() as tx:
        assert await tx.cancel_copies("c1", "src", 5, "t1", "leader_order_cancelled", NOW) == []
        (resting,) = await tx.cancel_copies("c1", "src", 5, "t2", "leader_order_cancelled", NOW)
    assert resting.intent_id == "i2" and resting.cancel_wanted
    unsent = await store.get_intent("i1")
    assert unsent is not None
    assert (unsent.state, unsent.reason) == (IntentState.SKIPPED, "leader_order_cancelled")
    other = await store.get_intent("i3")
    assert other is not None and other.state is IntentState.PENDING and not other.cancel_wanted
