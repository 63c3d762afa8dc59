"""A user's webhook on the real mesh: a kill switch produces one signed ``config.halted``
delivery at a receiver on 127.0.0.1, verified as docs/webhooks.md tells a receiver to; a
leader venue that stops answering (the emulator's faults) produces one ``leader.stream_down``."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import aiohttp
import pytest
from aiohttp import web

from meshctl.api import RestClient, SimAdmin
from meshctl.demo import create_user, register_keys
from meshctl.launcher import Mesh, Ports
from tests.e2e.conftest import E2E_ENV
from tests.e2e.helpers import wait_for


@pytest.fixture
async def hooked_mesh(tmp_path):
    """A mesh whose gateway may call a webhook on loopback, and polls for events often."""
    gateway = {
        "GATEWAY_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "GATEWAY_WEBHOOK_POLL_INTERVAL_MS": "200",
    }
    # A leader outage is alerted after half a second (60 s in production), looked for often.
    engine = {
        **E2E_ENV.get("engine", {}),
        "LEADER_DOWN_ALERT_MS": "500",
        "LEADER_MONITOR_INTERVAL_MS": "200",
    }
    instance = Mesh(
        tmp_path / "mesh",
        ports=Ports.free(),
        component_env={**E2E_ENV, "gateway": gateway, "engine": engine},
    )
    instance.start()
    try:
        await instance.wait_ready(timeout=60)
        yield instance
    finally:
        instance.stop()


async def test_a_kill_switch_and_a_leader_outage_are_delivered_as_signed_events(hooked_mesh: Mesh):
    received: list[tuple[dict[str, str], bytes]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            api = RestClient(session, hooked_mesh.gateway_url, await create_user(hooked_mesh, "al"))
            binance = SimAdmin(session, hooked_mesh.venue_urls["binance"])
            created = await api.call(
                "POST",
                "/webhooks",
                {"url": f"http://127.0.0.1:{port}/hook", "events": ["config.halted"]},
            )
            webhook_id, secret = created["webhook"]["webhook_id"], created["secret"]
            leader_id, _ = await register_keys(
                api, binance, "binance", "leader", {"USDT": "100000"}
            )
            follower_id, _ = await register_keys(
                api, binance, "binance", "follower", {"USDT": "10000"}
            )
            config = await api.call(
                "POST",
                "/start",
                {"source_exchange_id": leader_id, "target_exchange_ids": [follower_id]},
            )
            halted = await api.call("POST", "/kill-switch", {"config_id": config["config_id"]})
            assert halted["config_ids"] == [config["config_id"]]

            async def delivered():
                log = await api.call("GET", f"/webhooks/{webhook_id}/deliveries")
                done = [d for d in log["deliveries"] if d["status"] == "delivered"]
                return done if done and received else None

            [delivery] = await wait_for(delivered)
    finally:
        await runner.cleanup()

    assert len(received) == 1
    headers, body = received[0]
    timestamp = headers["X-Copytrade-Timestamp"]
    assert abs(time.time() - int(timestamp)) < 300
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest("sha256=" + expected.hexdigest(), headers["X-Copytrade-Signature"])
    event = json.loads(body)
    assert event["type"] == "config.halted"
    assert event["id"] == delivery["event_id"] == headers["X-Copytrade-Event-Id"]
    assert event["data"]["object_id"] == config["config_id"]
    assert event["data"]["action"] == "kill_switch"
    assert event["data"]["after"]["status"] == "HALTED"
    # The secret travels only in the creation answer: never in a log line of the gateway.
    log_text = (hooked_mesh.data_dir / "logs" / "gateway.log").read_text(errors="replace")
    assert secret not in log_text
    # On the same mesh (one start-up for both): a leader venue that stops answering.
    await _a_leader_venue_that_stops_answering_is_one_leader_stream_down(hooked_mesh)


async def _a_leader_venue_that_stops_answering_is_one_leader_stream_down(hooked_mesh: Mesh):
    received: list[dict] = []

    async def receive(request: web.Request) -> web.Response:
        received.append(json.loads(await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            api = RestClient(session, hooked_mesh.gateway_url, await create_user(hooked_mesh, "bo"))
            binance = SimAdmin(session, hooked_mesh.venue_urls["binance"])
            kraken = SimAdmin(session, hooked_mesh.venue_urls["kraken"])
            await api.call(
                "POST",
                "/webhooks",
                {"url": f"http://127.0.0.1:{port}/hook", "events": ["leader.stream_down"]},
            )
            leader_id, _ = await register_keys(
                api, binance, "binance", "leader", {"USDT": "100000"}
            )
            follower_id, _ = await register_keys(
                api, kraken, "kraken", "follower", {"USD": "10000"}
            )
            config = await api.call(
                "POST",
                "/start",
                {
                    "source_exchange_id": leader_id,
                    "target_exchange_ids": [follower_id],
                    "sync_settings": {"sync_interval": 1, "max_retries": 0},
                },
            )
            # The leader's venue answers nothing but 503, and drops its private streams.
            await binance._call(
                "POST",
                "faults",
                {"method": "*", "path": "/api/*", "status": 503, "body": "down", "count": -1},
            )
            await binance._call("POST", "streams/close", {"reason": "venue down"})

            async def alerted():
                return [e for e in received if e["type"] == "leader.stream_down"]

            [event] = await wait_for(alerted)
            # The status says why (once per outage is proven in the engine's service test).
            status = await api.call("GET", f"/status/{config['config_id']}")
            assert status["source_error"]
            await binance._call("DELETE", "faults")
    finally:
        await runner.cleanup()
    assert event["data"]["object_id"] == config["config_id"]
    assert event["data"]["action"] == "leader_stream_down"
    assert event["data"]["after"]["source_id"] == leader_id
    assert len([e for e in received if e["type"] == "leader.stream_down"]) == 1
