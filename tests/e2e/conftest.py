"""The whole mesh as real processes on loopback: emulators, four services and the gateway."""

from __future__ import annotations

import os
import uuid

import aiohttp
import pytest

from meshctl.api import RestClient, SimAdmin
from meshctl.demo import create_user
from meshctl.launcher import Mesh, Ports
from meshkit import db
from meshkit.testing import POSTGRES_ENV, database_urls
from tests.e2e.helpers import print_logs

E2E_ENV = {
    # A broker killed mid-order leaves an order the venue may never have taken: the engine
    # re-sends it (same client order id) only after the not-found lag window, 90 s in
    # production. The emulator has no not-found lag unless a test asks, so 5 s is safe here.
    "engine": {"RESEND_LAG_SECONDS": "5"},
    "broker": {"RESEND_SAFE_AFTER_SECONDS": "5"},
}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Keep each phase's report on the test, so the mesh fixture knows whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "report_call", None)
    return report is not None and report.failed


@pytest.fixture(params=database_urls())
async def mesh(request: pytest.FixtureRequest, tmp_path):
    """A running mesh on free ports, on SQLite files or on one fresh PostgreSQL schema."""
    shared_url = None
    schema = None
    if request.param == "postgresql":
        base = os.environ[POSTGRES_ENV]
        schema = f"e2e_{uuid.uuid4().hex[:10]}"
        admin = await db.connect(base)
        await admin.execute(f"CREATE SCHEMA {schema}")
        await admin.close()
        shared_url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    instance = Mesh(
        tmp_path / "mesh",
        ports=Ports.free(),
        shared_database_url=shared_url,
        log_level="INFO",
        component_env=E2E_ENV,
    )
    instance.start()
    try:
        await instance.wait_ready(timeout=60)
        yield instance
    finally:
        if _failed(request):
            print_logs(instance)
        instance.stop()
        if schema:
            admin = await db.connect(os.environ[POSTGRES_ENV])
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
            await admin.close()


@pytest.fixture
async def session():
    """An HTTP session for the test."""
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
async def api(mesh: Mesh, session: aiohttp.ClientSession) -> RestClient:
    """A REST client of a fresh pro user."""
    return RestClient(session, mesh.gateway_url, await create_user(mesh, "alice"))


@pytest.fixture
def binance(mesh: Mesh, session: aiohttp.ClientSession) -> SimAdmin:
    """The Binance emulator's admin API."""
    return SimAdmin(session, mesh.venue_urls["binance"])
