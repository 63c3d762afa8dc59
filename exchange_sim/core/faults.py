"""Fault injection: scripted failures for the next requests that match a method and a path.

A rule ``{method, path, status, body, headers, delay_s, execute, reset, count, ttl_s}`` answers
the next ``count`` matching requests (``count: -1`` = until cleared), for at most ``ttl_s``
seconds after it was added when that is given (a venue that hides a new order for a bounded
time: the bound holds however late the test gets round to clearing the rule):

* ``path`` matches exactly, or as a prefix when it ends with ``*``; ``method`` ``*`` matches any.
* ``execute: false``: wait ``delay_s``, then answer ``status`` / ``body`` without processing
  the request (when ``status`` is null the request is then processed normally: a pure delay).
* ``execute: true``: process the request normally first (an order really gets placed), wait
  ``delay_s``, then answer ``status`` / ``body`` instead of the real reply ("the venue accepted
  it but the reply got lost"); with a null ``status`` the real reply is sent after the delay.
* ``reset: true``: instead of any answer, reset the TCP connection (RST) once the request
  body has been read: after processing it with ``execute: true`` ("taken, reply lost on the
  wire"), without with ``execute: false``. ``status`` and ``body`` must then be null.
* ``body``: a JSON object / list (sent as JSON), a string (sent as is), or null (empty body).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_ALLOWED_KEYS = {
    "method",
    "path",
    "status",
    "body",
    "headers",
    "delay_s",
    "execute",
    "reset",
    "count",
    "ttl_s",
}


@dataclass
class FaultRule:
    """One scripted failure (see the module docstring)."""

    method: str
    path: str
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # a duration, not money: float is fine here
    execute: bool = False
    count: int = 1
    reset: bool = False
    ttl_s: float | None = None  # a duration, not money
    expires_at: float | None = None  # monotonic; set when the rule is added

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule applies to a request."""
        if self.method != "*" and self.method != method.upper():
            return False
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path

    def to_json(self) -> dict[str, Any]:
        """The rule as the admin API shows it."""
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "body": self.body,
            "headers": self.headers,
            "delay_s": self.delay_s,
            "execute": self.execute,
            "reset": self.reset,
            "count": self.count,
            "ttl_s": self.ttl_s,
        }

    @classmethod
    def parse(cls, raw: object) -> FaultRule:
        """Build a rule from admin JSON; ``ValueError`` names the offending field."""
        if not isinstance(raw, dict):
            raise ValueError("fault: each rule must be a JSON object")
        unknown = set(raw) - _ALLOWED_KEYS
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown field")
        method = raw.get("method", "*")
        path = raw.get("path")
        if not isinstance(method, str) or not method:
            raise ValueError("method: must be an HTTP method or *")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError("path: must be a path starting with /")
        status = raw.get("status")
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599
        ):
            raise ValueError("status: must be an HTTP status code (100-599) or null")
        headers = raw.get("headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ValueError("headers: must map strings to strings")
        delay = raw.get("delay_s", 0)
        if (
            isinstance(delay, bool)
            or not isinstance(delay, (int, float))
            or not math.isfinite(delay)
            or delay < 0
        ):
            raise ValueError("delay_s: must be a non-negative number of seconds")
        execute = raw.get("execute", False)
        if not isinstance(execute, bool):
            raise ValueError("execute: must be true or false")
        reset = raw.get("reset", False)
        if not isinstance(reset, bool):
            raise ValueError("reset: must be true or false")
        if reset and (status is not None or raw.get("body") is not None):
            raise ValueError("reset: a reset sends no answer, so status and body must be null")
        ttl = raw.get("ttl_s")
        if ttl is not None and (
            isinstance(ttl, bool)
            or not isinstance(ttl, (int, float))
            or not math.isfinite(ttl)
            or ttl <= 0
        ):
            raise ValueError("ttl_s: must be a positive number of seconds or null")
        count = raw.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or (count < 1 and count != -1):
            raise ValueError("count: must be a positive integer, or -1 for until cleared")
        body = raw.get("body")
        if body is not None and not isinstance(body, (dict, list, str)):
            raise ValueError("body: must be a JSON object, a list, a string or null")
        return cls(
            method=method.upper(),
            path=path,
            status=status,
            body=body,
            headers=dict(headers),
            delay_s=float(delay),
            execute=execute,
            count=count,
            reset=reset,
            ttl_s=None if ttl is None else float(ttl),
        )


class FaultRegistry:
    """The active rules of one venue, consumed in the order they were added (single event loop)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._rules: list[FaultRule] = []
        self._clock = clock

    def add(self, rule: FaultRule) -> None:
        """Append a rule (its ``ttl_s``, if any, runs from now)."""
        if rule.ttl_s is not None:
            rule.expires_at = self._clock() + rule.ttl_s
        self._rules.append(rule)

    def _drop_expired(self) -> None:
        now = self._clock()
        self._rules = [r for r in self._rules if r.expires_at is None or r.expires_at > now]

    def clear(self) -> int:
        """Remove every rule; returns how many there were."""
        n = len(self._rules)
        self._rules.clear()
        return n

    def rules(self) -> list[FaultRule]:
        """The active rules."""
        self._drop_expired()
        return list(self._rules)

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first rule matching the request, with one use consumed; None when none matches."""
        self._drop_expired()
        for rule in self._rules:
            if rule.matches(method, path):
                if rule.count != -1:
                    rule.count -= 1
                    if rule.count == 0:
                        self._rules.remove(rule)
                return rule
        return None
