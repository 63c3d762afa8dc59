"""Exchange accounts through the real servicer: registration, ownership, validation, tests."""

from __future__ import annotations

import os
import uuid

import grpc
import pytest
from prometheus_client import REGISTRY

from broker_svc.crypto import Cipher
from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.common.v1 import types_pb2
from tests.service.broker_svc.broker_rpc import failure
from tests.service.broker_svc.conftest import ALICE, BOB, BrokerHarness, as_user


async def test_register_exchange_stores_the_account_and_returns_no_secret(
    harness: BrokerHarness,
) -> None:
    account, credentials = await harness.register(label="main")
    assert uuid.UUID(account.exchange_id)
    assert (account.exchange_name, account.label) == ("binance", "main")
    assert account.api_key_hint == credentials.api_key[-4:]
    assert account.create_time.seconds > 0
    wire = account.SerializeToString()
    assert credentials.api_secret.encode() not in wire
    assert credentials.api_key.encode() not in wire


async def test_stored_credentials_are_sealed_not_plain(harness: BrokerHarness) -> None:
    _account, credentials = await harness.register()
    rows = await harness.store.database.fetchall("SELECT * FROM exchange_accounts")
    dumped = repr(rows)
    assert credentials.api_secret not in dumped and credentials.api_key not in dumped
    assert rows[0]["key_id"] == harness.broker.cipher.key_id


async def test_register_with_the_same_request_id_returns_the_same_account(
    harness: BrokerHarness,
) -> None:
    first, credentials = await harness.register(request_id="req-1")
    again = await harness.stub.RegisterExchange(
        pb.RegisterExchangeRequest(
            exchange_name="binance",
            api_key=credentials.api_key,
            api_secret=credentials.api_secret,
            request_id="req-1",
        ),
        metadata=as_user(ALICE),
    )
    assert again.exchange == first
    listed = await harness.stub.ListExchanges(pb.ListExchangesRequest(), metadata=as_user(ALICE))
    assert [a.exchange_id for a in listed.exchanges] == [first.exchange_id]


@pytest.mark.parametrize(
    ("request_fields", "expected_fields"),
    [
        ({"exchange_name": "mtgox", "api_key": "k", "api_secret": "s"}, ["exchange_name"]),
        ({"exchange_name": "", "api_key": "k", "api_secret": "s"}, ["exchange_name"]),
        ({"exchange_name": "binance", "api_key": "", "api_secret": ""}, ["api_key", "api_secret"]),
        (
            {"exchange_name": "binance", "api_key": "k", "api_secret": "s", "label": "x" * 101},
            ["label"],
        ),
    ],
)
async def test_register_exchange_with_bad_fields_names_each_of_them(
    harness: BrokerHarness,
    request_fields: dict[str, str],
    expected_fields: list[str],
) -> None:
    failed = await failure(
        harness.stub.RegisterExchange(
            pb.RegisterExchangeRequest(**request_fields),
            metadata=as_user(ALICE),
        )
    )
    assert failed.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.fields == expected_fields
    assert failed.domain == "broker.copytrade"
    assert await harness.store.list_accounts(ALICE) == []


async def test_register_with_keys_the_venue_rejects_is_failed_precondition(
    harness: BrokerHarness,
) -> None:
    failed = await failure(
        harness.stub.RegisterExchange(
            pb.RegisterExchangeRequest(
                exchange_name="binance", api_key="nobody", api_secret="nothing"
            ),
            metadata=as_user(ALICE),
        )
    )
    assert (failed.code, failed.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "BROKER_CREDENTIALS_REJECTED",
    )
    assert "nothing" not in failed.message
    assert await harness.store.list_accounts(ALICE) == []


@pytest.mark.parametrize(
    ("permissions", "reason"),
    [
        ({"can_withdraw": True}, "API_KEY_CAN_WITHDRAW"),
        ({"can_transfer": True}, "API_KEY_CAN_WITHDRAW"),
        ({"can_trade": False}, "API_KEY_CANNOT_TRADE"),
    ],
)
async def test_register_refuses_a_key_that_can_withdraw_or_cannot_trade(
    harness: BrokerHarness,
    permissions: dict[str, bool],
    reason: str,
) -> None:
    credentials = harness.venue.add_account({"USDT": "10"}, **permissions)
    failed = await failure(
        harness.stub.RegisterExchange(
            pb.RegisterExchangeRequest(
                exchange_name="binance",
                api_key=credentials.api_key,
                api_secret=credentials.api_secret,
            ),
            metadata=as_user(ALICE),
        )
    )
    assert (failed.code, failed.reason) == (grpc.StatusCode.FAILED_PRECONDITION, reason)
    assert await harness.store.list_accounts(ALICE) == []


