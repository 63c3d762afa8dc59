"""The log file of each mesh component: every line JSON, rotated by size.

The launcher (:class:`meshctl.launcher.Mesh`) gives each child process a pipe for its stdout and
one for its stderr; a :class:`ComponentLog` reads both on two threads and writes each line to
``<data dir>/logs/<component>.log`` through a :class:`logging.handlers.RotatingFileHandler`.
A line that already is a JSON object (what :mod:`meshkit.logs` writes) is written unchanged;
any other line (gRPC C-core messages, a crash before logging was configured, anything a
library printed) is wrapped as one in the same shape: ``service`` the component, ``logger``
``stdout`` or ``stderr``, ``level`` ``info`` on stdout and ``error`` on stderr (or the level a
gRPC core line names), ``message`` the line. So nothing plain reaches the file.

Rotation: when a line would take the file past ``COPYTRADE_LOG_MAX_BYTES`` (default 10 MiB), the
file becomes ``<component>.log.1`` (older ones shift up to ``COPYTRADE_LOG_BACKUPS``, default 5,
the oldest dropped). Operators' guide: docs/logging.md.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from logging.handlers import RotatingFileHandler
from typing import IO

from meshkit import logs

MAX_BYTES_ENV = "COPYTRADE_LOG_MAX_BYTES"
BACKUPS_ENV = "COPYTRADE_LOG_BACKUPS"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5
LINE_LIMIT = 1024 * 1024
"""A longer line is cut into pieces of this many bytes (each its own JSON line)."""

# gRPC's C-core (absl) prefix: "W1204 12:38:01.997280   29911 log.cc:110] text" (before absl
# is initialised the time reads "0000 00:00:<epoch seconds>").
_CORE_LINE = re.compile(r"([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]")
_CORE_LEVELS = {"I": "info", "W": "warning", "E": "error", "F": "critical"}
_STREAM_LEVELS = {"stdout": "info", "stderr": "error"}


@dataclass(frozen=True)
class Rotation:
    """When a component's log file rolls over, and how many old files are kept."""

    max_bytes: int = DEFAULT_MAX_BYTES
    backups: int = DEFAULT_BACKUPS

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise ValueError(f"{MAX_BYTES_ENV}: expected a positive size, got {self.max_bytes}")
        if self.backups < 1:
            raise ValueError(f"{BACKUPS_ENV}: expected at least 1, got {self.backups}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Rotation:
        """Read ``COPYTRADE_LOG_MAX_BYTES`` and ``COPYTRADE_LOG_BACKUPS`` (defaults when unset).

        Raises
        ------
        ValueError
            Naming the variable, when a value is not a positive whole number.
        """
        values = {}
        for name, default in ((MAX_BYTES_ENV, DEFAULT_MAX_BYTES), (BACKUPS_ENV, DEFAULT_BACKUPS)):
            text = environ.get(name, "").strip()
            try:
                values[name] = int(text) if text else default
            except ValueError:
                raise ValueError(f"{name}: expected a whole number, got {text!r}") from None
        return cls(values[MAX_BYTES_ENV], values[BACKUPS_ENV])


def as_json_line(component: str, stream: str, text: str) -> str:
    """Return ``text`` unchanged when it is a JSON object, else wrapped as one (no newline).

    Parameters
    ----------
    component
        The ``service`` field of a wrapped line (``broker``, ``engine-2``).
    stream
        ``stdout`` or ``stderr``: the ``logger`` field, and the level (``info``, ``error``)
        unless the line is a gRPC core line naming its own.
    text
        One line, without its newline.
    """
    if text.startswith("{") and text.endswith("}"):
        try:
            if isinstance(json.loads(text), dict):
                return text
        except ValueError:
            pass
    core = _CORE_LINE.match(text)
    if core:
        level = _CORE_LEVELS[core.group(1)]
    elif text.startswith("WARNING:"):
        level = "warning"
    else:
        level = _STREAM_LEVELS.get(stream, "info")
    return logs.json_line(component, level, text, logger=stream)


class ComponentLog:
    """One component's log file, written from its process's stdout and stderr pipes.

    Parameters
    ----------
    path
        The file (``<data dir>/logs/<component>.log``); its folder must exist.
    component
        The component's name, the ``service`` of wrapped lines.
    rotation
        When the file rolls over.
    """

    def __init__(self, path: pathlib.Path, component: str, rotation: Rotation) -> None:
        self.path = path
        self.component = component
        self._handler = RotatingFileHandler(
            path,
            maxBytes=rotation.max_bytes,
            backupCount=rotation.backups,
            encoding="utf-8",
            delay=True,
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._readers: list[threading.Thread] = []

    def write(self, text: str, stream: str = "stdout") -> None:
        """Write one line (wrapped as JSON unless it is a JSON object already)."""
        line = as_json_line(self.component, stream, text)
        record = logging.LogRecord(self.component, logging.INFO, __file__, 0, line, None, None)
        self._handler.handle(record)

    def attach(self, stdout: IO[bytes] | None, stderr: IO[bytes] | None) -> None:
        """Read a newly started process's pipes until they close (each on its own thread)."""
        self._readers = [reader for reader in self._readers if reader.is_alive()]
        for stream, pipe in (("stdout", stdout), ("stderr", stderr)):
            if pipe is None:
                continue
            reader = threading.Thread(
                target=self._read,
                args=(pipe, stream),
                name=f"log-{self.component}-{stream}",
                daemon=True,
            )
            reader.start()
            self._readers.append(reader)

    def _read(self, pipe: IO[bytes], stream: str) -> None:
        with pipe:
            while raw := pipe.readline(LINE_LIMIT):
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if text.strip():
                    self.write(text, stream)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until the pipes of the processes attached so far are read to their end.

        A process that exited has closed its pipes: this returns at once when the last of
        its output is in the file. Return whether every reader finished within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        for reader in self._readers:
            reader.join(max(deadline - time.monotonic(), 0.0))
        return not any(reader.is_alive() for reader in self._readers)

    def close(self) -> None:
        """Close the file (a later line opens it again)."""
        self._handler.close()
