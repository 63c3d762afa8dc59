"""The daily loss monitor against the real store and a fake broker: a price fall with no leader
trade takes the configured action, once, fenced by the source's lease."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from engine_svc.domain import risk
from engine_svc.domain.model import (
    AssetBalance,
    ConfigSettings,
    CopyConfig,
    CopyStatus,
    Intent,
    IntentState,
    MarketInfo,
    OrderType,
    Portfolio,
    RiskLimits,
    Side,
)
from engine_svc.risk_monitor import RiskMonitor
from engine_svc.store import EngineStore
from meshkit import db, errors
from tests.fakes.clock import FakeClock
from tests.fakes.configs import copy_config

NOW = datetime(2026, 12, 4, 15, tzinfo=UTC)
ACCOUNT = "acc-1"


class Broker:
    """The broker reads the monitor makes: one account holding BTC, and its price."""

    def __init__(self) -> None:
        self.price = D("50000")
        self.btc = D("0.1")
        self.portfolio_reads = 0
        self.market_reads = 0

    async def get_portfolio(self, exchange_id: str, user_id: str) -> Portfolio:
        self.portfolio_reads += 1
        cash = D("5000")
        return Portfolio(
            equity=cash + self.btc * self.price,
            quote_currency="USDT",
            balances=(
                AssetBalance("USDT", cash, cash, cash),
                AssetBalance("BTC", self.btc, self.btc, self.btc * self.price),
            ),
        )

    async def get_market(self, exchange_id: str, symbol: str, user_id: str) -> MarketInfo:
        self.market_reads += 1
        if symbol != "BTC/USDT":
            raise errors.NotFound("no such market", reason="MARKET_NOT_FOUND")
        return MarketInfo(
            symbol="BTC/USDT",
            base="BTC",
            quote="USDT",
            quantity_step=D("0.00001"),
            min_quantity=D("0.00001"),
            min_notional=D("10"),
            last_price=self.price,
        )


class Held:
    """A replica's ownership: it holds the source under ``token`` unless told otherwise."""

    def __init__(self, token: int | None) -> None:
        self.held = token

    def token(self, source_id: str) -> int | None:
        return self.held

    def sources(self) -> set[str]:
        return {"src"} if self.held is not None else set()


@pytest.fixture
async def store(database: db.Database) -> EngineStore:
    store = EngineStore(database)
    await store.migrate()
    return store


async def _config(store: EngineStore, action: str) -> CopyConfig:
    config = copy_config(
        NOW,
        config_id=f"cfg-{action}",
        user_id="user-1",
        target_exchange_ids=(ACCOUNT,),
        settings=ConfigSettings(
            risk_limits=RiskLimits(max_daily_loss=D("0.05"), daily_loss_action=action)
        ),
        target_venues={ACCOUNT: "binance"},
    )
    await store.insert_config(config)
    bought = Intent(
        intent_id=f"buy-{action}",
        config_id=config.config_id,
        source_id="src",
        sequence=1,
        signal_id="t1",
        target_exchange_id=ACCOUNT,
        leg=0,
        client_order_id=f"coid-{action}",
        symbol="BTC/USDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        quantity=D("0.1"),
        price=None,
        state=IntentState.FILLED,
        reason="",
        leader_quantity=D("1"),
        leader_price=D("50000"),
        leader_event_time=NOW,
        created_at=NOW,
        updated_at=NOW,
        filled_quantity=D("0.1"),
    )
    await store.insert_intent(bought)
    return config


def _monitor(store: EngineStore, broker: Broker, sent: list[Intent], token: int | None = None):
    return RiskMonitor(
        store,
        broker,  # type: ignore[arg-type]  # the two reads the monitor makes
        FakeClock(NOW),
        sent.extend,
        Held(token) if token is not None else None,
    )


