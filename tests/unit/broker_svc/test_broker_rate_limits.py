"""The broker's rate limiter: sliding windows (pure) and the account limiter over them."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker_svc.adapters.binance import BinanceExchange
from broker_svc.adapters.coinbase import CoinbaseExchange
from broker_svc.adapters.kraken import KrakenExchange
from broker_svc.adapters.ratelimit import RateLimits
from broker_svc.domain.ratelimit import (
    ACCOUNT_SCOPE,
    VENUE_SCOPE,
    Budget,
    SlidingWindow,
    request_charges,
    schedule,
)
from meshkit import errors
from meshkit.testing import trust_env
from tests.fakes.clock import FakeMonotonic


def test_a_request_that_fits_goes_now() -> None:
    window = SlidingWindow(3, 1.0)
    window.add(0.0, 1)
    window.add(0.1, 1)
    assert window.earliest(1, 0.2) == 0.2


def test_a_request_over_the_limit_waits_until_the_oldest_leaves_the_window() -> None:
    window = SlidingWindow(3, 1.0)
    for at in (0.0, 0.1, 0.2):
        window.add(at, 1)
    assert window.earliest(1, 0.5) == pytest.approx(1.0)
    assert window.earliest(2, 0.5) == pytest.approx(1.1)


def test_requests_are_never_scheduled_before_an_earlier_promise() -> None:
    window = SlidingWindow(10, 1.0)
    window.add(5.0, 1)  # promised to a waiting request
    assert window.earliest(1, 0.0) == 5.0


def test_a_removed_promise_frees_its_place() -> None:
    window = SlidingWindow(1, 1.0)
    token = window.add(0.0, 1)
    assert window.earliest(1, 0.0) == pytest.approx(1.0)
    window.remove(token)
    assert window.earliest(1, 0.0) == 0.0


def test_schedule_waits_for_the_slowest_budget_and_any_pause() -> None:
    weight, orders = SlidingWindow(100, 60.0), SlidingWindow(1, 1.0)
    orders.add(0.0, 1)
    assert schedule({weight: 1, orders: 1}, now=0.2) == pytest.approx(1.0)
    assert schedule({weight: 1}, now=0.2, paused_until=3.0) == 3.0


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=5),
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=5), st.integers(min_value=1, max_value=3)),
        min_size=1,
        max_size=30,
    ),
)
def test_no_span_of_the_interval_ever_holds_more_than_the_limit(
    limit: int, arrivals: list[tuple[float, int]]
) -> None:
    window = SlidingWindow(limit, 1.0)
    sent: list[tuple[float, int]] = []
    for arrival, cost in sorted(arrivals):
        cost = min(cost, limit)
        at = schedule({window: cost}, arrival)
        window.add(at, cost)
        sent.append((at, cost))
    for at, _ in sent:  # the venue checks at each arrival: the span (at - 1, at]
        assert sum(c for t, c in sent if at - 1.0 < t <= at) <= limit


def test_charges_keep_ccxt_per_endpoint_weights_and_count_orders() -> None:
    rules = BinanceExchange.capabilities.request_charges
    scale = BinanceExchange.capabilities.ccxt_cost_scale
    # ccxt's binance cost is weight x 0.2: exchangeInfo (4) weighs 20, a new order (0.2) 1.
    assert request_charges(rules, "public", "GET", "exchangeInfo", 4, scale) == {
        "request_weight": 20
    }
    assert request_charges(rules, "private", "POST", "order", 0.2, scale) == {
        "request_weight": 1,
        "orders": 1,
    }
    assert request_charges(rules, "private", "GET", "order", 0.8, scale) == {"request_weight": 4}


def test_kraken_orders_and_cancels_are_metered_apart_from_other_private_calls() -> None:
    rules = KrakenExchange.capabilities.request_charges
    assert request_charges(rules, "private", "POST", "AddOrder", 0) == {"orders": 1}
    assert request_charges(rules, "private", "POST", "CancelOrder", 0) == {}
    assert request_charges(rules, "private", "POST", "QueryOrders", 3) == {"requests": 1}
    assert request_charges(rules, "public", "GET", "AssetPairs", 1) == {"public_requests": 1}


def test_coinbase_counts_signed_requests_per_key_and_public_ones_per_ip() -> None:
    rules = CoinbaseExchange.capabilities.request_charges
    budgets = {b.name: b for b in CoinbaseExchange.budgets()}
    charged = request_charges(rules, ("v3", "private"), "POST", "brokerage/orders", 1)
    assert charged == {"requests": 1, "orders": 1}
    assert budgets["requests"].scope == budgets["orders"].scope == ACCOUNT_SCOPE
    assert request_charges(rules, ("v3", "public"), "GET", "brokerage/market/products", 1) == {
        "public_requests": 1
    }
    assert budgets["public_requests"].scope == VENUE_SCOPE


BUDGETS = (
    Budget("weight", 5, 60, VENUE_SCOPE),
    Budget("orders", 2, 1, ACCOUNT_SCOPE),
)


def _limiter(time: FakeMonotonic, api_key: str, limits: RateLimits | None = None):
    from broker_svc.adapters.ratelimit import AccountLimiter

    limits = limits or RateLimits(guard=0.0, max_wait=2.0)
    shared = limits.account("venue", BUDGETS, api_key)
    limiter = AccountLimiter(shared.venue, max_wait=2.0, clock=time.clock, sleep=time.sleep)
    limiter.scope = shared.scope  # one key's budgets, driven by the fake clock
    return limiter


async def test_a_short_wait_is_waited_and_a_long_one_is_refused_with_retry_after() -> None:
    time = FakeMonotonic(100.0)
    limiter = _limiter(time, "key-1")
    for _ in range(2):
        async with limiter.turn({"orders": 1, "weight": 1}):
            pass
    async with limiter.turn({"orders": 1, "weight": 1}):
        pass
    assert time.slept == [pytest.approx(1.0)]
    for _ in range(2):
        async with limiter.turn({"weight": 1}):
            pass
    with pytest.raises(errors.ResourceExhausted) as caught:
        async with limiter.turn({"weight": 1}):
            pass
    assert caught.value.reason == "RATE_LIMITED"
    assert caught.value.retry_after == pytest.approx(59.0)


async def test_the_venue_budget_is_shared_by_every_account_and_orders_are_per_account() -> None:
    time = FakeMonotonic(100.0)
    limits = RateLimits(guard=0.0)
    alice, bob = _limiter(time, "alice", limits), _limiter(time, "bob", limits)
    for limiter in (alice, alice, bob, bob):
        async with limiter.turn({"orders": 1, "weight": 1}):
            pass
    assert time.slept == []  # two orders each: no account waited for the other's
    async with bob.turn({"weight": 1}):
        pass
    with pytest.raises(errors.ResourceExhausted):
        async with alice.turn({"weight": 1}):
            pass


async def test_a_venue_pause_holds_every_account_and_nothing_is_sent_inside_it() -> None:
    time = FakeMonotonic(100.0)
    limits = RateLimits(guard=0.0)
    alice, bob = _limiter(time, "alice", limits), _limiter(time, "bob", limits)
    alice.pause(1.5, VENUE_SCOPE)
    assert bob.paused_for() == pytest.approx(1.5)
    async with bob.turn({"weight": 1}):
        sent_at = time.now
    assert sent_at >= 101.5
    alice.pause(30, ACCOUNT_SCOPE)
    with pytest.raises(errors.ResourceExhausted) as caught:
        async with alice.turn({"weight": 1}):
            pass
    assert caught.value.retry_after == pytest.approx(30.0)
    async with bob.turn({"weight": 1}):  # an account pause is that account's only
        pass


async def test_switched_off_budgets_never_wait_but_a_pause_still_holds() -> None:
    time = FakeMonotonic(100.0)
    limits = RateLimits(enabled=False, guard=0.0)
    limiter = _limiter(time, "key", limits)
    limiter.enabled = False
    for _ in range(20):
        async with limiter.turn({"orders": 1, "weight": 1}):
            pass
    assert time.slept == []
    limiter.pause(0.5, VENUE_SCOPE)
    async with limiter.turn({"weight": 1}):
        pass
    assert time.slept == [pytest.approx(0.5)]


async def test_a_cancelled_wait_gives_its_turn_back() -> None:
    limits = RateLimits(guard=0.0, max_wait=5.0)
    limiter = limits.account("venue", (Budget("orders", 1, 1.0, ACCOUNT_SCOPE),), "key")
    async with limiter.turn({"orders": 1}):
        pass
    window = limiter.scope.windows["orders"][0]
    sent_at = window.last
    waiting = asyncio.create_task(_take(limiter))
    await asyncio.sleep(0.01)
    assert window.last > sent_at  # the waiting request holds the next place
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert window.last == sent_at


async def _take(limiter) -> None:
    async with limiter.turn({"orders": 1}):
        pass


def test_one_key_gets_one_limiter_and_one_nonce_sequence() -> None:
    limits = RateLimits()
    first = limits.account("kraken", KrakenExchange.budgets(), "key-a")
    assert limits.account("kraken", KrakenExchange.budgets(), "key-a") is first
    assert limits.account("kraken", KrakenExchange.budgets(), "key-b") is not first
    nonces = [first.next_nonce() for _ in range(50)]
    assert nonces == sorted(set(nonces))


def test_rate_limits_are_on_by_default_and_switch_off_by_setting() -> None:
    import base64
    import os

    from broker_svc.config import Settings
    from meshkit.settings import ConfigError

    key = base64.b64encode(os.urandom(32)).decode()
    assert Settings.from_env({**trust_env("broker"), "ENCRYPTION_KEY": key}).rate_limits is True
    off = Settings.from_env(
        {
            **trust_env("broker"),
            "ENCRYPTION_KEY": key,
            "BROKER_RATE_LIMITS": "off",
            "BROKER_RATE_LIMIT_MAX_WAIT_MS": "0",
        }
    )
    assert (off.rate_limits, off.rate_limit_max_wait_ms) == (False, 0)
    with pytest.raises(ConfigError, match="BROKER_RATE_LIMITS"):
        Settings.from_env(
            {**trust_env("broker"), "ENCRYPTION_KEY": key, "BROKER_RATE_LIMITS": "sometimes"}
        )
