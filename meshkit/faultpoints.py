"""Named fault points compiled into the services, armed only by the ``FAULTPOINTS`` variable.

A call ``faultpoint("engine.after_intent_commit")`` (or ``await afaultpoint(...)`` in async
code) costs one dict lookup and does nothing unless the environment armed that name::

    FAULTPOINTS="engine.after_intent_commit=kill@3;broker.after_send=sleep:30"

Each entry is ``name=action[@n[-m]]``; entries are separated by ``;`` and the same name may be
armed more than once (the entries are tried in order). Actions:

``kill``
    SIGKILL the process itself (a crash with no clean-up, as ``kill -9``).
``raise:<ExceptionName>``
    Raise that exception: a built-in name (``RuntimeError``, ``ConnectionError``,
    ``TimeoutError``, ...) or a dotted path to an exception class (``package.module.Class``).
``sleep:<seconds>``
    Wait that long (``time.sleep`` in :func:`faultpoint`, ``asyncio.sleep`` in
    :func:`afaultpoint`), then carry on.
``hang``
    Block for ever (a thread that never returns, a task that never resumes).

``@n`` fires on the n-th hit of the point only (hits are counted per point, whatever fires),
``@n-m`` on hits n through m (a broker slowed for its first m reads: ``sleep:1@1-12``);
without it the entry fires on every hit.
Before acting, a point writes ``faultpoint <name> fired: <action> (hit <n>)`` to stderr, so a
harness can tell from the process's log that the crash it sees is the one it asked for.

The variable is read and checked once, when this module is imported: a malformed value fails
the process at start-up with :class:`meshkit.settings.ConfigError` naming ``FAULTPOINTS``.
This is BUGGIFY-style injection (FoundationDB) for the chaos suite (docs/reliability.md §4).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import importlib
import itertools
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshkit.settings import ConfigError

ENV = "FAULTPOINTS"
ACTIONS = ("kill", "raise", "sleep", "hang")


@dataclass(frozen=True)
class FaultAction:
    """One armed entry: what to do at a named point, and on which hit.

    Attributes
    ----------
    name
        The fault point's name.
    kind
        One of :data:`ACTIONS`.
    exception
        The exception class to raise (``raise`` only).
    seconds
        How long to sleep (``sleep`` only).
    nth
        Fire on this hit only (1-based); ``None`` fires on every hit.
    last
        With ``nth``: fire on every hit from ``nth`` through ``last``; ``None``: ``nth`` only.
    """

    name: str
    kind: str
    exception: type[BaseException] | None = None
    seconds: float = 0.0
    nth: int | None = None
    last: int | None = None

    def due(self, hit: int) -> bool:
        """Return whether the action fires on the point's ``hit``-th hit (1-based)."""
        if self.nth is None:
            return True
        return self.nth <= hit <= (self.nth if self.last is None else self.last)

    def describe(self) -> str:
        """Return the entry as it was written (for logs)."""
        if self.kind == "raise" and self.exception is not None:
            text = f"raise:{self.exception.__name__}"
        elif self.kind == "sleep":
            text = f"sleep:{self.seconds:g}"
        else:
            text = self.kind
        if self.nth is None:
            return text
        return f"{text}@{self.nth}" + ("" if self.last is None else f"-{self.last}")


def _exception(name: str, entry: str) -> type[BaseException]:
    found: object = None
    if "." in name:
        module_name, _, attribute = name.rpartition(".")
        try:
            found = getattr(importlib.import_module(module_name), attribute, None)
        except ImportError:
            found = None
    else:
        found = getattr(builtins, name, None)
    if not (isinstance(found, type) and issubclass(found, Exception)):
        raise ConfigError(f"{ENV}: {entry!r} names no exception class {name!r}")
    return found


