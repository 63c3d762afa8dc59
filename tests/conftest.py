"""Shared fixtures: a database per storage test on every configured backend."""

from __future__ import annotations

import pytest

from meshkit.testing import database_urls, fresh_database


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
