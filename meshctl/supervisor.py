"""Keep a local mesh running: ``copytrade up`` restarts a component that dies.

A component that exits (or is killed, ``kill -9`` included) is started again with the same
command and environment after a delay that starts at 1 s and doubles up to 30 s while it keeps
dying; once it has stayed up for a minute the delay starts again at 1 s. Every exit and restart
is printed, with the last line of the component's log (where a failed start says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from meshctl.launcher import Mesh

Output = Callable[[str], None]
_PRINT: Output = functools.partial(print, flush=True)


@dataclass
class Backoff:
    """Delays between restarts of one component: doubling, capped, reset by a long run."""

    initial: float = 1.0
    maximum: float = 30.0
    reset_after: float = 60.0
    _next: float = field(default=0.0, init=False)

    def delay(self, uptime: float) -> float:
        """Return how long to wait before the next start, given how long the last run lasted."""
        if self._next == 0.0 or uptime >= self.reset_after:
            self._next = self.initial
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay


@dataclass
class _Watch:
    started_at: float
    backoff: Backoff
    restart_at: float | None = None
    restarts: int = 0


def describe_exit(code: int) -> str:
    """Return how a process ended: ``exited with code 2`` or ``was killed by SIGKILL``."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """Watch a started :class:`Mesh` and restart what dies, with :class:`Backoff`."""

    def __init__(
        self,
        mesh: Mesh,
        *,
        out: Output = _PRINT,
        clock: Callable[[], float] = time.monotonic,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self.mesh = mesh
        self.out = out
        self.clock = clock
        now = clock()
        self.watches = {c.name: _Watch(now, backoff()) for c in mesh.components}

    def _last_log_line(self, name: str) -> str:
        self.mesh.drain_log(name)  # the exited process's last lines, read from its pipes
        path = self.mesh.data_dir / "logs" / f"{name}.log"
        try:
            with open(path, "rb") as log:
                log.seek(0, 2)
                log.seek(max(log.tell() - 4096, 0))
                lines = log.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return ""
        if not lines:
            return ""
        try:  # a JSON log line (docs/logging.md): its message says it
            last = str(json.loads(lines[-1])["message"])
        except (ValueError, KeyError, TypeError):
            last = lines[-1]
        return last[:300]

    def check(self) -> None:
        """Notice components that died and restart those whose delay is over."""
        now = self.clock()
        for component in self.mesh.components:
            watch = self.watches.setdefault(component.name, _Watch(now, Backoff()))
            process = component.process
            if process is None or process.poll() is None:
                continue
            if watch.restart_at is None:
                delay = watch.backoff.delay(now - watch.started_at)
                watch.restart_at = now + delay
                last = self._last_log_line(component.name)
                self.out(
                    f"copytrade: {component.name} {describe_exit(process.returncode)}"
                    f" after {now - watch.started_at:.0f}s; restarting in {delay:g}s"
                    + (f" (its log ends: {last})" if last else "")
                )
            elif now >= watch.restart_at:
                self.mesh.restart(component.name)
                watch.started_at, watch.restart_at = now, None
                watch.restarts += 1
                pid = component.process.pid if component.process is not None else "?"
                self.out(
                    f"copytrade: {component.name} restarted (pid {pid}, restart {watch.restarts})"
                )

    async def run(self, stop: asyncio.Event, interval: float = 0.2) -> None:
        """Check every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