async def test_close_all_sells_the_copied_position_once_after_a_fall_with_no_trade(
    store: EngineStore,
) -> None:
    config = await _config(store, "close_all")
    broker, sent = Broker(), []
    monitor = _monitor(store, broker, sent)
    assert await monitor.round() == []  # the day's start equity: 10,000
    stored = await store.get_config(config.config_id)
    assert stored is not None and stored.daily_risk.start_equity == {ACCOUNT: D("10000")}

    broker.price = D("40000")  # equity 9,000: 10 % down, over the 5 % limit
    reads = broker.portfolio_reads
    assert await monitor.round() == [config.config_id]
    assert broker.portfolio_reads == reads  # the price was re-read, not the balances

    stored = await store.get_config(config.config_id)
    assert stored is not None and stored.status is CopyStatus.REDUCING
    assert stored.status_reason.startswith("max_daily_loss: account acc-1 lost 10.00%")
    assert [(i.side, i.type, i.quantity, i.symbol, i.reason) for i in sent] == [
        (Side.SELL, OrderType.MARKET, D("0.1"), "BTC/USDT", "daily_loss_close_all")
    ]
    expected_id, _ = risk.close_key(config.config_id, ACCOUNT, "BTC/USDT", "2026-12-04")
    assert sent[0].client_order_id == expected_id and sent[0].state is IntentState.PENDING
    entries = await store.audit.entries_of("user-1", before_seq=0, limit=10)
    assert [e.action for e in entries] == ["risk.daily_loss_action"]
    details = json.loads(entries[0].after or "{}")
    assert {
        k: details[k] for k in ("config_id", "user_id", "account", "action", "loss", "limit")
    } == {
        "config_id": config.config_id,
        "user_id": "user-1",
        "account": ACCOUNT,
        "action": "close_all",
        "loss": "0.1",
        "limit": "0.05",
    }

    # Another round, and a restarted monitor, write no second order for the day.
    assert await monitor.round() == []
    assert await _monitor(store, broker, sent).round() == []
    assert len(sent) == 1
    closes = await store.intents_in_states([IntentState.PENDING], config_id=config.config_id)
    assert [i.client_order_id for i in closes] == [expected_id]


async def test_disable_pauses_the_configuration_and_sells_nothing(store: EngineStore) -> None:
    config = await _config(store, "disable")
    broker, sent = Broker(), []
    monitor = _monitor(store, broker, sent)
    await monitor.round()
    broker.price = D("45000")  # equity 9,500: exactly 5 % down, not more: no action
    assert await monitor.round() == []
    broker.price = D("44000")
    assert await monitor.round() == [config.config_id]
    stored = await store.get_config(config.config_id)
    assert stored is not None and stored.status is CopyStatus.PAUSED
    assert stored.status_reason.endswith("copying is disabled until resumed")
    assert sent == []


async def test_a_replica_that_does_not_hold_the_source_leaves_it_alone(store: EngineStore) -> None:
    config = await _config(store, "reduce_only")
    broker, sent = Broker(), []
    monitor = RiskMonitor(store, broker, FakeClock(NOW), sent.extend, Held(None))  # type: ignore[arg-type]  # the two reads
    broker.price = D("10000")
    assert await monitor.round() == []
    stored = await store.get_config(config.config_id)
    assert stored is not None and stored.status is CopyStatus.ACTIVE
    assert broker.portfolio_reads == 0


async def test_a_replica_whose_lease_was_taken_over_is_fenced(store: EngineStore) -> None:
    config = await _config(store, "close_all")
    broker, sent = Broker(), []
    await _monitor(store, broker, sent).round()  # the day's start equity
    monitor = _monitor(store, broker, sent, token=7)  # no lease row holds token 7
    broker.price = D("10000")
    assert await monitor.round() == []
    stored = await store.get_config(config.config_id)
    assert stored is not None and stored.status is CopyStatus.ACTIVE
    assert sent == []


