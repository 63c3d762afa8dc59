"""The broker's tables on SQLite and PostgreSQL: accounts, idempotent registration, orders."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from broker_svc.domain.model import (
    ExchangeAccount,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from broker_svc.domain.records import NO_FENCE, Fence
from broker_svc.store import AccountRow, BrokerStore
from meshkit import db

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def _store(database: db.Database) -> BrokerStore:
    store = BrokerStore(database)
    await store.migrate()
    return store


def _row(exchange_id: str, user_id: str = "user-1", at: datetime = NOW) -> AccountRow:
    account = ExchangeAccount(exchange_id, user_id, "binance", "main", "1234", at)
    return AccountRow(account, b"\x00sealed\xff", b"n" * 12, "abcd1234")


REQUEST = OrderRequest(
    "cid-1",
    "BTC/USDT",
    Side.BUY,
    OrderType.LIMIT,
    Decimal("0.0100"),
    price=Decimal("40000.5"),
    time_in_force=TimeInForce.GTC,
)


async def test_an_account_round_trips_with_its_sealed_bytes(database: db.Database) -> None:
    store = await _store(database)
    await store.insert_account(_row("ex-1"))
    row = await store.get_account("ex-1")
    assert row is not None
    assert row.account == _row("ex-1").account
    assert (row.ciphertext, row.nonce, row.key_id) == (b"\x00sealed\xff", b"n" * 12, "abcd1234")


async def test_a_repeated_request_id_returns_the_first_account(database: db.Database) -> None:
    store = await _store(database)
    first = await store.insert_account(_row("ex-1"), "req-1")
    again = await store.insert_account(_row("ex-2"), "req-1")
    assert again.account.exchange_id == first.account.exchange_id == "ex-1"
    assert await store.get_account("ex-2") is None
    other_user = await store.insert_account(_row("ex-3", "user-2"), "req-1")
    assert other_user.account.exchange_id == "ex-3"


async def test_accounts_without_request_id_never_collide(database: db.Database) -> None:
    store = await _store(database)
    await store.insert_account(_row("ex-1"))
    await store.insert_account(_row("ex-2"))
    assert [a.exchange_id for a in await store.list_accounts("user-1")] == ["ex-1", "ex-2"]


async def test_listing_returns_only_the_users_live_accounts_oldest_first(
    database: db.Database,
) -> None:
    store = await _store(database)
    await store.insert_account(_row("ex-b", at=NOW + timedelta(seconds=1)))
    await store.insert_account(_row("ex-a", at=NOW))
    await store.insert_account(_row("ex-other", "user-2"))
    await store.insert_account(_row("ex-gone", at=NOW + timedelta(seconds=2)))
    assert await store.delete_account("ex-gone", NOW)
    assert [a.exchange_id for a in await store.list_accounts("user-1")] == ["ex-a", "ex-b"]


async def test_deleting_erases_the_sealed_credentials_and_is_reported_once(
    database: db.Database,
) -> None:
    store = await _store(database)
    await store.insert_account(_row("ex-1"))
    assert await store.delete_account("ex-1", NOW + timedelta(hours=1))
    assert not await store.delete_account("ex-1", NOW + timedelta(hours=2))
    row = await store.get_account("ex-1")
    assert row is not None
    assert row.account.deleted_at == NOW + timedelta(hours=1)
    assert (row.ciphertext, row.nonce) == (b"", b"")


async def test_credentials_are_replaced_only_under_the_expected_key(database: db.Database) -> None:
    store = await _store(database)
    await store.insert_account(_row("ex-1"))
    assert not await store.replace_credentials("ex-1", "ffffffff", b"new", b"m" * 12, "11112222")
    assert await store.replace_credentials("ex-1", "abcd1234", b"new", b"m" * 12, "11112222")
    row = await store.get_account("ex-1")
    assert row is not None and (row.ciphertext, row.key_id) == (b"new", "11112222")
    assert [r.account.exchange_id for r in await store.sealed_accounts()] == ["ex-1"]


async def test_an_order_reservation_is_unresolved_until_the_venue_answers(
    database: db.Database,
) -> None:
    store = await _store(database)
    assert await store.reserve_order("ex-1", REQUEST, NOW)
    assert not await store.reserve_order("ex-1", REQUEST, NOW)
    record = await store.get_order("ex-1", "cid-1")
    assert record is not None and record.unresolved
    assert record.request == REQUEST
    assert record.sent_at == NOW
    venue_order = Order(
        "cid-1",
        "777",
        "BTC/USDT",
        Side.BUY,
        OrderType.LIMIT,
        Decimal("0.01"),
        OrderStatus.PARTIALLY_FILLED,
        filled_quantity=Decimal("0.004"),
        price=Decimal("40000.5"),
        average_price=Decimal("40000.25"),
    )
    await store.record_order("ex-1", venue_order, NOW + timedelta(seconds=1))
    record = await store.get_order("ex-1", "cid-1")
    assert record is not None and not record.unresolved
    assert (record.venue_order_id, record.status, record.filled_quantity, record.average_price) == (
        "777",
        OrderStatus.PARTIALLY_FILLED,
        Decimal("0.004"),
        Decimal("40000.25"),
    )
    assert record.created_at == NOW and record.updated_at == NOW + timedelta(seconds=1)
    assert await store.client_order_ids("ex-1", ["777", "888"]) == {"777": "cid-1"}


async def test_client_order_ids_are_unique_per_exchange_only(database: db.Database) -> None:
    store = await _store(database)
    assert await store.reserve_order("ex-1", REQUEST, NOW)
    assert await store.reserve_order("ex-2", REQUEST, NOW)


async def test_an_unsent_reservation_can_be_forgotten_but_a_known_order_cannot(
    database: db.Database,
) -> None:
    store = await _store(database)
    await store.reserve_order("ex-1", REQUEST, NOW)
    await store.forget_unsent("ex-1", "cid-1")
    assert await store.get_order("ex-1", "cid-1") is None
    order = Order(
        "cid-1",
        "9",
        "BTC/USDT",
        Side.BUY,
        OrderType.MARKET,
        Decimal("1"),
        OrderStatus.FILLED,
        filled_quantity=Decimal("1"),
    )
    await store.record_order("ex-1", order, NOW)
    await store.forget_unsent("ex-1", "cid-1")
    assert await store.get_order("ex-1", "cid-1") is not None


async def test_mark_resent_moves_the_send_time_of_an_unresolved_order_only(
    database: db.Database,
) -> None:
    store = await _store(database)
    await store.reserve_order("ex-1", REQUEST, NOW)
    assert await store.mark_resent("ex-1", "cid-1", NOW + timedelta(minutes=1))
    record = await store.get_order("ex-1", "cid-1")
    assert record is not None and record.sent_at == NOW + timedelta(minutes=1)
    order = Order(
        "cid-1", "9", "BTC/USDT", Side.BUY, OrderType.MARKET, Decimal("1"), OrderStatus.FILLED
    )
    await store.record_order("ex-1", order, NOW)
    assert not await store.mark_resent("ex-1", "cid-1", NOW + timedelta(minutes=2))


async def test_prepare_order_records_the_attempt_and_reserves_the_id_once(
    database: db.Database,
) -> None:
    store = await _store(database)
    fence = Fence("engine:source-1", 3)
    assert not await store.attempted("cid-1")
    prepared = await store.prepare_order("ex-1", REQUEST, fence, NOW)
    assert (prepared.fenced, prepared.reserved, prepared.existing) == (None, True, None)
    assert await store.attempted("cid-1")
    reserved = await store.get_order("ex-1", "cid-1")
    assert reserved is not None and reserved.unresolved and reserved.request == REQUEST
    # A broker that stopped after this (before or after the venue call) and is asked again
    # finds the reservation: it looks the order up, it never sends a second one blindly.
    again = await store.prepare_order("ex-1", REQUEST, fence, NOW + timedelta(seconds=5))
    assert (again.fenced, again.reserved) == (None, False)
    assert again.existing == reserved
    # The first send under a new key raised the key's token: a lower one is fenced now.
    assert await store.raise_fence(Fence("engine:source-1", 2)) == 3


async def test_prepare_order_under_a_stale_fence_records_nothing(database: db.Database) -> None:
    store = await _store(database)
    assert await store.raise_fence(Fence("engine:source-1", 5)) == 5
    prepared = await store.prepare_order("ex-1", REQUEST, Fence("engine:source-1", 4), NOW)
    assert (prepared.fenced, prepared.reserved, prepared.existing) == (5, False, None)
    assert not await store.attempted("cid-1")
    assert await store.get_order("ex-1", "cid-1") is None
    # The current holder's order under the same id goes through; a newer token raises the key.
    current = await store.prepare_order("ex-1", REQUEST, Fence("engine:source-1", 5), NOW)
    assert current.reserved
    newer = await store.prepare_order("ex-2", REQUEST, Fence("engine:source-1", 6), NOW)
    assert newer.reserved
    assert await store.raise_fence(Fence("engine:source-1", 5)) == 6


async def test_concurrent_prepares_of_one_client_order_id_reserve_it_once(
    database: db.Database,
) -> None:
    store = await _store(database)
    fence = Fence("engine:source-1", 1)  # new: each prepare may raise the key first
    prepared = await asyncio.gather(
        *(store.prepare_order("ex-1", REQUEST, fence, NOW) for _ in range(6))
    )
    assert sum(p.reserved for p in prepared) == 1
    assert all(p.fenced is None for p in prepared)
    assert all(p.existing is not None and p.existing.unresolved for p in prepared if not p.reserved)


async def test_prepare_order_without_a_fence_is_attempted_and_finds_a_known_order(
    database: db.Database,
) -> None:
    store = await _store(database)
    order = Order(
        "cid-1", "9", "BTC/USDT", Side.BUY, OrderType.MARKET, Decimal("1"), OrderStatus.FILLED
    )
    await store.record_order("ex-1", order, NOW)
    prepared = await store.prepare_order("ex-1", REQUEST, NO_FENCE, NOW)
    assert not prepared.reserved and prepared.fenced is None
    assert prepared.existing is not None and prepared.existing.venue_order_id == "9"
    assert await store.attempted("cid-1")
    other = await store.prepare_order("ex-2", REQUEST, NO_FENCE, NOW)
    assert other.reserved


async def test_migrating_twice_changes_nothing(database: db.Database) -> None:
    store = await _store(database)
    await store.insert_account(_row("ex-1"))
    await store.migrate()
    assert await store.get_account("ex-1") is not None
