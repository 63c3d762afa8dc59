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


class _Stream:
    """A GetPortfolios call: its answers, then the failure that ended it (if any)."""

    def __init__(self, answers: list[pb.GetPortfoliosResponse], failure: grpc.StatusCode | None):
        self.answers = answers
        self.failure = failure

    def cancel(self) -> bool:
        return False

    async def __aiter__(self) -> AsyncIterator[pb.GetPortfoliosResponse]:
        for answer in self.answers:
            yield answer
        if self.failure is not None:
            raise grpc.aio.AioRpcError(
                self.failure, grpc.aio.Metadata(), grpc.aio.Metadata(), details="failed"
            )


class BatchStub:
    """Answers GetPortfolios with the next scripted stream; records every deadline."""

    def __init__(self, streams: list[_Stream]) -> None:
        self.streams = streams
        self.deadlines: list[float] = []

    def GetPortfolios(self, request: pb.GetPortfoliosRequest, **kwargs: Any) -> _Stream:
        self.deadlines.append(kwargs["timeout"])
        return self.streams.pop(0)


async def test_a_batched_read_answers_each_account_and_a_late_call_gets_a_longer_deadline(
    broker: GrpcBroker,
) -> None:
    not_found = errors.to_status(
        errors.NotFound("gone", reason="EXCHANGE_NOT_FOUND", metadata={"exchange_id": "b"}),
        "broker.copytrade",
    )
    first = _Stream(
        [
            pb.GetPortfoliosResponse(index=1, exchange_id="b", error=not_found),
            pb.GetPortfoliosResponse(
                index=0, exchange_id="a", portfolio=pb.GetPortfolioResponse(quote_currency="USD")
            ),
        ],
        grpc.StatusCode.DEADLINE_EXCEEDED,  # "c" was never answered in time
    )
    stub = BatchStub([first, _Stream([], grpc.StatusCode.UNAVAILABLE)])
    broker._stub = stub  # type: ignore[assignment]
    answers = [a async for a in broker.get_portfolios([("a", "u"), ("b", "u"), ("c", "u")])]
    assert [index for index, _ in answers] == [1, 0, 2]
    by_index = dict(answers)
    assert getattr(by_index[0], "quote_currency", None) == "USD"
    refused = by_index[1]
    assert isinstance(refused, errors.NotFound) and not refused.from_transport
    assert (refused.reason, refused.metadata) == ("EXCHANGE_NOT_FOUND", {"exchange_id": "b"})
    late = by_index[2]
    assert isinstance(late, errors.OutcomeUnknown) and late.from_transport
    # The next call holding "c" has twice the deadline; a failure of the whole call is each
    # unanswered account's error, one instance each.
    down = [a async for _, a in broker.get_portfolios([("c", "u"), ("d", "u")])]
    assert stub.deadlines == [READ_S, 2 * READ_S]
    assert all(isinstance(e, errors.Unavailable) and e.from_transport for e in down)
    assert down[0] is not down[1]
