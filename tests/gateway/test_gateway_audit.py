"""GET /audit: the caller's entries from every service's chain and the gateway's own, merged
newest first and paged; another user's entries never appear."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.broker.v1 import broker_service_pb2_grpc as broker_grpc
from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.engine.v1 import engine_service_pb2_grpc as engine_grpc
from copytrade.recon.v1 import recon_service_pb2 as recon_pb
from copytrade.recon.v1 import recon_service_pb2_grpc as recon_grpc
from meshkit.codec import timestamp_to_proto, utcnow
from meshkit.identity import require_user
from meshkit.server import Registration
from meshkit.testing import inprocess_server
from tests.fakes.recording import Recorder
from tests.gateway.conftest import API, Harness

AUDIT = f"{API}/audit"
BOB = "bob-user-id"


class _Chain:
    """A fake service chain: entries of several owners; answers only the caller's."""

    def __init__(self, name: str, response_class: Any) -> None:
        self.name = name
        self.response_class = response_class
        self.entries: list[types_pb2.AuditEntry] = []

    def add(self, owner: str, action: str) -> None:
        self.entries.append(
            types_pb2.AuditEntry(
                seq=len(self.entries) + 1,
                time=timestamp_to_proto(utcnow()),
                actor=f"user:{owner}",
                owner_user_id=owner,
                object_type="thing",
                object_id=f"{self.name}-{action}",
                action=action,
                before_json="null",
                after_json='{"status": "ACTIVE"}',
                prev_hash="0" * 64,
                hash=f"{len(self.entries):064d}",
            )
        )

    async def ListAuditEntries(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        user = require_user(context)
        mine = [
            e
            for e in reversed(self.entries)
            if e.owner_user_id == user and (request.before_seq == 0 or e.seq < request.before_seq)
        ]
        return self.response_class(entries=mine[: request.page_size or 50])


class _Broker(broker_grpc.BrokerServiceServicer):
    def __init__(self, chain: _Chain) -> None:
        self.ListAuditEntries = chain.ListAuditEntries


class _Engine(engine_grpc.EngineServiceServicer):
    def __init__(self, chain: _Chain) -> None:
        self.ListAuditEntries = chain.ListAuditEntries


class _Recon(recon_grpc.ReconServiceServicer):
    def __init__(self, chain: _Chain) -> None:
        self.ListAuditEntries = chain.ListAuditEntries


CHAINS = {
    "broker": _Chain("broker", broker_pb.ListAuditEntriesResponse),
    "engine": _Chain("engine", engine_pb.ListAuditEntriesResponse),
    "recon": _Chain("recon", recon_pb.ListAuditEntriesResponse),
}


@pytest.fixture
async def backend() -> AsyncIterator[tuple[Recorder, Any]]:
    """Fake broker, engine and recon that serve ListAuditEntries from their chains."""
    for chain in CHAINS.values():
        chain.entries.clear()
    registrations = [
        Registration(
            broker_grpc.add_BrokerServiceServicer_to_server,
            _Broker(CHAINS["broker"]),
            "copytrade.broker.v1.BrokerService",
        ),
        Registration(
            engine_grpc.add_EngineServiceServicer_to_server,
            _Engine(CHAINS["engine"]),
            "copytrade.engine.v1.EngineService",
        ),
        Registration(
            recon_grpc.add_ReconServiceServicer_to_server,
            _Recon(CHAINS["recon"]),
            "copytrade.recon.v1.ReconService",
        ),
    ]
    async with inprocess_server(registrations) as (_running, channel):
        yield Recorder(), channel


def _fill(alice: str) -> None:
    for action in ("register", "delete"):
        CHAINS["broker"].add(alice, action)
        CHAINS["broker"].add(BOB, action)
    for action in ("start", "pause", "resume"):
        CHAINS["engine"].add(BOB, action)
        CHAINS["engine"].add(alice, action)
    CHAINS["recon"].add(alice, "reconcile")
    CHAINS["recon"].add(BOB, "reconcile")


async def test_audit_returns_only_the_callers_entries_of_every_service(harness: Harness) -> None:
    _fill(harness.pro_user_id)
    status, body, _ = await harness.call("GET", AUDIT)
    assert status == 200, body
    entries = body["entries"]
    assert {e["owner_user_id"] for e in entries} == {harness.pro_user_id}
    assert sorted((e["service"], e["action"]) for e in entries) == sorted(
        [
            ("broker", "register"),
            ("broker", "delete"),
            ("engine", "start"),
            ("engine", "pause"),
            ("engine", "resume"),
            ("recon", "reconcile"),
            ("gateway", "add"),
        ]
    )
    assert "next_page_token" not in body
    times = [e["time"] for e in entries]
    assert times == sorted(times, reverse=True)
    added = next(e for e in entries if e["service"] == "gateway")
    assert (added["actor"], added["object_type"]) == ("operator:cli", "user")
    assert added["after"]["plan"] == "pro" and added["before"] is None
    assert entries[0]["after"] is None or isinstance(entries[0]["after"], dict)


async def test_audit_pages_through_every_entry_once(harness: Harness) -> None:
    _fill(harness.pro_user_id)
    _status, everything, _ = await harness.call("GET", AUDIT)
    seen: list[tuple[str, int]] = []
    token = ""
    for _ in range(10):
        query = f"?page_size=2&page_token={token}" if token else "?page_size=2"
        status, body, _ = await harness.call("GET", AUDIT + query)
        assert status == 200, body
        assert len(body["entries"]) <= 2
        seen += [(e["service"], e["seq"]) for e in body["entries"]]
        token = body.get("next_page_token", "")
        if not token:
            break
    assert seen == [(e["service"], e["seq"]) for e in everything["entries"]]
    assert len(set(seen)) == 7


async def test_another_users_trail_is_theirs_alone(harness: Harness) -> None:
    _fill(harness.pro_user_id)
    status, body, _ = await harness.call("GET", AUDIT, token="free")
    assert status == 200, body
    owners = {e["owner_user_id"] for e in body["entries"]}
    assert harness.pro_user_id not in owners
    assert [e["action"] for e in body["entries"]] == ["add"]  # bob's own user entry


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?page_size=-1", "page_size"),
        ("?page_size=x", "page_size"),
        ("?page_size=201", "page_size"),
        ("?page_token=garbage!", "page_token"),
        ("?page_token=eyJldmlsIjozfQ", "page_token"),
    ],
)
async def test_bad_paging_is_a_400_naming_the_field(
    harness: Harness,
    query: str,
    field: str,
) -> None:
    status, body, _ = await harness.call("GET", AUDIT + query)
    assert status == 400
    violations = [d for d in body["details"] if "fieldViolations" in d or "field_violations" in d]
    assert field in str(violations)


async def test_audit_needs_a_token(harness: Harness) -> None:
    status, _body, headers = await harness.call("GET", AUDIT, token=None)
    assert status == 401 and "WWW-Authenticate" in headers
