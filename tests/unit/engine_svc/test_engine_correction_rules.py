"""Correction orders (pure): a deterministic key, and the risk gate deciding the order."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

from engine_svc.domain import corrections
from engine_svc.domain.corrections import Correction, correction_key, decide
from engine_svc.domain.model import (
    ConfigSettings,
    CopyConfig,
    CopyStatus,
    FollowerSnapshot,
    IntentState,
    MarketInfo,
    OrderType,
    RiskLimits,
    Side,
    SourceKind,
    TimeInForce,
)
from tests.fakes.configs import copy_config

D = Decimal
NOW = datetime(2026, 1, 1, tzinfo=UTC)
MARKET = MarketInfo(
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    quantity_step=D("0.00001"),
    min_quantity=None,
    min_notional=D("5"),
    last_price=D("50000"),
    price_tick=D("0.01"),
)
SNAPSHOT = FollowerSnapshot(equity=D("10000"), base_free=D("0.01"), base_total=D("0.01"))
RECON = "2f1d7c4e-0b3a-4c55-9e61-7a8b9c0d1e2f"


def _config(max_slippage: Decimal | None = None) -> CopyConfig:
    return copy_config(
        NOW,
        config_id="cfg-1",
        user_id="user-1",
        source_kind=SourceKind.EXCHANGE,
        source_id="src-1",
        target_exchange_ids=("acct-1",),
        settings=ConfigSettings(risk_limits=RiskLimits(max_slippage=max_slippage)),
    )


def _correction(side: Side = Side.BUY, quantity: str = "0.004") -> Correction:
    return Correction("cfg-1", "acct-1", "BTC/USDT", side, D(quantity), RECON)


def test_the_key_is_the_same_for_the_same_reconciliation_and_another_for_another() -> None:
    first = correction_key("cfg-1", "acct-1", "BTC/USDT", RECON)
    assert first == correction_key("cfg-1", "acct-1", "BTC/USDT", RECON)
    assert first != correction_key("cfg-1", "acct-1", "BTC/USDT", "other")
    assert first != correction_key("cfg-1", "acct-1", "ETH/USDT", RECON)
    assert first[1] < 0  # never the leg of a signal's copy


def test_a_correction_under_max_slippage_is_a_limit_ioc_in_the_band() -> None:
    decision = decide(_correction(), _config(max_slippage=D("0.01")), SNAPSHOT, MARKET, 0)
    assert (decision.order_type, decision.time_in_force) == (OrderType.LIMIT, TimeInForce.IOC)
    assert decision.price == D("50500.00")
    assert decision.quantity == D("0.004") and not decision.skipped


def test_the_gate_caps_a_sell_at_the_free_balance_and_skips_what_it_denies() -> None:
    sell = decide(_correction(Side.SELL, "1"), _config(), SNAPSHOT, MARKET, 0)
    assert (sell.order_type, sell.quantity) == (OrderType.MARKET, D("0.01"))
    paused = dataclasses.replace(_config(), status=CopyStatus.PAUSED)
    assert decide(_correction(), paused, SNAPSHOT, MARKET, 0).reason == "paused"
    assert decide(_correction(), _config(), SNAPSHOT, None, 0).reason == "market_unavailable"
    assert decide(_correction(), _config(), None, MARKET, 0).reason == "portfolio_unavailable"


def test_the_intent_is_pending_or_skipped_and_says_it_is_a_correction() -> None:
    config = _config()
    decision = decide(_correction(), config, SNAPSHOT, MARKET, 0)
    intent = corrections.new_intent("i-1", _correction(), config, decision, NOW)
    assert intent.state is IntentState.PENDING
    assert intent.signal_id == f"correction:{RECON}" and corrections.is_correction(intent)
    assert (intent.client_order_id, intent.leg) == correction_key(
        "cfg-1", "acct-1", "BTC/USDT", RECON
    )
    skipped = decide(
        _correction(), dataclasses.replace(config, status=CopyStatus.HALTED), SNAPSHOT, MARKET, 0
    )
    assert corrections.new_intent("i-2", _correction(), config, skipped, NOW).state is (
        IntentState.SKIPPED
    )
