"""A caller whose deadline passes does not cut short what the broker accepted: an order the
venue took is recorded all the same, and a lookup or a repeat answers it without a second one."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import grpc
import pytest

from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.common.v1 import types_pb2
from meshkit.faultpoints import configure
from meshkit.testing import eventually
from tests.service.broker_svc.broker_rpc import failure
from tests.service.broker_svc.conftest import ALICE, BrokerHarness

CID = "late-caller-1"
DEADLINE_S = 0.1
"""The caller's deadline: it passes while the broker still works on the order."""


@pytest.fixture
def slow_after_send() -> Iterator[None]:
    """The broker takes a while after the venue took an order, before it records it."""
    configure("broker.after_send=sleep:0.5")
    yield
    configure("")


def _market_buy(exchange_id: str) -> pb.PlaceOrderRequest:
    request = pb.PlaceOrderRequest(
        exchange_id=exchange_id,
        client_order_id=CID,
        symbol="BTC/USDT",
        side=types_pb2.ORDER_SIDE_BUY,
        type=types_pb2.ORDER_TYPE_MARKET,
    )
    request.quantity.value = "0.01"
    return request


async def test_an_order_whose_caller_stopped_waiting_is_recorded_and_never_sent_twice(
    harness: BrokerHarness, slow_after_send: None
) -> None:
    account, credentials = await harness.register(ALICE, {"USDT": "10000"})
    failed = await failure(
        harness.stub.PlaceOrder(_market_buy(account.exchange_id), timeout=DEADLINE_S)
    )
    assert failed.code == grpc.StatusCode.DEADLINE_EXCEEDED

    async def recorded() -> bool:
        record = await harness.store.get_order(account.exchange_id, CID)
        return record is not None and not record.unresolved

    # The handler was cancelled at the caller's deadline; the order's work was not.
    await eventually(recorded, timeout=5)
    configure("")
    found = await harness.stub.GetOrder(
        pb.GetOrderRequest(exchange_id=account.exchange_id, client_order_id=CID)
    )
    again = await harness.stub.PlaceOrder(_market_buy(account.exchange_id))
    assert again.order.venue_order_id == found.order.venue_order_id != ""
    assert again.order.status == types_pb2.ORDER_STATUS_FILLED
    [order] = harness.venue.orders_of(credentials)
    assert (order.client_order_id, order.quantity) == (CID, Decimal("0.01"))
