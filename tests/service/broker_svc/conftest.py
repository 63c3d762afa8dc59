"""Fixtures for the broker's service tests: the real servicer in-process over a paper venue."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from broker_svc.adapters.paper_exchange import PaperVenue, PaperVenues
from broker_svc.crypto import Cipher
from broker_svc.domain.model import Credentials
from broker_svc.server import DOMAIN, SERVICE_NAME
from broker_svc.servicer import BrokerServicer
from broker_svc.store import BrokerStore
from broker_svc.usecases import Broker
from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.broker.v1 import broker_service_pb2_grpc as pb_grpc
from meshkit.server import Registration
from meshkit.testing import as_user as signed_user
from meshkit.testing import inprocess_server
from tests.fakes.clock import FakeClock

ALICE = "0b9f3f6e-1111-4c1e-9b0a-000000000001"
BOB = "0b9f3f6e-2222-4c1e-9b0a-000000000002"


def as_user(user_id: str) -> tuple[tuple[str, str], ...]:
    """Return the metadata the gateway sets for an authenticated user."""
    return signed_user(user_id)


@dataclass
class BrokerHarness:
    """A running broker over a paper Binance, with its pieces reachable for assertions."""

    stub: pb_grpc.BrokerServiceStub
    venue: PaperVenue
    broker: Broker
    store: BrokerStore
    clock: FakeClock

    async def register(
        self,
        user_id: str = ALICE,
        balances: dict[str, str] | None = None,
        **request: str,
    ) -> tuple[pb.ExchangeAccount, Credentials]:
        """Open a paper account and register it for ``user_id``."""
        credentials = self.venue.add_account(balances or {"USDT": "100000", "BTC": "1"})
        response = await self.stub.RegisterExchange(
            pb.RegisterExchangeRequest(
                exchange_name="binance",
                api_key=credentials.api_key,
                api_secret=credentials.api_secret,
                **request,
            ),
            metadata=as_user(user_id),
        )
        return response.exchange, credentials


@pytest.fixture
async def harness(tmp_path) -> AsyncIterator[BrokerHarness]:
    """A broker on a fresh SQLite file and a paper Binance with BTC at 50000."""
    clock = FakeClock()
    venue = PaperVenue("binance", clock=clock)
    venue.set_price("BTC/USDT", Decimal("50000"))
    venue.set_price("ETH/USDT", Decimal("3000"))
    store = await BrokerStore.open(f"sqlite:///{tmp_path}/broker.db")
    broker = Broker(store, PaperVenues(venue), Cipher(os.urandom(32)), clock)
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
