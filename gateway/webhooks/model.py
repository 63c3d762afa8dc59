"""User webhooks: the events, the checks on what a user asks for, signing, and the retry schedule.

Pure: no storage, no I/O. What the services' audit entries mean as events is decided here
(:func:`events_of`), one entry at a time, from the entry's JSON as ``GET /audit`` shows it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshkit.errors import FieldViolation

CONFIG_HALTED = "config.halted"
RISK_ACTION = "risk.action"
RECONCILIATION_DISCREPANCY = "reconciliation.discrepancy"
CREDENTIALS_REJECTED = "venue.credentials_rejected"
LEADER_STREAM_DOWN = "leader.stream_down"
LEADER_STREAM_UP = "leader.stream_up"
TEST_EVENT = "webhook.test"
EVENTS = (
    CONFIG_HALTED,
    RISK_ACTION,
    RECONCILIATION_DISCREPANCY,
    CREDENTIALS_REJECTED,
    LEADER_STREAM_DOWN,
    LEADER_STREAM_UP,
)
"""The events a webhook may subscribe to (``webhook.test`` is sent on request, to any webhook)."""

SIGNATURE_HEADER = "X-Copytrade-Signature"
TIMESTAMP_HEADER = "X-Copytrade-Timestamp"
EVENT_HEADER = "X-Copytrade-Event"
EVENT_ID_HEADER = "X-Copytrade-Event-Id"
SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2048
MAX_WEBHOOKS_PER_USER = 10
DEFAULT_RETRY_SCHEDULE_MS = (2_000, 5_000, 10_000, 20_000)
"""Waits before the 2nd to 5th try: five tries over about 40 s (a longer Retry-After wins)."""
MAX_RETRY_AFTER_MS = 120_000
"""A receiver's ``Retry-After`` is honoured up to two minutes; beyond, the delivery is dropped."""


@dataclass(frozen=True)
class Webhook:
    """A user's webhook (its secret is never part of it: the store keeps that apart)."""

    webhook_id: str
    user_id: str
    url: str
    events: tuple[str, ...]
    created_at: str


@dataclass(frozen=True)
class Delivery:
    """One event to one webhook, and how sending it went.

    ``status`` is ``pending`` (a try is due at ``next_attempt_at``), ``delivered`` (a 2xx
    answer) or ``dropped`` (every try failed, or a try cannot succeed).
    """

    delivery_id: str
    webhook_id: str
    event_id: str
    event: str
    payload: str
    status: str
    attempts: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Queued:
    """A delivery to queue: one event to one webhook."""

    webhook_id: str
    event_id: str
    event: str
    payload: str


class WebhookConflict(Exception):
    """The user already has a webhook at that URL, subscribed to other events."""


class TooManyWebhooks(Exception):
    """The user already has :data:`MAX_WEBHOOKS_PER_USER` webhooks."""


class WebhooksNotConfigured(Exception):
    """The gateway has no key to seal webhook secrets with (``GATEWAY_WEBHOOK_SECRET_KEY``)."""


def new_secret() -> str:
    """Return a new signing secret: ``whsec_`` and 32 random bytes in hex."""
    return SECRET_PREFIX + secrets.token_hex(32)


def _private_host(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def url_violations(url: Any, *, allow_private: bool) -> list[FieldViolation]:
    """Return what is wrong with a webhook URL (empty when it is acceptable).

    It must be an absolute ``http`` or ``https`` URL with a host, without credentials or a
    fragment, at most 2048 characters. A loopback, private or link-local address (or
    ``localhost``) is refused unless ``allow_private``: a webhook must not reach the
    gateway's own network. (A host name is not resolved here.)
    """
    if not isinstance(url, str) or not url:
        return [FieldViolation("url", "is required: an http or https URL")]
    if len(url) > MAX_URL_LENGTH:
        return [FieldViolation("url", f"must be at most {MAX_URL_LENGTH} characters")]
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return [FieldViolation("url", "is not a valid URL")]
    if parts.scheme not in ("http", "https"):
        return [FieldViolation("url", "must start with http:// or https://")]
    host = (parts.hostname or "").lower()
    if not host:
        return [FieldViolation("url", "must name a host")]
    if parts.username is not None or parts.password is not None:
        return [FieldViolation("url", "must not hold a user name or password")]
    if parts.fragment:
        return [FieldViolation("url", "must not have a #fragment")]
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):
        return [FieldViolation("url", "must not hold spaces or control characters")]
    if port == 0:
        return [FieldViolation("url", "must not use port 0")]
    if not allow_private and _private_host(host):
        return [
            FieldViolation("url", "must not point at a loopback, private or link-local address")
        ]
    return []


def events_violations(events: Any) -> list[FieldViolation]:
    """Return what is wrong with a subscription list (empty when it is acceptable)."""
    if not isinstance(events, list) or not events:
        return [FieldViolation("events", f"is required: a non-empty list of {', '.join(EVENTS)}")]
    found = []
    for index, event in enumerate(events):
        if event not in EVENTS:
            found.append(FieldViolation(f"events[{index}]", f"must be one of {', '.join(EVENTS)}"))
    return found