def _entry(raw: str) -> FaultAction:
    name, sep, spec = raw.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name or not spec:
        raise ConfigError(f"{ENV}: entries look like name=action[@n[-m]], got {raw!r}")
    nth: int | None = None
    last: int | None = None
    action, at, count = spec.rpartition("@")
    if at:
        first, dash, end = count.partition("-")
        if not first.strip().isdigit() or int(first) < 1:
            raise ConfigError(f"{ENV}: {raw!r}: @n needs a whole number n >= 1")
        if dash:
            if not end.strip().isdigit() or int(end) < int(first):
                raise ConfigError(f"{ENV}: {raw!r}: @n-m needs a whole number m >= n")
            last = int(end)
        nth, spec = int(first), action.strip()
    kind, _, argument = spec.partition(":")
    kind, argument = kind.strip(), argument.strip()
    if kind in ("kill", "hang"):
        if argument:
            raise ConfigError(f"{ENV}: {raw!r}: {kind} takes no argument")
        return FaultAction(name, kind, nth=nth, last=last)
    if kind == "raise":
        return FaultAction(name, kind, exception=_exception(argument, raw), nth=nth, last=last)
    if kind == "sleep":
        try:
            seconds = float(argument)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds < 0:
            raise ConfigError(f"{ENV}: {raw!r}: sleep needs a number of seconds >= 0")
        return FaultAction(name, kind, seconds=seconds, nth=nth, last=last)
    raise ConfigError(f"{ENV}: {raw!r}: the action must be one of {', '.join(ACTIONS)}")


@dataclass
class _Point:
    """The entries armed at one point and the point's hit counter (shared by its entries)."""

    entries: tuple[FaultAction, ...]
    hits: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def due(self) -> tuple[int, list[FaultAction]]:
        """Count one hit; return its number and the entries that fire on it."""
        hit = next(self.hits)  # atomic under the GIL: threads may share a point
        return hit, [entry for entry in self.entries if entry.due(hit)]


def parse(spec: str) -> dict[str, tuple[FaultAction, ...]]:
    """Parse a ``FAULTPOINTS`` value into the armed entries by point name.

    Raises
    ------
    meshkit.settings.ConfigError
        When an entry is malformed; the message names ``FAULTPOINTS`` and the entry.
    """
    table: dict[str, list[FaultAction]] = {}
    for raw in spec.split(";"):
        if raw.strip():
            entry = _entry(raw)
            table.setdefault(entry.name, []).append(entry)
    return {name: tuple(entries) for name, entries in table.items()}


def _points(spec: str) -> dict[str, _Point]:
    return {name: _Point(entries) for name, entries in parse(spec).items()}


_ARMED: dict[str, _Point] = _points(os.environ.get(ENV, ""))


def configure(spec: str | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Re-arm the points from ``spec`` (or ``environ[FAULTPOINTS]``); hit counts restart.

    Services never call this (the variable is read at import); tests do.
    """
    if spec is None:
        spec = (os.environ if environ is None else environ).get(ENV, "")
    table = _points(spec)
    _ARMED.clear()
    _ARMED.update(table)


def armed() -> dict[str, tuple[FaultAction, ...]]:
    """Return the armed entries by point name (empty in production)."""
    return {name: point.entries for name, point in _ARMED.items()}


def _announce(entry: FaultAction, hit: int) -> None:
    line = f"faultpoint {entry.name} fired: {entry.describe()} (hit {hit})\n"
    with contextlib.suppress(OSError, ValueError, AttributeError):  # no usable stderr: act anyway
        os.write(sys.stderr.fileno(), line.encode())


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # SIGKILL is not delivered synchronously everywhere; never run on


def _raise(entry: FaultAction) -> None:
    assert entry.exception is not None
    raise entry.exception(f"fault point {entry.name} fired")


def faultpoint(name: str) -> None:
    """Act as armed for ``name`` (kill, raise, sleep or hang); do nothing when not armed."""
    point = _ARMED.get(name)
    if point is None:
        return
    hit, due = point.due()
    for entry in due:
        _announce(entry, hit)
        if entry.kind == "kill":
            _kill()
        elif entry.kind == "raise":
            _raise(entry)
        elif entry.kind == "sleep":
            time.sleep(entry.seconds)
        else:
            threading.Event().wait()


async def afaultpoint(name: str) -> None:
    """Act as armed for ``name`` without blocking the event loop; do nothing when not armed."""
    point = _ARMED.get(name)
    if point is None:
        return
    hit, due = point.due()
    for entry in due:
        _announce(entry, hit)
        if entry.kind == "kill":
            _kill()
        elif entry.kind == "raise":
            _raise(entry)
        elif entry.kind == "sleep":
            await asyncio.sleep(entry.seconds)
        else:
            await asyncio.Event().wait()
