"""Pure tests of the small core parts: decimals, faults, rate-limit windows, candles, clocks."""

from __future__ import annotations

import ast
import pathlib
from decimal import Decimal

import pytest

from exchange_sim.core import FaultRegistry, FaultRule, ManualClock
from exchange_sim.core.decimals import (
    ceil_to_step,
    fee_of,
    floor_to_step,
    fmt8,
    fmt_plain,
    is_multiple,
    to_decimal,
)
from exchange_sim.core.history import PriceHistory
from exchange_sim.core.ratelimit import BanBook, KeyedWindows, WindowSpec

D = Decimal
CORE = pathlib.Path(__file__).resolve().parents[2] / "exchange_sim" / "core"


def test_core_imports_no_web_or_exchange_library() -> None:
    for module in sorted(CORE.rglob("*.py")):
        tree = ast.parse(module.read_text())
        names = {
            a.name.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.Import)
            for a in n.names
        }
        names |= {
            n.module.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module and n.level == 0
        }
        assert not names & {"aiohttp", "ccxt", "socket", "asyncio"}, module.name


def test_decimal_formatting_and_steps() -> None:
    assert fmt8(D("0.001")) == "0.00100000" and fmt8(D("50000")) == "50000.00000000"
    assert (
        fmt_plain(D("0.00100000")) == "0.001"
        and fmt_plain(D("5E+4")) == "50000"
        and fmt_plain(D("0")) == "0"
    )
    assert floor_to_step(D("0.000159"), D("0.00001")) == D("0.00015")
    assert ceil_to_step(D("50025.001"), D("0.01")) == D("50025.01")
    assert is_multiple(D("49000.10"), D("0.1")) and not is_multiple(D("49000.15"), D("0.1"))
    assert fee_of(D("1.23456789"), D("0.001")) == D("0.00123456")
    assert to_decimal("12.5", "x") == D("12.5") and to_decimal(7, "x") == D(7)
    for bad in (1.5, True, "abc", "NaN", None):
        with pytest.raises(ValueError, match=r"^x:"):
            to_decimal(bad, "x")


def _status(registry: FaultRegistry, method: str, path: str) -> int | None:
    """The status of the rule ``take`` finds (failing the test when none matches)."""
    rule = registry.take(method, path)
    assert rule is not None, f"no fault rule matched {method} {path}"
    return rule.status


def test_fault_rules_match_exact_or_prefix_and_are_used_up() -> None:
    registry = FaultRegistry()
    registry.add(
        FaultRule.parse({"method": "post", "path": "/api/v3/order", "status": 504, "count": 2})
    )
    registry.add(FaultRule.parse({"path": "/api/v3/*", "status": 503, "count": -1}))
    assert _status(registry, "GET", "/api/v3/order") == 503  # method mismatch: next rule
    assert _status(registry, "POST", "/api/v3/order") == 504
    assert _status(registry, "POST", "/api/v3/order") == 504
    assert _status(registry, "POST", "/api/v3/order") == 503  # the first one is used up
    assert registry.take("GET", "/sapi/v1/x") is None
    assert registry.clear() == 1 and registry.take("GET", "/api/v3/ping") is None


def test_a_fault_rule_with_a_ttl_stops_matching_when_it_expires() -> None:
    now = [100.0]
    registry = FaultRegistry(clock=lambda: now[0])
    registry.add(FaultRule.parse({"path": "/api/v3/order", "status": 400, "count": 5, "ttl_s": 2}))
    assert _status(registry, "GET", "/api/v3/order") == 400
    now[0] = 101.9
    assert _status(registry, "GET", "/api/v3/order") == 400
    now[0] = 102.0  # however many uses are left, the venue shows the order now
    assert registry.take("GET", "/api/v3/order") is None
    assert registry.rules() == []


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"status": 500}, "path"),
        ({"path": "x"}, "path"),
        ({"path": "/a", "status": 99}, "status"),
        ({"path": "/a", "delay_s": -1}, "delay_s"),
        ({"path": "/a", "execute": "yes"}, "execute"),
        ({"path": "/a", "count": 0}, "count"),
        ({"path": "/a", "colour": "red"}, "colour"),
        ({"path": "/a", "body": 3}, "body"),
        ({"path": "/a", "headers": {"a": 1}}, "headers"),
        ({"path": "/a", "reset": 1}, "reset"),
        ({"path": "/a", "reset": True, "status": 504}, "reset"),
        ({"path": "/a", "ttl_s": 0}, "ttl_s"),
        ({"path": "/a", "ttl_s": "2"}, "ttl_s"),
    ],
)
def test_fault_rule_validation_names_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}"):
        FaultRule.parse(raw)


def test_sliding_window_counts_and_tells_how_long_to_wait() -> None:
    window = KeyedWindows(WindowSpec(1000, 10, "1S"))
    for t in range(10):
        assert window.fits("a", 100 + t, 1)
        window.spend("a", 100 + t, 1)
    assert not window.fits("a", 500, 1) and window.used("a", 500) == 10
    assert window.wait_ms("a", 500, 1) == 600  # the first unit (t=100) leaves at 1100
    assert window.wait_ms("a", 500, 3) == 602
    assert window.fits("a", 1100, 1) and window.used("b", 500) == 0


def test_ban_book_tracks_backoff_and_bans() -> None:
    bans = BanBook()
    bans.back_off("ip", 2000)
    assert bans.in_backoff("ip", 1999) and not bans.in_backoff("ip", 2000)
    bans.ban("ip", 5000)
    assert bans.banned_ms("ip", 4000) == 1000 and bans.banned_ms("ip", 6000) == 0


def test_candles_carry_the_last_price_and_count_volume() -> None:
    history = PriceHistory()
    history.record_price("X", 60_000, D("10"))
    history.record_price("X", 61_000, D("12"))
    history.record_price("X", 62_000, D("9"))
    history.record_trade("X", 61_500, D("12"), D("2"))
    history.record_price("X", 185_000, D("11"))
    bars = history.candles("X", 60_000, now_ms=200_000)
    assert [(b.open_ms, b.open, b.high, b.low, b.close, b.volume) for b in bars] == [
        (60_000, D("10"), D("12"), D("9"), D("9"), D("2")),
        (120_000, D("9"), D("9"), D("9"), D("9"), D("0")),
        (180_000, D("9"), D("11"), D("9"), D("11"), D("0")),
    ]
    assert bars[0].quote_volume == D("24") and bars[0].close_ms == 119_999
    assert [
        b.open_ms for b in history.candles("X", 60_000, now_ms=200_000, start_ms=61_000, limit=1)
    ] == [120_000]
    assert [b.open_ms for b in history.candles("X", 60_000, now_ms=200_000, limit=2)] == [
        120_000,
        180_000,
    ]


def test_manual_clock_only_moves_forward() -> None:
    clock = ManualClock(1000)
    clock.advance(5)
    clock.set(2000)
    assert clock.now_ms() == 2000
    with pytest.raises(ValueError):
        clock.advance(-1)
