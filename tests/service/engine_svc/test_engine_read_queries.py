"""The reads GET /status makes of the intents: their answers, and on SQLite the indexes they use.

``intent_changes`` (when an account's intent last changed) is one search per account in
``order_intents_target_updated`` (migration 0012) rather than a scan of the accounts' intents,
in statements of at most ``_CHANGES_PER_QUERY`` accounts; ``state_counts`` reads the per-state
counts from ``order_intents_config_state`` alone; a page of intents after another (keyset paging)
starts its index search at the boundary instead of reading and sorting every later intent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from engine_svc.domain.model import IntentState
from engine_svc.store import EngineStore
from engine_svc.store.risk import _CHANGES_PER_QUERY
from meshkit import db
from meshkit.codec import to_iso
from tests.service.engine_svc.test_engine_store import NOW, intent, store

__all__ = ["store"]  # the fixture, used by name


async def _plan(database: db.Database, sql: str, params: tuple[Any, ...]) -> str:
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


class _Recording:
    """The store's database, keeping the last statement it was asked to read."""

    def __init__(self, database: db.Database) -> None:
        self._database = database
        self.last: tuple[str, tuple[Any, ...]] = ("", ())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._database, name)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[db.Row]:
        self.last = (sql, tuple(params))
        return await self._database.fetchall(sql, params)


async def test_pages_of_intents_start_at_their_boundary(store: EngineStore) -> None:
    # Three intents per created_at (ties broken by sequence, then intent id), paged by 4.
    written = [
        intent(f"i{n:02d}", target=f"t{n % 2}", sequence=n // 2, created_at=NOW + timedelta(n // 3))
        for n in range(12)
    ]
    for each in written:
        assert await store.insert_intent(each)
    recording = _Recording(store.database)
    store.database = recording  # type: ignore[assignment]
    pages: list[list[str]] = []
    after: tuple[str, int, str] | None = None
    while True:
        page = await store.list_intents("c1", None, None, 4, after=after)
        pages.append([i.intent_id for i in page])
        if len(page) < 4:
            break
        last = page[-1]
        after = (to_iso(last.created_at), last.sequence, last.intent_id)
    expected = sorted(written, key=lambda i: (i.created_at, i.sequence, i.intent_id))
    assert [i for page in pages for i in page] == [i.intent_id for i in expected]
    assert [len(page) for page in pages] == [4, 4, 4, 0]
    if not isinstance(recording._database, db.SqliteDatabase):
        return  # the plan below is SQLite's words
    sql, params = recording.last
    plan = await _plan(recording._database, sql, params)
    assert "created_at>?" in plan.replace(" ", "")  # a range search from the boundary
    assert "MULTI-INDEX OR" not in plan
    assert "TEMP B-TREE FOR ORDER BY" not in plan  # no sort of everything after it
