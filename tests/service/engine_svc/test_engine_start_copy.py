"""StartCopy: validation naming fields, ownership of every account and source, idempotency."""

from __future__ import annotations

import grpc
import pytest
from engine_fakes import OTHER_USER, dec, error_reason, field_paths, new_id
from engine_harness import Harness
from google.protobuf import json_format

from copytrade.engine.v1 import engine_service_pb2 as pb


async def _fails(
    harness: Harness, request: pb.StartCopyRequest, code: grpc.StatusCode, user: str = "user-alice"
):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.call("StartCopy", request, user=user)
    assert caught.value.code() == code, caught.value.details()
    return caught.value


async def test_start_copy_without_a_user_is_unauthenticated(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    request = pb.StartCopyRequest(
        source_backtest_id=harness.world.sync.add_backtest(),
        target_exchange_ids=[target.exchange_id],
    )
    await _fails(harness, request, grpc.StatusCode.UNAUTHENTICATED, user="")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"target_exchange_ids": ["{t}"]}, ["source_exchange_id"]),
        (
            {
                "source_backtest_id": "{s}",
                "source_exchange_id": "{s}",
                "target_exchange_ids": ["{t}"],
            },
            ["source_backtest_id"],
        ),
        ({"source_backtest_id": "{s}", "target_exchange_ids": []}, ["target_exchange_ids"]),
        (
            {"source_backtest_id": "{s}", "target_exchange_ids": ["nope"]},
            ["target_exchange_ids[0]"],
        ),
        (
            {"source_backtest_id": "{s}", "target_exchange_ids": ["{t}", "{t}"]},
            ["target_exchange_ids[1]"],
        ),
        ({"source_exchange_id": "{t}", "target_exchange_ids": ["{t}"]}, ["target_exchange_ids[0]"]),
        (
            {
                "source_backtest_id": "{s}",
                "target_exchange_ids": ["{t}"],
                "risk_limits": {"max_slippage": {"value": "1.5"}},
            },
            ["risk_limits.max_slippage"],
        ),
        (
            {
                "source_backtest_id": "{s}",
                "target_exchange_ids": ["{t}"],
                "risk_limits": {"max_position_size": {"value": "ten"}},
            },
            ["risk_limits.max_position_size"],
        ),
        (
            {
                "source_backtest_id": "{s}",
                "target_exchange_ids": ["{t}"],
                "copy_settings": {"sizing_mode": "fixed_notional"},
            },
            ["copy_settings.fixed_notional"],
        ),
        (
            {
                "source_backtest_id": "{s}",
                "target_exchange_ids": ["{t}"],
                "sync_settings": {"sync_interval": 7200},
            },
            ["sync_settings.sync_interval"],
        ),
    ],
)
async def test_start_copy_with_bad_input_names_the_field_and_writes_nothing(
    harness: Harness,
    body: dict,
    fields: list[str],
) -> None:
    source = harness.world.sync.add_backtest()
    target = harness.world.broker.add_account().exchange_id
    text = str(body).replace("'", '"').replace("{s}", source).replace("{t}", target)
    request = json_format.Parse(text, pb.StartCopyRequest())
    error = await _fails(harness, request, grpc.StatusCode.INVALID_ARGUMENT)
    assert field_paths(error) == fields
    assert (await harness.call("ListConfigs", pb.ListConfigsRequest())).configs == []


async def test_start_copy_to_another_users_account_is_not_found_naming_it(harness: Harness) -> None:
    mine = harness.world.broker.add_account()
    theirs = harness.world.broker.add_account(user_id=OTHER_USER)
    request = pb.StartCopyRequest(
        source_backtest_id=harness.world.sync.add_backtest(),
        target_exchange_ids=[mine.exchange_id, theirs.exchange_id],
    )
    error = await _fails(harness, request, grpc.StatusCode.NOT_FOUND)
    assert theirs.exchange_id in error.details()
    assert error_reason(error) == "EXCHANGE_NOT_FOUND"
    assert (await harness.call("ListConfigs", pb.ListConfigsRequest())).configs == []


