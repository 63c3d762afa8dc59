"""``copytrade up`` as a supervisor, ``--port-base``, ``COPYTRADE_DATA_DIR`` and the warning of
``user add`` on a data dir that holds no mesh.

The mesh tests run ``python -m meshctl up`` as a process, as a person does, with bounded waits.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from meshctl.__main__ import main
from meshctl.launcher import (
    PORT_BASE_SPAN,
    Component,
    Mesh,
    Ports,
    free_port_range,
    grpc_serving,
    listening_pid,
    port_free,
    tls_settings,
)
from meshctl.supervisor import Backoff, Supervisor

ROOT = pathlib.Path(__file__).resolve().parents[3]


class Up:
    """A ``copytrade up`` process whose output is collected line by line."""

    def __init__(self, data_dir: pathlib.Path, port_base: int) -> None:
        env = {k: v for k, v in os.environ.items() if k != "COPYTRADE_DATA_DIR"}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "gen"), str(ROOT)])
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "meshctl",
                "up",
                "--data-dir",
                str(data_dir),
                "--port-base",
                str(port_base),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if predicate(line):
                    return line
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError("not seen in time; output:\n" + "\n".join(self.lines))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port_base() -> int:
    """Return a base whose whole ``--port-base`` layout is free now."""
    rng = random.Random()
    for _ in range(200):
        pool = free_port_range()  # below the ephemeral ports: no client socket takes them
        base = rng.randrange(pool.start, pool.stop - PORT_BASE_SPAN)
        if all(
            port_free(port)
            for port, _ in Mesh(pathlib.Path("."), ports=Ports.from_base(base)).planned_ports()
        ):
            return base
    raise RuntimeError("no free port range")


@pytest.fixture
def running_up(tmp_path: pathlib.Path) -> Iterator[tuple[Up, int]]:
    base = free_port_base()
    up = Up(tmp_path / "first", base)
    try:
        up.wait_for(lambda line: "copytrade mesh is up" in line, timeout=90)
        yield up, base
    finally:
        up.stop()


def test_port_base_lays_out_every_port() -> None:
    ports = Ports.from_base(20000)
    assert (ports.gateway, ports.broker, ports.engine, ports.sync, ports.recon) == (
        20000,
        20001,
        20002,
        20003,
        20004,
    )
    assert dict(ports.venues) == {"binance": 20005, "coinbase": 20006, "kraken": 20007}
    planned = dict(Mesh(pathlib.Path("."), ports=ports).planned_ports())
    assert planned[20010] == "broker metrics" and planned[20013] == "recon metrics"
    assert len(planned) == 12
    with pytest.raises(ValueError):
        Ports.from_base(65530)


def test_second_up_on_the_same_ports_refuses_and_names_the_port(
    running_up: tuple[Up, int],
    tmp_path: pathlib.Path,
) -> None:
    first, base = running_up
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "gen"), str(ROOT)])}
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshctl",
            "up",
            "--data-dir",
            str(tmp_path / "second"),
            "--port-base",
            str(base),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode != 0
    assert "copytrade mesh is up" not in second.stdout
    assert f"port {base} (REST gateway) is in use by pid " in second.stderr
    assert "-m gateway" in second.stderr
    assert f"port {base + 2} (engine gRPC)" in second.stderr
    assert first.process.poll() is None


def test_a_component_killed_with_sigkill_is_restarted(
    running_up: tuple[Up, int],
    tmp_path: pathlib.Path,
) -> None:
    up, base = running_up
    engine_port = base + 2
    pid = listening_pid(engine_port)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    up.wait_for(
        lambda line: "engine was killed by SIGKILL" in line and "restarting in 1s" in line,
        timeout=15,
    )
    up.wait_for(lambda line: "engine restarted" in line, timeout=15)

    async def serving() -> None:
        tls = tls_settings(tmp_path / "first", "operator")
        deadline = time.monotonic() + 60
        while not await grpc_serving(f"127.0.0.1:{engine_port}", tls):
            assert time.monotonic() < deadline, "engine not serving again"
            await asyncio.sleep(0.2)

    asyncio.run(serving())
    new_pid = listening_pid(engine_port)
    assert new_pid is not None and new_pid != pid


def test_backoff_doubles_to_thirty_seconds_and_resets_after_a_minute_up() -> None:
    backoff = Backoff()
    assert [backoff.delay(uptime=0.5) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(uptime=61) == 1
    assert backoff.delay(uptime=2) == 2


class _Exited:
    def __init__(self, code: int) -> None:
        self.returncode = code
        self.pid = 4242

    def poll(self) -> int:
        return self.returncode


def test_supervisor_waits_out_the_backoff_then_restarts(tmp_path: pathlib.Path) -> None:
    mesh = Mesh(tmp_path)
    recon = Component("recon", "recon_svc", {})
    mesh.components = [recon]
    restarted: list[str] = []
    mesh.restart = lambda name: (
        restarted.append(name),
        setattr(recon, "process", None),
    )
    now = [100.0]
    out: list[str] = []
    supervisor = Supervisor(mesh, out=out.append, clock=lambda: now[0])
    recon.process = _Exited(2)
    supervisor.check()
    assert out == ["copytrade: recon exited with code 2 after 0s; restarting in 1s"]
    now[0] += 0.5
    supervisor.check()
    assert restarted == []
    now[0] += 0.6
    supervisor.check()
    assert restarted == ["recon"]
    recon.process = _Exited(2)
    supervisor.check()
    assert "restarting in 2s" in out[-1]


def test_user_add_warns_when_the_data_dir_holds_no_mesh(
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["user", "add", "alice", "--data-dir", str(tmp_path / "empty")]) == 0
    captured = capsys.readouterr()
    assert "holds no mesh" in captured.err and "no certs/ca.crt" in captured.err
    assert "token: " in captured.out


def test_user_add_on_a_mesh_data_dir_does_not_warn(
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mesh = Mesh(tmp_path)
    mesh.ensure_credentials()
    assert main(["user", "add", "alice", "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["user", "add", "bob", "--data-dir", str(tmp_path)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_copytrade_data_dir_is_the_default_data_dir(
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COPYTRADE_DATA_DIR", str(tmp_path / "from-env"))
    assert main(["certs"]) == 0
    assert (tmp_path / "from-env" / "certs" / "ca.crt").exists()
    assert main(["user", "add", "carol"]) == 0
    assert (tmp_path / "from-env" / "gateway.db").exists()
    warning = capsys.readouterr().err
    assert str(tmp_path / "from-env") in warning and "no certs" not in warning


def test_up_whose_component_cannot_start_exits_one_with_its_reason(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "mesh"
    (data_dir / "gateway.db").mkdir(parents=True)  # a folder where the gateway's SQLite file goes
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "gen"), str(ROOT)])}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshctl",
            "up",
            "--data-dir",
            str(data_dir),
            "--port-base",
            str(free_port_base()),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "copytrade up: the mesh did not start: gateway exited with code 2" in result.stderr
    assert "DATABASE_URL" in result.stderr


def test_replica_ports_never_repeat_the_meshs_other_ports(monkeypatch) -> None:
    # Ports are picked, released, then bound by the components, and the kernel may hand a
    # released number out again: here it always does (every batch starts over at 40000). A
    # replica's port must still never be one already given to another component of the mesh.
    from meshctl import launcher

    class Kernel:
        def __init__(self) -> None:
            self.next = 40000

        def socket(self) -> Any:
            kernel = self

            class Bound:
                port = 0

                def bind(self, address: tuple[str, int]) -> None:
                    self.port = kernel.next
                    kernel.next += 1

                def getsockname(self) -> tuple[str, int]:
                    return ("127.0.0.1", self.port)

                def close(self) -> None:
                    kernel.next = 40000  # released: the same numbers come back

            return Bound()

    monkeypatch.setattr(launcher.socket, "socket", Kernel().socket)
    # A range too narrow to pick from: the ports come from the kernel (port 0), as where the
    # ephemeral range starts below 10000.
    monkeypatch.setenv(launcher.FREE_PORT_RANGE_ENV, "20000-20005")
    mesh = launcher.Mesh(
        pathlib.Path("/nonexistent"),
        ports=launcher.Ports.free(),
        replicas={"engine": 3, "sync": 2, "broker": 2},
    )
    p = mesh.ports
    ports = [p.gateway, p.broker, p.engine, p.sync, p.recon, *p.venues.values()]
    for replicas in mesh.replica_ports.values():
        for index, own in enumerate(replicas):
            ports += [own.metrics, own.health] + ([own.grpc] if index else [])
    assert len(ports) == len(set(ports))