async def test_register_when_the_venue_is_down_is_unavailable(harness: BrokerHarness) -> None:
    credentials = harness.venue.add_account({"USDT": "10"})
    harness.venue.reachable = False
    failed = await failure(
        harness.stub.RegisterExchange(
            pb.RegisterExchangeRequest(
                exchange_name="binance",
                api_key=credentials.api_key,
                api_secret=credentials.api_secret,
            ),
            metadata=as_user(ALICE),
        )
    )
    assert failed.code == grpc.StatusCode.UNAVAILABLE
    assert failed.retry_after


@pytest.mark.parametrize(
    "call",
    ["RegisterExchange", "ListExchanges", "DeleteExchange", "TestBroker", "ListSupportedExchanges"],
)
async def test_public_rpcs_without_a_user_are_unauthenticated(
    harness: BrokerHarness, call: str
) -> None:
    request_class = getattr(pb, f"{call}Request")
    failed = await failure(getattr(harness.stub, call)(request_class()))
    assert failed.code == grpc.StatusCode.UNAUTHENTICATED


async def test_list_exchanges_shows_only_the_callers_accounts_oldest_first(
    harness: BrokerHarness,
) -> None:
    first, _ = await harness.register(ALICE)
    harness.clock.advance(1)
    second, _ = await harness.register(ALICE)
    await harness.register(BOB)
    listed = await harness.stub.ListExchanges(pb.ListExchangesRequest(), metadata=as_user(ALICE))
    assert [a.exchange_id for a in listed.exchanges] == [first.exchange_id, second.exchange_id]


async def test_get_exchange_of_another_user_is_not_found(harness: BrokerHarness) -> None:
    account, _ = await harness.register(ALICE)
    failed = await failure(
        harness.stub.GetExchange(
            pb.GetExchangeRequest(exchange_id=account.exchange_id),
            metadata=as_user(BOB),
        )
    )
    assert failed.code == grpc.StatusCode.NOT_FOUND


async def test_get_exchange_for_the_owner_or_an_internal_caller_returns_it(
    harness: BrokerHarness,
) -> None:
    account, _ = await harness.register(ALICE)
    mine = await harness.stub.GetExchange(
        pb.GetExchangeRequest(exchange_id=account.exchange_id),
        metadata=as_user(ALICE),
    )
    internal = await harness.stub.GetExchange(
        pb.GetExchangeRequest(exchange_id=account.exchange_id)
    )
    assert mine.exchange == internal.exchange == account


@pytest.mark.parametrize("call", ["GetExchange", "DeleteExchange"])
@pytest.mark.parametrize("exchange_id", ["not-a-uuid", ""])
async def test_a_malformed_exchange_id_is_invalid_argument(
    harness: BrokerHarness,
    call: str,
    exchange_id: str,
) -> None:
    request = getattr(pb, f"{call}Request")(exchange_id=exchange_id)
    failed = await failure(getattr(harness.stub, call)(request, metadata=as_user(ALICE)))
    assert (failed.code, failed.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["exchange_id"])


async def test_delete_exchange_of_another_user_is_not_found_and_keeps_it(
    harness: BrokerHarness,
) -> None:
    account, _ = await harness.register(ALICE)
    failed = await failure(
        harness.stub.DeleteExchange(
            pb.DeleteExchangeRequest(exchange_id=account.exchange_id),
            metadata=as_user(BOB),
        )
    )
    assert failed.code == grpc.StatusCode.NOT_FOUND
    assert len(await harness.store.list_accounts(ALICE)) == 1


async def test_delete_exchange_removes_it_erases_secrets_and_a_repeat_succeeds(
    harness: BrokerHarness,
) -> None:
    account, _ = await harness.register(ALICE)
    request = pb.DeleteExchangeRequest(exchange_id=account.exchange_id)
    first = await harness.stub.DeleteExchange(request, metadata=as_user(ALICE))
    again = await harness.stub.DeleteExchange(request, metadata=as_user(ALICE))
    assert first.exchange_id == again.exchange_id == account.exchange_id
    listed = await harness.stub.ListExchanges(pb.ListExchangesRequest(), metadata=as_user(ALICE))
    assert list(listed.exchanges) == []
    row = await harness.store.get_account(account.exchange_id)
    assert row is not None and row.ciphertext == b""
    failed = await failure(
        harness.stub.GetExchange(pb.GetExchangeRequest(exchange_id=account.exchange_id))
    )
    assert failed.code == grpc.StatusCode.NOT_FOUND


async def test_deleting_an_account_closes_its_venue_connection(harness: BrokerHarness) -> None:
    account, _ = await harness.register(ALICE)
    await harness.stub.GetPortfolio(pb.GetPortfolioRequest(exchange_id=account.exchange_id))
    assert harness.venue.open_connections == 1
    await harness.stub.DeleteExchange(
        pb.DeleteExchangeRequest(exchange_id=account.exchange_id),
        metadata=as_user(ALICE),
    )
    assert harness.venue.open_connections == 0


