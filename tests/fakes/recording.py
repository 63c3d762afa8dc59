"""What fake servicers received (request and metadata), and what they do instead of answering."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import grpc


@dataclass
class Call:
    """One call a fake received."""

    method: str
    request: Any
    metadata: list[tuple[str, str]]

    def header(self, key: str) -> list[str]:
        """Return every value of one metadata key."""
        return [v for k, v in self.metadata if k == key]


@dataclass
class Recorder:
    """What the fakes received, and what they are told to do instead of answering."""

    calls: list[Call] = field(default_factory=list)
    failures: dict[str, BaseException] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)

    def last(self, method: str) -> Call:
        """Return the latest call of ``method``."""
        matching = [c for c in self.calls if c.method == method]
        assert matching, f"{method} was not called; calls: {[c.method for c in self.calls]}"
        return matching[-1]

    async def record(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        """Note a call, then wait or fail as scripted."""
        metadata = [
            (key, value if isinstance(value, str) else value.decode())
            for key, value in context.invocation_metadata() or ()
        ]
        self.calls.append(Call(method, request, metadata))
        if method in self.delays:
            await asyncio.sleep(self.delays[method])
        if method in self.failures:
            raise self.failures[method]
