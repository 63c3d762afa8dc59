"""GetPortfolios through the real servicer: many accounts read in one call, each answered on
its own with its portfolio or the very status its own GetPortfolio would have failed with."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import grpc
import pytest
from google.rpc import status_pb2
from grpc_status import rpc_status

from broker_svc.adapters.paper_exchange import PaperVenue, PaperVenues
from broker_svc.crypto import Cipher
from broker_svc.server import DOMAIN, SERVICE_NAME
from broker_svc.servicer import BrokerServicer
from broker_svc.store import BrokerStore
from broker_svc.usecases import Broker
from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.broker.v1 import broker_service_pb2_grpc as pb_grpc
from meshkit.server import Registration
from meshkit.testing import inprocess_server
from tests.fakes.clock import FakeClock
from tests.service.broker_svc.conftest import ALICE, BOB, as_user


@dataclass
class Venues:
    """A broker over a paper Binance and a paper Kraken, and the stub that calls it."""

    stub: pb_grpc.BrokerServiceStub
    binance: PaperVenue
    kraken: PaperVenue

    async def register(self, venue: PaperVenue, user_id: str, balances: dict[str, str]) -> str:
        credentials = venue.add_account(balances)
        response = await self.stub.RegisterExchange(
            pb.RegisterExchangeRequest(
                exchange_name=venue.name,
                api_key=credentials.api_key,
                api_secret=credentials.api_secret,
            ),
            metadata=as_user(user_id),
        )
        return response.exchange.exchange_id


@pytest.fixture
async def venues(tmp_path) -> AsyncIterator[Venues]:
    clock = FakeClock()
    binance = PaperVenue("binance", clock=clock)
    binance.set_price("BTC/USDT", Decimal("50000"))
    kraken = PaperVenue("kraken", clock=clock)
    store = await BrokerStore.open(f"sqlite:///{tmp_path}/broker.db")
    broker = Broker(store, PaperVenues(binance, kraken), Cipher(os.urandom(32)), clock)
    registration = Registration(
        pb_grpc.add_BrokerServiceServicer_to_server, BrokerServicer(broker), SERVICE_NAME
    )
    try:
        async with inprocess_server([registration], domain=DOMAIN) as (_, channel):
            yield Venues(pb_grpc.BrokerServiceStub(channel), binance, kraken)
    finally:
        await broker.close()
        await store.close()


async def _answers(
    venues: Venues, reads: list[pb.PortfolioRead], metadata: tuple[tuple[str, str], ...] = ()
) -> dict[int, pb.GetPortfoliosResponse]:
    call = venues.stub.GetPortfolios(pb.GetPortfoliosRequest(reads=reads), metadata=metadata)
    answers: dict[int, pb.GetPortfoliosResponse] = {}
    async for answer in call:
        assert answer.index not in answers, "an account answered twice"
        answers[answer.index] = answer
    assert sorted(answers) == list(range(len(reads))), "every account answered once"
    return answers


async def _unary_status(
    venues: Venues, request: pb.GetPortfolioRequest, metadata: tuple[tuple[str, str], ...] = ()
) -> status_pb2.Status:
    try:
        await venues.stub.GetPortfolio(request, metadata=metadata)
    except grpc.aio.AioRpcError as e:
        status = rpc_status.from_call(e)
        assert status is not None
        return status
    raise AssertionError("GetPortfolio succeeded")


async def test_each_account_is_answered_alone_as_its_own_get_portfolio_would_be(
    venues: Venues,
) -> None:
    alices = await venues.register(venues.binance, ALICE, {"USDT": "1000", "BTC": "1"})
    bobs = await venues.register(venues.binance, BOB, {"USDT": "500"})
    unreachable = await venues.register(venues.kraken, ALICE, {"USD": "10"})
    venues.kraken.reachable = False
    reads = [
        pb.PortfolioRead(exchange_id=alices),
        pb.PortfolioRead(exchange_id=bobs),  # not Alice's: refused for this account only
        pb.PortfolioRead(exchange_id=unreachable),  # its venue is down: this account only
        pb.PortfolioRead(exchange_id=alices, quote_currency="US-D"),
    ]
    answers = await _answers(venues, reads, as_user(ALICE))
    assert answers[0].exchange_id == alices
    assert answers[0].WhichOneof("result") == "portfolio"
    assert answers[0].portfolio.equity.value == "51000"
    # The errors are the statuses (code, message, ErrorInfo with reason, domain and metadata,
    # RetryInfo, BadRequest) that the unary call fails with for the same account.
    unary = [
        pb.GetPortfolioRequest(exchange_id=bobs),
        pb.GetPortfolioRequest(exchange_id=unreachable),
        pb.GetPortfolioRequest(exchange_id=alices, quote_currency="US-D"),
    ]
    for index, request in enumerate(unary, start=1):
        assert answers[index].WhichOneof("result") == "error"
        expected = await _unary_status(venues, request, as_user(ALICE))
        assert answers[index].error == expected
    assert answers[1].error.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert answers[2].error.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert answers[3].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


async def test_a_service_caller_names_each_accounts_owner_and_another_owner_is_not_found(
    venues: Venues,
) -> None:
    # The engine calls for nobody (a leader's trade) and names each account's owner: an
    # account that is not the named owner's is refused, the others read.
    alices = await venues.register(venues.binance, ALICE, {"USDT": "1000"})
    bobs = await venues.register(venues.binance, BOB, {"USDT": "500"})
    answers = await _answers(
        venues,
        [
            pb.PortfolioRead(exchange_id=alices, user_id=ALICE),
            pb.PortfolioRead(exchange_id=bobs, user_id=ALICE),
            pb.PortfolioRead(exchange_id=bobs, user_id=BOB),
        ],
    )
    assert answers[0].portfolio.equity.value == "1000"
    assert answers[2].portfolio.equity.value == "500"
    expected = await _unary_status(venues, pb.GetPortfolioRequest(exchange_id=bobs), as_user(ALICE))
    assert answers[1].error == expected
    # A call of Alice's naming Bob as an owner gets nothing of Bob's either.
    [refused] = (
        await _answers(venues, [pb.PortfolioRead(exchange_id=bobs, user_id=BOB)], as_user(ALICE))
    ).values()
    assert refused.error == expected


async def test_too_many_accounts_is_refused_whole(venues: Venues) -> None:
    reads = [pb.PortfolioRead(exchange_id="x")] * 10_001
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await _answers(venues, reads)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
