"""The reconciliation tables on every configured backend (SQLite always, PostgreSQL if set)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from meshkit import db
from recon_svc.domain.model import Counts, Item, Outcome, Report
from recon_svc.store import ReconStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = "6f1c2f7e-3d4b-4a5c-8e9f-0a1b2c3d4e5f"


def _item(sequence: int, account: str, outcome: Outcome, filled: str | None = "0.5") -> Item:
    return Item(
        sequence=sequence,
        signal_id=f"trade-{sequence}",
        target_exchange_id=account,
        client_order_id=f"coid-{sequence}-{account}",
        outcome=outcome,
        detail=f"detail {sequence}",
        intent_state="filled",
        venue_filled_quantity=None if filled is None else Decimal(filled),
    )


def _report(
    reconciliation_id: str,
    items: tuple[Item, ...],
    *,
    created: datetime = T0,
    user: str = "user-1",
    config: str = CONFIG,
    counts: Counts | None = None,
) -> Report:
    return Report(
        reconciliation_id=reconciliation_id,
        config_id=config,
        user_id=user,
        start_time=T0 - timedelta(hours=1),
        end_time=T0,
        created_at=created,
        counts=counts or Counts.of(items),
        items=items,
    )


async def _store(database: db.Database) -> ReconStore:
    store = ReconStore(database)
    await store.migrate()
    return store


async def test_saved_report_reads_back_with_its_items_in_order(database: db.Database) -> None:
    store = await _store(database)
    items = (
        _item(2, "acct-a", Outcome.MISMATCHED, "0.123456789012345678"),
        _item(1, "acct-b", Outcome.MISSING, None),
        _item(1, "acct-a", Outcome.MATCHED),
    )
    saved = await store.save_report(_report("r-1", items))
    assert [(i.sequence, i.target_exchange_id) for i in saved.items] == [
        (1, "acct-a"),
        (1, "acct-b"),
        (2, "acct-a"),
    ]
    assert saved.items[2].venue_filled_quantity == Decimal("0.123456789012345678")
    assert saved.items[1].venue_filled_quantity is None
    assert saved.items[0] == items[2]
    assert saved.start_time == T0 - timedelta(hours=1) and saved.end_time == T0
    assert saved.counts == Counts(total=3, matched=1, mismatched=1, missing=1)


async def test_stored_counts_are_derived_from_the_items(database: db.Database) -> None:
    store = await _store(database)
    items = (_item(1, "a", Outcome.ERROR), _item(2, "a", Outcome.DUPLICATE))
    wrong = Counts(total=9, matched=9)
    saved = await store.save_report(_report("r-1", items, counts=wrong))
    assert saved.counts == Counts(total=2, duplicate=1, error=1)
    listed = await store.list_reports(CONFIG, "user-1", 10)
    assert listed[0].counts == Counts(total=2, duplicate=1, error=1)


async def test_saving_the_same_report_again_changes_nothing(database: db.Database) -> None:
    store = await _store(database)
    first = await store.save_report(_report("r-1", (_item(1, "a", Outcome.MATCHED),)))
    again = await store.save_report(_report("r-1", (_item(5, "b", Outcome.MISSING),)))
    assert again == first
    assert len(await store.list_reports(CONFIG, "user-1", 10)) == 1


async def test_report_with_many_items_is_stored_whole(database: db.Database) -> None:
    store = await _store(database)
    items = tuple(_item(n, "a", Outcome.MATCHED) for n in range(1, 251))
    saved = await store.save_report(_report("r-1", items))
    assert saved.counts.total == 250 and len(saved.items) == 250


async def test_listing_is_newest_first_limited_and_for_that_user_and_config(
    database: db.Database,
) -> None:
    store = await _store(database)
    for n in range(3):
        await store.save_report(
            _report(f"r-{n}", (_item(1, "a", Outcome.MATCHED),), created=T0 + timedelta(minutes=n)),
        )
    await store.save_report(_report("other-user", (), user="user-2"))
    await store.save_report(_report("other-config", (), config="another-config"))
    listed = await store.list_reports(CONFIG, "user-1", 2)
    assert [r.reconciliation_id for r in listed] == ["r-2", "r-1"]
    assert all(r.items == () for r in listed)
    assert listed[0].counts.total == 1


async def test_unknown_report_is_none(database: db.Database) -> None:
    store = await _store(database)
    assert await store.get_report("nope") is None


async def test_a_streamed_report_keeps_its_items_by_index_and_is_listed_once_finished(
    database: db.Database,
) -> None:
    store = await _store(database)
    started = _report("r-streamed", ())
    await store.start_report(started)
    # A first attempt's items, then discarded (an account's copies could not be read).
    await store.add_items("r-streamed", [(0, _item(9, "acct-z", Outcome.MATCHED))])
    await store.discard_items("r-streamed")
    later = _item(2, "acct-a", Outcome.MISSING, None)
    first = _item(1, "acct-b", Outcome.MATCHED)
    await store.add_items("r-streamed", [(40, later)])
    await store.add_items("r-streamed", [(4, first)])
    assert await store.list_reports(CONFIG, "user-1", 10) == []

    finished = await store.finish_report(_report("r-streamed", (first, later)))

    assert finished.counts == Counts(total=2, matched=1, missing=1)
    assert finished.items == ()
    assert [r.reconciliation_id for r in await store.list_reports(CONFIG, "user-1", 10)] == [
        "r-streamed"
    ]
    assert await store.list_items("r-streamed", -1, 1) == [(4, first)]
    assert await store.list_items("r-streamed", 4, 10) == [(40, later)]
    stored = await store.get_report("r-streamed")
    assert stored is not None and stored.items == (first, later)
