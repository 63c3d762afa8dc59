"""Key rotation and the key-check value, through the broker's use-cases over a paper Binance.

Every test runs on SQLite and, with COPYTRADE_TEST_POSTGRES_URL, on PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from broker_svc.adapters.paper_exchange import PaperVenue, PaperVenues
from broker_svc.config import Settings
from broker_svc.crypto import Cipher, account_associated_data, key_id
from broker_svc.keys import (
    KeyCheckFailed,
    reseal_credentials,
    rotate_credentials,
    rotation_report,
    verify_key,
)
from broker_svc.server import Dependencies, build_broker
from broker_svc.store import BrokerStore
from broker_svc.usecases import Broker
from meshkit.testing import eventually
from tests.fakes.clock import FakeClock

ALICE = "0b9f3f6e-1111-4c1e-9b0a-000000000001"
BOB = "0b9f3f6e-2222-4c1e-9b0a-000000000002"
OLD, NEW, OTHER = os.urandom(32), os.urandom(32), os.urandom(32)


class Interrupted(Exception):
    """Stands for a crash in the middle of a rotation."""


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[BrokerStore]:
    """The broker's migrated store on every configured backend."""
    opened = await BrokerStore.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def venue() -> PaperVenue:
    """A paper Binance with BTC at 50000."""
    paper = PaperVenue("binance", clock=FakeClock())
    paper.set_price("BTC/USDT", Decimal(50000))
    return paper


async def _register(broker: Broker, venue: PaperVenue, count: int) -> list[str]:
    ids = []
    for number in range(count):
        credentials = venue.add_account({"USDT": str(1000 + number)})
        account = await broker.register(ALICE if number % 2 else BOB, "binance", credentials)
        ids.append(account.exchange_id)
    return ids


async def _key_ids(store: BrokerStore) -> list[str]:
    return [row.key_id for row in await store.sealed_accounts()]


async def _portfolio_usdt(broker: Broker, exchange_id: str) -> Decimal:
    account = await broker.get_account(exchange_id)
    portfolio = await broker.portfolio(exchange_id, account.user_id, "USDT")
    return portfolio.equity


async def test_a_first_start_on_an_empty_store_writes_the_key_check(store: BrokerStore) -> None:
    assert await store.key_check() is None
    await verify_key(store, Cipher(OLD))
    check = await store.key_check()
    assert check is not None and check.key_id == key_id(OLD)
    await verify_key(store, Cipher(OLD))  # a restart with the same key passes


async def test_a_wrong_key_is_refused_naming_key_ids_and_never_keys(store: BrokerStore) -> None:
    await verify_key(store, Cipher(OLD))
    with pytest.raises(KeyCheckFailed) as raised:
        await verify_key(store, Cipher(OTHER))
    message = str(raised.value)
    assert key_id(OLD) in message and key_id(OTHER) in message
    assert OLD.hex() not in message and OTHER.hex() not in message


async def test_an_old_key_listed_as_previous_opens_the_key_check(store: BrokerStore) -> None:
    await verify_key(store, Cipher(OLD))
    await verify_key(store, Cipher(NEW, old_keys=(OLD,)))
    with pytest.raises(KeyCheckFailed):
        await verify_key(store, Cipher(NEW, old_keys=(OTHER,)))


async def test_a_store_with_accounts_but_no_key_check_refuses_a_key_that_opens_none(
    store: BrokerStore,
    venue: PaperVenue,
) -> None:
    broker = Broker(store, PaperVenues(venue), Cipher(OLD))
    await _register(broker, venue, 2)
    assert await store.key_check() is None  # a store from before the check existed
    with pytest.raises(KeyCheckFailed, match="none of the 2 stored accounts"):
        await verify_key(store, Cipher(OTHER))
    assert await store.key_check() is None
    await verify_key(store, Cipher(OLD))
    check = await store.key_check()
    assert check is not None and check.key_id == key_id(OLD)


async def test_build_broker_with_a_wrong_encryption_key_refuses_to_start(
    store: BrokerStore,
    venue: PaperVenue,
) -> None:
    settings = Settings(encryption_key=OLD)
    first = await build_broker(settings, Dependencies(store=store, venues=PaperVenues(venue)))
    await first.close()
    with pytest.raises(KeyCheckFailed):
        await build_broker(
            Settings(encryption_key=OTHER),
            Dependencies(store=store, venues=PaperVenues(venue)),
        )


async def test_rotation_re_encrypts_every_account_and_old_accounts_still_trade(
    store: BrokerStore,
    venue: PaperVenue,
) -> None:
    before = Broker(store, PaperVenues(venue), Cipher(OLD))
    await verify_key(store, before.cipher)
    ids = await _register(before, venue, 5)
    values = [await _portfolio_usdt(before, exchange_id) for exchange_id in ids]
    await before.close()

    rotating = Broker(store, PaperVenues(venue), Cipher(NEW, old_keys=(OLD,)))
    seen: list[tuple[int, int]] = []
    report = await rotate_credentials(store, rotating.cipher, lambda d, t: seen.append((d, t)))
    assert (report.accounts, report.resealed, report.on_current_key) == (5, 5, 5)
    assert report.complete and report.key_check_current
    assert seen[-1] == (5, 5)
    assert await _key_ids(store) == [key_id(NEW)] * 5
    await rotating.close()

    # The old key is gone: only the new one is configured, and every account still works.
    after = Broker(store, PaperVenues(venue), Cipher(NEW))
    await verify_key(store, after.cipher)
    assert [await _portfolio_usdt(after, exchange_id) for exchange_id in ids] == values
    order = await after.place_order(
        ids[0],
        (await after.get_account(ids[0])).user_id,
        _market_buy("rotated-1"),
    )
    assert order.client_order_id == "rotated-1"
    with pytest.raises(KeyCheckFailed):
        await verify_key(store, Cipher(OLD))
    await after.close()


