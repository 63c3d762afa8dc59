"""What the end-to-end tests share: polling the mesh until a condition holds, RFC 3339 times,
the components' logs after a failure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from meshctl.launcher import Mesh

T = TypeVar("T")


async def wait_for(predicate: Callable[[], Awaitable[T | None]], timeout: float = 30.0) -> T:  # noqa: ASYNC109 - a polling deadline
    """Await ``predicate()`` every 0.1 s until it returns something truthy, and return that.

    Fails the test after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.1)


def rfc3339(moment: datetime) -> str:
    """Return ``moment`` as the API's RFC 3339 UTC time (``...Z``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def print_logs(instance: Mesh) -> None:
    """After a failed test, show how each component ended and the end of its log (CI keeps none)."""
    for component in instance.components:
        code = component.process.poll() if component.process is not None else None
        state = "running" if code is None else f"exited with {code}"
        log = instance.data_dir / "logs" / f"{component.name}.log"
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
        print(f"\n===== {component.name}: {state}; end of {log.name} =====\n{tail}")
