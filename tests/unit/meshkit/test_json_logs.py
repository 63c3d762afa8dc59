"""Every line a service process writes is one JSON object (docs/logging.md): its logs on
stdout, its crashes, warnings and loop errors, and a start that fails before logging was
configured."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

from meshkit import logs
from meshkit.testing import trust_env

ROOT = pathlib.Path(__file__).resolve().parents[3]
REQUIRED = ("time", "level", "service", "message")


def json_entries(text: str) -> list[dict[str, Any]]:
    """Parse every line of ``text``; fail naming the first line that is not a JSON log entry."""
    entries = []
    for line in text.splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        assert all(key in entry for key in REQUIRED), line
        entries.append(entry)
    return entries


def python_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRPC_", "DATABASE_URL", "TLS_", "ASSERTION_", "LOG_LEVEL"))
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "gen"), str(ROOT)])
    env.update(extra)
    return env


def test_a_record_with_fields_keeps_the_standard_fields_first() -> None:
    record = logging.LogRecord("gateway.access", logging.INFO, __file__, 1, "GET /x 200", (), None)
    record.fields = {"status": 200, "route": "/x", "level": "not this", "message": "nor this"}
    entry = json.loads(logs.JsonFormatter("gateway").format(record))
    assert entry["level"] == "info" and entry["message"] == "GET /x 200"
    assert entry["service"] == "gateway" and entry["logger"] == "gateway.access"
    assert (entry["status"], entry["route"]) == (200, "/x")


def test_json_line_formats_a_line_without_logging() -> None:
    try:
        raise ValueError("bad value")
    except ValueError as e:
        line = logs.json_line("broker_svc", "error", "broker_svc: 100% wrong", exc_info=e)
    entry = json.loads(line)
    assert "\n" not in line
    assert (entry["level"], entry["service"]) == ("error", "broker_svc")
    assert entry["message"] == "broker_svc: 100% wrong"
    assert "ValueError: bad value" in entry["exception"]


def test_crashes_warnings_and_loop_errors_are_one_json_line_each(tmp_path: pathlib.Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, threading, warnings
        from meshkit import logs

        logs.configure("probe")
        warnings.warn("an old way", UserWarning)
        worker = threading.Thread(target=lambda: 1 / 0, name="worker")
        worker.start()
        worker.join()

        async def main():
            asyncio.get_running_loop().call_soon(lambda: {}["missing"])
            await asyncio.sleep(0)

        asyncio.run(main())
        raise RuntimeError("boom at the top")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=python_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == ""
    entries = json_entries(result.stdout)
    by_logger = {entry["logger"]: entry for entry in entries}
    assert set(by_logger) == {"py.warnings", "uncaught", "asyncio"}, entries
    assert "an old way" in by_logger["py.warnings"]["message"]
    assert by_logger["py.warnings"]["level"] == "warning"
    assert "KeyError: 'missing'" in by_logger["asyncio"]["exception"]
    uncaught = [entry for entry in entries if entry["logger"] == "uncaught"]
    assert [entry["level"] for entry in uncaught] == ["error", "critical"]
    assert "thread worker" in uncaught[0]["message"]
    assert "ZeroDivisionError" in uncaught[0]["exception"]
    assert "RuntimeError: boom at the top" in uncaught[1]["exception"]
    assert all(entry["service"] == "probe" for entry in entries)


def recon_env(tmp_path: pathlib.Path, **extra: str) -> dict[str, str]:
    settings = {"DATABASE_URL": f"sqlite:///{tmp_path}/recon.db", "GRPC_PORT": "0"}
    return python_env(**trust_env("recon"), **{**settings, "METRICS_PORT": "0", **extra})


def test_a_start_that_fails_before_logging_is_one_json_line_even_with_its_traceback(
    tmp_path: pathlib.Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "recon_svc"],
        env=recon_env(tmp_path, GRPC_PORT="eighty", LOG_LEVEL="DEBUG"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    json_entries(result.stdout)
    (entry,) = json_entries(result.stderr)
    assert entry["level"] == "error" and entry["message"].startswith("recon_svc: GRPC_PORT")
    assert "Traceback" in entry["exception"]  # LOG_LEVEL=DEBUG: the traceback, in the line


def test_a_service_started_on_its_own_logs_json_to_stdout(tmp_path: pathlib.Path) -> None:
    """As a container runs it: ``python -m recon_svc``, its output read by the runtime."""
    process = subprocess.Popen(
        [sys.executable, "-m", "recon_svc"],
        env=recon_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(process.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any("recon_svc listening on" in line for line in list(out)):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, out
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        reader.join(10)
    err = process.stderr.read() if process.stderr else ""
    assert process.returncode == 0, err
    entries = json_entries("".join(out))
    json_entries(err)
    listening = next(entry for entry in entries if "listening on" in entry["message"])
    assert (listening["service"], listening["level"]) == ("recon_svc", "info")