async def test_test_broker_reports_a_trade_only_key_as_ok(harness: BrokerHarness) -> None:
    credentials = harness.venue.add_account({"USDT": "1"})
    report = await harness.stub.TestBroker(
        pb.TestBrokerRequest(
            exchange_name="binance", api_key=credentials.api_key, api_secret=credentials.api_secret
        ),
        metadata=as_user(ALICE),
    )
    assert (
        report.ok,
        report.reachable,
        report.authenticated,
        report.can_trade,
        report.can_withdraw,
        report.reason,
    ) == (True, True, True, True, False, "")
    assert report.latency_ms >= 0
    assert harness.venue.open_connections == 0


async def test_test_broker_explains_why_a_withdrawing_key_is_not_ok(harness: BrokerHarness) -> None:
    credentials = harness.venue.add_account({"USDT": "1"}, can_withdraw=True)
    report = await harness.stub.TestBroker(
        pb.TestBrokerRequest(
            exchange_name="binance", api_key=credentials.api_key, api_secret=credentials.api_secret
        ),
        metadata=as_user(ALICE),
    )
    assert (report.ok, report.can_trade, report.can_withdraw) == (False, True, True)
    assert "withdraw" in report.reason


async def test_test_broker_reports_rejected_credentials(harness: BrokerHarness) -> None:
    report = await harness.stub.TestBroker(
        pb.TestBrokerRequest(exchange_name="binance", api_key="k", api_secret="s"),
        metadata=as_user(ALICE),
    )
    assert (report.ok, report.reachable, report.authenticated) == (False, True, False)
    assert "rejected" in report.reason


async def test_test_broker_reports_an_unreachable_venue(harness: BrokerHarness) -> None:
    harness.venue.reachable = False
    report = await harness.stub.TestBroker(
        pb.TestBrokerRequest(exchange_name="binance", api_key="k", api_secret="s"),
        metadata=as_user(ALICE),
    )
    assert (report.ok, report.reachable) == (False, False)
    assert "reached" in report.reason


async def test_list_supported_exchanges_describes_venues_and_their_markets(
    harness: BrokerHarness,
) -> None:
    response = await harness.stub.ListSupportedExchanges(
        pb.ListSupportedExchangesRequest(),
        metadata=as_user(ALICE),
    )
    [binance] = response.exchanges
    assert binance.exchange_name == "binance"
    assert types_pb2.ORDER_TYPE_MARKET in binance.order_types
    assert "client_order_id_lookup" in binance.features
    assert [m.symbol for m in binance.markets] == ["BTC/USDT", "ETH/USDT"]
    assert binance.markets[0].min_notional.value == "5"
    assert binance.rate_limits


async def test_list_supported_exchanges_still_answers_when_the_venue_is_down(
    harness: BrokerHarness,
) -> None:
    harness.venue.reachable = False
    response = await harness.stub.ListSupportedExchanges(
        pb.ListSupportedExchangesRequest(),
        metadata=as_user(ALICE),
    )
    assert [e.exchange_name for e in response.exchanges] == ["binance"]
    assert list(response.exchanges[0].markets) == []


async def test_credentials_sealed_for_one_row_do_not_open_in_another(
    harness: BrokerHarness,
) -> None:
    first, _ = await harness.register(ALICE)
    second, _ = await harness.register(ALICE)
    stolen = await harness.store.get_account(first.exchange_id)
    assert stolen is not None
    await harness.store.database.execute(
        "UPDATE exchange_accounts SET ciphertext = (SELECT ciphertext FROM exchange_accounts"
        " WHERE exchange_id = ?), nonce = (SELECT nonce FROM exchange_accounts WHERE"
        " exchange_id = ?) WHERE exchange_id = ?",
        (first.exchange_id, first.exchange_id, second.exchange_id),
    )
    failed = await failure(
        harness.stub.GetPortfolio(
            pb.GetPortfolioRequest(exchange_id=second.exchange_id),
        )
    )
    assert (failed.code, failed.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "CREDENTIALS_UNREADABLE",
    )


async def test_rewrap_moves_every_account_to_a_new_key_and_trading_goes_on(
    harness: BrokerHarness,
) -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)
    harness.broker.cipher = Cipher(old_key)
    account, _ = await harness.register(ALICE)
    harness.broker.cipher = Cipher(new_key, old_keys=(old_key,))
    assert await harness.broker.rewrap_credentials() == 1
    assert await harness.broker.rewrap_credentials() == 0
    row = await harness.store.get_account(account.exchange_id)
    assert row is not None and row.key_id == harness.broker.cipher.key_id
    harness.broker.cipher = Cipher(new_key)
    portfolio = await harness.stub.GetPortfolio(
        pb.GetPortfolioRequest(exchange_id=account.exchange_id),
    )
    assert portfolio.quote_currency == "USDT"


async def test_the_connections_gauge_follows_open_venue_clients(harness: BrokerHarness) -> None:
    from broker_svc.adapters.binance import BinanceExchange

    def gauge() -> float:
        return REGISTRY.get_sample_value("broker_connections", {"exchange": "binance"}) or 0.0

    before = gauge()
    exchange = BinanceExchange(None)
    assert gauge() == before + 1
    await exchange.close()
    await exchange.close()
    assert gauge() == before
