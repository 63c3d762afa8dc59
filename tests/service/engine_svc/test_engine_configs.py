"""Configuration RPCs: stop, pause, resume, update, lists, and ownership on every one."""

from __future__ import annotations

import grpc
import pytest
from engine_fakes import OTHER_USER, dec, error_reason, field_paths, new_id
from engine_harness import Harness
from google.protobuf import field_mask_pb2

from copytrade.engine.v1 import engine_service_pb2 as pb
from copytrade.engine.v1 import engine_service_pb2_grpc as pb_grpc
from engine_svc.domain.model import IntentState
from meshkit.testing import eventually, secure_channel


async def _start(harness: Harness, **kwargs) -> str:
    target = harness.world.broker.add_account()
    reply = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(
            source_backtest_id=harness.world.sync.add_backtest(),
            target_exchange_ids=[target.exchange_id],
            **kwargs,
        ),
    )
    return reply.config_id


async def _error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


CONFIG_CALLS = [
    ("StopCopy", pb.StopCopyRequest),
    ("PauseCopy", pb.PauseCopyRequest),
    ("ResumeCopy", pb.ResumeCopyRequest),
    ("GetCopyStatus", pb.GetCopyStatusRequest),
    ("UpdateConfig", pb.UpdateConfigRequest),
    ("ListCopiedOrders", pb.ListCopiedOrdersRequest),
    ("KillSwitch", pb.KillSwitchRequest),
]


@pytest.mark.parametrize(("method", "request_type"), CONFIG_CALLS)
async def test_another_users_config_is_not_found_and_unchanged(
    harness: Harness,
    method: str,
    request_type: type,
) -> None:
    config_id = await _start(harness)
    error = await _error(harness.call(method, request_type(config_id=config_id), user=OTHER_USER))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(error) == "CONFIG_NOT_FOUND"
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.config.status == pb.COPY_STATUS_ACTIVE


