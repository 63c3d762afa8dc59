"""Shared fixtures (a database per storage test on every configured backend), the grouping of
tests over pytest-xdist workers, and the chaos summary table."""

from __future__ import annotations

import os
from typing import Any

import pytest

from meshctl.launcher import FREE_PORT_RANGE_ENV, free_port_range
from meshkit.testing import database_urls, fresh_database
from tests.chaos.chaos_summary import ROWS_PROPERTY, Collector

_CHAOS = Collector()


@pytest.fixture(params=database_urls())
async def database(request: pytest.FixtureRequest, tmp_path):
    """An empty database: SQLite always, PostgreSQL when COPYTRADE_TEST_POSTGRES_URL is set."""
    async with fresh_database(request.param, tmp_path) as (db, _url):
        yield db


@pytest.fixture(params=database_urls())
async def database_url(request: pytest.FixtureRequest, tmp_path):
    """The URL of an empty database on every configured backend (for code that opens its own)."""
    async with fresh_database(request.param, tmp_path) as (_db, url):
        yield url


def pytest_configure(config: pytest.Config) -> None:
    """Give each pytest-xdist worker its own slice of the free-port range, so two workers'
    meshes never pick the same port between the pick and the service's bind."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or FREE_PORT_RANGE_ENV in os.environ:
        return
    pool = free_port_range()
    width = len(pool) // workers
    if width < 1000:
        return  # too narrow to split: each picks from the whole range (port 0 if empty)
    start = pool.start + int(worker[2:]) * width
    os.environ[FREE_PORT_RANGE_ENV] = f"{start}-{start + width - 1}"


CHAOS_SHARDS = 2
"""The chaos file is the longest: its faults are dealt over this many workers (round robin)."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group tests for ``pytest -n 2 --dist loadgroup`` (what ``make test`` runs).

    A module's tests stay on one worker, so a module-scoped mesh starts once, not once per
    worker; the chaos faults, about two thirds of the suite's time, are dealt over
    ``CHAOS_SHARDS`` groups so that no worker waits on one long file. Without xdist the groups
    are unused marks.
    """
    chaos_seen = 0
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if module.startswith("tests/chaos/") and item.get_closest_marker("chaos"):
            group = f"{module}#{chaos_seen % CHAOS_SHARDS}"
            chaos_seen += 1
        else:
            group = module
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Gather the rows a chaos test attached to its report (in this process or a worker's)."""
    if report.when != "call":
        return
    for key, rows in report.user_properties:
        if key == ROWS_PROPERTY:
            _CHAOS.add_rows(rows)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the chaos summary table when any chaos run happened."""
    if not _CHAOS.results:
        return
    terminalreporter.section("chaos summary (0 dup, 0 missing, 0 unres. expected in every row)")
    for line in _CHAOS.table():
        terminalreporter.write_line(line)
    terminalreporter.write_line(
        "fired: runs whose fault happened; busy: runs whose fault met copy work in flight (a kill "
        "with a fill being copied, an intent open or fills made while down; a rule met by a "
        "follower order; a fault point that fired). qty: engine and venue disagree on an "
        "order; phantom: a venue order no intent explains."
    )
