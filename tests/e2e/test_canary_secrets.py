"""Canary secrets: every credential a user gives the mesh, and every token and webhook secret it
issues, must appear nowhere it keeps or shows anything — databases and every other persisted
file, logs, metric pages, error bodies and (past its creation answer) the webhook's own
listing, delivery log, audit trail and deliveries — after a full copy with mTLS inside.
"""

from __future__ import annotations

import asyncio
import pathlib
import secrets

import aiohttp
import pytest
from aiohttp import web

from meshctl.api import ApiError, RestClient, SimAdmin
from meshctl.demo import create_user, leader_client
from meshctl.launcher import Mesh, Ports, free_ports
from tests.e2e.conftest import E2E_ENV


async def _wait(predicate, timeout: float = 30.0):  # noqa: ASYNC109 - a polling deadline
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met")
        await asyncio.sleep(0.1)


@pytest.fixture
async def metered_mesh(tmp_path):
    """A mesh whose services' metric pages are on known ports."""
    ports = Ports.free()
    taken = {ports.gateway, ports.broker, ports.engine, ports.sync, ports.recon}
    taken |= set(ports.venues.values())
    picked = free_ports(4, exclude=taken)
    metrics = dict(zip(("broker", "engine", "sync", "recon"), picked, strict=True))
    env = {
        name: {**E2E_ENV.get(name, {}), "METRICS_PORT": str(port)} for name, port in metrics.items()
    }
    # A webhook to a receiver on loopback, polled often.
    env["gateway"] = {
        "GATEWAY_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "GATEWAY_WEBHOOK_POLL_INTERVAL_MS": "200",
    }
    instance = Mesh(tmp_path / "mesh", ports=ports, component_env=env)
    instance.start()
    try:
        await instance.wait_ready(timeout=60)
        yield instance, metrics
    finally:
        instance.stop()


async def test_no_canary_is_persisted_logged_exported_or_echoed(metered_mesh) -> None:
    mesh, metrics = metered_mesh
    token = await create_user(mesh, "alice")
    shown: list[str] = []
    received: list[str] = []

    async def receive(request: web.Request) -> web.Response:
        received.append(f"{dict(request.headers)} {await request.text()}")
        return web.Response(text="ok")

    receiving = web.Application()
    receiving.router.add_post("/hook", receive)
    runner = web.AppRunner(receiving)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        await _canaries(mesh, metrics, token, shown, received, hook_url)
    finally:
        await runner.cleanup()


async def _canaries(mesh, metrics, token, shown, received, hook_url) -> None:
    async with aiohttp.ClientSession() as session:
        api = RestClient(session, mesh.gateway_url, token)
        binance = SimAdmin(session, mesh.venue_urls["binance"])
        leader = await binance.create_account(
            {"USDT": "100000"}, can_trade=True, can_withdraw=False
        )
        follower = await binance.create_account(
            {"USDT": "10000"}, can_trade=True, can_withdraw=False
        )
        canaries = [
            token,
            leader["api_key"],
            leader["api_secret"],
            follower["api_key"],
            follower["api_secret"],
        ]
        ids = []
        for keys in (leader, follower):
            reply = await api.call(
                "POST",
                "/exchanges",
                {
                    "exchange_name": "binance",
                    "api_key": keys["api_key"],
                    "api_secret": keys["api_secret"],
                },
            )
            shown.append(str(reply))
            ids.append(reply["exchange"]["exchange_id"])
        # Bad input carrying a secret: the error names the field, never echoes the value.
        wrong = "canary-" + secrets.token_hex(16)
        canaries.append(wrong)
        for body in (
            {"exchange_name": "nowhere", "api_key": wrong, "api_secret": wrong},
            {"exchange_name": "binance", "api_key": follower["api_key"], "api_secret": wrong},
        ):
            for path in ("/exchanges", "/test-broker"):
                try:
                    shown.append(str(await api.call("POST", path, body)))
                except ApiError as e:
                    shown.append(str(e))
        config = await api.call(
            "POST",
            "/start",
            {
                "source_exchange_id": ids[0],
                "target_exchange_ids": [ids[1]],
                "sync_settings": {"sync_interval": 1},
            },
        )
        exchange = leader_client(mesh.venue_urls["binance"], leader)
        try:
            await exchange.create_order("BTC/USDT", "market", "buy", 0.1)
        finally:
            await exchange.close()
        await _wait(lambda: binance.orders(follower["api_key"]))
        shown.append(str(await api.call("GET", f"/orders/{config['config_id']}")))
        shown.append(str(await api.call("GET", "/exchanges")))
        # A webhook: its secret is in the creation answer only (not added to what is shown).
        created = await api.call(
            "POST", "/webhooks", {"url": hook_url, "events": ["config.halted"]}
        )
        webhook_id = created["webhook"]["webhook_id"]
        canaries.append(created["secret"])
        shown.append(str(await api.call("POST", f"/webhooks/{webhook_id}/test")))

        async def delivered():
            log = await api.call("GET", f"/webhooks/{webhook_id}/deliveries")
            return log if received and log["deliveries"][0]["status"] == "delivered" else None

        shown.append(str(await _wait(delivered)))
        shown.append(str(await api.call("GET", "/webhooks")))
        shown.append(str(await api.call("GET", "/audit")))
        shown += received
        for port in metrics.values():
            async with session.get(f"http://127.0.0.1:{port}/metrics") as page:
                assert page.status == 200
                shown.append(await page.text())
        async with session.get(f"{mesh.gateway_url}/metrics") as page:
            shown.append(await page.text())
    mesh.stop()
    found = []
    kept = [
        p
        for p in pathlib.Path(mesh.data_dir).rglob("*")  # noqa: ASYNC240 - the mesh has stopped
        if p.is_file() and p.name != "exchange_sim.log"
    ]  # the venue's own log is the venue's
    assert any(p.suffix == ".db" for p in kept) and any(p.suffix == ".log" for p in kept)
    for path in kept:
        data = path.read_bytes()
        found += [f"{path.name}" for canary in canaries if canary.encode() in data]
    for text in shown:
        found += ["a response or metric page" for canary in canaries if canary in text]
    assert found == []
