"""A signal's reads (``FollowerReader.gather``) ask the broker for every follower account's
portfolio in one batched call, and keep each account's own answer, error and patience: only
the accounts the broker was slow for are asked again, an answer about one account skips that
account alone, and a broker that cannot be reached makes the signal wait."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any, cast

import pytest

from engine_svc.copy.reads import BrokerUnreachable, FollowerReader
from engine_svc.domain.model import (
    ConfigSettings,
    CopyConfig,
    CopySettings,
    MarketInfo,
    OrderType,
    Portfolio,
    Side,
    Signal,
)
from engine_svc.ports import BrokerPort
from meshkit import errors
from tests.fakes.clock import FakeClock
from tests.fakes.configs import copy_config

NOW = datetime(2026, 3, 1, tzinfo=UTC)
Answer = Callable[[], Portfolio | Exception]


def _portfolio(equity: str) -> Answer:
    return lambda: Portfolio(equity=D(equity), quote_currency="USDT")


def _timed_out() -> Exception:
    error = errors.OutcomeUnknown("Deadline Exceeded")
    error.from_transport = True  # no service answered in time
    return error


def _broker_down() -> Exception:
    error = errors.Unavailable("failed to connect to all addresses")
    error.from_transport = True
    return error


def _venue_down() -> Exception:
    return errors.Unavailable("the venue could not be reached", reason="VENUE_UNAVAILABLE")


class BatchedBroker:
    """Answers each account's portfolio from its script, one answer per time it is asked (the
    last one again once the script is spent); only the batched call may read a portfolio."""

    def __init__(self, scripts: dict[str, list[Answer]]) -> None:
        self.scripts = scripts
        self.calls: list[list[tuple[str, str]]] = []

    async def get_portfolios(
        self, accounts: Sequence[tuple[str, str]]
    ) -> AsyncIterator[tuple[int, Portfolio | Exception]]:
        self.calls.append(list(accounts))
        for index, (exchange_id, _) in enumerate(accounts):
            script = self.scripts[exchange_id]
            answer = script.pop(0) if len(script) > 1 else script[0]
            yield index, answer()

    async def get_portfolio(self, exchange_id: str, user_id: str) -> Portfolio:
        raise AssertionError("a signal's portfolio read went around the batched call")

    async def get_market(self, exchange_id: str, symbol: str, user_id: str) -> MarketInfo:
        return MarketInfo(
            symbol, "BTC", "USDT", D("0.0001"), D("0.0001"), D("10"), last_price=D("50000")
        )

    def asked(self) -> list[str]:
        return [exchange_id for call in self.calls for exchange_id, _ in call]


def _config(config_id: str, user_id: str, targets: tuple[str, ...]) -> CopyConfig:
    return copy_config(
        NOW,
        config_id=config_id,
        user_id=user_id,
        target_exchange_ids=targets,
        settings=ConfigSettings(copy_settings=CopySettings(max_signal_age_seconds=60)),
    )


SIGNAL = Signal(
    source_id="src",
    sequence=1,
    signal_id="t1",
    symbol="BTC/USDT",
    side=Side.BUY,
    quantity=D("0.1"),
    price=D("50000"),
    order_type=OrderType.MARKET,
    event_time=NOW,
    leader_position=D(0),
)
CONFIGS = [_config("c1", "alice", ("a", "b")), _config("c2", "bob", ("c",))]


def _reader(broker: BatchedBroker) -> FollowerReader:
    return FollowerReader(
        cast(BrokerPort, broker),
        FakeClock(NOW),
        market_cache_seconds=0,
        candle_cache_seconds=0,
        broker_wait_seconds=30,
    )


def _equities(portfolios: dict[str, Portfolio | None]) -> dict[str, Any]:
    return {k: p.equity if p is not None else None for k, p in portfolios.items()}


async def test_every_follower_account_of_a_signal_is_read_in_one_call() -> None:
    broker = BatchedBroker({"a": [_portfolio("1")], "b": [_portfolio("2")], "c": [_portfolio("3")]})
    portfolios, reads = await _reader(broker).gather(SIGNAL, CONFIGS, NOW)
    assert _equities(portfolios) == {"a": D(1), "b": D(2), "c": D(3)}
    # One call; each account named with the owner of the configuration that reads it.
    [call] = broker.calls
    assert sorted(call) == [("a", "alice"), ("b", "alice"), ("c", "bob")]
    assert set(reads) == {("c1", "a"), ("c1", "b"), ("c2", "c")}


async def test_only_the_accounts_the_broker_was_slow_for_are_asked_again() -> None:
    rate_limited = errors.ResourceExhausted
    broker = BatchedBroker(
        {
            "a": [_timed_out, _portfolio("1")],
            "b": [lambda: rate_limited("busy", retry_after=0.0), _portfolio("2")],
            "c": [_portfolio("3")],
        }
    )
    portfolios, _ = await _reader(broker).gather(SIGNAL, CONFIGS, NOW)
    assert _equities(portfolios) == {"a": D(1), "b": D(2), "c": D(3)}
    assert sorted(broker.asked()) == ["a", "a", "b", "b", "c"]
    # The first call read every account; the later ones only those asked again.
    assert sorted(e for e, _ in broker.calls[0]) == ["a", "b", "c"]
    assert sorted(e for call in broker.calls[1:] for e, _ in call) == ["a", "b"]


async def test_an_answer_about_one_account_skips_that_account_alone() -> None:
    broker = BatchedBroker({"a": [_portfolio("1")], "b": [_venue_down], "c": [_portfolio("3")]})
    portfolios, _ = await _reader(broker).gather(SIGNAL, CONFIGS, NOW)
    assert _equities(portfolios) == {"a": D(1), "b": None, "c": D(3)}
    assert len(broker.calls) == 1  # a venue that is down is an answer: not asked again


@pytest.mark.parametrize("accept_unreadable", [False, True])
async def test_a_broker_that_cannot_be_reached_makes_the_signal_wait(
    accept_unreadable: bool,
) -> None:
    broker = BatchedBroker({k: [_broker_down] for k in "abc"})
    reader = _reader(broker)
    if not accept_unreadable:
        with pytest.raises(BrokerUnreachable):
            await reader.gather(SIGNAL, CONFIGS, NOW)
        return
    portfolios, _ = await reader.gather(SIGNAL, CONFIGS, NOW, accept_unreadable=True)
    assert _equities(portfolios) == dict.fromkeys("abc")


async def test_reads_of_signals_decided_at_once_share_a_call() -> None:
    broker = BatchedBroker({k: [_portfolio("1")] for k in "abc"})
    reader = _reader(broker)
    signals = [SIGNAL, dataclasses.replace(SIGNAL, sequence=2, signal_id="t2")]
    results = await asyncio.gather(*(reader.gather(s, CONFIGS, NOW) for s in signals))
    assert [sorted(portfolios) for portfolios, _ in results] == [["a", "b", "c"]] * 2
    assert [len(call) for call in broker.calls] == [6]
