"""What every benchmark shares: the machine line, percentiles, CPU per service, the results file.

Each benchmark prints its figures and appends one row to ``bench/RESULTS.md``
(:func:`append_row`) with the machine it ran on. Every row carries the CPU each mesh process
used per copy (:class:`CpuMeter`, read from ``/proc``: exact, whatever else the machine does),
and with ``--profile`` the hottest code under each process (:class:`Profiler`, py-spy), so the
next bottleneck is named.
"""

from __future__ import annotations

import collections
import os
import pathlib
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
PROFILE_RATE = 100


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def machine() -> str:
    """Describe this machine in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def append_row(line: str) -> None:
    """Append ``line`` to bench/RESULTS.md as a dated row with this machine."""
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\nEach row: date, scenario and figures, machine.\n\n"
        )
    with RESULTS.open("a") as handle:
        handle.write(f"- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {line} — {machine()}\n")


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """Return the CPU (user + system) the process ``pid`` has used so far; 0 once it is gone."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)


def rss_mb(pid: int) -> float:
    """Return the resident memory of ``pid`` in MB (0 once it is gone)."""
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def mesh_pids(mesh: object) -> dict[str, int]:
    """Return each running process of a ``meshctl.launcher.Mesh`` by its component name."""
    found: dict[str, int] = {}
    for component in getattr(mesh, "components", []):
        process = component.process
        if process is not None and process.poll() is None:
            found[component.name] = process.pid
    return found


class CpuMeter:
    """The CPU each process used between :meth:`start` and :meth:`stop`."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self._start: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> None:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        self.used = {
            name: max(cpu_seconds(pid) - self._start.get(name, 0.0), 0.0)
            for name, pid in self.pids.items()
        }
        return self.used

    def per_copy(self, copies: int) -> str:
        """One phrase: CPU per copy of each process that used any, in ms, busiest first."""
        if copies <= 0 or not self.used:
            return "CPU per copy: -"
        parts = [
            f"{name} {1000 * seconds / copies:.2f}"
            for name, seconds in sorted(self.used.items(), key=lambda kv: -kv[1])
            if seconds > 0
        ]
        return "CPU per copy (ms): " + (", ".join(parts) or "-")


def py_spy() -> str:
    """Return the py-spy executable, or exit saying how to get it."""
    found = shutil.which("py-spy") or shutil.which(
        "py-spy", path=str(pathlib.Path(sys.executable).parent)
    )
    if found is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


WAITS = (
    "EpollSelector.select (",  # the event loop waiting for I/O
    "_connection_worker_thread (aiosqlite/core.py:59)",  # aiosqlite's thread waiting for work
    "Thread.run (threading.py:",
    "BaseSelectorEventLoop._write_to_self (",
    "_worker (concurrent/futures/thread.py:81)",  # an executor's thread waiting for work
    "_PollLikeSelector.select (",  # a metrics server's thread (wsgiref) waiting for a request
)
"""Innermost frames of threads that wait (py-spy --nonblocking samples them as busy)."""

GROUPS = (
    "ccxt",
    "grpc",
    "google/protobuf",
    "aiohttp",
    "aiosqlite",
    "sqlite3",
    "psycopg",
    "json",
    "cryptography",
    "jwt",
    "hmac",
    "exchange_sim",
    "broker_svc",
    "engine_svc",
    "sync_svc",
    "recon_svc",
    "gateway",
    "meshkit",
)


def _group_of(frame: str) -> str:
    # "func (path/to/module.py:123)" -> the library or service the frame belongs to, if any.
    path = "/" + frame.rpartition("(")[2]  # py-spy shortens paths: "ccxt/base/exchange.py:1"
    for group in GROUPS:
        if f"/{group}/" in path or f"/{group}.py" in path:
            return group.replace("google/", "")
    return ""


class Profiler:
    """py-spy sampling processes (busy stacks only) for a while; the hottest code under each."""

    def __init__(self, pids: Mapping[str, int], out: pathlib.Path) -> None:
        self.pids = dict(pids)
        self.out = out
        self.procs: list[tuple[str, pathlib.Path, subprocess.Popen[bytes]]] = []

    def start(self, seconds: float) -> None:
        exe = py_spy()
        for name, pid in self.pids.items():
            path = self.out / f"{name}.folded"
            self.procs.append(
                (
                    name,
                    path,
                    subprocess.Popen(
                        [
                            exe,
                            "record",
                            "--pid",
                            str(pid),
                            "--rate",
                            str(PROFILE_RATE),
                            "--format",
                            "raw",
                            "--duration",
                            str(max(1, round(seconds))),
                            "--output",
                            str(path),
                            "--nonblocking",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    ),
                )
            )

    def report(self, seconds: float) -> list[str]:
        """Wait for the samplers; return a line per process: CPU seconds and hottest code."""
        lines = []
        for name, path, proc in self.procs:
            proc.wait(timeout=seconds + 30)
            if not path.exists():
                lines.append(f"{name}: no samples")
                continue
            total = 0
            under: collections.Counter[str] = collections.Counter()
            for row in path.read_text().splitlines():
                stack, _, count = row.rpartition(" ")
                if not count.isdigit() or stack.rpartition(";")[2].startswith(WAITS):
                    continue
                total += int(count)
                for group in {_group_of(frame) for frame in stack.split(";")} - {""}:
                    under[group] += int(count)
            busy = total / PROFILE_RATE
            top = (
                ", ".join(f"{group} {100 * n / total:.0f}%" for group, n in under.most_common(5))
                if total
                else "-"
            )
            lines.append(f"{name} busy {busy:.1f} s of {seconds:.0f} s, under {top}")
        return lines