async def test_balances_are_read_again_only_when_the_accounts_orders_change(
    store: EngineStore,
) -> None:
    config = await _config(store, "reduce_only")
    broker, sent = Broker(), []
    monitor = _monitor(store, broker, sent)
    await monitor.round()
    await monitor.round()
    assert broker.portfolio_reads == 1  # prices each round, balances once
    assert broker.market_reads == 1
    later = datetime(2026, 12, 4, 15, 1, tzinfo=UTC)
    assert await store.update_intent(
        f"buy-{config.settings.risk_limits.daily_loss_action}",
        IntentState.FILLED,
        updated_at=later,
    )
    await monitor.round()
    assert broker.portfolio_reads == 2


def _resting(config: CopyConfig, name: str, side: Side, **fields: object) -> Intent:
    # A mirrored limit copy resting at the venue.
    return Intent(
        intent_id=f"{name}-{config.config_id}",
        config_id=config.config_id,
        source_id="src",
        sequence=2 if side is Side.BUY else 3,
        signal_id=name,
        target_exchange_id=ACCOUNT,
        leg=0,
        client_order_id=f"coid-{name}-{config.config_id}",
        symbol=str(fields.pop("symbol", "BTC/USDT")),
        side=side,
        type=OrderType.LIMIT,
        quantity=D("0.05"),
        price=D("35000") if side is Side.BUY else D("60000"),
        state=IntentState.ACCEPTED,
        reason="",
        leader_quantity=D("0.5"),
        leader_price=D("35000"),
        leader_event_time=NOW,
        created_at=NOW,
        updated_at=NOW,
        **fields,  # type: ignore[arg-type]  # the test's intent fields
    )


@pytest.mark.parametrize(
    ("action", "cancelled"),
    [("close_all", ["entry"]), ("reduce_only", ["entry"]), ("disable", ["entry", "exit"])],
)
async def test_the_action_cancels_the_resting_copies_its_status_no_longer_allows(
    store: EngineStore, action: str, cancelled: list[str]
) -> None:
    # A resting buy copy left in place would re-open what close_all sold once the price
    # falls to it; a paused configuration keeps no copy resting at all.
    config = await _config(store, action)
    for name, side in (("entry", Side.BUY), ("exit", Side.SELL)):
        await store.insert_intent(_resting(config, name, side))
    asked: list[tuple[str, str]] = []

    async def cancel(copies: list[tuple[Intent, CopyConfig]]) -> None:
        asked.extend((i.signal_id, c.config_id) for i, c in copies)

    broker, sent = Broker(), []
    monitor = RiskMonitor(store, broker, FakeClock(NOW), sent.extend, cancel_copies=cancel)  # type: ignore[arg-type]  # the two reads
    await monitor.round()
    assert asked == []
    broker.price = D("40000")
    assert await monitor.round() == [config.config_id]
    assert sorted(asked) == [(name, config.config_id) for name in cancelled]
    for name in ("entry", "exit"):
        stored = await store.get_intent(f"{name}-{config.config_id}")
        assert stored is not None
        wanted = name in cancelled
        assert (stored.cancel_wanted, stored.reason) == (
            wanted,
            "daily_loss_cancelled" if wanted else "",
        )
    # Later rounds (the breach goes on) ask for no cancel again.
    await monitor.round()
    assert len(asked) == len(cancelled)


async def test_reducing_cancels_a_futures_entry_but_not_a_reduce_only_exit(
    store: EngineStore,
) -> None:
    config = await _config(store, "reduce_only")
    perp = "BTC/USDT:USDT"
    await store.insert_intent(_resting(config, "entry", Side.SELL, symbol=perp))  # opens a short
    await store.insert_intent(_resting(config, "exit", Side.BUY, symbol=perp, reduce_only=True))
    asked: list[str] = []

    async def cancel(copies: list[tuple[Intent, CopyConfig]]) -> None:
        asked.extend(i.signal_id for i, _ in copies)

    broker, sent = Broker(), []
    monitor = RiskMonitor(store, broker, FakeClock(NOW), sent.extend, cancel_copies=cancel)  # type: ignore[arg-type]  # the two reads
    await monitor.round()
    broker.price = D("40000")
    assert await monitor.round() == [config.config_id]
    assert asked == ["entry"]
