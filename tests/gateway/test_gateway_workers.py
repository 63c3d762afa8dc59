"""GATEWAY_WORKERS: several processes on one port, one webhook dispatcher, one rate limit per
user across them, and no worker left behind when the supervisor is killed.

A real ``python -m gateway`` with two workers over a fake engine (its audit chain) on an
in-process gRPC server, a webhook receiver on 127.0.0.1, and the gateway's SQLite file.
"""

from __future__ import annotations

import asyncio
import base64
import os
import pathlib
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.engine.v1 import engine_service_pb2_grpc as engine_grpc
from gateway.config import Settings
from gateway.store import GatewayStore
from gateway.users import add_user
from gateway.workers import SharedBuckets, SharedSpent, SharedTable
from meshctl.launcher import free_ports
from meshkit import db
from meshkit.server import Registration
from meshkit.settings import ConfigError
from meshkit.testing import eventually, inprocess_server, trust_env
from tests.gateway.conftest import API
from tests.gateway.test_gateway_webhooks import Receiver, _Chain, _Engine

ROOT = pathlib.Path(__file__).resolve().parents[2]
SECRET_KEY = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class Running:
    process: asyncio.subprocess.Process
    url: str
    token: str
    engine: _Chain
    receiver: Receiver
    alice: str


@pytest.fixture
async def running(tmp_path: pathlib.Path) -> AsyncIterator[Running]:
    engine = _Chain("engine", engine_pb.ListAuditEntriesResponse)
    registrations = [
        Registration(
            engine_grpc.add_EngineServiceServicer_to_server,
            _Engine(engine),
            "copytrade.engine.v1.EngineService",
        ),
    ]
    receiver = Receiver()
    receiving = web.Application()
    receiving.router.add_post("/hook", receiver.handle)
    receiver_server = TestServer(receiving, host="127.0.0.1")
    await receiver_server.start_server()
    receiver.url = str(receiver_server.make_url("/hook"))
    url = f"sqlite:///{tmp_path}/gateway.db"
    database = await db.connect(url)
    await GatewayStore(database).migrate()
    alice, token = await add_user(database, "alice", "pro")
    await database.close()
    (port,) = free_ports(1)
    async with inprocess_server(registrations) as (server, _channel):
        backend = f"127.0.0.1:{server.port}"
        env = {
            **os.environ,
            **trust_env("gateway"),
            "PYTHONPATH": f"{ROOT / 'gen'}:{ROOT}",
            "DATABASE_URL": url,
            "GATEWAY_PORT": str(port),
            "GATEWAY_WORKERS": "2",
            "BROKER_SVC_ADDR": backend,
            "ENGINE_SVC_ADDR": backend,
            "SYNC_SVC_ADDR": backend,
            "RECON_SVC_ADDR": backend,
            "GATEWAY_RATE_LIMIT_PER_SECOND": "1",
            "GATEWAY_RATE_LIMIT_BURST": "6",
            "GATEWAY_WEBHOOK_POLL_INTERVAL_MS": "50",
            "GATEWAY_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
            "GATEWAY_WEBHOOK_SECRET_KEY": SECRET_KEY,
            "LOG_LEVEL": "WARNING",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", env=env, cwd=str(ROOT)
        )
        try:
            yield Running(process, f"http://127.0.0.1:{port}", token, engine, receiver, alice)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await receiver_server.close()


def _received(receiver: Receiver, count: int) -> Callable[[], bool]:
    return lambda: len(receiver.received) >= count


async def _workers_seen(base: str, wanted: int) -> set[int]:
    seen: set[int] = set()

    async def one() -> bool:
        # A new connection each time, so that the kernel may pick another worker.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            try:
                async with session.get(f"{base}/livez") as response:
                    seen.add((await response.json())["worker"])
            except aiohttp.ClientConnectionError:
                return False
        return len(seen) >= wanted

    await eventually(one, timeout=15.0)
    return seen


async def test_two_workers_share_the_port_the_limit_and_one_dispatcher(running: Running) -> None:
    assert await _workers_seen(running.url, 2) == {0, 1}
    workers = _children(running.process.pid)
    assert len(workers) == 2

    headers = {"Authorization": f"Bearer {running.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(
            f"{running.url}{API}/webhooks",
            json={"url": running.receiver.url, "events": ["config.halted"]},
        ) as response:
            assert response.status == 201, await response.text()
        # Each event once, though two workers run: only worker 0 dispatches.
        for expected in (1, 2):
            running.engine.add(
                running.alice, "kill_switch", {"status": "ACTIVE"}, {"status": "HALTED"}
            )
            await eventually(_received(running.receiver, expected), timeout=10.0)
        async with session.get(f"{running.url}{API}/webhooks") as response:
            hooks = (await response.json())["webhooks"]
        async with session.get(
            f"{running.url}{API}/webhooks/{hooks[0]['webhook_id']}/deliveries"
        ) as response:
            deliveries = (await response.json())["deliveries"]
        assert len(deliveries) == 2, deliveries
        assert len(running.receiver.received) == 2

    # The burst of 6 (minus the 3 calls above, plus what refilled) is the user's, whichever
    # worker a connection reaches: 12 calls on fresh connections cannot all pass.
    codes = []
    for _ in range(12):
        connector = aiohttp.TCPConnector(force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector, headers=headers) as session,
            session.get(f"{running.url}{API}/webhooks") as response,
        ):
            codes.append(response.status)
    assert codes.count(429) >= 12 - 6, codes

    running.process.kill()  # SIGKILL: the supervisor cannot stop its workers itself
    await running.process.wait()
    await eventually(lambda: not any(_alive(pid) for pid in workers), timeout=10.0)


async def test_sigterm_stops_the_workers_and_the_supervisor_exits_0(running: Running) -> None:
    await _workers_seen(running.url, 1)
    workers = _children(running.process.pid)
    running.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(running.process.wait(), 20.0) == 0
    assert not any(_alive(pid) for pid in workers)


def test_shared_buckets_are_one_limit_for_every_worker(tmp_path: pathlib.Path) -> None:
    path = str(tmp_path / "limits")
    first, second = SharedTable(path, 64), SharedTable(path, 64)  # two workers' mappings
    now = [100.0]

    def local(_key: str) -> float:
        raise AssertionError("the shared table had room")

    a, b = SharedBuckets(first, 1.0, 4, local), SharedBuckets(second, 1.0, 4, local)
    waits = [(a if i % 2 else b).acquire("alice", now[0]) for i in range(6)]
    assert waits[:4] == [0.0] * 4 and all(w > 0 for w in waits[4:])
    assert a.acquire("bob", now[0]) == 0.0  # another user's own bucket
    now[0] += 2.0
    assert b.acquire("alice", now[0]) == 0.0

    spent_a, spent_b = SharedSpent(first), SharedSpent(second)
    assert spent_a.spend("ticket-1", 200.0, 100.0) is True
    assert spent_b.spend("ticket-1", 200.0, 100.0) is False


def test_gateway_workers_setting() -> None:
    env = trust_env("gateway")
    assert Settings.from_env(env).workers == 1
    assert Settings.from_env({**env, "GATEWAY_WORKERS": "4"}).workers == 4
    assert Settings.from_env({**env, "GATEWAY_WORKERS": "auto"}).workers == 0
    with pytest.raises(ConfigError, match="GATEWAY_WORKERS"):
        Settings.from_env({**env, "GATEWAY_WORKERS": "0"})
