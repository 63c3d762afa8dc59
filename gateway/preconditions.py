"""Calls the gateway makes before it forwards a route: a check another service owns.

The broker owns exchange accounts and the engine owns copy configurations. The broker is the
lowest layer of the mesh and calls no other service, so it cannot know whether a configuration
still uses an account it is asked to remove. Before ``DELETE /exchanges/{exchange_id}`` reaches
the broker, the gateway asks the engine to release the account (``ReleaseExchange``, with the
same user assertion): the engine answers 409 naming the configurations that use it, or, with
``force=true``, pauses them (reason ``exchange_deleted``) and lets the removal go on. A refusal
(or any error) of the precondition is the answer, and the route's own RPC is never called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.engine.v1 import engine_service_pb2 as engine_pb

ENGINE = "copytrade.engine.v1.EngineService"


@dataclass(frozen=True)
class Precondition:
    """An RPC of another service to call first, and how to build its request from the route's."""

    service: str
    method: str
    response_class: Any
    build: Callable[[Any], Any]

    @property
    def grpc_path(self) -> str:
        """Return the gRPC method path of the precondition."""
        return f"/{self.service}/{self.method}"


def _release_exchange(request: broker_pb.DeleteExchangeRequest) -> engine_pb.ReleaseExchangeRequest:
    return engine_pb.ReleaseExchangeRequest(exchange_id=request.exchange_id, force=request.force)


PRECONDITIONS: dict[str, Precondition] = {
    "copytrade.broker.v1.BrokerService.DeleteExchange": Precondition(
        ENGINE, "ReleaseExchange", engine_pb.ReleaseExchangeResponse, _release_exchange
    ),
}
"""The route's RPC (full name) → the call that must succeed before it is forwarded."""