async def test_start_copy_of_another_users_exchange_is_not_found(harness: Harness) -> None:
    theirs = harness.world.broker.add_account(user_id=OTHER_USER)
    target = harness.world.broker.add_account()
    request = pb.StartCopyRequest(
        source_exchange_id=theirs.exchange_id, target_exchange_ids=[target.exchange_id]
    )
    error = await _fails(harness, request, grpc.StatusCode.NOT_FOUND)
    assert theirs.exchange_id in error.details()
    assert harness.world.sync.watch_calls == []


async def test_start_copy_of_a_private_backtest_of_another_user_is_not_found(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account()
    private = harness.world.sync.add_backtest(user_id=OTHER_USER)
    await _fails(
        harness,
        pb.StartCopyRequest(source_backtest_id=private, target_exchange_ids=[target.exchange_id]),
        grpc.StatusCode.NOT_FOUND,
    )
    await _fails(
        harness,
        pb.StartCopyRequest(source_backtest_id=new_id(), target_exchange_ids=[target.exchange_id]),
        grpc.StatusCode.NOT_FOUND,
    )
    public = harness.world.sync.add_backtest(user_id=OTHER_USER, public=True)
    reply = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(source_backtest_id=public, target_exchange_ids=[target.exchange_id]),
    )
    assert reply.status == pb.COPY_STATUS_ACTIVE


async def test_start_copy_of_an_exchange_watches_it_and_returns_the_active_config(
    harness: Harness,
) -> None:
    leader = harness.world.broker.add_account()
    target = harness.world.broker.add_account(exchange_name="kraken")
    request = pb.StartCopyRequest(
        source_exchange_id=leader.exchange_id,
        target_exchange_ids=[target.exchange_id],
        sync_settings={"sync_interval": 2},
        risk_limits={"max_slippage": dec("0.01")},
    )
    reply = await harness.call("StartCopy", request)
    assert reply.status == pb.COPY_STATUS_ACTIVE
    assert reply.config.source_exchange_id == leader.exchange_id
    assert reply.config.risk_limits.max_slippage.value == "0.01"
    assert reply.config.copy_settings.sizing_mode == "equity_ratio"
    assert reply.config.is_active
    [watch] = harness.world.sync.watch_calls
    assert watch.exchange_id == leader.exchange_id
    assert watch.sync_settings.sync_interval == 2
    assert watch.sync_settings.timeout == 30


async def test_stopping_the_last_copy_of_a_leader_account_unwatches_it(
    harness: Harness,
) -> None:
    leader = harness.world.broker.add_account()
    target = harness.world.broker.add_account()
    request = pb.StartCopyRequest(
        source_exchange_id=leader.exchange_id, target_exchange_ids=[target.exchange_id]
    )
    first = await harness.call("StartCopy", request)
    second = await harness.call("StartCopy", request)
    await harness.call("StopCopy", pb.StopCopyRequest(config_id=first.config_id))
    assert harness.world.sync.unwatch_calls == []  # the second still copies it
    await harness.call("StopCopy", pb.StopCopyRequest(config_id=second.config_id))
    assert harness.world.sync.unwatch_calls == [leader.exchange_id]
    assert not harness.world.sync.sources[leader.exchange_id].watched
    # Copying it again watches it again.
    await harness.call("StartCopy", request)
    assert harness.world.sync.sources[leader.exchange_id].watched
    assert len(harness.world.sync.watch_calls) == 3


async def test_stopping_a_copy_of_a_strategy_unwatches_nothing(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    reply = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(
            source_backtest_id=harness.world.sync.add_backtest(),
            target_exchange_ids=[target.exchange_id],
        ),
    )
    await harness.call("StopCopy", pb.StopCopyRequest(config_id=reply.config_id))
    assert harness.world.sync.unwatch_calls == []


async def test_start_copy_repeated_with_the_same_request_id_returns_the_same_config(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account()
    request = pb.StartCopyRequest(
        source_backtest_id=harness.world.sync.add_backtest(),
        target_exchange_ids=[target.exchange_id],
        request_id="req-1",
    )
    first = await harness.call("StartCopy", request)
    second = await harness.call("StartCopy", request)
    assert first.config_id == second.config_id
    assert len((await harness.call("ListConfigs", pb.ListConfigsRequest())).configs) == 1
