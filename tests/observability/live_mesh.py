"""A mesh on free ports with every metrics port open, one copy made through it, and its scrape.

The e2e mesh fixture turns the services' metrics off (``Ports.free()`` has no metrics base), so
this one gives each service a free ``METRICS_PORT`` through ``component_env``. One leader trade
is copied (what a dashboard's first minutes look like), a reconciliation is run, then the
gateway's ``/metrics`` and every service's metrics port are read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from meshctl.api import RestClient, SimAdmin
from meshctl.demo import create_user, leader_client, register, register_keys, wait_for_copies
from meshctl.launcher import Mesh, Ports, free_ports

SERVICES = ("broker", "engine", "sync", "recon")


@asynccontextmanager
async def metered_mesh(data_dir: Path) -> AsyncIterator[tuple[Mesh, dict[str, str]]]:
    """Run a mesh whose services serve metrics; yield it and each target's ``/metrics`` URL."""
    ports = Ports.free()
    taken = {ports.gateway, ports.broker, ports.engine, ports.sync, ports.recon}
    taken |= set(ports.venues.values())
    metrics = free_ports(len(SERVICES), exclude=taken)
    env = {name: {"METRICS_PORT": str(port)} for name, port in zip(SERVICES, metrics, strict=True)}
    mesh = Mesh(data_dir, ports=ports, component_env=env, log_level="INFO")
    mesh.start()
    try:
        await mesh.wait_ready(timeout=60)
        urls = {"gateway": f"{mesh.gateway_url}/metrics"}
        urls |= {n: f"http://127.0.0.1:{p}/metrics" for n, p in zip(SERVICES, metrics, strict=True)}
        yield mesh, urls
    finally:
        mesh.stop()


async def copy_one_trade(mesh: Mesh, session: aiohttp.ClientSession) -> None:
    """Copy one leader market buy to one follower on simulated Binance, then reconcile it."""
    api = RestClient(session, mesh.gateway_url, await create_user(mesh, "observer"))
    binance = SimAdmin(session, mesh.venue_urls["binance"])
    leader_id, leader_keys = await register_keys(
        api, binance, "binance", "leader", {"USDT": "100000"}
    )
    follower_id, _ = await register(api, binance, "binance", "follower", {"USDT": "10000"})
    started = datetime.now(UTC) - timedelta(seconds=1)
    config = await api.call(
        "POST",
        "/start",
        {
            "source_exchange_id": leader_id,
            "target_exchange_ids": [follower_id],
            "sync_settings": {"sync_interval": 1},
        },
    )
    exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
    try:
        await exchange.create_order("BTC/USDT", "market", "buy", 0.1)
    finally:
        await exchange.close()
    orders = await wait_for_copies(api, config["config_id"], expected_signals=1, timeout=60)
    assert [o["state"] for o in orders] == ["INTENT_STATE_FILLED"], orders
    await api.call(
        "POST",
        "/reconcile",
        {
            "config_id": config["config_id"],
            "start_time": started.isoformat().replace("+00:00", "Z"),
            "end_time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        },
    )


def counted(pages: Iterable[str], series: str) -> float:
    """Return the sum of ``series`` over every page (0 when no page has it)."""
    return sum(
        sample.value
        for page in pages
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name == series
    )


async def scrape(
    session: aiohttp.ClientSession,
    urls: dict[str, str],
    ready: str = "copy_trades_executed_total",
    timeout: float = 30.0,  # noqa: ASYNC109 - a polling deadline, checked between polls
) -> dict[str, str]:
    """Read every ``/metrics`` page, once the pages together count ``ready`` above 0."""
    deadline = time.monotonic() + timeout
    while True:
        pages = {}
        for name, url in urls.items():
            async with session.get(url) as response:
                assert response.status == 200, f"{name} {url}: HTTP {response.status}"
                pages[name] = await response.text()
        if counted(pages.values(), ready) > 0:
            return pages
        assert time.monotonic() < deadline, f"no scraped page counts {ready!r} above 0"
        await asyncio.sleep(0.2)
