"""Fault points: parsed once from FAULTPOINTS, inert unless armed, acting on the chosen hit."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from meshkit import faultpoints
from meshkit.faultpoints import afaultpoint, configure, faultpoint, parse
from meshkit.settings import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _disarm():
    configure("")
    yield
    configure("")


def _run(code: str, spec: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FAULTPOINTS": spec, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_unarmed_point_does_nothing() -> None:
    configure("other.point=raise:RuntimeError")
    faultpoint("engine.after_intent_commit")
    asyncio.run(afaultpoint("engine.after_intent_commit"))


def test_empty_or_blank_spec_arms_nothing() -> None:
    assert parse("") == {}
    assert parse(" ; ;") == {}


def test_parse_reads_every_action_and_the_hit_number() -> None:
    table = parse("a=kill@3; b=raise:ConnectionError;c=sleep:0.25;d=hang@1;")
    assert [(e.kind, e.nth) for e in table["a"]] == [("kill", 3)]
    assert table["b"][0].exception is ConnectionError and table["b"][0].nth is None
    assert table["c"][0].seconds == 0.25
    assert table["d"][0].kind == "hang" and table["d"][0].nth == 1
    assert [e.describe() for name in "abcd" for e in table[name]] == [
        "kill@3",
        "raise:ConnectionError",
        "sleep:0.25",
        "hang@1",
    ]


def test_parse_accepts_a_dotted_exception_class() -> None:
    table = parse("a=raise:asyncio.TimeoutError")
    assert table["a"][0].exception is asyncio.TimeoutError


@pytest.mark.parametrize(
    "spec",
    [
        "no-equals-sign",
        "a=",
        "=kill",
        "a=explode",
        "a=kill:now",
        "a=hang:5",
        "a=raise:NoSuchError",
        "a=raise:KeyboardInterrupt",
        "a=raise:os.path",
        "a=raise:no_such_module.Error",
        "a=sleep:soon",
        "a=sleep:-1",
        "a=sleep:nan",
        "a=kill@0",
        "a=kill@x",
        "a=kill@",
        "a=kill@3-2",
        "a=kill@1-",
        "a=kill@0-2",
        "a=kill@1-x",
    ],
)
def test_malformed_spec_fails_naming_the_variable(spec: str) -> None:
    with pytest.raises(ConfigError, match="FAULTPOINTS"):
        parse(spec)


def test_raise_fires_on_every_hit_without_a_hit_number() -> None:
    configure("p=raise:TimeoutError")
    for _ in range(3):
        with pytest.raises(TimeoutError, match="fault point p fired"):
            faultpoint("p")


def test_raise_with_a_hit_number_fires_on_that_hit_only() -> None:
    configure("p=raise:ConnectionError@3")
    faultpoint("p")
    faultpoint("p")
    with pytest.raises(ConnectionError):
        faultpoint("p")
    faultpoint("p")


async def test_async_point_raises_on_its_hit() -> None:
    configure("p=raise:RuntimeError@2")
    await afaultpoint("p")
    with pytest.raises(RuntimeError):
        await afaultpoint("p")


def test_same_name_armed_twice_applies_each_entry_on_its_own_hit() -> None:
    configure("p=raise:ConnectionError@1;p=raise:TimeoutError@2")
    with pytest.raises(ConnectionError):
        faultpoint("p")
    with pytest.raises(TimeoutError):
        faultpoint("p")
    faultpoint("p")


def test_a_hit_range_fires_on_each_hit_from_its_first_to_its_last() -> None:
    configure("p=raise:ConnectionError@2-3")
    assert [e.describe() for e in faultpoints.armed()["p"]] == ["raise:ConnectionError@2-3"]
    faultpoint("p")
    for _ in range(2):
        with pytest.raises(ConnectionError):
            faultpoint("p")
    faultpoint("p")


def test_sleep_waits_then_continues() -> None:
    configure("p=sleep:0.2")
    started = time.monotonic()
    faultpoint("p")
    assert time.monotonic() - started >= 0.19


async def test_async_sleep_does_not_block_the_event_loop() -> None:
    configure("p=sleep:0.3")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    await afaultpoint("p")
    task.cancel()
    assert ticks >= 5


async def test_async_hang_never_returns() -> None:
    configure("p=hang")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(afaultpoint("p"), timeout=0.2)


def test_sync_hang_blocks_its_thread() -> None:
    configure("p=hang")
    import threading

    thread = threading.Thread(target=faultpoint, args=("p",), daemon=True)
    thread.start()
    thread.join(timeout=0.2)
    assert thread.is_alive()


def test_configure_restarts_the_hit_count() -> None:
    configure("p=raise:RuntimeError@2")
    faultpoint("p")
    configure("p=raise:RuntimeError@2")
    faultpoint("p")
    with pytest.raises(RuntimeError):
        faultpoint("p")


def test_kill_sigkills_the_process_on_the_chosen_hit_and_announces_it() -> None:
    result = _run(
        """
        from meshkit.faultpoints import faultpoint
        faultpoint("engine.after_intent_commit")
        print("survived hit 1", flush=True)
        faultpoint("engine.after_intent_commit")
        print("survived hit 2", flush=True)
        """,
        "engine.after_intent_commit=kill@2",
    )
    assert result.returncode == -signal.SIGKILL
    assert result.stdout.splitlines() == ["survived hit 1"]
    assert "faultpoint engine.after_intent_commit fired: kill@2 (hit 2)" in result.stderr


def test_async_kill_sigkills_the_process() -> None:
    result = _run(
        """
        import asyncio
        from meshkit.faultpoints import afaultpoint
        async def main():
            await afaultpoint("broker.after_send")
            print("survived", flush=True)
        asyncio.run(main())
        """,
        "broker.after_send=kill",
    )
    assert result.returncode == -signal.SIGKILL
    assert "survived" not in result.stdout


def test_process_without_the_variable_runs_through() -> None:
    result = _run(
        """
        from meshkit.faultpoints import faultpoint, armed
        faultpoint("engine.after_intent_commit")
        print(armed())
        """,
        "",
    )
    assert result.returncode == 0
    assert result.stdout.strip() == "{}"


def test_malformed_variable_fails_the_process_at_import() -> None:
    result = _run("import meshkit.faultpoints", "engine.x=explode")
    assert result.returncode == 1
    assert "ConfigError: FAULTPOINTS" in result.stderr


def test_module_reads_the_variable_once_at_import() -> None:
    os.environ["FAULTPOINTS"] = "p=raise:RuntimeError"
    try:
        faultpoint("p")  # armed from "" by the fixture; the live variable is not re-read
    finally:
        del os.environ["FAULTPOINTS"]
    assert faultpoints.armed() == {}
