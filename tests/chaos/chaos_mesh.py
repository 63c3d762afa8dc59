"""The mesh of ``meshctl.launcher`` with what a chaos run needs: per-component env, restarts.

:class:`ChaosMesh` starts exactly the processes ``copytrade up`` starts (same modules, same
plan), adds environment variables per component (short resolver and resend lags for the
engine, a short venue timeout for the broker), and can kill, restart and re-arm one component.
A restarted component is the same command with the same environment, minus ``FAULTPOINTS``
unless a restart arms it on purpose. Its log is appended to the same file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from meshctl.launcher import ROOT, Component, Mesh, Ports, grpc_serving, tls_settings
from meshkit import db
from meshkit.faultpoints import ENV as FAULTPOINTS_ENV
from meshkit.testing import POSTGRES_ENV

SERVICES = {
    "broker": "broker_svc",
    "engine": "engine_svc",
    "sync": "sync_svc",
    "recon": "recon_svc",
}

CHAOS_ENV: dict[str, dict[str, str]] = {
    # The production defaults stay (resolver 500 ms, resend lag 90 s); chaos runs compress time.
    "engine": {
        "RESOLVER_INTERVAL_MS": "200",
        "RESEND_LAG_SECONDS": "3",
        "PLACE_TIMEOUT_MS": "5000",
        "READ_TIMEOUT_MS": "3000",
    },
    # The ccxt timeout of every venue call: "execute, then answer late" faults go past it.
    # RESEND_SAFE_AFTER_SECONDS is read once the broker has the setting (see the README).
    # The broker's own per-IP budgets would throttle dozens of fresh accounts a minute: rate
    # limits are not under test here (T26 is), so they are off.
    "broker": {
        "ORDER_TIMEOUT_MS": "2000",
        "RESEND_SAFE_AFTER_SECONDS": "3",
        "BROKER_RATE_LIMITS": "off",
    },
    "gateway": {"GATEWAY_RATE_LIMIT_PER_SECOND": "0"},
    "sync": {},
    "recon": {},
}
"""Extra environment per component for chaos runs."""
# Two meshes run side by side on one PostgreSQL server (the replica tier alone has nine
# processes): small pools keep them under its max_connections (100 by default).
for _env in CHAOS_ENV.values():
    _env["DATABASE_POOL_SIZE"] = "4"

BROKER_ORDER_TIMEOUT_S = int(CHAOS_ENV["broker"]["ORDER_TIMEOUT_MS"]) / 1000


def fault_point_inserted(name: str) -> bool:
    """Return whether ``faultpoint("name")`` or ``afaultpoint("name")`` is in the service's code."""
    package = SERVICES.get(name.split(".", 1)[0])
    if package is None:
        return False
    pattern = re.compile(r"a?faultpoint\(\s*[\"']" + re.escape(name) + r"[\"']")
    for path in (ROOT / package).rglob("*.py"):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if pattern.search(path.read_text()):
                return True
    return False


