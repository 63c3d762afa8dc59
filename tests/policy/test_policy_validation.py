"""Out-of-range settings through the REST gateway: a 400 naming the field, nothing written."""

from __future__ import annotations

from tests.policy.policy_support import PolicyHarness, field_paths
from tests.service.engine_svc.engine_fakes import new_id

BAD_SETTINGS: list[tuple[dict[str, object], str]] = [
    ({"copy_settings": {"min_trade_size": -5}}, "copy_settings.min_trade_size"),
    ({"copy_settings": {"max_trade_size": "-0.01"}}, "copy_settings.max_trade_size"),
    (
        {"copy_settings": {"sizing_mode": "fixed_notional", "fixed_notional": -100}},
        "copy_settings.fixed_notional",
    ),
    (
        {"copy_settings": {"sizing_mode": "fixed_quantity", "fixed_quantity": 0}},
        "copy_settings.fixed_quantity",
    ),
    ({"copy_settings": {"sizing_mode": "multiplier"}}, "copy_settings.multiplier"),
    ({"copy_settings": {"sizing_mode": "martingale"}}, "copy_settings.sizing_mode"),
    ({"copy_settings": {"futures_sizing": "leverage"}}, "copy_settings.futures_sizing"),
    (
        {
            "copy_settings": {
                "futures_sizing": "margin",
                "sizing_mode": "fixed_notional",
                "fixed_notional": 100,
            }
        },
        "copy_settings.futures_sizing",
    ),
    ({"risk_limits": {"max_position_size": 1.5}}, "risk_limits.max_position_size"),
    ({"risk_limits": {"max_daily_loss": "2"}}, "risk_limits.max_daily_loss"),
    ({"risk_limits": {"correlation_limit": 1.01}}, "risk_limits.correlation_limit"),
    ({"risk_limits": {"max_slippage": 1}}, "risk_limits.max_slippage"),
    ({"risk_limits": {"max_position_size": -0.1}}, "risk_limits.max_position_size"),
    ({"risk_limits": {"max_orders_per_minute": -3}}, "risk_limits.max_orders_per_minute"),
]


async def test_start_with_an_out_of_range_setting_is_a_400_naming_it(
    policy: PolicyHarness,
) -> None:
    target = policy.account()
    source = policy.world.sync.add_backtest(user_id=policy.user_id)
    for settings, path in BAD_SETTINGS:
        body = {"source_backtest_id": source, "target_exchange_ids": [target.exchange_id]}
        status, reply = await policy.call("POST", "/start", {**body, **settings})
        assert (status, field_paths(reply)) == (400, [path]), settings
    assert (await policy.ok("GET", "/configs"))["configs"] == []


async def test_patch_with_an_out_of_range_setting_is_a_400_and_changes_nothing(
    policy: PolicyHarness,
) -> None:
    config_id, _ = await policy.start(
        policy.account(), risk_limits={"max_position_size": 0.2, "max_orders_per_minute": 30}
    )
    before = (await policy.ok("GET", f"/status/{config_id}"))["config"]
    assert before["risk_limits"]["max_orders_per_minute"] == 30
    for settings, path in BAD_SETTINGS:
        status, reply = await policy.call("PATCH", f"/configs/{config_id}", settings)
        assert (status, field_paths(reply)) == (400, [path]), settings
    after = (await policy.ok("GET", f"/status/{config_id}"))["config"]
    assert after == before


async def test_a_target_equal_to_the_source_is_a_400_naming_the_target(
    policy: PolicyHarness,
) -> None:
    account = policy.account()
    other = policy.account()
    body = {
        "source_exchange_id": account.exchange_id,
        "target_exchange_ids": [other.exchange_id, account.exchange_id],
    }
    status, reply = await policy.call("POST", "/start", body)
    assert status == 400
    assert field_paths(reply) == ["target_exchange_ids[1]"]
    assert policy.world.sync.watch_calls == []
    assert (await policy.ok("GET", "/configs"))["configs"] == []


async def test_several_bad_fields_are_named_together(policy: PolicyHarness) -> None:
    status, reply = await policy.call(
        "POST",
        "/start",
        {
            "source_exchange_id": "not-a-uuid",
            "target_exchange_ids": [new_id()],
            "risk_limits": {"max_daily_loss": 0, "max_slippage": -1},
            "copy_settings": {"sizing_mode": "kelly"},
        },
    )
    assert status == 400
    assert sorted(field_paths(reply)) == [
        "copy_settings.sizing_mode",
        "risk_limits.max_daily_loss",
        "risk_limits.max_slippage",
        "source_exchange_id",
    ]
