"""The signal stream's writes fail as the service errors the consumer knows how to handle."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from engine_svc.adapters.sync_client import GrpcSignalStream
from meshkit import errors


class _Call:
    def __init__(self, failure: BaseException) -> None:
        self.failure = failure

    async def write(self, request: object) -> None:
        raise self.failure


async def test_an_ack_on_a_stream_sync_has_ended_is_unavailable_naming_the_stream() -> None:
    # grpc raises asyncio.InvalidStateError for a write after the call ended.
    stream = GrpcSignalStream(_Call(asyncio.InvalidStateError("RPC already finished.")))
    with pytest.raises(errors.Unavailable) as caught:
        await stream.ack("source-1", 7)
    assert caught.value.reason == "SIGNAL_STREAM_ENDED"


async def test_a_write_refused_by_grpc_is_translated_to_its_service_error() -> None:
    failure = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "sync is down"
    )
    stream = GrpcSignalStream(_Call(failure))
    with pytest.raises(errors.Unavailable, match="sync is down"):
        await stream.subscribe("source-1", 0)
