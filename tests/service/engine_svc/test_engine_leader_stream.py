"""A leader's venue unreadable too long: one leader_stream_down entry per outage, then up.

Sync says since when it cannot read the source (``Source.down_since``); the engine's leader
monitor writes ``leader_stream_down`` to each copying configuration's audit trail once the
outage passes ``LEADER_DOWN_ALERT_MS`` (60 s by default), and ``leader_stream_up`` when it ends:
once per outage, however many rounds or replicas look (the gateway sends them as webhooks).
"""

from __future__ import annotations

import json
from datetime import timedelta

from engine_harness import Harness

from copytrade.engine.v1 import engine_service_pb2 as pb
from engine_svc.leader_monitor import DOWN, UP
from meshkit.testing import eventually


async def _leader_entries(harness: Harness) -> list[tuple[str, str, dict]]:
    reply = await harness.call("ListAuditEntries", pb.ListAuditEntriesRequest(page_size=100))
    return [
        (e.action, e.object_id, json.loads(e.after_json or "null"))
        for e in reversed(reply.entries)
        if e.action in (DOWN, UP)
    ]


async def test_a_long_leader_outage_is_audited_once_and_its_end_too(harness: Harness) -> None:
    leader = harness.world.broker.add_account()
    follower = harness.world.broker.add_account()
    started = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(
            source_exchange_id=leader.exchange_id, target_exchange_ids=[follower.exchange_id]
        ),
    )
    config_id = started.config_id
    assert harness.engine is not None and harness.engine.leader_monitor is not None
    monitor = harness.engine.leader_monitor
    source = harness.world.sync.sources[leader.exchange_id]
    engine = harness.engine

    async def held() -> bool:  # only the replica holding the source's lease reads it
        return engine.ownership.token(leader.exchange_id) is not None

    await eventually(held, timeout=5)

    # Down for 10 s: below the threshold, nothing.
    first = harness.clock.now() - timedelta(seconds=10)
    source.down_since.FromDatetime(first)
    source.last_error = "EXCHANGE_UNAVAILABLE: venue unavailable"
    await monitor.round()
    assert await _leader_entries(harness) == []

    # Past 60 s: one entry, however many rounds look.
    harness.clock.advance(60)
    for _ in range(3):
        await monitor.round()
    [(action, object_id, after)] = await _leader_entries(harness)
    assert (action, object_id) == (DOWN, config_id)
    assert after["source_id"] == leader.exchange_id
    assert after["last_error"] == "EXCHANGE_UNAVAILABLE: venue unavailable"
    assert after["down_seconds"] >= 60

    # Read again: one leader_stream_up.
    source.ClearField("down_since")
    source.last_error = ""
    for _ in range(2):
        await monitor.round()
    assert [a for a, _, _ in await _leader_entries(harness)] == [DOWN, UP]

    # A second outage, across an engine restart: one more of each.
    source.down_since.FromDatetime(harness.clock.now())
    harness.clock.advance(61)
    await harness.restart()
    assert harness.engine is not None and harness.engine.leader_monitor is not None
    engine = harness.engine
    await eventually(held, timeout=5)
    for _ in range(2):
        await harness.engine.leader_monitor.round()
    source.ClearField("down_since")
    await harness.engine.leader_monitor.round()
    assert [a for a, _, _ in await _leader_entries(harness)] == [DOWN, UP, DOWN, UP]


async def test_a_published_leaders_follower_sees_the_leader_id_and_the_reason_only(
    harness: Harness,
) -> None:
    account = harness.world.broker.add_account()
    published = await harness.call(
        "PublishLeader",
        pb.PublishLeaderRequest(exchange_id=account.exchange_id, display_name="Alice's BTC"),
    )
    leader_id = published.leader.leader_id
    follower = "user-bob"
    target = harness.world.broker.add_account(follower)
    started = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(source_leader_id=leader_id, target_exchange_ids=[target.exchange_id]),
        user=follower,
    )
    assert harness.engine is not None and harness.engine.leader_monitor is not None
    engine = harness.engine

    async def held() -> bool:
        return engine.ownership.token(account.exchange_id) is not None

    await eventually(held, timeout=5)
    source = harness.world.sync.sources[account.exchange_id]
    source.down_since.FromDatetime(harness.clock.now() - timedelta(seconds=61))
    source.last_error = "EXCHANGE_UNAVAILABLE: venue unavailable for key k3y-of-the-leader"
    await engine.leader_monitor.round()  # type: ignore[union-attr]
    reply = await harness.call(
        "ListAuditEntries", pb.ListAuditEntriesRequest(page_size=100), user=follower
    )
    [entry] = [e for e in reply.entries if e.action == DOWN]
    assert entry.object_id == started.config_id
    after = json.loads(entry.after_json)
    assert after["leader_id"] == leader_id and "source_id" not in after
    assert after["last_error"] == "EXCHANGE_UNAVAILABLE"
    assert (
        account.exchange_id not in entry.after_json and "k3y-of-the-leader" not in entry.after_json
    )
