"""Leases: one holder at a time, a token that grows at every acquisition, fair shares, fencing."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import pytest

from meshkit import db, leases
from meshkit.settings import ConfigError


async def _table(database: db.Database) -> leases.LeaseTable:
    async with database.transaction() as tx:
        for statement in leases.SCHEMA_SQL.format(prefix="t").split(";"):
            if statement.strip():
                await tx.execute(statement)
    return leases.LeaseTable(database, "t")


async def test_one_holder_and_a_growing_token(database: db.Database) -> None:
    table = await _table(database)
    assert await table.acquire("src-1", "a", 60_000) == (1, False)
    assert await table.acquire("src-1", "b", 60_000) is None
    await table.release("src-1", "a", 1)
    assert await table.acquire("src-1", "b", 60_000) == (2, False)
    assert await table.renew("a", {"src-1": 1}, 60_000) == set()
    assert await table.renew("b", {"src-1": 2}, 60_000) == {"src-1"}


async def test_an_expired_lease_is_taken_over_and_the_old_token_is_fenced(
    database: db.Database,
) -> None:
    table = await _table(database)
    assert await table.acquire("src-1", "a", 1) == (1, False)
    await asyncio.sleep(0.05)
    assert await table.acquire("src-1", "b", 60_000) == (2, True)
    async with database.transaction() as tx:
        await table.check_current(tx, "src-1", 2)
    with pytest.raises(leases.Fenced):
        async with database.transaction() as tx:
            await table.check_current(tx, "src-1", 1)
    # The old holder can no longer renew it either.
    assert await table.renew("a", {"src-1": 1}, 60_000) == set()


async def _keeper(
    table: leases.LeaseTable, name: str, wanted: set[str], log: list[tuple[str, str, str]]
) -> leases.LeaseKeeper:
    async def want() -> set[str]:
        return wanted

    async def acquired(resource: str, token: int) -> None:
        log.append((name, "+", resource))

    async def lost(resource: str, token: int) -> None:
        log.append((name, "-", resource))

    return leases.LeaseKeeper(
        table,
        service="test",
        wanted=want,
        on_acquired=acquired,
        on_lost=lost,
        replica_id=name,
        ttl_seconds=0.3,
        interval_seconds=3600,
    )


async def test_replicas_share_the_work_and_a_dead_ones_share_moves_on(
    database: db.Database,
) -> None:
    table = await _table(database)
    wanted = {f"src-{i}" for i in range(6)}
    log: list[tuple[str, str, str]] = []
    a = await _keeper(table, "a", wanted, log)
    b = await _keeper(table, "b", wanted, log)
    c = await _keeper(table, "c", wanted, log)
    await a.round()
    assert len(a.held) == 6  # alone: everything
    await b.round()
    await c.round()
    for _ in range(3):  # a hands over its extra share, the others take it
        for keeper in (a, b, c):
            await keeper.round()
    assert sorted(len(k.held) for k in (a, b, c)) == [2, 2, 2]
    assert set(a.held) | set(b.held) | set(c.held) == wanted
    # c stops answering (killed): its leases expire and a and b take them, with new tokens.
    old = c.held
    await asyncio.sleep(0.4)
    for _ in range(2):
        await a.round()
        await b.round()
    assert sorted(len(k.held) for k in (a, b)) == [3, 3]
    for resource, token in old.items():
        assert (a.held | b.held)[resource] > token
    # c wakes up: it cannot renew what it held; it learns it lost it.
    await c.round()
    assert not set(c.held) & set(old)
    assert sum(1 for name, sign, _ in log if name == "c" and sign == "-") == len(old)


async def test_a_graceful_stop_hands_the_leases_over_at_once(database: db.Database) -> None:
    table = await _table(database)
    log: list[tuple[str, str, str]] = []
    a = await _keeper(table, "a", {"s1", "s2"}, log)
    b = await _keeper(table, "b", {"s1", "s2"}, log)
    await a.round()
    await b.round()
    await a.stop()
    await b.round()
    assert set(b.held) == {"s1", "s2"}
    assert await table.live_replicas() == ["b"]


async def test_stop_ends_a_round_loop_that_swallowed_its_cancel(database: db.Database) -> None:
    # Python 3.11's wait_for can lose a cancel that arrives as its timeout fires; a loop that
    # runs on after one cancel must still be stopped (an engine hung at shutdown on it, with
    # its database connection held). The loop here swallows the first cancel, as that bug does.
    table = await _table(database)
    keeper = await _keeper(table, "a", {"s1"}, [])
    await keeper.round()
    cancels = 0

    async def stubborn() -> None:
        nonlocal cancels
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancels += 1
                if cancels > 1:
                    raise

    loop = keeper._loop = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    stopping = asyncio.create_task(keeper.stop())
    await asyncio.wait([stopping], timeout=30)  # a hang detector: it takes half a second
    hung = not stopping.done()
    loop.cancel()  # if it hung: let the stop end, so the test fails instead of hanging
    await stopping
    assert not hung, "stop() waited for ever on a loop that swallowed one cancel"
    assert cancels == 2 and keeper._loop is None
    assert await table.live_replicas() == []


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_second_replica_on_sqlite_refuses_to_start(database: db.Database) -> None:
    table = await _table(database)
    log: list[tuple[str, str, str]] = []
    first = await _keeper(table, "first", {"s1"}, log)
    first.interval = 0.05
    await first.start()
    second = await _keeper(table, "second", {"s1"}, log)
    try:
        with pytest.raises(ConfigError, match="SQLite serves one replica"):
            await second.start(sqlite_wait_seconds=0.5)
    finally:
        await first.stop()
    # Once the first has left, a new one starts.
    third = await _keeper(table, "third", {"s1"}, log)
    await third.start(sqlite_wait_seconds=0.5)
    assert set(third.held) == {"s1"}
    await third.stop()


async def test_the_leases_of_a_dead_process_on_this_host_are_taken_at_once(
    database: db.Database,
) -> None:
    # A replica killed with -9 and restarted by its supervisor: the restart need not wait out
    # the dead one's TTL when the dead process was on this host.
    table = await _table(database)
    process = subprocess.Popen(["true"])  # noqa: ASYNC220 - a short child, reaped at once
    process.wait()
    dead_pid = process.pid
    await database.execute(
        "INSERT INTO t_replicas (replica_id, host, pid, address, started_at, expires_at)"
        " VALUES (?, ?, ?, '', 0, ?)",
        ("dead", socket.gethostname(), dead_pid, 2**62),
    )
    assert await table.acquire("src-1", "dead", 3_600_000) == (1, False)
    log: list[tuple[str, str, str]] = []
    restart = await _keeper(table, "restart", {"src-1"}, log)
    await restart.round()
    assert restart.held == {"src-1": 2}
    assert await table.live_replicas() == ["restart"]
    # A replica of another host is left alone: only its TTL says it is gone.
    await database.execute(
        "INSERT INTO t_replicas (replica_id, host, pid, address, started_at, expires_at)"
        " VALUES (?, ?, ?, '', 0, ?)",
        ("elsewhere", "another-host", dead_pid, 2**62),
    )
    assert "elsewhere" in await table.live_replicas()
    await restart.round()
    assert "elsewhere" in await table.live_replicas()


async def test_a_restart_under_the_same_replica_id_takes_its_leases_back_at_once(
    database: db.Database,
) -> None:
    # In Kubernetes a container restarted in its pod keeps the pod's name as its replica id.
    table = await _table(database)
    assert await table.acquire("src-1", "pod-a", 3_600_000) == (1, False)
    log: list[tuple[str, str, str]] = []
    again = await _keeper(table, "pod-a", {"src-1"}, log)
    await again.start(sqlite_wait_seconds=0)
    try:
        assert again.held == {"src-1": 2}  # a new token: the previous run is fenced
    finally:
        await again.stop()


def test_a_killed_process_not_yet_waited_for_counts_as_gone() -> None:
    # A supervisor reaps its child some time after kill -9: until then it is a zombie, which
    # still answers signal 0 but will never renew a lease again.
    process = subprocess.Popen(["sleep", "30"])
    try:
        assert leases._pid_alive(process.pid)
        process.kill()
        for _ in range(200):
            with open(f"/proc/{process.pid}/stat", "rb") as stat:
                if stat.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
            time.sleep(0.01)
        assert not leases._pid_alive(process.pid)
    finally:
        process.wait()
