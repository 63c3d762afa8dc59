"""A futures portfolio is stamped when its positions came back, not when its balances did:
sync takes every leader fill traded up to the stamp as held by the read, and none after it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from broker_svc import codec
from broker_svc.domain.model import Balance, MarketLeverage, Position
from broker_svc.usecases.market_data import MarketDataUseCases
from meshkit.codec import decimal_from_proto
from tests.fakes.clock import FakeClock


class _FuturesPort:
    """Balances at once; positions a second later, after a fill that moved them."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock

    async def fetch_balances(self) -> list[Balance]:
        return [Balance("USDT", Decimal(1000), Decimal(0))]

    async def load_markets(self) -> dict[str, Any]:
        return {}

    async def fetch_positions(self) -> list[Position]:
        self._clock.advance(1)  # a leader fill traded meanwhile
        return [Position("BTC/USDT:USDT", "long", Decimal("0.102"))]


async def test_a_futures_portfolio_is_stamped_after_its_positions_were_read() -> None:
    clock = FakeClock()
    balances_read = clock.now()
    use_cases = MarketDataUseCases.__new__(MarketDataUseCases)
    connection = SimpleNamespace(
        account=SimpleNamespace(exchange_name="binanceusdm"), port=_FuturesPort(clock)
    )

    async def _connection(exchange_id: str, user_id: str) -> Any:
        return connection

    vars(use_cases).update(
        clock=clock,
        _connection=_connection,
        _priced={},
        _price_reads={},
        profile=lambda name: SimpleNamespace(features=("positions",), main_quote="USDT"),
    )
    portfolio = await use_cases.portfolio("x", "alice", "")
    assert portfolio.positions and portfolio.read_at == balances_read + timedelta(seconds=1)


class _LeveragedPort(_FuturesPort):
    """A leader at 10x on BTC (flat) and the default 20x on ETH; the calls in order."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.calls: list[str] = []

    async def fetch_leverages(self) -> list[MarketLeverage]:
        self.calls.append("fetch_leverages")
        return [
            MarketLeverage("BTC/USDT:USDT", Decimal(10), "cross"),
            MarketLeverage("ETH/USDT:USDT", Decimal(20), "isolated"),
        ]

    async def fetch_positions(self) -> list[Position]:
        self.calls.append("fetch_positions")
        return []


async def test_leverages_asked_for_are_read_before_the_positions_flat_markets_included() -> None:
    clock = FakeClock()
    port = _LeveragedPort(clock)
    use_cases = MarketDataUseCases.__new__(MarketDataUseCases)
    connection = SimpleNamespace(account=SimpleNamespace(exchange_name="binanceusdm"), port=port)

    async def _connection(exchange_id: str, user_id: str) -> Any:
        return connection

    vars(use_cases).update(
        clock=clock,
        _connection=_connection,
        _priced={},
        _price_reads={},
        profile=lambda name: SimpleNamespace(features=("positions", "leverage"), main_quote="USDT"),
    )
    assert (await use_cases.portfolio("x", "alice", "")).leverages == ()
    assert port.calls == ["fetch_positions"]  # not asked: no extra venue call

    port.calls.clear()
    portfolio = await use_cases.portfolio("x", "alice", "", include_leverages=True)
    # Before the positions: the stamp after them still holds every leverage set before it.
    assert port.calls == ["fetch_leverages", "fetch_positions"]
    wire = codec.portfolio_to_proto(portfolio)
    assert [
        (m.symbol, decimal_from_proto(m.leverage, "leverage"), m.margin_mode)
        for m in wire.leverages
    ] == [("BTC/USDT:USDT", Decimal(10), "cross"), ("ETH/USDT:USDT", Decimal(20), "isolated")]
