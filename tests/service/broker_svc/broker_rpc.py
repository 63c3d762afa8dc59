"""Helpers to read the rich status of a failed broker call in tests."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass
class Failure:
    """What a failed call reported: code, reason, violated fields, retry delay and message."""

    code: grpc.StatusCode
    reason: str
    domain: str
    fields: list[str]
    retry_after: float | None
    message: str


async def failure(call: Awaitable[Any]) -> Failure:
    """Await ``call``, which must fail, and return what its status said."""
    try:
        await call
    except grpc.aio.AioRpcError as e:
        status = rpc_status.from_call(e)
        reason = domain = ""
        fields: list[str] = []
        retry_after = None
        for detail in status.details if status else []:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, domain = info.reason, info.domain
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                fields = [v.field for v in bad.field_violations]
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_after = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
        return Failure(e.code(), reason, domain, fields, retry_after, e.details() or "")
    raise AssertionError("the call succeeded but was expected to fail")
