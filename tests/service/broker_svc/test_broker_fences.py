"""Lease fences at the broker, as ``build_server`` makes it, on SQLite and PostgreSQL.

An engine replica sends each order under its lease on a leader source (a key and a fencing
token that grows at every takeover). A replica that was paused past its lease must not get an
order to a venue once the new holder has fenced the key; and the new holder must be able to
prove that an order the old one marked SENT never reached the venue: ``GetOrder``'s
``NOT_FOUND`` then carries ``never_placed``, which only a client order id the broker never
recorded an attempt for gets.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import grpc
import pytest
from google.type import decimal_pb2

from broker_svc.access import RULES
from broker_svc.adapters.paper_exchange import PaperVenue, PaperVenues
from broker_svc.config import Settings
from broker_svc.domain.model import Credentials
from broker_svc.server import Dependencies, build_server
from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.broker.v1 import broker_service_pb2_grpc as pb_grpc
from copytrade.common.v1 import types_pb2
from engine_svc.adapters.broker_client import GrpcBroker
from engine_svc.domain.ids import client_order_id
from engine_svc.domain.model import Intent, IntentState, OrderType, Side
from meshkit import clients, errors
from meshkit.leases import FENCED_WRITES
from meshkit.testing import AuthorizedStub, as_user, mesh_trust, secure_channel
from tests.fakes.clock import FakeClock
from tests.service.broker_svc.broker_rpc import failure

ALICE = "0b9f3f6e-1111-4c1e-9b0a-000000000001"
SOURCE = "source-7d1c"
CID = "5f0c2a52-8f6b-5d7e-9a55-3c9f1d2b7e41"
OTHER_CID = "5f0c2a52-8f6b-5d7e-9a55-3c9f1d2b7e42"


@dataclass
class Served:
    address: str
    stub: AuthorizedStub
    venue: PaperVenue
    credentials: Credentials
    exchange_id: str

    def venue_orders(self) -> list[str]:
        return [o.client_order_id for o in self.venue.orders_of(self.credentials)]


@pytest.fixture
async def served(database_url: str) -> AsyncIterator[Served]:
    clock = FakeClock()
    venue = PaperVenue("binance", clock=clock)
    venue.set_price("BTC/USDT", Decimal("50000"))
    settings = Settings(
        encryption_key=os.urandom(32),
        grpc_port=0,
        metrics_port=0,
        database_url=database_url,
        **mesh_trust("broker"),
    )
    running, release = await build_server(
        settings, Dependencies(venues=PaperVenues(venue), clock=clock)
    )
    address = f"127.0.0.1:{running.port}"
    stub = AuthorizedStub(pb_grpc.BrokerServiceStub, address, RULES)
    try:
        credentials = venue.add_account({"USDT": "100000"})
        registered = await stub.RegisterExchange(
            pb.RegisterExchangeRequest(
                exchange_name="binance",
                api_key=credentials.api_key,
                api_secret=credentials.api_secret,
            ),
            metadata=as_user(ALICE),
        )
        yield Served(address, stub, venue, credentials, registered.exchange.exchange_id)
    finally:
        await stub.close()
        await running.stop(grace=None)
        await release()


def _buy(served: Served, cid: str = CID, token: int | None = None) -> pb.PlaceOrderRequest:
    request = pb.PlaceOrderRequest(
        exchange_id=served.exchange_id,
        client_order_id=cid,
        symbol="BTC/USDT",
        side=types_pb2.ORDER_SIDE_BUY,
        type=types_pb2.ORDER_TYPE_MARKET,
        quantity=decimal_pb2.Decimal(value="0.01"),
    )
    if token is not None:
        request.fence.key, request.fence.token = SOURCE, token
    return request


def _fence(token: int, key: str = SOURCE) -> pb.FenceRequest:
    return pb.FenceRequest(fence=pb.Fence(key=key, token=token))


async def _lookup_error(served: Served, cid: str) -> errors.ServiceError:
    """Look ``cid`` up as the engine does and return the service error its client sees."""
    try:
        await served.stub.GetOrder(
            pb.GetOrderRequest(
                exchange_id=served.exchange_id, client_order_id=cid, symbol="BTC/USDT"
            )
        )
    except grpc.aio.AioRpcError as e:
        return clients.translate(e)
    raise AssertionError("the lookup found the order")


def _fenced_count() -> float:
    return FENCED_WRITES.labels("broker", "place_order")._value.get()


async def test_after_a_fence_a_lower_token_order_is_refused_and_reaches_no_venue(
    served: Served,
) -> None:
    assert (await served.stub.Fence(_fence(5))).token == 5
    refused_before = _fenced_count()
    failed = await failure(served.stub.PlaceOrder(_buy(served, token=4)))
    assert (failed.code, failed.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "FENCED")
    assert served.venue_orders() == []
    assert served.venue.calls.get("place_order") is None
    assert _fenced_count() == refused_before + 1
    # Nothing was recorded for it either: the new holder sees it was never placed.
    looked_up = await _lookup_error(served, CID)
    assert isinstance(looked_up, errors.NotFound)
    assert looked_up.metadata.get("never_placed") == "true"


async def test_an_order_under_the_current_token_is_placed(served: Served) -> None:
    await served.stub.Fence(_fence(5))
    placed = await served.stub.PlaceOrder(_buy(served, token=5))
    assert placed.order.status == types_pb2.ORDER_STATUS_FILLED
    assert served.venue_orders() == [CID]


async def test_a_higher_token_order_raises_the_fence_for_the_holders_before_it(
    served: Served,
) -> None:
    await served.stub.Fence(_fence(5))
    await served.stub.PlaceOrder(_buy(served, token=6))
    failed = await failure(served.stub.PlaceOrder(_buy(served, OTHER_CID, token=5)))
    assert failed.reason == "FENCED"
    assert served.venue_orders() == [CID]
    # A Fence below the key's token is refused and leaves the token where it is.
    failed = await failure(served.stub.Fence(_fence(5)))
    assert (failed.code, failed.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "FENCED")
    assert (await served.stub.Fence(_fence(6))).token == 6  # idempotent


async def test_fences_of_other_keys_and_orders_without_a_fence_are_not_refused(
    served: Served,
) -> None:
    await served.stub.Fence(_fence(9, key="another-source"))
    await served.stub.PlaceOrder(_buy(served, token=1))
    await served.stub.PlaceOrder(_buy(served, OTHER_CID))
    assert sorted(served.venue_orders()) == sorted([CID, OTHER_CID])


@pytest.mark.parametrize(
    ("fence", "field"),
    [
        (pb.Fence(key="", token=3), "fence.key"),
        (pb.Fence(key="k" * 201, token=3), "fence.key"),
        (pb.Fence(key="k", token=-1), "fence.token"),
    ],
    ids=["no-key", "long-key", "negative-token"],
)
async def test_a_malformed_fence_is_invalid_and_names_its_field(
    served: Served, fence: pb.Fence, field: str
) -> None:
    failed = await failure(served.stub.Fence(pb.FenceRequest(fence=fence)))
    assert (failed.code, failed.fields) == (grpc.StatusCode.INVALID_ARGUMENT, [field])


async def test_a_lookup_of_an_order_never_attempted_says_it_was_never_placed(
    served: Served,
) -> None:
    looked_up = await _lookup_error(served, CID)
    assert isinstance(looked_up, errors.NotFound)
    assert looked_up.reason == "ORDER_NOT_FOUND"
    assert looked_up.metadata.get("never_placed") == "true"


async def test_a_lookup_of_an_attempted_order_the_venue_never_got_does_not_say_never_placed(
    served: Served,
) -> None:
    # The send's answer is lost and the venue took nothing: the venue says "not found", but
    # the broker recorded the attempt, so only the venue's own resend rule may clear it.
    served.venue.fail("place_order", errors.OutcomeUnknown("the venue did not answer"))
    failed = await failure(served.stub.PlaceOrder(_buy(served, token=2)))
    assert failed.reason == "ORDER_OUTCOME_UNKNOWN"
    assert served.venue_orders() == []
    looked_up = await _lookup_error(served, CID)
    assert isinstance(looked_up, errors.NotFound)
    assert looked_up.reason == "ORDER_NOT_FOUND"
    assert "never_placed" not in looked_up.metadata


async def test_a_resend_of_a_placed_client_order_id_keeps_its_first_attempt(
    served: Served,
) -> None:
    await served.stub.PlaceOrder(_buy(served, token=3))
    again = await served.stub.PlaceOrder(_buy(served, token=3))
    assert again.order.client_order_id == CID
    assert served.venue.calls.get("place_order") == 1


async def test_the_engines_broker_client_fences_and_sends_under_its_lease(
    served: Served,
) -> None:
    channel = secure_channel(served.address, "engine")
    broker = GrpcBroker(channel)
    try:
        assert await broker.fence(SOURCE, 3) == 3
        with pytest.raises(errors.FailedPrecondition) as caught:
            await broker.fence(SOURCE, 2)
        assert caught.value.reason == "FENCED"
        assert caught.value.metadata["fence_key"] == SOURCE
        old, new = _intent(served, sequence=1), _intent(served, sequence=2)
        with pytest.raises(errors.FailedPrecondition) as caught:
            await broker.place_order(old, "", fence=(SOURCE, 2))
        assert caught.value.reason == "FENCED"
        placed = await broker.place_order(new, "", fence=(SOURCE, 3))
        assert placed.client_order_id == new.client_order_id
        assert served.venue_orders() == [new.client_order_id]
        with pytest.raises(errors.NotFound) as missing:
            await broker.get_order(served.exchange_id, old.client_order_id, "BTC/USDT", "")
        assert missing.value.metadata.get("never_placed") == "true"
    finally:
        await channel.close()


def _intent(served: Served, sequence: int) -> Intent:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Intent(
        intent_id=f"intent-{sequence}",
        config_id="config-1",
        source_id=SOURCE,
        sequence=sequence,
        signal_id=f"signal-{sequence}",
        target_exchange_id=served.exchange_id,
        leg=0,
        client_order_id=client_order_id("config-1", SOURCE, sequence, served.exchange_id),
        symbol="BTC/USDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        quantity=Decimal("0.01"),
        price=None,
        state=IntentState.SENT,
        reason="",
        leader_quantity=Decimal("1"),
        leader_price=Decimal("50000"),
        leader_event_time=now,
        created_at=now,
        updated_at=now,
    )