class ChaosMesh(Mesh):
    """A :class:`meshctl.launcher.Mesh` whose components can be killed, restarted and armed."""

    def __init__(
        self,
        data_dir: pathlib.Path,
        *,
        backend: str,
        shared_database_url: str | None,
        extra_env: Mapping[str, Mapping[str, str]] | None = None,
        log_level: str = "INFO",
        replicas: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(
            data_dir,
            ports=Ports.free(),
            shared_database_url=shared_database_url,
            log_level=log_level,
            replicas=replicas,
        )
        self.backend = backend
        self.extra_env = {name: dict(env) for name, env in (extra_env or CHAOS_ENV).items()}
        self.restarts: dict[str, int] = {}
        self.restart_seconds: list[float] = []

    def _plan(self) -> list[Component]:
        plan = super()._plan()
        for component in plan:
            # A service's chaos env reaches each of its replicas (engine-1, engine-2...).
            component.env.update(self.extra_env.get(self.service_of(component.name), {}))
            if component.name != self.service_of(component.name):
                component.env.update(self.extra_env.get(component.name, {}))
        return plan

    def component(self, name: str) -> Component:
        """Return the component called ``name``."""
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(name)

    def start(self) -> None:
        """Start every component (as :meth:`Mesh.start`), each through :meth:`spawn`."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        self.ensure_credentials()
        self.components = self._plan()
        for component in self.components:
            self.spawn(component)

    def spawn(self, component: Component, faultpoints: str = "") -> None:
        """Start one component's process: ``python -m <module>`` with its planned environment."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GRPC_", "DATABASE_URL")) and k != FAULTPOINTS_ENV
        }
        env.update(component.env)
        python_path = os.pathsep.join([str(ROOT / "gen"), str(ROOT)])
        inherited = env.get("PYTHONPATH")
        env["PYTHONPATH"] = python_path + (os.pathsep + inherited if inherited else "")
        env["PYTHONUNBUFFERED"] = "1"
        if faultpoints:
            env[FAULTPOINTS_ENV] = faultpoints
        with open(self.log_path(component.name), "ab") as log:
            log.write(
                f"\n=== chaos: starting {component.name}"
                f"{' armed ' + faultpoints if faultpoints else ''} ===\n".encode()
            )
            log.flush()
            component.process = subprocess.Popen(
                [sys.executable, "-m", component.module, *component.args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(self.data_dir),
                start_new_session=True,
            )

    def log_path(self, name: str) -> pathlib.Path:
        """Return the path of a component's log."""
        return self.data_dir / "logs" / f"{name}.log"

    def log_tail(self, name: str, chars: int = 3000) -> str:
        """Return the end of a component's log."""
        path = self.log_path(name)
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def alive(self, name: str) -> bool:
        """Return whether the component's process runs."""
        process = self.component(name).process
        return process is not None and process.poll() is None

    def dead_components(self) -> list[str]:
        """Return the components whose process has exited."""
        return [
            c.name
            for c in self.components
            if c.process is not None and c.process.poll() is not None
        ]

    def kill(self, name: str) -> None:
        """SIGKILL one component and reap it."""
        process = self.component(name).process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def terminate(self, name: str, grace: float = 2.0) -> None:
        """SIGTERM one component; SIGKILL it if it has not exited after ``grace`` seconds."""
        process = self.component(name).process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    async def restart(
        self,
        name: str,
        faultpoints: str = "",
        timeout: float = 60.0,  # noqa: ASYNC109 - a polling deadline for the restart
    ) -> float:
        """Start a dead (or stop a live) component again and wait until it serves.

        Returns the seconds from the spawn to ready. ``faultpoints`` arms the new process;
        by default it is started without ``FAULTPOINTS``.
        """
        if self.alive(name):
            await asyncio.to_thread(self.terminate, name)
        component = self.component(name)
        started = time.monotonic()
        self.spawn(component, faultpoints)
        self.restarts[name] = self.restarts.get(name, 0) + 1
        await self.wait_component_ready(name, timeout)
        took = time.monotonic() - started
        self.restart_seconds.append(took)
        return took

    async def wait_component_ready(self, name: str, timeout: float = 60.0) -> None:  # noqa: ASYNC109 - a polling deadline
        """Wait until one component answers its health check."""
        deadline = time.monotonic() + timeout
        port = self.grpc_ports().get(name)
        url = (
            f"{self.gateway_url}/healthz"
            if name == "gateway"
            else f"{next(iter(self.venue_urls.values()))}/_sim/health"
            if name == "exchange_sim"
            else ""
        )
        async with aiohttp.ClientSession() as session:
            while True:
                if not self.alive(name):
                    raise RuntimeError(f"{name} exited while starting:\n{self.log_tail(name)}")
                if port is not None:
                    if await grpc_serving(
                        f"127.0.0.1:{port}", tls_settings(self.data_dir, "operator")
                    ):
                        return
                else:
                    with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                        timeout_1s = aiohttp.ClientTimeout(total=1)
                        async with session.get(url, timeout=timeout_1s) as reply:
                            if reply.status < 500:
                                return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready after {timeout}s:\n{self.log_tail(name)}")
                await asyncio.sleep(0.05)

    def metrics_url(self, name: str) -> str:
        """Return the metrics endpoint of one replica (``engine-2``) of a replicated service."""
        return f"http://127.0.0.1:{self.replica_port(name).metrics}/metrics"

    async def metric(
        self, name: str, metric: str, labels: Mapping[str, str] | None = None
    ) -> float:
        """Return the sum of a metric's samples on one replica's endpoint (0 when absent).

        ``labels`` keeps only the samples carrying those label values.
        """
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.metrics_url(name), timeout=aiohttp.ClientTimeout(total=5)) as reply,
        ):
            text = await reply.text()
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name != metric:
                    continue
                if labels and any(sample.labels.get(k) != v for k, v in labels.items()):
                    continue
                total += float(sample.value)
        return total

    async def wait_exit(self, name: str, timeout: float) -> bool:  # noqa: ASYNC109 - returns False at the deadline
        """Wait up to ``timeout`` seconds for a component to exit; return whether it did."""
        deadline = time.monotonic() + timeout
        while self.alive(name):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


async def create_schema(base_url: str) -> tuple[str, str]:
    """Create a fresh PostgreSQL schema; return its name and the URL that uses it."""
    schema = f"chaos_{uuid.uuid4().hex[:10]}"
    admin = await db.connect(base_url)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
    finally:
        await admin.close()
    return schema, f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"


async def drop_schema(base_url: str, schema: str) -> None:
    """Drop a schema made by :func:`create_schema`."""
    admin = await db.connect(base_url)
    try:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await admin.close()


def postgres_base_url() -> str | None:
    """Return the PostgreSQL URL the tests may use, or ``None``."""
    return os.environ.get(POSTGRES_ENV) or None
