"""Wire parsing of settings and updates (violations name JSON paths) and wire output."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal as D

from google.protobuf import field_mask_pb2
from google.type import decimal_pb2

from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2 as sync_pb
from engine_svc import codec
from engine_svc.config import Settings
from engine_svc.domain.model import (
    ConfigSettings,
    CopyConfig,
    CopySettings,
    CopyStatus,
    OrderStatus,
    RiskLimits,
    Side,
    SourceKind,
    SyncSettings,
)
from engine_svc.domain.settings import Violation
from meshkit.settings import ConfigError
from meshkit.testing import trust_env


def dec(text: str) -> decimal_pb2.Decimal:
    return decimal_pb2.Decimal(value=text)


def test_absent_groups_take_their_defaults() -> None:
    found: list[Violation] = []
    settings = codec.parse_settings(pb.StartCopyRequest(), found)
    assert settings == ConfigSettings()
    assert found == []


def test_given_groups_are_parsed_into_domain_values() -> None:
    request = pb.StartCopyRequest(
        risk_limits=pb.RiskLimits(max_slippage=dec("0.01")),
        copy_settings=pb.CopySettings(
            exclude_symbols=[" DOGE/USDT "],
            symbol_map={"BTC/USDT": "BTC/USD"},
            copy_all_trades=False,
            sizing_mode="multiplier",
            multiplier=dec("2"),
        ),
        sync_settings=sync_pb.SyncSettings(sync_interval=3, enable_polling=True),
    )
    found: list[Violation] = []
    settings = codec.parse_settings(request, found)
    assert found == []
    assert settings.risk_limits == RiskLimits(max_slippage=D("0.01"))
    assert settings.copy_settings == CopySettings(
        exclude_symbols=("DOGE/USDT",),
        symbol_map={"BTC/USDT": "BTC/USD"},
        copy_all_trades=False,
        sizing_mode="multiplier",
        multiplier=D("2"),
        max_signal_age_seconds=0,
        copy_mode="",
        futures_sizing="",
    )
    assert settings.sync_settings == SyncSettings(
        sync_interval=3, max_retries=0, timeout=0, enable_polling=True
    )


def test_unparsable_decimals_are_reported_by_path() -> None:
    request = pb.StartCopyRequest(
        risk_limits=pb.RiskLimits(max_slippage=dec("lots"), max_daily_loss=dec("NaN")),
        copy_settings=pb.CopySettings(max_trade_size=dec("1e")),
    )
    found: list[Violation] = []
    codec.parse_settings(request, found)
    assert sorted(v.field for v in found) == [
        "copy_settings.max_trade_size",
        "risk_limits.max_daily_loss",
        "risk_limits.max_slippage",
    ]


def test_update_with_a_mask_takes_only_the_masked_fields() -> None:
    request = pb.UpdateConfigRequest(
        risk_limits=pb.RiskLimits(max_slippage=dec("0.02"), max_position_size=dec("0.9")),
        update_mask=field_mask_pb2.FieldMask(paths=["risk_limits.max_slippage", "sync_settings"]),
    )
    found: list[Violation] = []
    changes = codec.parse_update(request, found)
    assert changes == {
        "risk_limits.max_slippage": D("0.02"),
        "sync_settings": SyncSettings(sync_interval=0, max_retries=0, timeout=0),
    }


def test_update_without_a_mask_replaces_the_groups_present() -> None:
    request = pb.UpdateConfigRequest(copy_settings=pb.CopySettings(max_trade_size=dec("5")))
    changes = codec.parse_update(request, [])
    raw = CopySettings(
        max_trade_size=D("5"),
        sizing_mode="",
        max_signal_age_seconds=0,
        copy_mode="",
        futures_sizing="",
    )
    assert changes == {"copy_settings": raw}


def test_config_goes_out_with_decimals_as_strings_and_its_source_field() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    config = CopyConfig(
        config_id="c",
        user_id="u",
        source_kind=SourceKind.BACKTEST,
        source_id="b",
        target_exchange_ids=("t",),
        settings=ConfigSettings(risk_limits=RiskLimits(max_slippage=D("0.010"))),
        status=CopyStatus.REDUCING,
        status_reason="max_daily_loss",
        start_sequence=1,
        last_sequence=9,
        sync_status="published",
        last_sync_at=None,
        created_at=now,
        updated_at=now,
    )
    message = codec.config_to_proto(config)
    assert message.source_backtest_id == "b" and message.source_exchange_id == ""
    assert message.risk_limits.max_slippage.value == "0.01"
    assert message.risk_limits.max_position_size.value == ""
    assert message.status == pb.COPY_STATUS_REDUCING and message.is_active
    assert message.last_sequence == 9
    assert message.copy_settings.copy_all_trades is True


def test_peer_enums_map_to_domain_values() -> None:
    assert (
        codec.order_status_from_proto(types_pb2.ORDER_STATUS_PARTIALLY_FILLED)
        is OrderStatus.PARTIALLY_FILLED
    )
    assert codec.order_status_from_proto(types_pb2.ORDER_STATUS_UNSPECIFIED) is OrderStatus.UNKNOWN
    assert codec.side_from_proto(types_pb2.ORDER_SIDE_SELL) is Side.SELL
    assert codec.sync_mode_name(sync_pb.SYNC_MODE_POLLING) == "polling"
    assert codec.sync_mode_to_proto("websocket") == sync_pb.SYNC_MODE_WEBSOCKET
    assert codec.sync_mode_to_proto("bogus") == sync_pb.SYNC_MODE_UNSPECIFIED


def test_settings_read_the_environment_with_defaults() -> None:
    settings = Settings.from_env(trust_env("engine"))
    assert (settings.grpc_port, settings.metrics_port, settings.resolver_interval_ms) == (
        50052,
        9092,
        500,
    )
    assert settings.database_url == "sqlite:///.copytrade/engine.db"
    assert (settings.broker_svc_addr, settings.sync_svc_addr) == (
        "127.0.0.1:50051",
        "127.0.0.1:50053",
    )
    custom = Settings.from_env(
        {
            **trust_env("engine"),
            "GRPC_PORT": "6000",
            "RESOLVER_INTERVAL_MS": "100",
            "DATABASE_URL": "postgresql://db/engine",
        }
    )
    assert (custom.grpc_port, custom.resolver_interval_ms) == (6000, 100)


def test_bad_environment_names_the_variable() -> None:
    for environ in (
        {"RESOLVER_INTERVAL_MS": "fast"},
        {"DATABASE_URL": "mysql://x"},
        {"TLS_CERT": "c"},
    ):
        try:
            Settings.from_env({**trust_env("engine"), **environ})
        except ConfigError as e:
            assert next(iter(environ)) in str(e) or "DATABASE_URL" in str(e)
        else:
            raise AssertionError(f"{environ} was accepted")


def test_market_and_candles_come_in_with_the_tick_and_oldest_first() -> None:
    from copytrade.broker.v1 import broker_service_pb2 as broker_pb
    from meshkit.codec import timestamp_to_proto

    market = codec.market_from_proto(
        broker_pb.GetMarketResponse(
            market=broker_pb.Market(symbol="BTC/USD", price_tick=dec("0.5")),
            last_price=dec("50000"),
        )
    )
    assert (market.price_tick, market.last_price) == (D("0.5"), D("50000"))
    late, early = datetime(2026, 3, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    candles = codec.candles_from_proto(
        broker_pb.ListCandlesResponse(
            candles=[
                broker_pb.Candle(open_time=timestamp_to_proto(late), close=dec("2")),
                broker_pb.Candle(open_time=timestamp_to_proto(early), close=dec("1")),
                broker_pb.Candle(open_time=timestamp_to_proto(early), close=dec("")),
            ]
        )
    )
    assert [(c.open_time, c.close) for c in candles] == [(early, D("1")), (late, D("2"))]


def test_a_banded_intent_is_placed_as_a_limit_ioc_at_its_price() -> None:
    from engine_svc.domain.model import Intent, IntentState, OrderType, TimeInForce

    now = datetime(2026, 3, 1, tzinfo=UTC)
    intent = Intent(
        intent_id="i",
        config_id="c",
        source_id="s",
        sequence=1,
        signal_id="t",
        target_exchange_id="x",
        leg=0,
        client_order_id="coid",
        symbol="BTC/USDT",
        side=Side.SELL,
        type=OrderType.LIMIT,
        quantity=D("0.5"),
        price=D("49500.5"),
        state=IntentState.SENT,
        reason="",
        leader_quantity=D("1"),
        leader_price=D("50000"),
        leader_event_time=now,
        created_at=now,
        updated_at=now,
        time_in_force=TimeInForce.IOC,
    )
    request = codec.place_order_request(intent)
    assert (request.type, request.time_in_force) == (
        types_pb2.ORDER_TYPE_LIMIT,
        types_pb2.TIME_IN_FORCE_IOC,
    )
    assert (request.price.value, request.quantity.value) == ("49500.5", "0.5")
    market = codec.place_order_request(
        dataclasses.replace(intent, type=OrderType.MARKET, price=None, time_in_force=None)
    )
    assert market.time_in_force == types_pb2.TIME_IN_FORCE_UNSPECIFIED
    assert not market.HasField("price")


def test_the_order_rate_goes_both_ways_as_a_plain_integer() -> None:
    request = pb.StartCopyRequest(risk_limits=pb.RiskLimits(max_orders_per_minute=12))
    settings = codec.parse_settings(request, [])
    assert settings.risk_limits.max_orders_per_minute == 12
    config_message = pb.CopyConfig()
    codec._risk_limits_to_proto(settings.risk_limits, config_message.risk_limits)
    assert config_message.risk_limits.max_orders_per_minute == 12
