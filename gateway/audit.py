"""``GET /audit``: the caller's audit entries, merged from every service's chain, newest first.

Each service keeps its own hash chain and serves its owner's entries (``ListAuditEntries``,
newest first, below a seq); the gateway adds its own (users and tokens). A page takes the
newest entries across the chains; the page token holds, per chain, the seq the next page
continues below (absent when that chain has nothing more), so no entry is skipped or repeated.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.recon.v1 import recon_service_pb2 as recon_pb
from gateway.errors import invalid_argument
from meshkit.audit import AuditEntry, message_fields
from meshkit.codec import to_iso
from meshkit.errors import FieldViolation

PATH = "/api/institutional/copy-trading/audit"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def openapi_operation() -> dict[str, Any]:
    """Return the OpenAPI operation of ``GET /audit`` (served by the gateway itself)."""
    text = {"type": "string"}
    entry = {
        "type": "object",
        "properties": {
            "service": {"type": "string", "enum": ["gateway", "broker", "engine", "recon"]},
            "seq": {"type": "integer"},
            "time": {"type": "string", "format": "date-time"},
            "actor": {**text, "description": "user:<id>, service:<name> or operator:cli"},
            "request_id": text,
            "owner_user_id": text,
            "object_type": text,
            "object_id": text,
            "action": text,
            "before": {"type": "object", "nullable": True},
            "after": {"type": "object", "nullable": True},
            "prev_hash": {**text, "description": "SHA-256 of the previous entry of the same chain"},
            "hash": {**text, "description": "SHA-256 of this entry"},
        },
    }
    return {
        "operationId": "Gateway_ListAuditEntries",
        "summary": "The caller's audit entries of every service, newest first.",
        "x-copytrade-plan": "any",
        "parameters": [
            {
                "name": "page_size",
                "in": "query",
                "schema": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": MAX_PAGE_SIZE,
                    "description": f"0 or absent: {DEFAULT_PAGE_SIZE}",
                },
            },
            {
                "name": "page_token",
                "in": "query",
                "schema": {"type": "string", "description": "next_page_token of the previous page"},
            },
        ],
        "responses": {
            "200": {
                "description": "A page of entries.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "entries": {"type": "array", "items": entry},
                                "next_page_token": text,
                            },
                        }
                    }
                },
            },
            "400": {"description": "A bad page_size or page_token (the field is named)."},
            "401": {"description": "No token, or an unknown, revoked or expired one."},
        },
    }


GATEWAY_CHAIN = "gateway"


@dataclass(frozen=True)
class Backend:
    """A service whose chain the gateway reads through its ``ListAuditEntries``."""

    chain: str
    service: str
    request_class: Any
    response_class: Any

    @property
    def grpc_path(self) -> str:
        """Return ``/copytrade.engine.v1.EngineService/ListAuditEntries``."""
        return f"/{self.service}/ListAuditEntries"


BACKENDS = (
    Backend(
        "broker",
        "copytrade.broker.v1.BrokerService",
        broker_pb.ListAuditEntriesRequest,
        broker_pb.ListAuditEntriesResponse,
    ),
    Backend(
        "engine",
        "copytrade.engine.v1.EngineService",
        engine_pb.ListAuditEntriesRequest,
        engine_pb.ListAuditEntriesResponse,
    ),
    Backend(
        "recon",
        "copytrade.recon.v1.ReconService",
        recon_pb.ListAuditEntriesRequest,
        recon_pb.ListAuditEntriesResponse,
    ),
)
CHAINS = (*(b.chain for b in BACKENDS), GATEWAY_CHAIN)


@dataclass(frozen=True)
class Page:
    """What one request asks for: how many, and where each chain continues (0: its newest)."""

    size: int
    cursors: Mapping[str, int]


def parse_page(query: Mapping[str, str]) -> Page:
    """Read ``page_size`` and ``page_token``; a bad one is a 400 naming it."""
    violations: list[FieldViolation] = []
    size = DEFAULT_PAGE_SIZE
    raw_size = query.get("page_size", "")
    if raw_size:
        try:
            size = int(raw_size)
        except ValueError:
            size = -1
        if not 0 <= size <= MAX_PAGE_SIZE:
            violations.append(
                FieldViolation(
                    "page_size",
                    f"must be a whole number from 0 to {MAX_PAGE_SIZE}",
                )
            )
        size = size or DEFAULT_PAGE_SIZE
    cursors: dict[str, int] = {chain: 0 for chain in CHAINS}
    token = query.get("page_token", "")
    if token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if not isinstance(decoded, dict) or not all(
                chain in CHAINS and type(seq) is int and seq > 1 for chain, seq in decoded.items()
            ):
                raise ValueError
        except (ValueError, binascii.Error, UnicodeDecodeError):
            violations.append(FieldViolation("page_token", "is not a token this API returned"))
        else:
            cursors = dict(decoded)
    if violations:
        raise invalid_argument(violations)
    return Page(size, cursors)


def _token(cursors: Mapping[str, int]) -> str:
    text = json.dumps(dict(sorted(cursors.items())), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def from_proto(chain: str, message: Any) -> dict[str, Any]:
    """Return the JSON of one ``copytrade.common.v1.AuditEntry`` read from ``chain``."""
    return {
        "service": chain,
        "seq": message.seq,
        "time": to_iso(message.time.ToDatetime(tzinfo=UTC)),
        "actor": message.actor,
        "request_id": message.request_id,
        "owner_user_id": message.owner_user_id,
        "object_type": message.object_type,
        "object_id": message.object_id,
        "action": message.action,
        "before": json.loads(message.before_json or "null"),
        "after": json.loads(message.after_json or "null"),
        "prev_hash": message.prev_hash,
        "hash": message.hash,
    }


def from_entry(chain: str, entry: AuditEntry) -> dict[str, Any]:
    """Return the JSON of one entry of a chain the gateway reads itself (the wire's shape)."""
    return from_proto(chain, types_pb2.AuditEntry(**message_fields(entry)))


def merge(page: Page, fetched: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Merge each chain's newest-first entries into one page; return the response body.

    ``fetched`` holds, per chain still in the page's cursors, up to ``page.size + 1`` entries
    (newest first, below its cursor). The page always takes the newest head of the chains,
    so each chain gives a prefix of what it sent and its next cursor is the last seq taken.
    """
    heads = {chain: 0 for chain in fetched}
    taken: list[dict[str, Any]] = []
    while len(taken) < page.size:
        live = [c for c in heads if heads[c] < len(fetched[c])]
        if not live:
            break
        chain = max(live, key=lambda c: (fetched[c][heads[c]]["time"], c))
        taken.append(fetched[chain][heads[chain]])
        heads[chain] += 1
    cursors: dict[str, int] = {}
    for chain, entries in fetched.items():
        if heads[chain] < len(entries):  # more is left in this chain
            cursors[chain] = (
                entries[heads[chain] - 1]["seq"]
                if heads[chain]
                else (page.cursors.get(chain, 0) or entries[0]["seq"] + 1)
            )
    body: dict[str, Any] = {"entries": taken}
    if cursors:
        body["next_page_token"] = _token(cursors)
    return body
