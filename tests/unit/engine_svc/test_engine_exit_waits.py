"""Which earlier copies an exit waits for before it is sized (``recorder.blocking_exit``)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from engine_svc.copy.recorder import blocking_exit
from engine_svc.domain import intents as rules
from engine_svc.domain.decision import Decision
from engine_svc.domain.model import (
    ConfigSettings,
    CopyConfig,
    CopySettings,
    CopyStatus,
    Intent,
    OrderType,
    Side,
    Signal,
)
from engine_svc.domain.model import IntentState as S
from tests.fakes.configs import copy_config

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _config(status: CopyStatus = CopyStatus.ACTIVE, config_id: str = "cfg") -> CopyConfig:
    return copy_config(
        NOW,
        config_id=config_id,
        settings=ConfigSettings(copy_settings=CopySettings(max_signal_age_seconds=60)),
        status=status,
    )


def _signal(sequence: int, side: Side, symbol: str = "BTC/USDT") -> Signal:
    return Signal(
        source_id="src",
        sequence=sequence,
        signal_id=f"t{sequence}",
        symbol=symbol,
        side=side,
        quantity=D("0.1"),
        price=D("50000"),
        order_type=OrderType.MARKET,
        event_time=NOW,
        leader_position=D("0.1") if side is Side.SELL else D(0),
    )


def _entry(state: S, sequence: int = 1, symbol: str = "BTC/USDT", config_id: str = "cfg") -> Intent:
    written = rules.new_intent(
        f"i{sequence}",
        config_id,
        _signal(sequence, Side.BUY, symbol),
        "acct",
        Decision(symbol, D("0.01")),
        NOW,
    )
    return dataclasses.replace(written, state=state)


@pytest.mark.parametrize("state", [S.PENDING, S.SENT, S.UNKNOWN])
def test_an_exit_waits_for_an_earlier_entry_whose_outcome_is_not_known(state: S) -> None:
    entry = _entry(state)
    assert blocking_exit(_signal(2, Side.SELL), [_config()], [entry], NOW) == [entry]


def test_a_buy_waits_for_nothing() -> None:
    assert blocking_exit(_signal(2, Side.BUY), [_config()], [_entry(S.UNKNOWN)], NOW) == []


@pytest.mark.parametrize(
    ("entry", "config", "now"),
    [
        (_entry(S.FILLED), _config(), NOW),  # known
        (_entry(S.UNKNOWN, sequence=3), _config(), NOW),  # a later signal's
        (_entry(S.UNKNOWN, symbol="ETH/USDT"), _config(), NOW),  # another market
        (_entry(S.UNKNOWN, config_id="other"), _config(), NOW),  # another configuration's
        (_entry(S.UNKNOWN), _config(CopyStatus.HALTED), NOW),  # skipped as halted anyway
        (_entry(S.UNKNOWN), _config(), NOW + timedelta(seconds=61)),  # the exit is stale
    ],
)
def test_an_exit_does_not_wait_for_what_cannot_change_its_size(
    entry: Intent, config: CopyConfig, now: datetime
) -> None:
    assert blocking_exit(_signal(2, Side.SELL), [config], [entry], now) == []