@pytest.mark.parametrize(("method", "request_type"), CONFIG_CALLS)
async def test_malformed_or_unknown_config_id(
    harness: Harness, method: str, request_type: type
) -> None:
    error = await _error(harness.call(method, request_type(config_id="42")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_paths(error) == ["config_id"]
    error = await _error(harness.call(method, request_type(config_id=new_id())))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_stop_cancels_resting_orders_and_is_idempotent(harness: Harness) -> None:
    config_id = await _start(harness)
    source = (await harness.store.get_config(config_id)).source_id
    harness.world.broker.place_script = ["open"]
    harness.world.sync.publish(source)

    async def accepted() -> bool:
        intents = await harness.store.list_intents(config_id, None, None, 10)
        return bool(intents) and intents[0].state is IntentState.ACCEPTED

    await eventually(accepted, timeout=10)
    first = await harness.call("StopCopy", pb.StopCopyRequest(config_id=config_id))
    assert (first.status, first.cancelled_orders) == (pb.COPY_STATUS_STOPPED, 1)
    again = await harness.call("StopCopy", pb.StopCopyRequest(config_id=config_id))
    assert (again.status, again.cancelled_orders) == (pb.COPY_STATUS_STOPPED, 0)
    [intent] = await harness.store.list_intents(config_id, None, None, 10)
    assert intent.state is IntentState.CANCELED

    error = await _error(harness.call("ResumeCopy", pb.ResumeCopyRequest(config_id=config_id)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    harness.world.sync.publish(source)
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.counters.intents == 1


async def test_stop_keeping_open_orders_cancels_nothing(harness: Harness) -> None:
    config_id = await _start(harness)
    reply = await harness.call(
        "StopCopy", pb.StopCopyRequest(config_id=config_id, keep_open_orders=True)
    )
    assert reply.status == pb.COPY_STATUS_STOPPED
    assert harness.world.broker.cancel_calls == []


async def test_pause_and_resume_are_idempotent(harness: Harness) -> None:
    config_id = await _start(harness)
    for _ in range(2):
        reply = await harness.call("PauseCopy", pb.PauseCopyRequest(config_id=config_id))
        assert reply.status == pb.COPY_STATUS_PAUSED
    for _ in range(2):
        reply = await harness.call("ResumeCopy", pb.ResumeCopyRequest(config_id=config_id))
        assert reply.status == pb.COPY_STATUS_ACTIVE


async def test_update_of_one_masked_field_keeps_the_rest(harness: Harness) -> None:
    config_id = await _start(
        harness, risk_limits={"max_slippage": dec("0.01"), "max_position_size": dec("0.5")}
    )
    reply = await harness.call(
        "UpdateConfig",
        pb.UpdateConfigRequest(
            config_id=config_id,
            risk_limits={"max_slippage": dec("0.02"), "max_position_size": dec("0.9")},
            update_mask=field_mask_pb2.FieldMask(paths=["risk_limits.max_slippage"]),
        ),
    )
    assert reply.config.risk_limits.max_slippage.value == "0.02"
    assert reply.config.risk_limits.max_position_size.value == "0.5"


async def test_update_with_an_empty_mask_replaces_the_groups_given(harness: Harness) -> None:
    config_id = await _start(harness, copy_settings={"max_trade_size": dec("100")})
    reply = await harness.call(
        "UpdateConfig",
        pb.UpdateConfigRequest(
            config_id=config_id, copy_settings={"sizing_mode": "multiplier", "multiplier": dec("2")}
        ),
    )
    copy = reply.config.copy_settings
    assert (copy.sizing_mode, copy.multiplier.value, copy.max_trade_size.value) == (
        "multiplier",
        "2",
        "",
    )


async def test_update_with_an_unknown_mask_path_names_update_mask(harness: Harness) -> None:
    config_id = await _start(harness)
    error = await _error(
        harness.call(
            "UpdateConfig",
            pb.UpdateConfigRequest(
                config_id=config_id,
                update_mask=field_mask_pb2.FieldMask(paths=["risk_limits.leverage"]),
            ),
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_paths(error) == ["update_mask"]


async def test_update_producing_invalid_settings_is_refused_and_changes_nothing(
    harness: Harness,
) -> None:
    config_id = await _start(harness, risk_limits={"max_slippage": dec("0.01")})
    error = await _error(
        harness.call(
            "UpdateConfig",
            pb.UpdateConfigRequest(
                config_id=config_id,
                risk_limits={"max_slippage": dec("1")},
                update_mask=field_mask_pb2.FieldMask(paths=["risk_limits.max_slippage"]),
            ),
        )
    )
    assert field_paths(error) == ["risk_limits.max_slippage"]
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.config.risk_limits.max_slippage.value == "0.01"


async def test_update_of_sync_settings_of_an_exchange_source_tells_sync(harness: Harness) -> None:
    leader = harness.world.broker.add_account()
    target = harness.world.broker.add_account()
    config_id = (
        await harness.call(
            "StartCopy",
            pb.StartCopyRequest(
                source_exchange_id=leader.exchange_id, target_exchange_ids=[target.exchange_id]
            ),
        )
    ).config_id
    await harness.call(
        "UpdateConfig",
        pb.UpdateConfigRequest(
            config_id=config_id,
            sync_settings={"sync_interval": 30},
            update_mask=field_mask_pb2.FieldMask(paths=["sync_settings.sync_interval"]),
        ),
    )
    assert [w.sync_settings.sync_interval for w in harness.world.sync.watch_calls] == [5, 30]


async def test_list_configs_shows_only_mine_newest_first(harness: Harness) -> None:
    first = await _start(harness)
    harness.clock.advance(1)
    second = await _start(harness)
    mine = await harness.call("ListConfigs", pb.ListConfigsRequest())
    assert [c.config_id for c in mine.configs] == [second, first]
    theirs = await harness.call("ListConfigs", pb.ListConfigsRequest(), user=OTHER_USER)
    assert list(theirs.configs) == []


async def test_list_copied_orders_windows_oldest_first_and_bounds_the_page(
    harness: Harness,
) -> None:
    config_id = await _start(harness)
    source = (await harness.store.get_config(config_id)).source_id
    for _ in range(3):
        harness.world.sync.publish(source)
        await eventually(lambda: harness.world.sync.acks and harness.world.sync.acks[-1][1] >= 1)
        harness.clock.advance(1)

    async def three() -> bool:
        return len(await harness.store.list_intents(config_id, None, None, 10)) == 3

    await eventually(three, timeout=10)
    everything = await harness.call(
        "ListCopiedOrders", pb.ListCopiedOrdersRequest(config_id=config_id)
    )
    assert [o.sequence for o in everything.orders] == [1, 2, 3]
    window = await harness.call(
        "ListCopiedOrders",
        pb.ListCopiedOrdersRequest(
            config_id=config_id,
            start_time=everything.orders[1].create_time,
            end_time=everything.orders[2].create_time,
        ),
    )
    assert [o.sequence for o in window.orders] == [2]
    page = await harness.call(
        "ListCopiedOrders", pb.ListCopiedOrdersRequest(config_id=config_id, page_size=2)
    )
    assert [o.sequence for o in page.orders] == [1, 2]
    error = await _error(
        harness.call(
            "ListCopiedOrders", pb.ListCopiedOrdersRequest(config_id=config_id, page_size=5001)
        )
    )
    assert field_paths(error) == ["page_size"]


async def test_list_copied_orders_pages_by_token_and_keeps_one_account(
    harness: Harness,
) -> None:
    # Reconciliation reads one follower account's copies at a time, page after page: the
    # token resumes after the last one even when many were written at one time.
    first = harness.world.broker.add_account()
    second = harness.world.broker.add_account()
    config_id = (
        await harness.call(
            "StartCopy",
            pb.StartCopyRequest(
                source_backtest_id=harness.world.sync.add_backtest(),
                target_exchange_ids=[first.exchange_id, second.exchange_id],
            ),
        )
    ).config_id
    source = (await harness.store.get_config(config_id)).source_id
    for _ in range(3):  # the clock stands still: every intent is written at one time
        harness.world.sync.publish(source)

    async def six() -> bool:
        return len(await harness.store.list_intents(config_id, None, None, 10)) == 6

    await eventually(six, timeout=10)
    for account in (first.exchange_id, second.exchange_id):
        seen: list[tuple[int, str]] = []
        token = ""
        while True:
            page = await harness.call(
                "ListCopiedOrders",
                pb.ListCopiedOrdersRequest(
                    config_id=config_id,
                    target_exchange_id=account,
                    page_size=1,
                    page_token=token,
                ),
            )
            seen += [(o.sequence, o.target_exchange_id) for o in page.orders]
            token = page.next_page_token
            if not token:
                break
        assert seen == [(1, account), (2, account), (3, account)]
    error = await _error(
        harness.call(
            "ListCopiedOrders",
            pb.ListCopiedOrdersRequest(config_id=config_id, page_token="not-a-token"),
        )
    )
    assert field_paths(error) == ["page_token"]


async def test_recon_lists_copies_under_its_own_identity_and_no_one_else_without_a_user(
    harness: Harness,
) -> None:
    # A long reconciliation outlives the user's assertion: recon, having proven the user's
    # ownership when it read the configuration, reads the copies as itself.
    config_id, source, _ = await harness.start_copy()
    harness.world.sync.publish(source)

    async def one() -> bool:
        return len(await harness.store.list_intents(config_id, None, None, 10)) == 1

    await eventually(one, timeout=10)
    assert harness.engine is not None and harness.engine.running is not None
    address = f"127.0.0.1:{harness.engine.running.port}"
    request = pb.ListCopiedOrdersRequest(config_id=config_id)
    recon = secure_channel(address, "recon")
    gateway = secure_channel(address, "gateway")
    try:
        listed = await pb_grpc.EngineServiceStub(recon).ListCopiedOrders(request, timeout=10)
        assert [o.sequence for o in listed.orders] == [1]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.EngineServiceStub(gateway).ListCopiedOrders(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await pb_grpc.EngineServiceStub(recon).ListCopiedOrders(
                pb.ListCopiedOrdersRequest(config_id=new_id()), timeout=10
            )
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await recon.close()
        await gateway.close()


@pytest.mark.parametrize(
    "request_fields",
    [{}, {"config_id": "  "}, {"all": False}, {"all": True, "config_id": "X"}],
    ids=["neither", "blank-config-id", "all-false", "both"],
)
async def test_kill_switch_needs_exactly_one_of_config_id_or_all_and_halts_nothing_else(
    harness: Harness, request_fields: dict
) -> None:
    # Halting every configuration must be asked for: an empty or forgotten config_id is an error.
    config_id = await _start(harness)
    fields = {k: (config_id if v == "X" else v) for k, v in request_fields.items()}
    error = await _error(harness.call("KillSwitch", pb.KillSwitchRequest(**fields)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_paths(error) == ["config_id"]
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.config.status == pb.COPY_STATUS_ACTIVE


async def test_kill_switch_with_all_halts_every_config_of_the_caller_only(
    harness: Harness,
) -> None:
    mine = [await _start(harness), await _start(harness)]
    target = harness.world.broker.add_account(user_id=OTHER_USER)
    theirs = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(
            source_backtest_id=harness.world.sync.add_backtest(user_id=OTHER_USER),
            target_exchange_ids=[target.exchange_id],
        ),
        user=OTHER_USER,
    )
    reply = await harness.call("KillSwitch", pb.KillSwitchRequest(all=True))
    assert sorted(reply.config_ids) == sorted(mine)
    for config_id in mine:
        status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
        assert status.config.status == pb.COPY_STATUS_HALTED
    other = await harness.call(
        "GetCopyStatus",
        pb.GetCopyStatusRequest(config_id=theirs.config_id),
        user=OTHER_USER,
    )
    assert other.config.status == pb.COPY_STATUS_ACTIVE
