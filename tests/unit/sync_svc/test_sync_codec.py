"""Wire conversions of the sync service, and its configuration."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.common.v1 import types_pb2
from copytrade.sync.v1 import sync_service_pb2 as pb
from meshkit import errors
from meshkit.settings import ConfigError
from meshkit.testing import mesh_trust, trust_env
from sync_svc import codec
from sync_svc.config import Settings
from sync_svc.domain.model import (
    LeaderFill,
    OrderType,
    Side,
    Signal,
    Source,
    SourceKind,
    SyncMode,
    SyncSettings,
    TimeInForce,
    WatchEvent,
    WatchState,
)
from sync_svc.stream import Ack, Subscribe

T0 = datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)


def test_signal_to_proto_carries_every_field() -> None:
    signal = Signal(
        source_id="src",
        sequence=7,
        signal_id="t-1",
        symbol="BTC/USDT",
        side=Side.SELL,
        quantity=Decimal("0.50"),
        price=Decimal("100.0"),
        order_type=OrderType.LIMIT,
        event_time=T0,
        log_time=T0,
        time_in_force=TimeInForce.FOK,
        portfolio_fraction=Decimal("0.1"),
        leader_equity=Decimal("1000"),
        leader_position=Decimal("0"),
        exchange_name="binance",
    )
    message = codec.signal_to_proto(signal)
    assert (message.source_id, message.sequence, message.signal_id) == ("src", 7, "t-1")
    assert message.side == types_pb2.ORDER_SIDE_SELL
    assert message.order_type == types_pb2.ORDER_TYPE_LIMIT
    assert message.time_in_force == types_pb2.TIME_IN_FORCE_FOK
    assert (message.quantity.value, message.price.value) == ("0.5", "100")
    assert message.leader_position.value == "0" and message.leader_equity.value == "1000"
    assert message.event_time.ToDatetime(tzinfo=UTC) == T0
    assert message.exchange_name == "binance"


def test_unknown_optional_values_stay_empty_on_the_wire() -> None:
    signal = Signal(
        source_id="s",
        sequence=1,
        signal_id="x",
        symbol="BTC/USDT",
        side=Side.BUY,
        quantity=Decimal(1),
        price=None,
        order_type=OrderType.MARKET,
        event_time=T0,
        log_time=T0,
    )
    message = codec.signal_to_proto(signal)
    assert message.price.value == "" and message.leader_equity.value == ""
    assert message.time_in_force == types_pb2.TIME_IN_FORCE_UNSPECIFIED


def test_source_to_proto() -> None:
    source = Source(
        source_id="e",
        kind=SourceKind.EXCHANGE,
        user_id="u",
        name="",
        public=False,
        exchange_id="e",
        exchange_name="kraken",
        sync_settings=SyncSettings(9),
        equity=Decimal("12.50"),
        mode=SyncMode.POLLING,
        start_time=T0,
        created_at=T0,
        last_sync_at=T0,
        last_error="boom",
        last_sequence=4,
    )
    message = codec.source_to_proto(source)
    assert message.kind == pb.SOURCE_KIND_EXCHANGE and message.mode == pb.SYNC_MODE_POLLING
    assert message.sync_interval_seconds == 9 and message.equity.value == "12.5"
    assert message.last_sequence == 4 and message.last_error == "boom"
    assert message.last_sync_time.ToDatetime(tzinfo=UTC) == T0


def test_fill_and_portfolio_from_the_broker() -> None:
    fill = types_pb2.Fill(
        trade_id="9",
        symbol="ETH/USD",
        side=types_pb2.ORDER_SIDE_BUY,
        fee_currency="USD",
        order_type=types_pb2.ORDER_TYPE_STOP_LIMIT,
    )
    fill.quantity.value, fill.price.value, fill.fee.value = "2", "3000.5", "1.2"
    fill.trade_time.FromDatetime(T0)
    leader = codec.fill_from_proto(fill)
    assert (leader.trade_id, leader.side) == ("9", Side.BUY)
    assert leader.order_type is OrderType.STOP_LIMIT
    assert leader.quantity == Decimal(2) and leader.fee == Decimal("1.2")
    assert leader.trade_time == T0
    reply = broker_pb.GetPortfolioResponse(balances=[broker_pb.Balance(asset="ETH")])
    reply.balances[0].total.value = "4.5"
    reply.equity.value = "20000"
    portfolio = codec.portfolio_from_proto(reply)
    assert portfolio.equity == Decimal(20000) and portfolio.totals == {"ETH": Decimal("4.5")}


@pytest.mark.parametrize("broken", ["trade_id", "side", "quantity", "trade_time"])
def test_a_malformed_fill_from_the_broker_is_an_error(broken: str) -> None:
    fill = types_pb2.Fill(trade_id="9", symbol="ETH/USD", side=types_pb2.ORDER_SIDE_BUY)
    fill.quantity.value, fill.price.value = "2", "3"
    fill.trade_time.FromDatetime(T0)
    fill.ClearField(broken)
    with pytest.raises(errors.ServiceError):
        codec.fill_from_proto(fill)


def test_stream_requests_from_proto() -> None:
    subscribe = pb.StreamSignalsRequest(
        subscribe=pb.SubscribeSignals(source_id="a", after_sequence=3)
    )
    ack = pb.StreamSignalsRequest(ack=pb.AckSignal(source_id="a", sequence=2))
    assert codec.stream_request_from_proto(subscribe) == Subscribe("a", 3)
    assert codec.stream_request_from_proto(ack) == Ack("a", 2)
    with pytest.raises(errors.InvalidArgument):
        codec.stream_request_from_proto(pb.StreamSignalsRequest())


def test_sync_settings_from_proto_honours_the_presence_of_the_flags() -> None:
    settings, violations = codec.sync_settings_from_proto(
        pb.SyncSettings(sync_interval=2, enable_polling=False)
    )
    assert violations == []
    assert settings == SyncSettings(2, 3, 10, True, False)
    unset, _ = codec.sync_settings_from_proto(pb.SyncSettings())
    assert (unset.enable_websocket, unset.enable_polling) == (True, True)
    off, _ = codec.sync_settings_from_proto(pb.SyncSettings(enable_websocket=False))
    assert (off.enable_websocket, off.enable_polling) == (False, True)


def test_sync_settings_from_proto_refuses_a_source_never_read() -> None:
    _settings, violations = codec.sync_settings_from_proto(
        pb.SyncSettings(enable_websocket=False, enable_polling=False)
    )
    assert [v.field for v in violations] == ["sync_settings.enable_polling"]


def test_watch_messages_become_fills_and_stream_events() -> None:
    fill = types_pb2.Fill(trade_id="t1", symbol="ETH/USDT", side=types_pb2.ORDER_SIDE_BUY)
    fill.quantity.value, fill.price.value = "2", "3000"
    fill.trade_time.FromDatetime(T0)
    item = codec.watch_item_from_proto(broker_pb.WatchFillsResponse(fill=fill))
    assert isinstance(item, LeaderFill)
    assert (item.trade_id, item.quantity, item.trade_time) == ("t1", Decimal(2), T0)
    event = codec.watch_item_from_proto(
        broker_pb.WatchFillsResponse(
            event=broker_pb.WatchEvent(
                state=broker_pb.WATCH_STATE_GAP_SUSPECTED, detail="heartbeat_counter jumped"
            )
        )
    )
    assert event == WatchEvent(WatchState.GAP_SUSPECTED, "heartbeat_counter jumped")
    assert (
        codec.watch_item_from_proto(
            broker_pb.WatchFillsResponse(
                event=broker_pb.WatchEvent(state=broker_pb.WATCH_STATE_UNSPECIFIED)
            )
        )
        is None
    )
    assert codec.watch_item_from_proto(broker_pb.WatchFillsResponse()) is None


def test_portfolio_from_proto_keeps_the_read_time() -> None:
    message = broker_pb.GetPortfolioResponse(
        balances=[broker_pb.Balance(asset="BTC")], quote_currency="USDT"
    )
    message.balances[0].total.value = "1.5"
    message.equity.value = "80000"
    assert codec.portfolio_from_proto(message).read_time is None
    message.read_time.FromDatetime(T0)
    portfolio = codec.portfolio_from_proto(message)
    assert portfolio.read_time == T0 and portfolio.totals == {"BTC": Decimal("1.5")}
    assert portfolio.equity == Decimal(80000)


def test_settings_defaults_and_environment() -> None:
    assert Settings.from_env(trust_env("sync")) == Settings(**mesh_trust("sync"))
    settings = Settings.from_env(
        {
            **trust_env("sync"),
            "GRPC_PORT": "6000",
            "METRICS_PORT": "0",
            "LOG_LEVEL": "debug",
            "BIND_HOST": "0.0.0.0",
            "DATABASE_URL": "postgresql://db/sync",
            "BROKER_SVC_ADDR": "broker-svc:50051",
            "HEARTBEAT_SECONDS": "5",
        }
    )
    assert (settings.grpc_port, settings.metrics_port, settings.log_level) == (6000, 0, "DEBUG")
    assert settings.database_url == "postgresql://db/sync"
    assert settings.broker_svc_addr == "broker-svc:50051" and settings.heartbeat_seconds == 5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GRPC_PORT", "http"),
        ("HEARTBEAT_SECONDS", "0"),
        ("DATABASE_URL", "mysql://x"),
        ("LOG_LEVEL", "chatty"),
        ("TLS_CERT", "/only/cert.pem"),
    ],
)
def test_bad_environment_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name.split("_")[0]):
        Settings.from_env({**trust_env("sync"), name: value})
