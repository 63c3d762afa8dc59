"""User webhooks: validation, idempotent creation, the secret shown once, signed deliveries
from the services' audit entries (verified as a receiver would), retries with backoff and
Retry-After, the drop record, restarts that neither lose nor repeat, and strangers kept out.

The gateway runs over fake engine and recon chains; the dispatcher is driven by hand with a
clock the test moves, and the receiver is an aiohttp server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import grpc
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.engine.v1 import engine_service_pb2_grpc as engine_grpc
from copytrade.recon.v1 import recon_service_pb2 as recon_pb
from copytrade.recon.v1 import recon_service_pb2_grpc as recon_grpc
from gateway.config import Settings
from gateway.routes import default_services
from gateway.server import GatewayDeps, build_app
from gateway.store import GatewayStore
from gateway.store.webhooks import WebhookStore
from gateway.users import add_user
from gateway.webhooks import model
from gateway.webhooks.api import WEBHOOKS_KEY
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.sealing import SecretUnavailable, key_id
from meshkit import db
from meshkit.codec import timestamp_to_proto, utcnow
from meshkit.identity import require_user
from meshkit.server import Registration
from meshkit.settings import ConfigError
from meshkit.testing import gateway_trust, inprocess_server, trust_env
from tests.gateway.conftest import API

HOOKS = f"{API}/webhooks"
SECRET_KEY = base64.b64decode("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")


class _Chain:
    """A fake service chain of several owners; answers only the caller's entries."""

    def __init__(self, name: str, response_class: Any) -> None:
        self.name = name
        self.response_class = response_class
        self.entries: list[types_pb2.AuditEntry] = []

    def add(self, owner: str, action: str, before: Any, after: Any, actor: str = "") -> None:
        self.entries.append(
            types_pb2.AuditEntry(
                seq=len(self.entries) + 1,
                time=timestamp_to_proto(utcnow()),
                actor=actor or f"user:{owner}",
                owner_user_id=owner,
                object_type="copy_config" if self.name == "engine" else "reconciliation",
                object_id=f"obj-{len(self.entries) + 1}",
                action=action,
                before_json=json.dumps(before),
                after_json=json.dumps(after),
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


class _Engine(engine_grpc.EngineServiceServicer):
    def __init__(self, chain: _Chain) -> None:
        self.ListAuditEntries = chain.ListAuditEntries


class _Recon(recon_grpc.ReconServiceServicer):
    def __init__(self, chain: _Chain) -> None:
        self.ListAuditEntries = chain.ListAuditEntries


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that answers from a script (200 once it runs out)."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        status, headers = self.script.pop(0) if self.script else (200, {})
        return web.Response(status=status, headers=headers, text="ok")


@dataclass
class Env:
    """The gateway, its dispatcher (driven by hand) and clock, the chains, two pro users."""

    client: TestClient
    dispatcher: Dispatcher
    clock: list[datetime]
    engine: _Chain
    recon: _Chain
    receiver: Receiver
    alice: tuple[str, str]
    mallory: tuple[str, str]
    database: db.Database

    async def call(self, method: str, path: str, who: str = "alice", **kwargs: Any) -> Any:
        user = self.alice if who == "alice" else self.mallory
        headers = {"Authorization": f"Bearer {user[1]}"}
        response = await self.client.request(method, path, headers=headers, **kwargs)
        return response.status, await response.json(content_type=None)

    def advance(self, seconds: float) -> None:
        self.clock[0] += timedelta(seconds=seconds)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    engine = _Chain("engine", engine_pb.ListAuditEntriesResponse)
    recon = _Chain("recon", recon_pb.ListAuditEntriesResponse)
    registrations = [
        Registration(
            engine_grpc.add_EngineServiceServicer_to_server,
            _Engine(engine),
            "copytrade.engine.v1.EngineService",
        ),
        Registration(
            recon_grpc.add_ReconServiceServicer_to_server,
            _Recon(recon),
            "copytrade.recon.v1.ReconService",
        ),
    ]
    receiver = Receiver()
    receiving = web.Application()
    receiving.router.add_post("/hook", receiver.handle)
    receiver_server = TestServer(receiving, host="127.0.0.1")
    await receiver_server.start_server()
    receiver.url = str(receiver_server.make_url("/hook"))
    async with inprocess_server(registrations) as (_running, channel):
        database = await db.connect("sqlite:///:memory:")
        settings = Settings(
            port=0,
            timeout_ms=2_000,
            rate_limit_per_second=1000,
            rate_limit_burst=1000,
            webhook_retry_schedule_ms=(1_000, 2_000),
            webhook_allow_private_urls=True,
            webhook_secret_key=SECRET_KEY,
            **gateway_trust(),
        )
        deps = GatewayDeps(
            database=database,
            channels={s.full_name: channel for s in default_services()},
            webhook_dispatcher=False,
        )
        app = build_app(settings, deps)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        alice = await add_user(database, "alice", "pro")
        mallory = await add_user(database, "mallory", "pro")
        dispatcher = app[WEBHOOKS_KEY].dispatcher
        assert dispatcher is not None
        clock = [utcnow()]
        dispatcher.now = lambda: clock[0]
        try:
            yield Env(client, dispatcher, clock, engine, recon, receiver, alice, mallory, database)
        finally:
            await dispatcher.stop()
            await client.close()
            await database.close()
            await receiver_server.close()


def _verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Verify a delivery exactly as docs/webhooks.md tells a receiver to."""
    timestamp = headers["X-Copytrade-Timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + expected.hexdigest(), headers["X-Copytrade-Signature"])


async def _create(env: Env, events: list[str], who: str = "alice") -> tuple[str, str]:
    status, body = await env.call(
        "POST", HOOKS, who, json={"url": env.receiver.url, "events": events}
    )
    assert status == 201, body
    return body["webhook"]["webhook_id"], body["secret"]


def _halt(env: Env, owner: str, actor: str = "") -> None:
    env.engine.add(owner, "kill_switch", {"status": "ACTIVE"}, {"status": "HALTED"}, actor=actor)


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({"url": "ftp://example.com/x", "events": ["config.halted"]}, "url"),
        ({"url": "not a url", "events": ["config.halted"]}, "url"),
        ({"url": "https://user:pw@example.com/", "events": ["config.halted"]}, "url"),
        ({"events": ["config.halted"]}, "url"),
        ({"url": "https://example.com/h", "events": []}, "events"),
        ({"url": "https://example.com/h", "events": ["config.halted", "nope"]}, "events[1]"),
        ({"url": "https://example.com/h", "events": ["risk.action"], "secret": "x"}, "secret"),
    ],
)
async def test_create_with_a_bad_field_is_400_naming_it(
    env: Env, body: dict[str, Any], field_name: str
) -> None:
    status, reply = await env.call("POST", HOOKS, json=body)
    assert status == 400, reply
    violations = reply["details"][1]["field_violations"]
    assert field_name in [v["field"] for v in violations]


async def test_a_private_url_is_refused_unless_allowed() -> None:
    assert model.url_violations("http://127.0.0.1:9/h", allow_private=False)[0].field == "url"
    assert model.url_violations("http://10.1.2.3/h", allow_private=False)
    assert model.url_violations("http://localhost/h", allow_private=False)
    assert not model.url_violations("http://127.0.0.1:9/h", allow_private=True)
    assert not model.url_violations("https://hooks.example.com/h", allow_private=False)


async def test_create_is_idempotent_by_url_and_shows_the_secret_once(env: Env) -> None:
    webhook_id, secret = await _create(env, ["config.halted"])
    assert secret.startswith("whsec_")
    body = {"url": env.receiver.url, "events": ["config.halted"]}
    status, again = await env.call("POST", HOOKS, json=body)
    assert status == 200 and again["webhook"]["webhook_id"] == webhook_id
    assert "secret" not in again
    status, listed = await env.call("GET", HOOKS)
    assert status == 200 and [w["webhook_id"] for w in listed["webhooks"]] == [webhook_id]
    assert secret not in json.dumps(listed)
    other = {"url": env.receiver.url, "events": ["risk.action"]}
    status, conflict = await env.call("POST", HOOKS, json=other)
    assert status == 409 and conflict["details"][0]["reason"] == "WEBHOOK_EXISTS"
    # The creation is in the user's audit trail (the gateway's chain), without the secret.
    entries = await GatewayStore(env.database).list_audit_entries(env.alice[0], 0, 10)
    created = [e for e in entries if e.object_type == "webhook"]
    assert [(e.action, e.object_id, e.actor) for e in created] == [
        ("create", webhook_id, f"user:{env.alice[0]}")
    ]
    assert secret not in created[0].after


async def test_the_secret_is_stored_sealed_and_a_clear_one_is_sealed_at_start(env: Env) -> None:
    webhook_id, secret = await _create(env, ["config.halted"])
    row = await env.database.fetchone(
        "SELECT secret, secret_nonce, secret_key_id FROM webhooks WHERE webhook_id = ?",
        (webhook_id,),
    )
    assert row is not None and row["secret_key_id"] == key_id(SECRET_KEY)
    assert secret not in json.dumps(dict(row)) and secret[6:] not in json.dumps(dict(row))
    store = WebhookStore(env.database, SECRET_KEY)
    assert await store.secret_of(webhook_id) == secret
    # Another key, or none, does not open it; nor does the sealed secret in another row.
    with pytest.raises(SecretUnavailable):
        await WebhookStore(env.database, bytes(32)).secret_of(webhook_id)
    with pytest.raises(SecretUnavailable):
        await WebhookStore(env.database).secret_of(webhook_id)
    other_id, _ = await _create(env, ["config.halted"], "mallory")
    await env.database.execute(
        "UPDATE webhooks SET secret = ?, secret_nonce = ? WHERE webhook_id = ?",
        (row["secret"], row["secret_nonce"], other_id),
    )
    with pytest.raises(SecretUnavailable):
        await store.secret_of(other_id)
    # A row from before sealing (its secret in clear) is sealed when the gateway starts.
    await env.database.execute(
        "UPDATE webhooks SET secret = ?, secret_nonce = '', secret_key_id = ''"
        " WHERE webhook_id = ?",
        (secret, webhook_id),
    )
    assert await store.secret_of(webhook_id) == secret
    assert await store.seal_plaintext_secrets() == 1
    assert await store.seal_plaintext_secrets() == 0
    sealed = await env.database.fetchone(
        "SELECT secret FROM webhooks WHERE webhook_id = ?", (webhook_id,)
    )
    assert sealed is not None and secret not in sealed["secret"]
    assert await store.secret_of(webhook_id) == secret


async def test_a_secret_the_key_cannot_open_drops_the_delivery_unsigned_never_sent(
    env: Env,
) -> None:
    webhook_id, _secret = await _create(env, ["config.halted"])
    await env.database.execute(
        "UPDATE webhooks SET secret_key_id = 'deadbeef' WHERE webhook_id = ?", (webhook_id,)
    )
    _halt(env, env.alice[0])
    assert await env.dispatcher.collect() == 1
    assert await env.dispatcher.send_due() == 1
    assert env.receiver.received == []
    status, log = await env.call("GET", f"{HOOKS}/{webhook_id}/deliveries")
    assert status == 200
    [delivery] = log["deliveries"]
    assert delivery["status"] == "dropped" and "cannot be signed" in delivery["last_error"]


def test_the_secret_key_variable_is_32_bytes_of_base64() -> None:
    environ = trust_env("gateway")
    assert Settings.from_env(environ).webhook_secret_key == b""
    good = base64.b64encode(SECRET_KEY).decode()
    settings = Settings.from_env({**environ, "GATEWAY_WEBHOOK_SECRET_KEY": good})
    assert settings.webhook_secret_key == SECRET_KEY and good not in repr(settings)
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ConfigError, match="GATEWAY_WEBHOOK_SECRET_KEY") as caught:
            Settings.from_env({**environ, "GATEWAY_WEBHOOK_SECRET_KEY": bad})
        assert bad not in str(caught.value)


async def test_without_a_secret_key_no_webhook_can_be_created() -> None:
    database = await db.connect("sqlite:///:memory:")
    settings = Settings(port=0, webhook_allow_private_urls=True, **gateway_trust())
    app = build_app(settings, GatewayDeps(database=database, channels={}, webhook_dispatcher=False))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        _user, token = await add_user(database, "alice", "pro")
        response = await client.post(
            HOOKS,
            headers={"Authorization": f"Bearer {token}"},
            json={"url": "http://127.0.0.1:9/h", "events": ["config.halted"]},
        )
        body = await response.json()
        assert response.status == 503 and body["details"][0]["reason"] == "WEBHOOKS_NOT_CONFIGURED"
    finally:
        await client.close()
        await database.close()


async def test_another_user_cannot_see_delete_test_or_read_deliveries(env: Env) -> None:
    webhook_id, _secret = await _create(env, ["config.halted"])
    status, listed = await env.call("GET", HOOKS, "mallory")
    assert status == 200 and listed["webhooks"] == []
    for method, path in (
        ("DELETE", f"{HOOKS}/{webhook_id}"),
        ("POST", f"{HOOKS}/{webhook_id}/test"),
        ("GET", f"{HOOKS}/{webhook_id}/deliveries"),
    ):
        status, body = await env.call(method, path, "mallory")
        assert status == 404, (method, path, body)
    status, _ = await env.call("GET", f"{HOOKS}/{webhook_id}/deliveries")
    assert status == 200
    status, _ = await env.call("DELETE", f"{HOOKS}/{webhook_id}")
    assert status == 200
    status, _ = await env.call("DELETE", f"{HOOKS}/{webhook_id}")
    assert status == 404


async def test_a_halt_is_delivered_signed_once_even_across_a_restart(env: Env) -> None:
    alice, mallory = env.alice[0], env.mallory[0]
    _halt(env, alice)  # before the webhook: not its business
    webhook_id, secret = await _create(env, ["config.halted"])
    await _create(env, ["config.halted"], "mallory")
    env.engine.add(alice, "pause", {"status": "ACTIVE"}, {"status": "PAUSED"})  # no event
    _halt(env, alice)
    _halt(env, mallory)
    assert await env.dispatcher.collect() == 2  # alice's halt, mallory's halt
    assert await env.dispatcher.send_due() == 2
    mine = [(h, b) for h, b in env.receiver.received if json.loads(b)["user_id"] == alice]
    assert len(mine) == 1
    headers, body = mine[0]
    assert _verify(secret, headers, body)
    assert not _verify(secret, headers, body + b" ")
    event = json.loads(body)
    assert event["type"] == "config.halted" and headers["X-Copytrade-Event"] == "config.halted"
    assert event["id"] == headers["X-Copytrade-Event-Id"] == "engine:3:config.halted"
    assert event["data"]["after"] == {"status": "HALTED"}
    assert event["data"]["action"] == "kill_switch"
    # A restarted dispatcher (same store) finds nothing new: the cursor is durable.
    restarted = Dispatcher(env.dispatcher.store, env.dispatcher.read_entries)
    assert await restarted.collect() == 0
    assert await env.dispatcher.collect() == 0
    status, log = await env.call("GET", f"{HOOKS}/{webhook_id}/deliveries")
    assert status == 200
    [delivery] = log["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered",
        1,
        200,
    )
    assert delivery["payload"]["id"] == "engine:3:config.halted"


async def test_a_failing_receiver_is_retried_on_schedule_then_dropped_with_a_record(
    env: Env,
) -> None:
    webhook_id, _secret = await _create(env, ["reconciliation.discrepancy"])
    env.receiver.script = [(500, {}), (503, {"Retry-After": "7"}), (500, {})]
    counts = {"matched_count": 3, "missing_count": 1, "mismatched_count": 0}
    env.recon.add(env.alice[0], "reconcile", None, counts)
    env.recon.add(env.alice[0], "reconcile", None, {"matched_count": 2})  # clean: no event
    assert await env.dispatcher.collect() == 1
    assert await env.dispatcher.send_due() == 1  # try 1: 500
    assert await env.dispatcher.send_due() == 0  # not due yet
    env.advance(1.0)  # the schedule's first wait
    assert await env.dispatcher.send_due() == 1  # try 2: 503, Retry-After 7 s
    env.advance(2.0)  # the schedule's second wait: Retry-After is longer
    assert await env.dispatcher.send_due() == 0
    env.advance(5.0)
    assert await env.dispatcher.send_due() == 1  # try 3: 500, schedule spent
    env.advance(60.0)
    assert await env.dispatcher.send_due() == 0
    assert len(env.receiver.received) == 3
    ids = {json.loads(b)["id"] for _h, b in env.receiver.received}
    assert ids == {"recon:1:reconciliation.discrepancy"}  # the same event id every try
    status, log = await env.call("GET", f"{HOOKS}/{webhook_id}/deliveries")
    assert status == 200
    [delivery] = log["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("dropped", 3)
    assert (delivery["last_status_code"], delivery["last_error"]) == (500, "HTTP 500")
    assert delivery["next_attempt_at"] is None


async def test_the_test_endpoint_sends_a_signed_test_event(env: Env) -> None:
    webhook_id, secret = await _create(env, ["risk.action"])
    status, body = await env.call("POST", f"{HOOKS}/{webhook_id}/test")
    assert status == 202 and body["delivery"]["event"] == "webhook.test"
    env.advance(1.0)  # queued at the real time, a moment after the test clock's start
    assert await env.dispatcher.send_due() == 1
    [(headers, raw)] = env.receiver.received
    assert _verify(secret, headers, raw)
    assert json.loads(raw)["data"]["webhook_id"] == webhook_id


async def test_a_leader_outage_is_delivered_as_leader_stream_down_then_up(env: Env) -> None:
    alice = env.alice[0]
    webhook_id, secret = await _create(env, ["leader.stream_down", "leader.stream_up"])
    down = {"source_id": "acc-1", "down_since": "2026-12-04T15:00:00.000000Z", "down_seconds": 61}
    env.engine.add(alice, "leader_stream_down", None, down, actor="service:engine")
    assert await env.dispatcher.collect() == 1
    assert await env.dispatcher.collect() == 0  # once per entry, and the engine writes one
    env.engine.add(alice, "leader_stream_up", None, {"source_id": "acc-1"}, actor="service:engine")
    assert await env.dispatcher.collect() == 1
    assert await env.dispatcher.send_due() == 2
    events = []
    for headers, body in env.receiver.received:
        assert _verify(secret, headers, body)
        events.append(json.loads(body))
    assert [e["type"] for e in events] == ["leader.stream_down", "leader.stream_up"]
    assert events[0]["data"]["after"] == down
    assert events[0]["id"] == "engine:1:leader.stream_down"
    status, log = await env.call("GET", f"{HOOKS}/{webhook_id}/deliveries")
    assert status == 200 and {d["status"] for d in log["deliveries"]} == {"delivered"}


def _entry(service: str, action: str, before: Any, after: Any, actor: str = "user:u1") -> Any:
    return {
        "service": service,
        "seq": 9,
        "time": "2026-12-04T00:00:00.000000Z",
        "actor": actor,
        "owner_user_id": "u1",
        "object_type": "copy_config" if service == "engine" else "reconciliation",
        "object_id": "c1",
        "action": action,
        "before": before,
        "after": after,
    }


@pytest.mark.parametrize(
    ("entry", "events"),
    [
        (
            _entry("engine", "kill_switch", {"status": "ACTIVE"}, {"status": "HALTED"}),
            ["config.halted"],
        ),
        (
            _entry("engine", "halt", {"status": "ACTIVE"}, {"status": "HALTED"}, "service:engine"),
            ["config.halted"],
        ),
        (_entry("engine", "stop", {"status": "ACTIVE"}, {"status": "STOPPED"}), []),
        (
            _entry("engine", "stop", {"status": "ACTIVE"}, {"status": "STOPPED"}, "operator:cli"),
            ["config.halted"],
        ),
        (_entry("engine", "reduce", {"status": "ACTIVE"}, {"status": "REDUCING"}), ["risk.action"]),
        (
            _entry("engine", "risk.daily_loss_action", {"status": "ACTIVE"}, {"status": "HALTED"}),
            ["config.halted", "risk.action"],
        ),
        (_entry("engine", "pause", {"status": "ACTIVE"}, {"status": "PAUSED"}), []),
        (
            _entry(
                "engine",
                "risk.daily_loss_action",
                {"status": "ACTIVE"},
                {"status": "PAUSED"},
                "service:engine",
            ),
            ["config.halted", "risk.action"],
        ),
        (_entry("recon", "reconcile", None, {"error_count": 1}), ["reconciliation.discrepancy"]),
        (_entry("recon", "reconcile", None, {"extra_count": 2}), ["reconciliation.discrepancy"]),
        (
            _entry("recon", "reconcile", None, {"total_count": 3, "matched_count": 2}),
            ["reconciliation.discrepancy"],
        ),
        (_entry("recon", "reconcile", None, {"matched_count": 4, "missing_count": 0}), []),
        (
            _entry("broker", "credentials_rejected", None, {"exchange_name": "binance"}),
            ["venue.credentials_rejected"],
        ),
        (_entry("broker", "register", None, {"exchange_name": "binance"}), []),
        (
            _entry("engine", "leader_stream_down", None, {"down_seconds": 61}, "service:engine"),
            ["leader.stream_down"],
        ),
        (
            _entry("engine", "leader_stream_up", None, {"up_at": "x"}, "service:engine"),
            ["leader.stream_up"],
        ),
    ],
)
def test_what_an_audit_entry_means_as_events(entry: Any, events: list[str]) -> None:
    assert [e.event for e in model.events_of(entry)] == events


@pytest.mark.parametrize(
    ("attempts", "retry_after", "expected"),
    [
        (1, None, 1_000),
        (2, None, 2_000),
        (3, None, None),
        (1, 7_000, 7_000),
        (1, 500, 1_000),
        (1, 10_000_000, None),
    ],
)
def test_retry_delay(attempts: int, retry_after: int | None, expected: int | None) -> None:
    assert model.retry_delay_ms(attempts, (1_000, 2_000), retry_after) == expected
