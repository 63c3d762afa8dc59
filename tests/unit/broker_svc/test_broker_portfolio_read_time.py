"""A futures portfolio is stamped when its positions came back, not when its balances did:
sync takes every leader fill traded up to the stamp as held by the read, and none after it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from broker_svc.domain.model import Balance, Position
from broker_svc.usecases.market_data import MarketDataUseCases
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
        profile=lambda name: SimpleNamespace(features=("positions",), main_quote="USDT"),
    )
    portfolio = await use_cases.portfolio("x", "alice", "")
    assert portfolio.positions and portfolio.read_at == balances_read + timedelta(seconds=1)