def normalized_events(events: Sequence[str]) -> tuple[str, ...]:
    """Return the subscription without repeats, in the order of :data:`EVENTS`."""
    return tuple(e for e in EVENTS if e in events)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return ``sha256=<hex>``: HMAC-SHA256 with ``secret`` over ``<timestamp>.<raw body>``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    given: str,
    now_seconds: int,
    tolerance_seconds: int = 300,
) -> bool:
    """Check a delivery as a receiver does: the signature, and a timestamp within tolerance."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now_seconds - sent) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), given)


def payload(
    event_id: str,
    event: str,
    created_at: str,
    user_id: str,
    data: Mapping[str, Any],
) -> str:
    """Return the JSON body of an event (compact; the receiver signs its raw bytes)."""
    body = {
        "id": event_id,
        "type": event,
        "created_at": created_at,
        "user_id": user_id,
        "data": dict(data),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Event:
    """An event one audit entry means for its owner."""

    event_id: str
    event: str
    time: str
    data: Mapping[str, Any]


def _status_of(value: Any) -> str:
    return str(value.get("status", "")) if isinstance(value, Mapping) else ""


def events_of(entry: Mapping[str, Any]) -> list[Event]:
    """Return the events an audit entry (as ``GET /audit`` shows it) means; often none.

    - ``config.halted``: an engine ``copy_config`` entry that moves a configuration into
      HALTED (the kill switch, a failed start-up reconciliation, a risk action), or into
      STOPPED or PAUSED by anyone but its owner (the system, e.g. a daily-loss ``disable``,
      or an operator).
    - ``risk.action``: an engine entry of a daily-loss action (``reduce``, or an action named
      ``risk.*``).
    - ``reconciliation.discrepancy``: a recon ``reconcile`` entry with any item that is not
      matched (mismatched, missing, duplicate, extra or in error).
    - ``venue.credentials_rejected``: a broker ``credentials_rejected`` entry (a venue refused
      an account's keys; recorded once until the venue accepts them again).
    - ``leader.stream_down`` / ``leader.stream_up``: an engine ``leader_stream_down`` /
      ``leader_stream_up`` entry (the configuration's leader venue unreadable longer than the
      engine's ``LEADER_DOWN_ALERT_MS``, once per outage; and readable again).

    The event id is ``<service>:<seq>:<event>``: stable, so a receiver can drop repeats.
    """
    chain = entry["service"]
    action = str(entry["action"])
    before, after = entry.get("before"), entry.get("after")
    base = {
        "service": chain,
        "audit_seq": entry["seq"],
        "action": action,
        "actor": entry["actor"],
        "object_type": entry["object_type"],
        "object_id": entry["object_id"],
        "before": before,
        "after": after,
    }
    found: list[str] = []
    if chain == "engine" and entry["object_type"] == "copy_config":
        was, now = _status_of(before), _status_of(after)
        by_owner = entry["actor"] == f"user:{entry['owner_user_id']}"
        if was != now and (now == "HALTED" or (now in ("STOPPED", "PAUSED") and not by_owner)):
            found.append(CONFIG_HALTED)
    if chain == "engine" and (action == "reduce" or action.startswith("risk.")):
        found.append(RISK_ACTION)
    if chain == "recon" and action == "reconcile" and isinstance(after, Mapping):
        # Every outcome but matched is a discrepancy (mismatched, missing, duplicate, error,
        # extra, and any outcome recon adds later): total above matched, or any such count.
        others = [
            int(value or 0)
            for name, value in after.items()
            if name.endswith("_count") and name not in ("total_count", "matched_count")
        ]
        total, matched = int(after.get("total_count") or 0), int(after.get("matched_count") or 0)
        if total > matched or any(count > 0 for count in others):
            found.append(RECONCILIATION_DISCREPANCY)
    if chain == "broker" and action == "credentials_rejected":
        found.append(CREDENTIALS_REJECTED)
    if chain == "engine" and action == "leader_stream_down":
        found.append(LEADER_STREAM_DOWN)
    if chain == "engine" and action == "leader_stream_up":
        found.append(LEADER_STREAM_UP)
    return [Event(f"{chain}:{entry['seq']}:{name}", name, entry["time"], base) for name in found]


def retry_delay_ms(
    attempts: int,
    schedule_ms: Sequence[int],
    retry_after_ms: int | None,
) -> int | None:
    """Return how long to wait before the next try after ``attempts`` failed ones.

    ``None`` when the schedule is spent (the delivery is dropped). A ``Retry-After`` longer
    than the schedule's wait is honoured, up to :data:`MAX_RETRY_AFTER_MS`; beyond that the
    delivery is dropped rather than held.
    """
    if attempts < 1 or attempts > len(schedule_ms):
        return None
    wait = schedule_ms[attempts - 1]
    if retry_after_ms is not None:
        if retry_after_ms > MAX_RETRY_AFTER_MS:
            return None
        wait = max(wait, retry_after_ms)
    return wait
