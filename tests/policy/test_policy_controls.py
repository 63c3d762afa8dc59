"""Controls through the REST gateway: pause, resume, the kill switch and PATCH, end to end."""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal

import pytest

from copytrade.common.v1 import types_pb2
from meshkit.testing import eventually
from tests.policy.policy_support import PolicyHarness


def _outcomes(orders: list[dict]) -> list[tuple[str, str]]:
    return [(o["state"].removeprefix("INTENT_STATE_"), o["reason"]) for o in orders]


async def test_pause_skips_signals_with_a_reason_and_resume_copies_again(
    policy: PolicyHarness,
) -> None:
    target = policy.account()
    config_id, source = await policy.start(target)

    paused = await policy.ok("POST", "/pause", {"config_id": config_id})
    assert paused["status"] == "COPY_STATUS_PAUSED"
    policy.world.sync.publish(source)
    assert _outcomes(await policy.settled(config_id, 1)) == [("SKIPPED", "paused")]

    status = await policy.ok("GET", f"/status/{config_id}")
    assert status["config"]["status"] == "COPY_STATUS_PAUSED"
    assert status["config"]["status_reason"] == "paused by user"
    assert status["config"]["is_active"] is False

    resumed = await policy.ok("POST", "/resume", {"config_id": config_id})
    assert resumed["status"] == "COPY_STATUS_ACTIVE"
    policy.world.sync.publish(source)
    orders = await policy.settled(config_id, 2)
    assert _outcomes(orders) == [("SKIPPED", "paused"), ("FILLED", "")]
    assert orders[1]["quantity"] == "0.01"

    counters = (await policy.ok("GET", f"/status/{config_id}"))["counters"]
    assert (counters["signals"], counters["filled"], counters["skipped"]) == ("2", "1", "1")
    assert len(policy.world.broker.place_calls) == 1


async def test_kill_switch_lets_no_new_order_leave_within_one_second(
    policy: PolicyHarness,
) -> None:
    target = policy.account(equity=Decimal("100000000"))
    config_id, source = await policy.start(target)
    arrivals: list[float] = []

    async def record(_request: object) -> None:
        arrivals.append(time.monotonic())

    policy.world.broker.on_place = record
    publishing = True

    async def publish_forever() -> None:
        while publishing:
            policy.world.sync.publish(source)
            await asyncio.sleep(0.01)

    publisher = asyncio.create_task(publish_forever())
    try:
        await eventually(lambda: len(arrivals) >= 5, timeout=10)
        triggered = time.monotonic()
        reply = await policy.ok("POST", "/kill-switch", {"config_id": config_id})
        answered = time.monotonic()
        published_before = len(policy.world.sync.logs[source])
        assert reply["config_ids"] == [config_id]
        await asyncio.sleep(1.2)  # keep the leader trading past the one-second bound
    finally:
        publishing = False
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
    late = [t - triggered for t in arrivals if t > triggered + 1.0]
    assert late == [], f"orders reached the broker {late} s after the kill switch"
    assert answered - triggered < 1.0

    orders = await policy.settled(config_id, len(policy.world.sync.logs[source]))
    after = [o for o in orders if int(o["sequence"]) > published_before]
    assert after and {(o["state"], o["reason"]) for o in after} == {
        ("INTENT_STATE_SKIPPED", "halted")
    }
    status = await policy.ok("GET", f"/status/{config_id}")
    assert status["config"]["status"] == "COPY_STATUS_HALTED"
    assert status["config"]["status_reason"] == "kill switch"


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"config_id": None},
        {"config_id": ""},
        {"all": False},
        {"config_id": "X", "all": True},
    ],
)
async def test_kill_switch_without_exactly_one_of_config_id_or_all_is_400_and_halts_nothing(
    policy: PolicyHarness,
    body: dict | None,
) -> None:
    # Halting every configuration must be asked for with "all": true; an empty body, a null
    # or an empty config_id used to halt them all.
    config_id, _source = await policy.start(policy.account())
    if body is not None:
        body = {k: (config_id if v == "X" else v) for k, v in body.items()}
    status, reply = await policy.call("POST", "/kill-switch", body)
    assert status == 400, reply
    assert reply["code"] == 3 and "config_id" in reply["message"]
    state = await policy.ok("GET", f"/status/{config_id}")
    assert state["config"]["status"] == "COPY_STATUS_ACTIVE"


