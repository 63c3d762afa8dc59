"""The engine's service tests' world: the shared broker and sync fakes (``tests/fakes``).

The fake broker is a tiny venue: accounts with owners, portfolios, markets, and orders keyed
by client order id, with scripted outcomes for ``PlaceOrder``. The fake sync service keeps a
signal log per source and serves ``StreamSignals`` with subscribe, resume, heartbeats, acks,
and hooks to break the stream or inject duplicates and gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

from meshkit.server import Registration
from tests.fakes.broker import DEFAULT_USER, Account, FakeBrokerService, dec, new_id
from tests.fakes.sync import FakeSyncService

__all__ = [
    "OTHER_USER",
    "USER",
    "Account",
    "World",
    "dec",
    "error_reason",
    "field_paths",
    "new_id",
]

USER = DEFAULT_USER
OTHER_USER = "user-mallory"


@dataclass
class World:
    """The fakes one test talks to."""

    broker: FakeBrokerService = field(default_factory=FakeBrokerService)
    sync: FakeSyncService = field(default_factory=FakeSyncService)

    def registrations(self) -> list[Registration]:
        return [self.broker.registration(), self.sync.registration()]


def field_paths(error: grpc.aio.AioRpcError) -> list[str]:
    """Return the field paths of an INVALID_ARGUMENT's BadRequest."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)
    paths: list[str] = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            paths += [v.field for v in bad.field_violations]
    return paths


def error_reason(error: grpc.aio.AioRpcError) -> str:
    """Return the ErrorInfo reason of a failed call."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""