def _market_buy(client_order_id: str):
    from broker_svc.domain.model import OrderRequest, OrderType, Side

    return OrderRequest(
        client_order_id=client_order_id,
        symbol="BTC/USDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        quantity=Decimal("0.001"),
    )


async def test_an_interrupted_rotation_leaves_every_row_readable_and_the_next_run_finishes(
    store: BrokerStore,
    venue: PaperVenue,
) -> None:
    broker = Broker(store, PaperVenues(venue), Cipher(OLD))
    await verify_key(store, broker.cipher)
    ids = await _register(broker, venue, 6)
    await broker.close()
    cipher = Cipher(NEW, old_keys=(OLD,))

    def crash_after_two(done: int, total: int) -> None:
        if done == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        await rotate_credentials(store, cipher, crash_after_two)
    sealed_by = await _key_ids(store)
    assert sorted(sealed_by) == sorted([key_id(NEW)] * 2 + [key_id(OLD)] * 4)
    halfway = await rotation_report(store, cipher)
    assert (halfway.on_current_key, halfway.on_previous_keys) == (2, 4)
    assert not halfway.complete and not halfway.key_check_current
    for row in await store.sealed_accounts():  # every row opens with the configured keys
        associated = account_associated_data(row.account.exchange_id, row.account.user_id)
        assert cipher.decrypt(row.ciphertext, row.nonce, row.key_id, associated)
    await verify_key(store, cipher)  # the broker still starts mid-rotation

    report = await rotate_credentials(store, cipher)
    assert (report.resealed, report.on_current_key, report.complete) == (4, 6, True)
    assert (await rotate_credentials(store, cipher)).resealed == 0
    after = Broker(store, PaperVenues(venue), Cipher(NEW))
    await verify_key(store, after.cipher)
    for exchange_id in ids:
        assert await _portfolio_usdt(after, exchange_id) > 0
    await after.close()


async def test_a_row_changed_by_someone_else_during_the_rotation_is_left_to_them(
    store: BrokerStore,
    venue: PaperVenue,
) -> None:
    broker = Broker(store, PaperVenues(venue), Cipher(OLD))
    await verify_key(store, broker.cipher)
    ids = await _register(broker, venue, 3)
    cipher = Cipher(NEW, old_keys=(OLD,))

    original = store.replace_credentials

    async def racing_replace(exchange_id: str, *args, **kwargs):
        if exchange_id == ids[1]:
            await broker.delete_account(ids[1], (await store.get_account(ids[1])).account.user_id)
        return await original(exchange_id, *args, **kwargs)

    store.replace_credentials = racing_replace
    try:
        resealed = await reseal_credentials(store, cipher)
    finally:
        del store.replace_credentials
    assert resealed == 2
    report = await rotation_report(store, cipher)
    assert (report.accounts, report.on_current_key, report.on_previous_keys) == (2, 2, 0)
    row = await store.get_account(ids[1])
    assert row is not None and row.account.deleted_at is not None and row.ciphertext == b""
    await broker.close()


async def test_the_key_check_moves_to_the_new_key_only_once_no_account_needs_the_old_one(
    store: BrokerStore,
    venue: PaperVenue,
) -> None:
    broker = Broker(store, PaperVenues(venue), Cipher(OLD))
    await verify_key(store, broker.cipher)
    await _register(broker, venue, 2)
    await broker.close()
    cipher = Cipher(NEW, old_keys=(OLD,))

    def crash_at_once(done: int, total: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        await rotate_credentials(store, cipher, crash_at_once)
    check = await store.key_check()
    assert check is not None and check.key_id == key_id(OLD)
    await rotate_credentials(store, cipher)
    check = await store.key_check()
    assert check is not None and check.key_id == key_id(NEW)


async def test_a_broker_started_with_a_previous_key_re_seals_in_the_background_while_serving(
    store: BrokerStore,
    venue: PaperVenue,
) -> None:
    first = await build_broker(
        Settings(encryption_key=OLD),
        Dependencies(store=store, venues=PaperVenues(venue)),
    )
    ids = await _register(first, venue, 4)
    await first.close()

    settings = Settings(encryption_key=NEW, encryption_keys_previous=(OLD,))
    serving = await build_broker(settings, Dependencies(store=store, venues=PaperVenues(venue)))
    try:
        # It serves at once, whichever key seals a row at this moment.
        assert await _portfolio_usdt(serving, ids[0]) > 0

        async def moved() -> bool:
            report = await rotation_report(store, serving.cipher)
            return report.complete

        await eventually(moved, timeout=10)
        assert await _key_ids(store) == [key_id(NEW)] * 4
    finally:
        await serving.close()
    restarted = await build_broker(
        Settings(encryption_key=NEW),
        Dependencies(store=store, venues=PaperVenues(venue)),
    )
    try:
        assert await _portfolio_usdt(restarted, ids[3]) > 0
    finally:
        await restarted.close()
