"""The launcher's log files (meshctl.logfiles): a child's stdout and stderr become JSON lines in
its file, whatever it printed, and the file rolls over at its size limit."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from meshctl.logfiles import (
    BACKUPS_ENV,
    DEFAULT_BACKUPS,
    DEFAULT_MAX_BYTES,
    MAX_BYTES_ENV,
    ComponentLog,
    Rotation,
    as_json_line,
)

ROOT = pathlib.Path(__file__).resolve().parents[3]
REQUIRED = ("time", "level", "service", "message")


def entries_of(path: pathlib.Path) -> list[dict[str, object]]:
    """Every line of ``path`` as a JSON log entry (fails on the first one that is not)."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict) and all(key in entry for key in REQUIRED), line
        entries.append(entry)
    return entries


def run_child(log: ComponentLog, script: str) -> int:
    """Run ``python -c script`` with its pipes read by ``log``, as the launcher does."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "gen"), str(ROOT)])}
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    log.attach(process.stdout, process.stderr)
    code = process.wait(60)
    assert log.drain(timeout=30)
    return code


def test_plain_lines_are_wrapped_and_json_lines_kept() -> None:
    kept = '{"time": "t", "level": "info", "service": "broker_svc", "message": "hi"}'
    assert as_json_line("broker", "stdout", kept) == kept
    plain = json.loads(as_json_line("broker", "stdout", "hello {there}"))
    assert (plain["service"], plain["logger"], plain["level"]) == ("broker", "stdout", "info")
    assert plain["message"] == "hello {there}"
    failed = json.loads(as_json_line("engine-2", "stderr", '{"not": "closed"'))
    assert (failed["level"], failed["message"]) == ("error", '{"not": "closed"')
    core = "I0000 00:00:1733300000.123456   42 chttp2_transport.cc:12] keepalive"
    assert json.loads(as_json_line("sync", "stderr", core))["level"] == "info"
    core_error = core.replace("I0000", "E0000", 1)
    assert json.loads(as_json_line("sync", "stderr", core_error))["level"] == "error"


def test_a_crash_before_logging_is_configured_lands_as_json_lines(tmp_path: pathlib.Path) -> None:
    log = ComponentLog(tmp_path / "recon.log", "recon", Rotation())
    code = run_child(
        log,
        """
        import json, sys
        print(json.dumps({"time": "t", "level": "info", "service": "recon_svc", "message": "up"}))
        print("a plain start-up print")
        sys.stdout.flush()
        import no_such_module_here
        """,
    )
    log.close()
    assert code == 1
    entries = entries_of(tmp_path / "recon.log")
    # Each pipe has its own reader: the order holds within a stream, not across the two.
    out = [entry for entry in entries if entry.get("logger") != "stderr"]
    assert out[0]["service"] == "recon_svc"
    assert {"level": "info", "logger": "stdout", "message": "a plain start-up print"}.items() <= (
        out[1].items()
    )
    errors = [entry for entry in entries if entry.get("logger") == "stderr"]
    assert errors[0]["message"] == "Traceback (most recent call last):"
    assert any("ModuleNotFoundError" in str(entry["message"]) for entry in errors)
    assert all(entry["level"] == "error" and entry["service"] == "recon" for entry in errors)


def test_the_file_rolls_over_at_its_size_limit(tmp_path: pathlib.Path) -> None:
    rotation = Rotation(max_bytes=4000, backups=2)
    log = ComponentLog(tmp_path / "engine.log", "engine", rotation)
    run_child(
        log,
        """
        import sys
        for n in range(400):
            print(f"line {n:04d} " + "x" * 40)
            if n % 50 == 0:
                print(f"stderr line {n:04d}", file=sys.stderr)
        """,
    )
    log.close()
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files == ["engine.log", "engine.log.1", "engine.log.2"]
    for name in files:
        assert 0 < (tmp_path / name).stat().st_size <= rotation.max_bytes
        entries_of(tmp_path / name)
    newest = entries_of(tmp_path / "engine.log")
    assert newest[-1]["message"] == "line 0399 " + "x" * 40
    oldest = entries_of(tmp_path / "engine.log.2")
    assert oldest[0]["message"] != "line 0000 " + "x" * 40  # the oldest were dropped


def test_rotation_settings_come_from_the_environment() -> None:
    assert Rotation.from_env({}) == Rotation(DEFAULT_MAX_BYTES, DEFAULT_BACKUPS)
    assert Rotation.from_env({MAX_BYTES_ENV: "1024", BACKUPS_ENV: "3"}) == Rotation(1024, 3)
    with pytest.raises(ValueError, match=MAX_BYTES_ENV):
        Rotation.from_env({MAX_BYTES_ENV: "10MB"})
    with pytest.raises(ValueError, match=BACKUPS_ENV):
        Rotation.from_env({BACKUPS_ENV: "0"})
