"""The engine's broker client: a read the broker did not answer in time is asked again with a
longer deadline, so that a broker slowed by a fan-out is waited for rather than cut short."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from copytrade.broker.v1 import broker_service_pb2 as pb
from engine_svc.adapters.broker_client import LATE_READ_GROWTH, GrpcBroker
from meshkit import errors

READ_S = 0.5


class LateStub:
    """Answers GetPortfolio after ``late`` deadlines have passed; records every deadline."""

    def __init__(self, late: int) -> None:
        self.late = late
        self.deadlines: list[tuple[str, float]] = []

    async def GetPortfolio(self, request: pb.GetPortfolioRequest, **kwargs: Any) -> Any:
        self.deadlines.append((request.exchange_id, kwargs["timeout"]))
        if self.late > 0:
            self.late -= 1
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                details="Deadline Exceeded",
            )
        return pb.GetPortfolioResponse(quote_currency="USDT")


@pytest.fixture
async def broker() -> AsyncIterator[GrpcBroker]:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never dialled: the stub is replaced
    yield GrpcBroker(channel, read_timeout=READ_S)
    await channel.close()


async def _read(broker: GrpcBroker, exchange_id: str) -> bool:
    try:
        await broker.get_portfolio(exchange_id, "user")
    except errors.OutcomeUnknown:
        return False
    return True


async def test_a_late_read_is_asked_again_with_a_longer_deadline_until_answered(
    broker: GrpcBroker,
) -> None:
    stub = LateStub(late=3)
    broker._stub = stub  # type: ignore[assignment]
    answered = [await _read(broker, "a") for _ in range(4)]
    assert answered == [False, False, False, True]
    cap = READ_S * LATE_READ_GROWTH
    assert [d for _, d in stub.deadlines] == [READ_S, min(2 * READ_S, cap), cap, cap]
    # Answered: the next read of it has the read deadline again, and another read never
    # had more than the read deadline.
    assert await _read(broker, "a") and await _read(broker, "b")
    assert stub.deadlines[-2:] == [("a", READ_S), ("b", READ_S)]
