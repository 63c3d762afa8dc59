"""Broker replicas on one database: each joins ``broker_replicas`` and takes its share of every
venue's rate limit; on SQLite a second replica is refused with one line for the operator."""

from __future__ import annotations

import asyncio
import base64
import os
import pathlib
import sys

import pytest

from broker_svc.adapters.paper_exchange import PaperVenue, PaperVenues
from broker_svc.adapters.ratelimit import RateLimits
from broker_svc.config import Settings
from broker_svc.server import Dependencies, build_server
from meshkit.service import EXIT_CONFIGURATION, explain
from meshkit.settings import ConfigError
from meshkit.testing import eventually, mesh_trust, trust_env

ROOT = pathlib.Path(__file__).resolve().parents[3]
KEY = b"k" * 32


def _settings(database_url: str, **changes: object) -> Settings:
    fields: dict[str, object] = {
        "encryption_key": KEY,
        "grpc_port": 0,
        "metrics_port": 0,
        "database_url": database_url,
        **mesh_trust("broker"),
    }
    fields.update(changes)
    return Settings(**fields)


async def _start(database_url: str, limits: RateLimits, **changes: object):
    return await build_server(
        _settings(database_url, **changes),
        Dependencies(venues=PaperVenues(PaperVenue("binance")), rate_limits=limits),
    )


async def test_two_brokers_on_one_database_share_the_venue_limits_or_sqlite_refuses_the_second(
    database_url: str,
) -> None:
    first_limits, second_limits = RateLimits(), RateLimits()
    first, release_first = await _start(database_url, first_limits, lease_ttl_ms=1_000)
    try:
        assert first_limits.replicas == 1
        if database_url.startswith("sqlite"):
            with pytest.raises(ConfigError) as refused:
                await _start(database_url, second_limits, lease_ttl_ms=300)
            code, line = explain(refused.value)
            assert code == EXIT_CONFIGURATION
            assert "another broker replica uses it" in line and "PostgreSQL" in line
            assert first_limits.replicas == 1
            return
        second, release_second = await _start(database_url, second_limits, lease_ttl_ms=1_000)
        try:
            assert second_limits.replicas == 2  # its first round saw the first replica
            await eventually(lambda: first_limits.replicas == 2)
        finally:
            await second.stop(grace=None)
            await release_second()
        # The second left on its way out: the first takes the whole limit back.
        await eventually(lambda: first_limits.replicas == 1)
    finally:
        await first.stop(grace=None)
        await release_first()


async def test_python_m_broker_svc_on_a_sqlite_file_in_use_prints_why_and_exits_2(
    tmp_path: pathlib.Path,
) -> None:
    url = f"sqlite:///{tmp_path}/broker.db"
    running, release = await _start(url, RateLimits())
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRPC_", "DATABASE_URL", "TLS_", "ASSERTION_"))
    }
    env.update(trust_env("broker"))
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT / "gen"), str(ROOT)]),
        DATABASE_URL=url,
        ENCRYPTION_KEY=base64.b64encode(KEY).decode(),
        GRPC_PORT="0",
        METRICS_PORT="0",
        LEASE_TTL_MS="300",
    )
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "broker_svc",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), 40)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    finally:
        await running.stop(grace=None)
        await release()
    lines = stderr.decode().strip().splitlines()
    assert process.returncode == EXIT_CONFIGURATION, stderr.decode()
    assert len(lines) == 1 and "Traceback" not in lines[0], stderr.decode()
    assert "DATABASE_URL is SQLite and another broker replica uses it" in lines[0]
