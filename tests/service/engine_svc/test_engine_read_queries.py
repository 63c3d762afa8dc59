"""The reads GET /status makes of the intents: their answers, and on SQLite the indexes they use.

``intent_changes`` (when an account's intent last changed) is one search per account in
``order_intents_target_updated`` (migration 0012) rather than a scan of the accounts' intents,
in statements of at most ``_CHANGES_PER_QUERY`` accounts; ``state_counts`` reads the per-state
counts from ``order_intents_config_state`` alone.
"""

from __future__ import annotations

from datetime import timedelta

from engine_svc.domain.model import IntentState
from engine_svc.store import EngineStore
from engine_svc.store.risk import _CHANGES_PER_QUERY
from meshkit import db
from meshkit.codec import to_iso
from tests.service.engine_svc.test_engine_store import NOW, intent, store

__all__ = ["store"]  # the fixture, used by name


async def _plan(database: db.Database, sql: str, params: tuple[str, ...]) -> str:
    rows = await database.fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
    return " | ".join(str(row["detail"]) for row in rows)


async def test_intent_changes_are_each_accounts_latest_update(store: EngineStore) -> None:
    later = NOW + timedelta(seconds=5)
    await store.insert_intent(intent("i1", target="t1", sequence=1, updated_at=NOW))
    await store.insert_intent(intent("i2", target="t1", sequence=2, updated_at=later))
    await store.insert_intent(intent("i3", target="t2", sequence=1, updated_at=NOW))
    others = [f"x{n:04d}" for n in range(2 * _CHANGES_PER_QUERY + 5)]  # three statements

    changes = await store.intent_changes(["t2", "t1", "nothing", *others])

    assert changes == {"t1": to_iso(later), "t2": to_iso(NOW)}
    assert await store.intent_changes([]) == {}
    assert await store.update_intent(
        "i3", IntentState.PENDING, state=IntentState.SENT, updated_at=later + timedelta(1)
    )
    assert (await store.intent_changes(["t2"]))["t2"] == to_iso(later + timedelta(1))


async def test_status_reads_search_indexes_on_sqlite(store: EngineStore) -> None:
    await store.insert_intent(intent("i1", state=IntentState.FILLED))
    await store.insert_intent(intent("i2", target="t2", state=IntentState.SKIPPED))
    counts, signals = await store.state_counts("c1")
    assert counts == {IntentState.FILLED: 1, IntentState.SKIPPED: 1}
    assert signals == 1
    if not isinstance(store.database, db.SqliteDatabase):
        return  # the plans below are SQLite's words
    latest = await _plan(
        store.database,
        "SELECT (SELECT MAX(updated_at) FROM order_intents WHERE target_exchange_id = ?) AS c0",
        ("t1",),
    )
    assert "COVERING INDEX order_intents_target_updated" in latest
    per_state = await _plan(
        store.database,
        "SELECT state, COUNT(*) AS n FROM order_intents WHERE config_id = ? GROUP BY state",
        ("c1",),
    )
    assert "COVERING INDEX order_intents_config_state" in per_state
