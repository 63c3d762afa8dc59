"""The broker's audit trail: registering and deleting an account and re-sealing its
credentials under a new key each append an entry; no secret ever reaches the trail."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from decimal import Decimal

import grpc
import pytest

from broker_svc.adapters.paper_exchange import PaperVenue, PaperVenues
from broker_svc.crypto import Cipher
from broker_svc.keys import rotate_credentials
from broker_svc.server import DOMAIN, SERVICE_NAME
from broker_svc.servicer import BrokerServicer
from broker_svc.store import BrokerStore
from broker_svc.usecases import Broker
from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.broker.v1 import broker_service_pb2_grpc as pb_grpc
from meshkit import errors
from meshkit.audit import OPERATOR_CLI, verify_table
from meshkit.server import Registration
from meshkit.testing import inprocess_server
from tests.fakes.clock import FakeClock
from tests.service.broker_svc.conftest import ALICE, BOB, BrokerHarness, as_user

KEY = os.urandom(32)


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[BrokerHarness]:
    """The broker harness on every storage backend."""
    clock = FakeClock()
    venue = PaperVenue("binance", clock=clock)
    venue.set_price("BTC/USDT", Decimal("50000"))
    store = await BrokerStore.open(database_url)
    broker = Broker(store, PaperVenues(venue), Cipher(KEY), clock)
    registration = Registration(
        pb_grpc.add_BrokerServiceServicer_to_server,
        BrokerServicer(broker),
        SERVICE_NAME,
    )
    try:
        async with inprocess_server([registration], domain=DOMAIN) as (_, channel):
            yield BrokerHarness(pb_grpc.BrokerServiceStub(channel), venue, broker, store, clock)
    finally:
        await broker.close()
        await store.close()


async def test_register_and_delete_are_recorded_for_the_user(harness: BrokerHarness) -> None:
    account, _ = await harness.register(label="main")
    await harness.stub.DeleteExchange(
        pb.DeleteExchangeRequest(exchange_id=account.exchange_id),
        metadata=as_user(ALICE),
    )
    await harness.stub.DeleteExchange(  # a repeat changes nothing and records nothing
        pb.DeleteExchangeRequest(exchange_id=account.exchange_id),
        metadata=as_user(ALICE),
    )
    register, delete = await harness.store.audit.all_entries()
    for entry in (register, delete):
        assert (entry.actor, entry.owner_user_id) == (f"user:{ALICE}", ALICE)
        assert (entry.object_type, entry.object_id) == ("exchange_account", account.exchange_id)
        assert entry.request_id
    assert (register.action, json.loads(register.before)) == ("register", None)
    assert json.loads(register.after) == {
        "exchange_id": account.exchange_id,
        "exchange_name": "binance",
        "label": "main",
        "api_key_hint": account.api_key_hint,
    }
    assert (delete.action, json.loads(delete.after)) == ("delete", None)
    assert json.loads(delete.before)["label"] == "main"
    assert (await verify_table(harness.store.database, "broker")).ok


async def test_the_audit_trail_holds_no_secret(harness: BrokerHarness) -> None:
    canaries = []
    for user in (ALICE, BOB):
        account, credentials = await harness.register(user)
        canaries += [credentials.api_key, credentials.api_secret]
        await harness.stub.DeleteExchange(
            pb.DeleteExchangeRequest(exchange_id=account.exchange_id),
            metadata=as_user(user),
        )
    rotated = Cipher(os.urandom(32), old_keys=(KEY,))
    await harness.register(ALICE)
    await rotate_credentials(harness.store, rotated)
    rows = await harness.store.database.fetchall("SELECT * FROM broker_audit_log")
    assert len(rows) == 6
    dumped = repr(rows)
    for canary in canaries:
        assert canary not in dumped


async def test_key_rotation_records_each_account_it_reseals(
    harness: BrokerHarness,
    database_url: str,
) -> None:
    first, _ = await harness.register(ALICE)
    second, _ = await harness.register(BOB)
    operator_store = await BrokerStore.open(database_url, audit_actor=OPERATOR_CLI)
    try:
        new = Cipher(os.urandom(32), old_keys=(KEY,))
        report = await rotate_credentials(operator_store, new)
    finally:
        await operator_store.close()
    assert report.resealed == 2
    rotations = [e for e in await harness.store.audit.all_entries() if e.action == "key_rotation"]
    assert {(e.object_id, e.owner_user_id) for e in rotations} == {
        (first.exchange_id, ALICE),
        (second.exchange_id, BOB),
    }
    for entry in rotations:
        assert entry.actor == OPERATOR_CLI
        assert json.loads(entry.before) == {"key_id": Cipher(KEY).key_id}
        assert json.loads(entry.after) == {"key_id": new.key_id}


async def test_list_audit_entries_returns_only_the_callers(harness: BrokerHarness) -> None:
    mine, _ = await harness.register(ALICE)
    await harness.register(BOB)
    reply = await harness.stub.ListAuditEntries(
        pb.ListAuditEntriesRequest(),
        metadata=as_user(ALICE),
    )
    assert [(e.action, e.object_id, e.owner_user_id) for e in reply.entries] == [
        ("register", mine.exchange_id, ALICE),
    ]
    assert reply.entries[0].hash and reply.entries[0].seq == 1


async def test_a_venue_refusing_an_accounts_keys_is_recorded_once_until_accepted_again(
    harness: BrokerHarness,
) -> None:
    account, _ = await harness.register(label="main")
    refused = errors.FailedPrecondition("Invalid API-key.", reason="BROKER_CREDENTIALS_REJECTED")
    harness.venue.fail("fetch_balances", refused, times=2)
    request = pb.GetPortfolioRequest(exchange_id=account.exchange_id)
    for _ in range(2):  # the second refusal in a row records nothing more
        with pytest.raises(grpc.aio.AioRpcError):
            await harness.stub.GetPortfolio(request)
    await harness.stub.GetPortfolio(request)  # accepted again
    harness.venue.fail("fetch_balances", refused)
    with pytest.raises(grpc.aio.AioRpcError):
        await harness.stub.GetPortfolio(request)
    entries = [e for e in await harness.store.audit.all_entries() if e.action != "register"]
    assert [e.action for e in entries] == ["credentials_rejected", "credentials_rejected"]
    first = entries[0]
    assert (first.owner_user_id, first.object_type, first.object_id) == (
        ALICE,
        "exchange_account",
        account.exchange_id,
    )
    assert json.loads(first.after) == {"exchange_name": "binance", "method": "fetch_balances"}
    assert (await verify_table(harness.store.database, "broker")).ok


async def test_a_public_read_that_succeeds_does_not_rearm_the_refused_keys_alert(
    harness: BrokerHarness,
) -> None:
    # A market's price needs no keys: its success says nothing of them. Counting it as "keys
    # accepted" audited credentials_rejected again at every refused private read (every second).
    account, _ = await harness.register(label="main")
    refused = errors.FailedPrecondition("Invalid API-key.", reason="BROKER_CREDENTIALS_REJECTED")
    harness.venue.fail("fetch_balances", refused, times=2)
    portfolio = pb.GetPortfolioRequest(exchange_id=account.exchange_id)
    market = pb.GetMarketRequest(exchange_id=account.exchange_id, symbol="BTC/USDT")
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError):
            await harness.stub.GetPortfolio(portfolio)
        await harness.stub.GetMarket(market)  # public: load_markets, fetch_last_price
    entries = [e for e in await harness.store.audit.all_entries() if e.action != "register"]
    assert [e.action for e in entries] == ["credentials_rejected"]
