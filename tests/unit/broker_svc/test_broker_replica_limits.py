"""Broker replicas share each venue's rate limits: each takes the limit over the live count."""

from __future__ import annotations

import pytest

from broker_svc.adapters.ratelimit import AccountLimiter, RateLimits
from broker_svc.domain.ratelimit import ACCOUNT_SCOPE, VENUE_SCOPE, Budget, replica_share
from meshkit import errors
from tests.fakes.clock import FakeMonotonic

BUDGETS = (
    Budget("weight", 10, 60, VENUE_SCOPE),
    Budget("orders", 4, 1, ACCOUNT_SCOPE),
)


@pytest.mark.parametrize(
    ("limit", "replicas", "share"),
    [(10, 1, 10), (10, 2, 5), (1200, 3, 400), (7, 2, 3), (1, 3, 1), (10, 0, 10)],
    ids=["alone", "two-halves", "three-thirds", "rounded-down", "at-least-one", "no-count"],
)
def test_each_replica_gets_the_venue_limit_over_the_live_replicas(
    limit: int, replicas: int, share: int
) -> None:
    assert replica_share(limit, replicas) == share


def _limits_of(limiter: AccountLimiter) -> dict[str, int]:
    return {
        name: windows[0].limit
        for scope in (limiter.scope, limiter.venue.scope)
        for name, windows in scope.windows.items()
    }


def test_two_live_replicas_halve_every_account_and_venue_budget() -> None:
    limits = RateLimits(guard=0.0)
    before = limits.account("venue", BUDGETS, "alice")
    assert _limits_of(before) == {"weight": 10, "orders": 4}
    limits.set_replicas(2)
    assert _limits_of(before) == {"weight": 5, "orders": 2}
    # An account first seen after the count changed gets its half too.
    assert _limits_of(limits.account("venue", BUDGETS, "bob")) == {"weight": 5, "orders": 2}
    limits.set_replicas(1)  # the other replica left: the whole limit again
    assert _limits_of(before) == {"weight": 10, "orders": 4}


async def test_with_two_replicas_a_replica_waits_once_it_spent_its_half() -> None:
    time = FakeMonotonic(100.0)
    limits = RateLimits(guard=0.0, max_wait=2.0)
    limits.set_replicas(2)
    shared = limits.account("venue", BUDGETS, "alice")
    limiter = AccountLimiter(shared.venue, max_wait=2.0, clock=time.clock, sleep=time.sleep)
    limiter.scope = shared.scope
    for _ in range(2):
        async with limiter.turn({"orders": 1, "weight": 1}):
            pass
    assert time.slept == []
    async with limiter.turn(
        {"orders": 1, "weight": 1}
    ):  # the third order of this second: its half is spent
        pass
    assert time.slept == [pytest.approx(1.0)]
    for _ in range(2):  # weight 5 of 10 is this replica's; 3 spent above plus 2
        async with limiter.turn({"weight": 1}):
            pass
    with pytest.raises(errors.ResourceExhausted):
        async with limiter.turn({"weight": 1}):
            pass
