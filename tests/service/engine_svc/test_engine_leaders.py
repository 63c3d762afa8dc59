"""Published leaders: publish, list, follow, unpublish, and every cross-tenant refusal."""

from __future__ import annotations

import grpc
import pytest
from engine_fakes import OTHER_USER, USER, error_reason, field_paths, new_id
from engine_harness import Harness

from copytrade.engine.v1 import engine_service_pb2 as pb
from meshkit.testing import as_user, eventually

FOLLOWER = "user-bob"


async def _error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def _publish(harness: Harness, name: str = "Alice's BTC") -> tuple[str, str]:
    """Publish a new account of USER; return the leader id and the account id."""
    account = harness.world.broker.add_account(USER)
    reply = await harness.call(
        "PublishLeader",
        pb.PublishLeaderRequest(exchange_id=account.exchange_id, display_name=name),
    )
    return reply.leader.leader_id, account.exchange_id


async def _follow(harness: Harness, leader_id: str, user: str = FOLLOWER) -> tuple[str, str]:
    target = harness.world.broker.add_account(user)
    reply = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(source_leader_id=leader_id, target_exchange_ids=[target.exchange_id]),
        user=user,
    )
    return reply.config_id, target.exchange_id


async def test_publish_watches_the_account_by_its_owner_and_lists_only_public_stats(
    harness: Harness,
) -> None:
    leader_id, exchange_id = await _publish(harness)
    assert [w.exchange_id for w in harness.world.sync.watch_calls] == [exchange_id]
    assert harness.world.sync.sources[exchange_id].user_id == USER
    harness.world.sync.publish(exchange_id)
    harness.world.sync.publish(exchange_id)
    # A repeat is the same leader.
    again = await harness.call(
        "PublishLeader", pb.PublishLeaderRequest(exchange_id=exchange_id, display_name="x")
    )
    assert again.leader.leader_id == leader_id
    mine = (await harness.call("ListLeaders", pb.ListLeadersRequest())).leaders
    assert [(x.leader_id, x.mine, x.exchange_id, x.trade_count) for x in mine] == [
        (leader_id, True, exchange_id, 2)
    ]
    theirs = (await harness.call("ListLeaders", pb.ListLeadersRequest(), user=FOLLOWER)).leaders
    assert len(theirs) == 1
    leader = theirs[0]
    assert (leader.display_name, leader.exchange_name, leader.trade_count) == (
        "Alice's BTC",
        "binance",
        2,
    )
    assert leader.mine is False and leader.exchange_id == ""
    assert exchange_id not in str(leader)


