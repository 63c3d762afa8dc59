"""Pure rules of the sync service: published-signal checks, sync settings, positions."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from sync_svc.domain.model import (
    LeaderFill,
    OrderType,
    PositionEffect,
    Side,
    Signal,
    SignalDraft,
    SignalKind,
    Source,
    SourceKind,
    SyncMode,
    SyncSettings,
    TimeInForce,
)
from sync_svc.domain.positions import base_delta, copy_order_type
from sync_svc.domain.validation import (
    RawPublishedSignal,
    check_backtest,
    check_id,
    check_published_signal,
    check_published_signals,
    check_sync_settings,
    is_uuid,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _raw(**overrides: str) -> RawPublishedSignal:
    values = {
        "signal_id": "s1",
        "symbol": "BTC/USDT",
        "side": "buy",
        "quantity": "1",
        "price": "",
        "order_type": "market",
        "time_in_force": "",
        "portfolio_fraction": "",
    }
    values.update(overrides)
    return RawPublishedSignal(**values)


def test_valid_signal_is_normalised() -> None:
    signal, violations = check_published_signal(
        0,
        _raw(
            symbol=" eth/usdt ",
            side="SELL",
            order_type="Limit",
            price="2500.10",
            time_in_force="IOC",
            portfolio_fraction="1",
        ),
    )
    assert violations == []
    assert signal is not None
    assert (signal.symbol, signal.side) == ("ETH/USDT", Side.SELL)
    assert signal.order_type is OrderType.LIMIT
    assert signal.price == Decimal("2500.10") and signal.portfolio_fraction == Decimal(1)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"signal_id": " "}, "signal_id"),
        ({"signal_id": "x" * 201}, "signal_id"),
        ({"symbol": ""}, "symbol"),
        ({"symbol": "BTCUSDT"}, "symbol"),
        ({"symbol": "BTC/USDT/X"}, "symbol"),
        ({"side": ""}, "side"),
        ({"side": "long"}, "side"),
        ({"quantity": ""}, "quantity"),
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "NaN"}, "quantity"),
        ({"quantity": "1e"}, "quantity"),
        ({"price": "0"}, "price"),
        ({"order_type": ""}, "order_type"),
        ({"order_type": "stop"}, "order_type"),
        ({"order_type": "stop_market"}, "stop_price"),
        ({"order_type": "stop_limit", "stop_price": "1"}, "price"),
        ({"order_type": "stop_market", "stop_price": "0"}, "stop_price"),
        ({"stop_price": "100"}, "stop_price"),
        ({"time_in_force": "fok"}, "time_in_force"),
        ({"order_type": "stop_market", "stop_price": "1", "time_in_force": "gtc"}, "time_in_force"),
        (
            {
                "order_type": "stop_limit",
                "stop_price": "1",
                "price": "1",
                "time_in_force": "post_only",
            },
            "time_in_force",
        ),
        ({"order_type": "limit"}, "price"),
        ({"time_in_force": "day"}, "time_in_force"),
        ({"portfolio_fraction": "0"}, "portfolio_fraction"),
        ({"portfolio_fraction": "1.01"}, "portfolio_fraction"),
    ],
)
def test_bad_field_is_named_with_its_index(overrides: dict[str, str], field: str) -> None:
    signal, violations = check_published_signal(3, _raw(**overrides))
    assert signal is None
    assert [v.field for v in violations] == [f"signals[3].{field}"]


def test_stop_orders_keep_their_stop_price_and_time_in_force() -> None:
    stop, violations = check_published_signal(
        0, _raw(order_type="stop_market", stop_price="45000", side="sell")
    )
    assert violations == [] and stop is not None
    assert (stop.order_type, stop.stop_price, stop.time_in_force) == (
        OrderType.STOP_MARKET,
        Decimal(45000),
        None,
    )
    stop_limit, violations = check_published_signal(
        0,
        _raw(order_type="stop_limit", stop_price="45000", price="44900", time_in_force="fok"),
    )
    assert violations == [] and stop_limit is not None
    assert stop_limit.time_in_force is TimeInForce.FOK and stop_limit.price == Decimal(44900)


def test_one_bad_signal_rejects_the_whole_batch() -> None:
    checked, violations = check_published_signals([_raw(), _raw(quantity="0"), _raw(side="x")])
    assert checked == []
    assert [v.field for v in violations] == ["signals[1].quantity", "signals[2].side"]


def test_batch_must_hold_between_one_and_a_thousand_signals() -> None:
    assert [v.field for v in check_published_signals([])[1]] == ["signals"]
    assert [v.field for v in check_published_signals([_raw()] * 1001)[1]] == ["signals"]
    assert len(check_published_signals([_raw()] * 1000)[0]) == 1000


def test_sync_settings_zeros_take_the_defaults_and_unset_flags_are_true() -> None:
    settings, violations = check_sync_settings(0, 0, 0, None, None)
    assert violations == []
    assert settings == SyncSettings(5, 3, 10, True, True)


@pytest.mark.parametrize(
    ("websocket", "polling", "expected"),
    [
        (False, None, (False, True)),
        (None, False, (True, False)),
        (True, False, (True, False)),
        (False, True, (False, True)),
    ],
)
def test_sync_settings_flags_keep_what_was_set(
    websocket: bool | None,
    polling: bool | None,
    expected: tuple[bool, bool],
) -> None:
    settings, violations = check_sync_settings(1, 1, 1, websocket, polling)
    assert violations == []
    assert (settings.enable_websocket, settings.enable_polling) == expected


def test_sync_settings_with_neither_stream_nor_polling_are_refused() -> None:
    _settings, violations = check_sync_settings(5, 3, 10, False, False)
    assert [v.field for v in violations] == ["sync_settings.enable_polling"]


@pytest.mark.parametrize(
    ("interval", "retries", "timeout", "fields"),
    [
        (1, 20, 1, []),
        (3600, 1, 300, []),
        (3601, 3, 10, ["sync_settings.sync_interval"]),
        (
            -5,
            -1,
            -1,
            ["sync_settings.sync_interval", "sync_settings.max_retries", "sync_settings.timeout"],
        ),
        (5, 21, 301, ["sync_settings.max_retries", "sync_settings.timeout"]),
    ],
)
def test_sync_settings_ranges(interval: int, retries: int, timeout: int, fields: list[str]) -> None:
    _settings, violations = check_sync_settings(interval, retries, timeout, None, None)
    assert [v.field for v in violations] == fields


def test_sync_settings_survive_a_json_round_trip() -> None:
    settings = SyncSettings(7, 0, 30, False, True)
    assert SyncSettings.from_dict(settings.to_dict()) == settings
    assert SyncSettings.from_dict({}) == SyncSettings()
    # Rows written before the flags were resolved hold null: unset means true.
    old = {"sync_interval": 7, "enable_websocket": None, "enable_polling": None}
    assert SyncSettings.from_dict(old) == SyncSettings(sync_interval=7)


@pytest.mark.parametrize(
    ("name", "equity", "fields"),
    [
        ("ok", "", []),
        ("ok", "0.01", []),
        ("", "", ["name"]),
        ("x" * 201, "0", ["name", "equity"]),
        ("ok", "Infinity", ["equity"]),
    ],
)
def test_backtest_checks(name: str, equity: str, fields: list[str]) -> None:
    assert [v.field for v in check_backtest(name, equity)[2]] == fields


def test_ids_must_be_canonical_uuids() -> None:
    assert is_uuid("0b6f4c1e-9c36-4d5c-8a51-2f2b39a1c0de")
    assert not is_uuid("0b6f4c1e9c364d5c8a512f2b39a1c0de")
    assert not is_uuid("not-a-uuid")
    assert check_id("", "backtest_id")[0].description == "is required"
    assert check_id("", "x", required=False) == []


def _fill(
    side: str,
    quantity: str,
    symbol: str = "BTC/USDT",
    fee: str | None = None,
    fee_currency: str = "",
) -> LeaderFill:
    return LeaderFill(
        trade_id="t",
        symbol=symbol,
        side=Side(side),
        quantity=Decimal(quantity),
        price=Decimal("1"),
        fee=Decimal(fee) if fee else None,
        fee_currency=fee_currency,
        order_type=None,
        trade_time=T0,
    )


def test_base_delta_counts_a_fee_paid_in_the_base_asset() -> None:
    assert base_delta(_fill("buy", "1", fee="0.001", fee_currency="BTC")) == Decimal("0.999")
    assert base_delta(_fill("sell", "1", fee="0.001", fee_currency="btc")) == Decimal("-1.001")
    assert base_delta(_fill("buy", "1", fee="5", fee_currency="USDT")) == Decimal("1")


@pytest.mark.parametrize(
    ("fill_type", "copied"),
    [
        (None, OrderType.MARKET),
        (OrderType.MARKET, OrderType.MARKET),
        (OrderType.STOP_MARKET, OrderType.MARKET),
        (OrderType.LIMIT, OrderType.LIMIT),
        (OrderType.STOP_LIMIT, OrderType.LIMIT),
    ],
)
def test_a_fill_is_copied_as_the_execution_it_was(
    fill_type: OrderType | None,
    copied: OrderType,
) -> None:
    assert copy_order_type(fill_type) is copied


def _source(kind: SourceKind, owner: str, public: bool) -> Source:
    return Source(
        source_id="s",
        kind=kind,
        user_id=owner,
        name="",
        public=public,
        exchange_id="",
        exchange_name="",
        sync_settings=SyncSettings(),
        equity=None,
        mode=SyncMode.PUBLISHED,
        start_time=T0,
        created_at=T0,
    )


@pytest.mark.parametrize(
    ("kind", "public", "viewer", "visible"),
    [
        (SourceKind.BACKTEST, False, "", True),
        (SourceKind.BACKTEST, False, "alice", True),
        (SourceKind.BACKTEST, False, "bob", False),
        (SourceKind.BACKTEST, True, "bob", True),
        (SourceKind.EXCHANGE, True, "bob", False),
    ],
)
def test_source_visibility(kind: SourceKind, public: bool, viewer: str, visible: bool) -> None:
    assert _source(kind, "alice", public).visible_to(viewer) is visible


def test_a_signal_placed_in_the_log_keeps_every_field_of_its_draft() -> None:
    draft = SignalDraft(
        source_id="src",
        signal_id="sig",
        symbol="BTC/USDT:USDT",
        side=Side.SELL,
        quantity=Decimal("0.5"),
        price=Decimal("50000"),
        order_type=OrderType.LIMIT,
        event_time=datetime(2026, 1, 2, tzinfo=UTC),
        time_in_force=TimeInForce.IOC,
        portfolio_fraction=Decimal("0.1"),
        leader_equity=Decimal("1000"),
        leader_position=Decimal("-0.5"),
        exchange_name="binanceusdm",
        traceparent="00-trace",
        kind=SignalKind.ORDER_AMEND,
        leader_order_id="o1",
        stop_price=Decimal("49000"),
        order_mirrored=True,
        opened_sequence=3,
        replaced_order_id="o0",
        position_effect=PositionEffect.REVERSE,
        liquidation=True,
        leader_leverage=Decimal("10"),
    )
    log_time = datetime(2026, 1, 3, tzinfo=UTC)
    signal = Signal.from_draft(draft, 7, log_time)
    assert {f.name for f in dataclasses.fields(Signal)} == {
        f.name for f in dataclasses.fields(SignalDraft)
    } | {"sequence", "log_time"}
    assert (signal.sequence, signal.log_time) == (7, log_time)
    assert {
        f.name: getattr(signal, f.name) for f in dataclasses.fields(SignalDraft)
    } == dataclasses.asdict(draft)
