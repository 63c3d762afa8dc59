"""Service errors reach callers as rich google.rpc.Status, and come back as the same errors."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.broker.v1 import broker_service_pb2_grpc as pb_grpc
from meshkit import clients, errors
from meshkit.server import Registration
from meshkit.testing import inprocess_server


class _Raising(pb_grpc.BrokerServiceServicer):
    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def GetExchange(self, request, context):
        raise self.error


async def _call(error: BaseException) -> grpc.aio.AioRpcError:
    registration = Registration(
        pb_grpc.add_BrokerServiceServicer_to_server,
        _Raising(error),
        "copytrade.broker.v1.BrokerService",
    )
    async with inprocess_server([registration], domain="broker.copytrade") as (_server, channel):
        stub = pb_grpc.BrokerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetExchange(pb.GetExchangeRequest(exchange_id="x"), timeout=5)
    return caught.value


async def test_invalid_argument_carries_error_info_and_the_bad_field() -> None:
    failure = await _call(errors.invalid("risk_limits.max_slippage", "must be below 1"))
    assert failure.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(failure)
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    status.details[0].Unpack(info)
    status.details[1].Unpack(bad)
    assert (info.reason, info.domain) == ("INVALID_ARGUMENT", "broker.copytrade")
    assert bad.field_violations[0].field == "risk_limits.max_slippage"
    again = clients.translate(failure)
    assert isinstance(again, errors.InvalidArgument)
    assert again.violations == [
        errors.FieldViolation("risk_limits.max_slippage", "must be below 1")
    ]


async def test_rate_limit_keeps_its_retry_delay_across_the_hop() -> None:
    failure = await _call(errors.ResourceExhausted("slow down", retry_after=2.5))
    again = clients.translate(failure)
    assert isinstance(again, errors.ResourceExhausted)
    assert again.retry_after == pytest.approx(2.5)
    assert again.reason == "RATE_LIMITED"


async def test_unknown_outcome_is_deadline_exceeded_with_its_reason() -> None:
    failure = await _call(errors.OutcomeUnknown("venue timed out"))
    assert failure.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    again = clients.translate(failure)
    assert isinstance(again, errors.OutcomeUnknown)
    assert again.reason == "ORDER_OUTCOME_UNKNOWN"


async def test_unexpected_exception_is_internal_and_leaks_nothing() -> None:
    failure = await _call(RuntimeError("https://api.binance.com/?apiKey=SECRET-CANARY"))
    assert failure.code() == grpc.StatusCode.INTERNAL
    assert "CANARY" not in (failure.details() or "")
    assert "binance" not in (failure.details() or "")


async def test_an_unimplemented_method_is_unimplemented_not_internal() -> None:
    failure = await _call(NotImplementedError())
    assert failure.code() == grpc.StatusCode.UNIMPLEMENTED
