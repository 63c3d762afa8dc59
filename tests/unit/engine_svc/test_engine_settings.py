"""Validation of settings (every error names its JSON path) and partial updates."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from engine_svc.domain.model import ConfigSettings, CopySettings, RiskLimits, SyncSettings
from engine_svc.domain.settings import (
    apply_update,
    known_update_paths,
    normalized,
    unknown_update_paths,
    validate,
    validate_start,
)

A = "7d4f6f0e-3a53-4a55-8d7c-0c3d8a1b2c01"
B = "0b7f1b52-5a9e-4c3e-9d52-9a1d2e3f4a02"
C = "c2d8e6a1-4b5c-4d6e-8f70-1a2b3c4d5e03"


def fields_of(settings: ConfigSettings) -> list[str]:
    return [v.field for v in validate(normalized(settings))]


def test_default_settings_are_valid() -> None:
    assert fields_of(ConfigSettings()) == []


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        (RiskLimits(max_position_size=D("0")), "risk_limits.max_position_size"),
        (RiskLimits(max_position_size=D("1.01")), "risk_limits.max_position_size"),
        (RiskLimits(max_daily_loss=D("0")), "risk_limits.max_daily_loss"),
        (RiskLimits(max_daily_loss=D("-0.1")), "risk_limits.max_daily_loss"),
        (RiskLimits(max_slippage=D("1")), "risk_limits.max_slippage"),
        (RiskLimits(max_slippage=D("-0.01")), "risk_limits.max_slippage"),
        (RiskLimits(correlation_limit=D("1.5")), "risk_limits.correlation_limit"),
        (RiskLimits(correlation_limit=D("-0.1")), "risk_limits.correlation_limit"),
        (RiskLimits(max_orders_per_minute=-1), "risk_limits.max_orders_per_minute"),
        (RiskLimits(max_orders_per_minute=6001), "risk_limits.max_orders_per_minute"),
    ],
)
def test_risk_limit_out_of_range_names_its_path(limits: RiskLimits, field: str) -> None:
    assert fields_of(ConfigSettings(risk_limits=limits)) == [field]


@pytest.mark.parametrize(
    "limits",
    [
        RiskLimits(max_position_size=D("1"), max_daily_loss=D("1")),
        RiskLimits(max_slippage=D("0"), correlation_limit=D("0")),
        RiskLimits(correlation_limit=D("1"), max_slippage=D("0.999")),
    ],
)
def test_risk_limits_at_their_bounds_are_valid(limits: RiskLimits) -> None:
    assert fields_of(ConfigSettings(risk_limits=limits)) == []


@pytest.mark.parametrize(
    ("copy", "field"),
    [
        (CopySettings(min_trade_size=D("-1")), "copy_settings.min_trade_size"),
        (CopySettings(max_trade_size=D("-1")), "copy_settings.max_trade_size"),
        (
            CopySettings(min_trade_size=D("100"), max_trade_size=D("10")),
            "copy_settings.min_trade_size",
        ),
        (CopySettings(sizing_mode="martingale"), "copy_settings.sizing_mode"),
        (CopySettings(sizing_mode="multiplier"), "copy_settings.multiplier"),
        (CopySettings(sizing_mode="multiplier", multiplier=D("0")), "copy_settings.multiplier"),
        (CopySettings(sizing_mode="fixed_notional"), "copy_settings.fixed_notional"),
        (
            CopySettings(sizing_mode="fixed_quantity", fixed_quantity=D("-1")),
            "copy_settings.fixed_quantity",
        ),
        (
            CopySettings(exclude_symbols=("BTC/USDT", "btc-usdt")),
            "copy_settings.exclude_symbols[1]",
        ),
        (CopySettings(include_symbols=("BTCUSDT",)), "copy_settings.include_symbols[0]"),
        (CopySettings(symbol_map={"BTC/USDT": "nope"}), "copy_settings.symbol_map[BTC/USDT]"),
        (CopySettings(max_signal_age_seconds=-1), "copy_settings.max_signal_age_seconds"),
        (
            CopySettings(sizing_mode="multiplier", multiplier=D("100.01")),
            "copy_settings.multiplier",
        ),
        (
            CopySettings(sizing_mode="fixed_quantity", fixed_quantity=D("0")),
            "copy_settings.fixed_quantity",
        ),
        (CopySettings(fixed_notional=D("-5")), "copy_settings.fixed_notional"),
        (CopySettings(sizing_mode="EQUITY_RATIO"), "copy_settings.sizing_mode"),
    ],
)
def test_copy_setting_errors_name_their_path(copy: CopySettings, field: str) -> None:
    assert fields_of(ConfigSettings(copy_settings=copy)) == [field]


def test_min_trade_size_above_max_says_so() -> None:
    settings = ConfigSettings(
        copy_settings=CopySettings(min_trade_size=D("100"), max_trade_size=D("10"))
    )
    [violation] = validate(normalized(settings))
    assert "must not exceed copy_settings.max_trade_size" in violation.description


@pytest.mark.parametrize(
    ("sync", "field"),
    [
        (SyncSettings(sync_interval=3601), "sync_settings.sync_interval"),
        (SyncSettings(sync_interval=-1), "sync_settings.sync_interval"),
        (SyncSettings(max_retries=21), "sync_settings.max_retries"),
        (SyncSettings(max_retries=-1), "sync_settings.max_retries"),
        (SyncSettings(timeout=301), "sync_settings.timeout"),
    ],
)
def test_sync_setting_errors_name_their_path(sync: SyncSettings, field: str) -> None:
    assert fields_of(ConfigSettings(sync_settings=sync)) == [field]


def test_zero_values_take_their_defaults() -> None:
    settings = normalized(
        ConfigSettings(
            copy_settings=CopySettings(sizing_mode="", max_signal_age_seconds=0),
            sync_settings=SyncSettings(sync_interval=0, timeout=0, max_retries=0),
        )
    )
    assert settings.copy_settings.sizing_mode == "equity_ratio"
    assert settings.risk_limits.max_orders_per_minute == 60
    assert settings.copy_settings.max_signal_age_seconds == 60
    assert settings.sync_settings.sync_interval == 5
    assert settings.sync_settings.timeout == 30
    assert settings.sync_settings.max_retries == 0


def test_several_bad_fields_are_all_reported() -> None:
    settings = ConfigSettings(
        risk_limits=RiskLimits(max_slippage=D("2")),
        sync_settings=SyncSettings(sync_interval=99999),
    )
    assert fields_of(settings) == ["risk_limits.max_slippage", "sync_settings.sync_interval"]


@pytest.mark.parametrize(
    ("backtest", "exchange", "targets", "fields"),
    [
        ("", "", [A], ["source_exchange_id"]),
        (A, B, [C], ["source_backtest_id"]),
        ("", "x", [A], ["source_exchange_id"]),
        ("", A, [], ["target_exchange_ids"]),
        ("", A, [B, "bad"], ["target_exchange_ids[1]"]),
        ("", A, [B, B], ["target_exchange_ids[1]"]),
        ("", A, [B, A], ["target_exchange_ids[1]"]),
        (A, "", [A], ["target_exchange_ids[0]"]),
        ("", A, [B, C], []),
    ],
)
def test_start_request_source_and_targets_are_checked(
    backtest: str,
    exchange: str,
    targets: list[str],
    fields: list[str],
) -> None:
    assert [v.field for v in validate_start(backtest, exchange, targets)] == fields


def test_update_of_one_field_keeps_the_others() -> None:
    current = ConfigSettings(
        risk_limits=RiskLimits(max_slippage=D("0.01"), max_position_size=D("0.2"))
    )
    updated = apply_update(current, {"risk_limits.max_slippage": D("0.02")})
    assert updated.risk_limits == RiskLimits(max_slippage=D("0.02"), max_position_size=D("0.2"))
    assert updated.copy_settings == current.copy_settings


def test_update_of_a_whole_group_replaces_it_and_field_paths_refine_it() -> None:
    current = ConfigSettings(
        copy_settings=CopySettings(max_trade_size=D("100"), exclude_symbols=("A/B",))
    )
    updated = apply_update(
        current,
        {
            "copy_settings": CopySettings(sizing_mode="multiplier", multiplier=D("2")),
            "copy_settings.max_trade_size": D("50"),
        },
    )
    assert updated.copy_settings == CopySettings(
        sizing_mode="multiplier",
        multiplier=D("2"),
        max_trade_size=D("50"),
    )


def test_unknown_update_paths_are_reported() -> None:
    assert unknown_update_paths(["risk_limits.max_slippage", "risk_limits.leverage", "owner"]) == [
        "risk_limits.leverage",
        "owner",
    ]
    assert "copy_settings.symbol_map" in known_update_paths()
    with pytest.raises(KeyError):
        apply_update(ConfigSettings(), {"risk_limits.leverage": 1})


@pytest.mark.parametrize(
    ("copy", "valid"),
    [
        (CopySettings(sizing_mode="equity_ratio"), True),
        (CopySettings(sizing_mode="multiplier", multiplier=D("100")), True),
        (CopySettings(sizing_mode="fixed_notional", fixed_notional=D("25")), True),
        (CopySettings(sizing_mode="fixed_quantity", fixed_quantity=D("0.001")), True),
        (CopySettings(sizing_mode="portfolio_fraction"), True),
        (CopySettings(sizing_mode="fixed_quantity"), False),
    ],
)
def test_each_sizing_mode_needs_only_its_own_parameter(copy: CopySettings, valid: bool) -> None:
    assert (fields_of(ConfigSettings(copy_settings=copy)) == []) is valid
