"""The parsed-configuration cache of the engine store: a row is decoded once per version, and any
change to the row (from this store, another replica or plain SQL) is seen at the next read."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from engine_svc.domain.loops import ConfigEdges
from engine_svc.domain.model import (
    ConfigSettings,
    CopyConfig,
    CopySettings,
    CopyStatus,
    DailyRisk,
    RiskLimits,
    SourceKind,
    SyncSettings,
)
from engine_svc.store import EngineStore, rows
from meshkit import db

NOW = datetime(2026, 5, 7, 9, tzinfo=UTC)
SETTINGS = ConfigSettings(
    risk_limits=RiskLimits(max_daily_loss=D("0.1"), max_position_size=D("0.25")),
    copy_settings=CopySettings(multiplier=D("2"), symbol_map={"BTC/USDT": "BTC/USD"}),
    sync_settings=SyncSettings(sync_interval=2),
)


@pytest.fixture
async def store(database: db.Database) -> EngineStore:
    store = EngineStore(database)
    await store.migrate()
    return store


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The config ids parsed from a row (cache misses), in order."""
    seen: list[str] = []
    parse = rows._parse_config

    def counted(values: tuple[Any, ...]) -> CopyConfig:
        seen.append(values[0])
        return parse(values)

    monkeypatch.setattr(rows, "_parse_config", counted)
    return seen


def config(config_id: str, **changes: Any) -> CopyConfig:
    base = CopyConfig(
        config_id=config_id,
        user_id="cache-user",
        source_kind=SourceKind.EXCHANGE,
        source_id="cache-src",
        target_exchange_ids=(f"{config_id}-t",),
        settings=SETTINGS,
        status=CopyStatus.ACTIVE,
        status_reason="",
        start_sequence=1,
        last_sequence=1,
        sync_status="websocket",
        last_sync_at=None,
        created_at=NOW,
        updated_at=NOW,
        target_venues={f"{config_id}-t": "paper"},
    )
    return dataclasses.replace(base, **changes)


async def test_an_unchanged_row_is_parsed_once(store: EngineStore, parses: list[str]) -> None:
    ids = [f"once-{n}" for n in range(3)]
    for config_id in ids:
        await store.insert_config(config(config_id))
    first = await store.monitored_configs()
    parsed = len(parses)
    assert await store.monitored_configs() == first
    assert await store.configs_of_source("cache-src") == first
    async with store.signal_transaction() as tx:
        assert await tx.configs_copying("cache-src", 2) == first
    assert await store.get_config(ids[0]) == first[0]
    assert len(parses) == parsed, "an unchanged row was decoded again"


async def test_a_changed_status_or_settings_is_seen_at_once(
    store: EngineStore, parses: list[str]
) -> None:
    stored = await store.insert_config(config("moves"))
    assert (await store.monitored_configs()) == [stored]
    later = NOW + timedelta(seconds=1)
    assert await store.change_status(
        "moves", CopyStatus.ACTIVE, CopyStatus.PAUSED, "by hand", later
    )
    paused = await store.get_config("moves")
    assert paused is not None and paused.status is CopyStatus.PAUSED
    assert paused.status_reason == "by hand"
    assert await store.monitored_configs() == []
    async with store.signal_transaction() as tx:
        assert [c.status for c in await tx.configs_copying("cache-src", 2)] == [CopyStatus.PAUSED]
    wider = dataclasses.replace(
        SETTINGS, risk_limits=dataclasses.replace(SETTINGS.risk_limits, max_daily_loss=D("0.3"))
    )
    assert await store.update_settings(paused, wider, later + timedelta(seconds=1))
    changed = await store.get_config("moves")
    assert changed is not None and changed.settings == wider
    assert [c.settings for c in await store.configs_of_source("cache-src")] == [wider]


async def test_a_write_elsewhere_that_keeps_updated_at_is_seen_at_once(
    store: EngineStore, parses: list[str]
) -> None:
    # Another replica's (or an older engine's) write: the row changes, updated_at does not.
    await store.insert_config(config("elsewhere"))
    before = await store.get_config("elsewhere")
    assert before is not None
    await store.database.execute(
        "UPDATE copy_trading_configs SET risk_limits = ?, status = ?, last_sequence = ?,"
        " daily_risk = ? WHERE id = ?",
        (
            '{"max_daily_loss": "0.5"}',
            CopyStatus.REDUCING.value,
            9,
            '{"day": "2026-05-07", "start_equity": {"elsewhere-t": "100"}}',
            "elsewhere",
        ),
    )
    after = await store.get_config("elsewhere")
    assert after is not None and after.updated_at == before.updated_at
    assert after.settings.risk_limits == RiskLimits(max_daily_loss=D("0.5"))
    assert after.status is CopyStatus.REDUCING
    assert after.last_sequence == 9
    assert after.daily_risk == DailyRisk("2026-05-07", {"elsewhere-t": D("100")})
    assert [c.settings.risk_limits for c in await store.monitored_configs()] == [
        RiskLimits(max_daily_loss=D("0.5"))
    ]


async def test_rows_alike_but_for_their_id_are_two_configurations(
    store: EngineStore, parses: list[str]
) -> None:
    await store.insert_config(config("twin-a", target_exchange_ids=("same",)))
    await store.insert_config(config("twin-b", target_exchange_ids=("same",)))
    assert [c.config_id for c in await store.configs_of_source("cache-src")] == [
        "twin-a",
        "twin-b",
    ]


async def test_the_copy_graph_is_read_without_settings_and_matches_the_configurations(
    store: EngineStore, parses: list[str]
) -> None:
    await store.insert_config(config("edge-a", target_exchange_ids=("x", "y")))
    await store.insert_config(config("edge-b", status=CopyStatus.PAUSED))
    await store.insert_config(config("edge-c", status=CopyStatus.STOPPED))
    parsed = len(parses)
    statuses = [CopyStatus.ACTIVE, CopyStatus.PAUSED]
    edges = await store.copy_graph(statuses)
    assert len(parses) == parsed, "the copy graph decoded whole configurations"
    assert edges == [
        ConfigEdges(c.config_id, c.source_kind, c.source_id, c.target_exchange_ids, c.status)
        for c in await store.configs_in_states(statuses)
    ]
    assert [(e.config_id, e.target_exchange_ids) for e in edges] == [
        ("edge-a", ("x", "y")),
        ("edge-b", ("edge-b-t",)),
    ]


async def test_the_risk_monitor_reads_only_configurations_with_a_daily_loss_limit(
    store: EngineStore, parses: list[str]
) -> None:
    no_limit = dataclasses.replace(
        SETTINGS, risk_limits=dataclasses.replace(SETTINGS.risk_limits, max_daily_loss=None)
    )
    await store.insert_config(config("loss-set"))
    await store.insert_config(config("loss-none", settings=no_limit))
    await store.insert_config(config("loss-old"))
    await store.insert_config(config("loss-paused", status=CopyStatus.PAUSED))
    await store.insert_config(config("loss-reducing", status=CopyStatus.REDUCING))
    # A row written before the limit existed has no key at all: read, and left out.
    await store.database.execute(
        "UPDATE copy_trading_configs SET risk_limits = ? WHERE id = ?", ("{}", "loss-old")
    )
    parses.clear()
    found = await store.daily_loss_configs()
    assert [c.config_id for c in found] == ["loss-reducing", "loss-set"]  # created_at, id
    assert "loss-none" not in parses, "a configuration without a limit was read"
    expected = [
        c.config_id
        for c in await store.monitored_configs()
        if c.settings.risk_limits.max_daily_loss is not None
    ]
    assert [c.config_id for c in found] == expected