async def test_another_users_account_cannot_be_published(harness: Harness) -> None:
    account = harness.world.broker.add_account(USER)
    error = await _error(
        harness.call(
            "PublishLeader",
            pb.PublishLeaderRequest(exchange_id=account.exchange_id, display_name="mine now"),
            user=OTHER_USER,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(error) == "EXCHANGE_NOT_FOUND"
    assert harness.world.sync.watch_calls == []
    assert (await harness.call("ListLeaders", pb.ListLeadersRequest())).leaders == []


async def test_publish_validates_its_fields(harness: Harness) -> None:
    error = await _error(
        harness.call("PublishLeader", pb.PublishLeaderRequest(exchange_id="x", display_name=""))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(field_paths(error)) == ["display_name", "exchange_id"]


async def test_a_follower_copies_the_leader_without_its_assertion_reaching_the_account(
    harness: Harness,
) -> None:
    leader_id, exchange_id = await _publish(harness)
    config_id, target = await _follow(harness, leader_id)
    # Only the publisher's own call watched the account; the follow read it as the engine.
    assert len(harness.world.sync.watch_calls) == 1
    status = await harness.call(
        "GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id), user=FOLLOWER
    )
    assert status.config.source_leader_id == leader_id
    assert status.config.source_exchange_id == ""
    harness.world.sync.publish(exchange_id)

    async def copied() -> bool:
        return bool(await harness.store.list_intents(config_id, None, None, 10))

    await eventually(copied, timeout=10)
    intents = await harness.store.list_intents(config_id, None, None, 10)
    assert [i.target_exchange_id for i in intents] == [target]
    # The follower sees its copies as the leader's; reconciliation sees the leader's source.
    orders = await harness.call(
        "ListCopiedOrders", pb.ListCopiedOrdersRequest(config_id=config_id), user=FOLLOWER
    )
    assert [o.source_id for o in orders.orders] == [leader_id]
    assert harness.channel is not None
    recon = harness.channel._stubs["recon"]
    for method, request in [
        ("ListCopiedOrders", pb.ListCopiedOrdersRequest(config_id=config_id)),
        ("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id)),
        ("ListConfigs", pb.ListConfigsRequest()),
    ]:
        reply = await getattr(recon, method)(request, metadata=as_user(FOLLOWER), timeout=10)
        if method == "GetCopyStatus":
            assert reply.config.source_exchange_id == exchange_id
        elif method == "ListConfigs":  # what recon reads the configuration from
            assert [c.source_exchange_id for c in reply.configs] == [exchange_id]
        else:
            assert [o.source_id for o in reply.orders] == [exchange_id]
    listed = await harness.call("ListConfigs", pb.ListConfigsRequest(), user=FOLLOWER)
    assert [c.source_exchange_id for c in listed.configs] == [""]
    trail = await harness.call("ListAuditEntries", pb.ListAuditEntriesRequest(), user=FOLLOWER)
    assert exchange_id not in str(trail)


async def test_following_needs_a_live_leader_and_the_followers_own_targets(
    harness: Harness,
) -> None:
    leader_id, exchange_id = await _publish(harness)
    error = await _error(_follow(harness, new_id()))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(error) == "LEADER_NOT_FOUND"
    # The leader's own account is not a target the follower may name.
    error = await _error(
        harness.call(
            "StartCopy",
            pb.StartCopyRequest(source_leader_id=leader_id, target_exchange_ids=[exchange_id]),
            user=FOLLOWER,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # Nor may the follower copy the account directly.
    target = harness.world.broker.add_account(FOLLOWER)
    error = await _error(
        harness.call(
            "StartCopy",
            pb.StartCopyRequest(
                source_exchange_id=exchange_id, target_exchange_ids=[target.exchange_id]
            ),
            user=FOLLOWER,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await _error(
        harness.call(
            "StartCopy",
            pb.StartCopyRequest(
                source_leader_id=leader_id,
                source_exchange_id=exchange_id,
                target_exchange_ids=[target.exchange_id],
            ),
            user=FOLLOWER,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "source_leader_id" in field_paths(error)


async def test_unpublish_stops_every_follower_with_the_reason_and_only_its_owner_may(
    harness: Harness,
) -> None:
    leader_id, exchange_id = await _publish(harness)
    config_id, _ = await _follow(harness, leader_id)
    error = await _error(
        harness.call(
            "UnpublishLeader", pb.UnpublishLeaderRequest(leader_id=leader_id), user=FOLLOWER
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(error) == "LEADER_NOT_FOUND"
    reply = await harness.call("UnpublishLeader", pb.UnpublishLeaderRequest(leader_id=leader_id))
    assert reply.stopped_followers == 1
    status = await harness.call(
        "GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id), user=FOLLOWER
    )
    assert status.config.status == pb.COPY_STATUS_STOPPED
    assert status.config.status_reason == "leader_unpublished"
    assert harness.world.sync.unwatch_calls == [exchange_id]
    assert (await harness.call("ListLeaders", pb.ListLeadersRequest())).leaders == []
    error = await _error(_follow(harness, leader_id))
    assert error_reason(error) == "LEADER_NOT_FOUND"


async def test_a_stopping_owner_config_keeps_a_published_account_watched(harness: Harness) -> None:
    leader_id, exchange_id = await _publish(harness)
    target = harness.world.broker.add_account(USER)
    own = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(
            source_exchange_id=exchange_id, target_exchange_ids=[target.exchange_id]
        ),
    )
    await harness.call("StopCopy", pb.StopCopyRequest(config_id=own.config_id))
    assert harness.world.sync.unwatch_calls == []
    follower_config, _ = await _follow(harness, leader_id)
    await harness.call("StopCopy", pb.StopCopyRequest(config_id=follower_config), user=FOLLOWER)
    assert harness.world.sync.unwatch_calls == []


async def test_deleting_a_published_account_is_refused_or_forced_through_unpublish(
    harness: Harness,
) -> None:
    leader_id, exchange_id = await _publish(harness)
    config_id, _ = await _follow(harness, leader_id)
    error = await _error(
        harness.call("ReleaseExchange", pb.ReleaseExchangeRequest(exchange_id=exchange_id))
    )
    assert error.code() == grpc.StatusCode.ABORTED
    assert leader_id in (error.details() or "")
    assert config_id not in (error.details() or "")  # another user's configuration
    await harness.call(
        "ReleaseExchange", pb.ReleaseExchangeRequest(exchange_id=exchange_id, force=True)
    )
    status = await harness.call(
        "GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id), user=FOLLOWER
    )
    assert status.config.status_reason == "leader_unpublished"


async def test_a_follower_sees_only_the_reason_of_a_failing_leader_venue(harness: Harness) -> None:
    leader_id, exchange_id = await _publish(harness)
    config_id, _ = await _follow(harness, leader_id)
    harness.world.sync.sources[
        exchange_id
    ].last_error = "BROKER_CREDENTIALS_REJECTED: key abc rejected for this IP"
    status = await harness.call(
        "GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id), user=FOLLOWER
    )
    assert status.source_error == "BROKER_CREDENTIALS_REJECTED"


async def test_the_publisher_cannot_follow_its_leader_into_the_leaders_own_account(
    harness: Harness,
) -> None:
    # Each copy would be a new trade of the leader, copied again: a loop of orders.
    leader_id, exchange_id = await _publish(harness)
    error = await _error(
        harness.call(
            "StartCopy",
            pb.StartCopyRequest(source_leader_id=leader_id, target_exchange_ids=[exchange_id]),
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_paths(error) == ["target_exchange_ids[0]"]
    assert (await harness.call("ListConfigs", pb.ListConfigsRequest())).configs == []


def _descriptions(error: grpc.aio.AioRpcError) -> list[str]:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)
    found: list[str] = []
    for detail in status.details if status else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found += [v.description for v in bad.field_violations]
    return found


async def test_two_users_following_each_others_leader_cannot_close_a_copy_loop(
    harness: Harness,
) -> None:
    # Alice copies Bob's leader B into her leader account A; Bob copying A into B would copy
    # each copy back again: every copy a new trade of the other leader.
    alice_leader, alice_account = await _publish(harness)
    bob_account = harness.world.broker.add_account(FOLLOWER)
    bob_leader = (
        await harness.call(
            "PublishLeader",
            pb.PublishLeaderRequest(exchange_id=bob_account.exchange_id, display_name="Bob's"),
            user=FOLLOWER,
        )
    ).leader.leader_id
    alice_config = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(source_leader_id=bob_leader, target_exchange_ids=[alice_account]),
    )
    # Bob's own second account is fine; his leader account closes the loop.
    other = harness.world.broker.add_account(FOLLOWER)
    start = pb.StartCopyRequest(
        source_leader_id=alice_leader,
        target_exchange_ids=[other.exchange_id, bob_account.exchange_id],
    )
    error = await _error(harness.call("StartCopy", start, user=FOLLOWER))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_paths(error) == ["target_exchange_ids[1]"]
    assert _descriptions(error) == ["copying into this account would copy its own trades back"]
    assert alice_account not in str(error.details()) and alice_account not in str(
        error.trailing_metadata()
    )
    assert (await harness.call("ListConfigs", pb.ListConfigsRequest(), user=FOLLOWER)).configs == []

    # Halted, Alice's configuration copies nothing: Bob may start; Alice may then not resume.
    await harness.call("KillSwitch", pb.KillSwitchRequest(config_id=alice_config.config_id))
    bob_config = await harness.call("StartCopy", start, user=FOLLOWER)
    error = await _error(
        harness.call("ResumeCopy", pb.ResumeCopyRequest(config_id=alice_config.config_id))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_paths(error) == ["target_exchange_ids[0]"]
    status = await harness.call(
        "GetCopyStatus", pb.GetCopyStatusRequest(config_id=alice_config.config_id)
    )
    assert status.config.status == pb.COPY_STATUS_HALTED
    assert bob_config.config_id


async def test_a_loop_through_a_third_account_is_refused_too(harness: Harness) -> None:
    # B → C (Bob copies his own account B into C), C → A (Alice follows Bob's leader C into
    # her leader account A): Bob following Alice's leader A into B closes A → B → C → A.
    alice_leader, alice_account = await _publish(harness)
    b = harness.world.broker.add_account(FOLLOWER)
    c = harness.world.broker.add_account(FOLLOWER)
    await harness.call(
        "StartCopy",
        pb.StartCopyRequest(source_exchange_id=b.exchange_id, target_exchange_ids=[c.exchange_id]),
        user=FOLLOWER,
    )
    c_leader = (
        await harness.call(
            "PublishLeader",
            pb.PublishLeaderRequest(exchange_id=c.exchange_id, display_name="C"),
            user=FOLLOWER,
        )
    ).leader.leader_id
    await harness.call(
        "StartCopy",
        pb.StartCopyRequest(source_leader_id=c_leader, target_exchange_ids=[alice_account]),
    )
    error = await _error(
        harness.call(
            "StartCopy",
            pb.StartCopyRequest(source_leader_id=alice_leader, target_exchange_ids=[b.exchange_id]),
            user=FOLLOWER,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_paths(error) == ["target_exchange_ids[0]"]