async def test_kill_switch_for_the_user_halts_every_configuration(policy: PolicyHarness) -> None:
    first_target, second_target = policy.account(), policy.account()
    first, first_source = await policy.start(first_target)
    second, second_source = await policy.start(second_target)
    other = policy.world.broker.add_account(user_id="someone-else")
    assert other.exchange_id  # another user's account is never touched by alice's switch

    reply = await policy.ok("POST", "/kill-switch", {"all": True})
    assert sorted(reply["config_ids"]) == sorted([first, second])
    policy.world.sync.publish(first_source)
    policy.world.sync.publish(second_source)
    for config_id in (first, second):
        assert _outcomes(await policy.settled(config_id, 1)) == [("SKIPPED", "halted")]
    assert policy.world.broker.place_calls == []

    listed = await policy.ok("GET", "/configs")
    assert {c["status"] for c in listed["configs"]} == {"COPY_STATUS_HALTED"}
    resumed = await policy.ok("POST", "/resume", {"config_id": first})
    assert resumed["status"] == "COPY_STATUS_ACTIVE"


async def test_patch_changes_sizing_and_limits_from_the_next_signal(
    policy: PolicyHarness,
) -> None:
    target = policy.account(balances={"BTC": (Decimal("0.01"), Decimal("0.01"))})
    config_id, source = await policy.start(target)
    policy.world.sync.publish(source)
    await policy.settled(config_id, 1)

    patched = await policy.ok(
        "PATCH",
        f"/configs/{config_id}",
        {"copy_settings": {"sizing_mode": "fixed_quantity", "fixed_quantity": 0.003}},
    )
    assert patched["config"]["copy_settings"]["sizing_mode"] == "fixed_quantity"
    assert patched["config"]["copy_settings"]["fixed_quantity"] == "0.003"
    policy.world.sync.publish(source)
    await policy.settled(config_id, 2)

    # 6% of 10000 is 600 USDT; 0.01 BTC is held. Valued at the band's worst price (50500),
    # there is room for 600 / 50500 - 0.01 = 0.001881 BTC: 0.00188 at the venue's step.
    patched = await policy.ok(
        "PATCH",
        f"/configs/{config_id}",
        {"risk_limits": {"max_position_size": "0.06", "max_slippage": 0.01}},
    )
    assert patched["config"]["risk_limits"]["max_position_size"] == "0.06"
    assert patched["config"]["copy_settings"]["fixed_quantity"] == "0.003"
    policy.world.sync.publish(source)
    orders = await policy.settled(config_id, 3)

    assert [o["quantity"] for o in orders] == ["0.01", "0.003", "0.00188"]
    assert orders[2]["type"] == "ORDER_TYPE_LIMIT" and orders[2]["price"] == "50500"
    calls = policy.world.broker.place_calls
    assert calls[2].time_in_force == types_pb2.TIME_IN_FORCE_IOC


async def test_another_users_configuration_is_not_found_through_the_gateway(
    policy: PolicyHarness,
) -> None:
    config_id, _ = await policy.start(policy.account())
    for method, path, body in [
        ("POST", "/pause", {"config_id": config_id}),
        ("POST", "/kill-switch", {"config_id": config_id}),
        ("PATCH", f"/configs/{config_id}", {"risk_limits": {"max_slippage": 0.5}}),
        ("GET", f"/orders/{config_id}", None),
    ]:
        status, _ = await policy.call(method, path, body, token=policy.other_token)
        assert status == 404, (method, path)
    mine = await policy.ok("GET", f"/status/{config_id}")
    assert mine["config"]["status"] == "COPY_STATUS_ACTIVE"
    assert "max_slippage" not in mine["config"]["risk_limits"]


async def test_stop_cancels_resting_copies_unless_they_are_kept(policy: PolicyHarness) -> None:
    policy.world.broker.place_script = ["open", "open"]
    cancelled_id, cancelled_source = await policy.start(policy.account())
    kept_id, kept_source = await policy.start(policy.account())
    policy.world.sync.publish(cancelled_source)
    policy.world.sync.publish(kept_source)

    async def resting(config_id: str) -> bool:
        orders = await policy.orders(config_id)
        return bool(orders) and orders[0]["state"] == "INTENT_STATE_ACCEPTED"

    await eventually(lambda: resting(cancelled_id), timeout=10)
    await eventually(lambda: resting(kept_id), timeout=10)

    stopped = await policy.ok("POST", "/stop", {"config_id": cancelled_id})
    kept = await policy.ok("POST", "/stop", {"config_id": kept_id, "keep_open_orders": True})
    assert (stopped["status"], stopped["cancelled_orders"]) == ("COPY_STATUS_STOPPED", 1)
    assert (kept["status"], kept["cancelled_orders"]) == ("COPY_STATUS_STOPPED", 0)
    assert _outcomes(await policy.orders(cancelled_id)) == [("CANCELED", "")]
    assert _outcomes(await policy.orders(kept_id)) == [("ACCEPTED", "")]
    status, _ = await policy.call("POST", "/resume", {"config_id": kept_id})
    assert status == 400  # FAILED_PRECONDITION: a stopped configuration stays stopped
