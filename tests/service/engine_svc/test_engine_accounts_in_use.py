"""Accounts in use: ReleaseExchange refuses (ABORTED) or pauses, and a failing source shows."""

from __future__ import annotations

import grpc
import pytest
from engine_fakes import OTHER_USER, error_reason, new_id
from engine_harness import Harness
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from copytrade.engine.v1 import engine_service_pb2 as pb


async def _error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def _metadata(error: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return dict(info.metadata)
    return {}


async def _copy_account(harness: Harness) -> tuple[str, str, str]:
    """Copy one account of the user's to another; return config, leader and follower ids."""
    leader = harness.world.broker.add_account()
    follower = harness.world.broker.add_account()
    reply = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(
            source_exchange_id=leader.exchange_id, target_exchange_ids=[follower.exchange_id]
        ),
    )
    return reply.config_id, leader.exchange_id, follower.exchange_id


async def test_an_account_in_use_is_refused_naming_its_configurations(harness: Harness) -> None:
    config_id, leader, follower = await _copy_account(harness)
    for exchange_id in (leader, follower):
        error = await _error(
            harness.call("ReleaseExchange", pb.ReleaseExchangeRequest(exchange_id=exchange_id))
        )
        assert error.code() == grpc.StatusCode.ABORTED
        assert error_reason(error) == "EXCHANGE_IN_USE"
        assert config_id in (error.details() or "")
        assert _metadata(error)["config_ids"] == config_id
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.config.status == pb.COPY_STATUS_ACTIVE


async def test_force_pauses_with_the_reason_and_a_resume_is_refused_once_it_is_gone(
    harness: Harness,
) -> None:
    config_id, _leader, follower = await _copy_account(harness)
    reply = await harness.call(
        "ReleaseExchange", pb.ReleaseExchangeRequest(exchange_id=follower, force=True)
    )
    assert list(reply.paused_config_ids) == [config_id]
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.config.status == pb.COPY_STATUS_PAUSED
    assert status.config.status_reason == "exchange_deleted"
    # A repeat pauses nothing more.
    again = await harness.call(
        "ReleaseExchange", pb.ReleaseExchangeRequest(exchange_id=follower, force=True)
    )
    assert list(again.paused_config_ids) == []
    harness.world.broker.accounts.pop(follower)  # the broker removed it
    error = await _error(harness.call("ResumeCopy", pb.ResumeCopyRequest(config_id=config_id)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(error) == "EXCHANGE_DELETED"


async def test_force_on_a_source_account_unwatches_it(harness: Harness) -> None:
    _config_id, leader, _ = await _copy_account(harness)
    await harness.call("ReleaseExchange", pb.ReleaseExchangeRequest(exchange_id=leader, force=True))
    assert harness.world.sync.unwatch_calls == [leader]


async def test_a_free_or_stopped_account_is_released(harness: Harness) -> None:
    config_id, _leader, follower = await _copy_account(harness)
    free = harness.world.broker.add_account()
    reply = await harness.call(
        "ReleaseExchange", pb.ReleaseExchangeRequest(exchange_id=free.exchange_id)
    )
    assert list(reply.paused_config_ids) == []
    await harness.call("StopCopy", pb.StopCopyRequest(config_id=config_id))
    reply = await harness.call("ReleaseExchange", pb.ReleaseExchangeRequest(exchange_id=follower))
    assert list(reply.paused_config_ids) == []


async def test_another_users_account_is_not_found_and_nothing_is_paused(harness: Harness) -> None:
    config_id, _, follower = await _copy_account(harness)
    error = await _error(
        harness.call(
            "ReleaseExchange",
            pb.ReleaseExchangeRequest(exchange_id=follower, force=True),
            user=OTHER_USER,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert config_id not in (error.details() or "")
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.config.status == pb.COPY_STATUS_ACTIVE
    error = await _error(
        harness.call("ReleaseExchange", pb.ReleaseExchangeRequest(exchange_id="nope"))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = await _error(
        harness.call("ReleaseExchange", pb.ReleaseExchangeRequest(exchange_id=new_id()))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_a_failing_leader_venue_shows_its_cause_in_the_status(harness: Harness) -> None:
    config_id, leader, _ = await _copy_account(harness)
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.source_error == ""
    harness.world.sync.sources[
        leader
    ].last_error = "BROKER_CREDENTIALS_REJECTED: Invalid API-key, IP, or permissions for action."
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.source_error.startswith("BROKER_CREDENTIALS_REJECTED")
    assert status.config.status == pb.COPY_STATUS_ACTIVE
