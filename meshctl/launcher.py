"""Start the whole mesh as a tree of processes on this machine, and stop it cleanly.

``copytrade up``, ``copytrade demo`` and the end-to-end tests all start the mesh
through :class:`Mesh`, so what the tests prove is what a person runs. Each
component is the same ``python -m <package>`` a Kubernetes pod runs, configured
only by environment variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshctl.logfiles import ComponentLog, Rotation
from meshkit import clients, pki
from meshkit.settings import TlsSettings

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENUES = ("binance", "coinbase", "kraken")
PORT_BASE_SPAN = 13
"""The highest offset from ``--port-base`` a mesh uses (recon's metrics)."""
REPLICABLE = ("broker", "engine", "sync")
"""The services a mesh may run several replicas of (on one PostgreSQL database: leases)."""


@dataclass(frozen=True)
class Ports:
    """Where each component listens."""

    gateway: int = 8080
    broker: int = 50051
    engine: int = 50052
    sync: int = 50053
    recon: int = 50054
    metrics_base: int = 9090
    venues: Mapping[str, int] = field(
        default_factory=lambda: {"binance": 9101, "coinbase": 9102, "kraken": 9103},
    )

    @classmethod
    def from_base(cls, base: int) -> Ports:
        """Lay every port out from ``base`` (``copytrade up --port-base``).

        ``base`` the gateway; ``base+1`` .. ``base+4`` the gRPC ports of broker, engine, sync
        and recon; ``base+5`` .. ``base+7`` the Binance, Coinbase and Kraken emulators;
        ``base+10`` .. ``base+13`` the metrics of broker, engine, sync and recon.
        """
        if not 1 <= base <= 65535 - PORT_BASE_SPAN:
            raise ValueError(
                f"--port-base must be between 1 and {65535 - PORT_BASE_SPAN}, got {base}"
            )
        return cls(
            gateway=base,
            broker=base + 1,
            engine=base + 2,
            sync=base + 3,
            recon=base + 4,
            metrics_base=base + 9,
            venues={name: base + 5 + i for i, name in enumerate(VENUES)},
        )

    @classmethod
    def free(cls) -> Ports:
        """Pick free loopback ports for everything (tests; several meshes side by side)."""
        picked = free_ports(9)
        return cls(
            gateway=picked[0],
            broker=picked[1],
            engine=picked[2],
            sync=picked[3],
            recon=picked[4],
            metrics_base=0,
            venues=dict(zip(VENUES, picked[5:8], strict=True)),
        )


@dataclass(frozen=True)
class ReplicaPorts:
    """Where one replica of a replicated service listens (each replica has its own ports)."""

    grpc: int
    metrics: int
    health: int


def replica_names(service: str, count: int) -> list[str]:
    """Return the component names of ``count`` replicas: ``engine`` alone, else ``engine-1``..."""
    if count <= 1:
        return [service]
    return [f"{service}-{index}" for index in range(1, count + 1)]


FREE_PORT_RANGE_ENV = "COPYTRADE_FREE_PORT_RANGE"
"""``low-high``: where :func:`free_ports` picks (the test suite gives each worker its own)."""

_EPHEMERAL_RANGE = pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_PICK = 10000


def free_port_range() -> range:
    """Return the ports :func:`free_ports` picks from: ``COPYTRADE_FREE_PORT_RANGE``, else the
    ports from 10000 up to the kernel's ephemeral range (empty if that range starts lower).

    A port picked by binding port 0 comes from the ephemeral range, and a closed listener's port
    there can be taken by any process's next outgoing connection before the service binds it
    (or binds it again after a restart): "address already in use". Below that range the kernel
    hands out no port by itself.
    """
    configured = os.environ.get(FREE_PORT_RANGE_ENV, "")
    if configured:
        low, _, high = configured.partition("-")
        return range(int(low), int(high) + 1)
    try:
        ephemeral_low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    return range(_LOWEST_PICK, max(_LOWEST_PICK, ephemeral_low))


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int, exclude: Iterable[int] = ()) -> list[int]:
    """Return ``count`` different loopback ports free now, none of ``exclude`` (ports picked
    earlier for the same mesh), picked at random from :func:`free_port_range`; where that range
    is empty, from the kernel (port 0)."""
    taken = set(exclude)
    pool = free_port_range()
    picked: list[int] = []
    if len(pool) >= 10 * (count + len(taken)):
        rng = random.SystemRandom()
        for _ in range(50 * count):
            port = rng.choice(pool)
            if port not in taken and port not in picked and _bindable(port):
                picked.append(port)
                if len(picked) == count:
                    return picked
        raise RuntimeError(f"no {count} free loopback ports in {pool.start}-{pool.stop - 1}")
    # Every socket stays bound until all are picked, so the ports differ from each other.
    sockets = []
    try:
        while len(picked) < count:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
            port = s.getsockname()[1]
            if port not in taken:
                picked.append(port)
        return picked
    finally:
        for s in sockets:
            s.close()


def webhook_secret_key(data_dir: pathlib.Path) -> str:
    """Return the key sealing the webhook secrets (the gateway's ``GATEWAY_WEBHOOK_SECRET_KEY``),
    creating it (mode 0600) on first use (:mod:`meshctl.keys`)."""
    from meshctl import keys

    return keys.webhook_secret_key(data_dir)


def encryption_key(data_dir: pathlib.Path, *, previous: bool = False) -> str:
    """Return the mesh's credential encryption key, creating it (mode 0600) on first use.

    With ``previous``, return instead the keys it replaced that may still open stored
    credentials, comma-separated (``ENCRYPTION_KEYS_PREVIOUS``; empty when there are none).
    The files and their rotation are in :mod:`meshctl.keys`.
    """
    from meshctl import keys

    if previous:
        return ",".join(keys.previous_keys(data_dir))
    return keys.current_key(data_dir)


def certs_dir(data_dir: pathlib.Path) -> pathlib.Path:
    """Return where the mesh's CA, certificates and assertion keys live."""
    return data_dir.resolve() / "certs"


def tls_env(data_dir: pathlib.Path, identity: str) -> dict[str, str]:
    """Return the ``TLS_*`` variables of ``identity`` (its certificate from the mesh's CA)."""
    files = pki.identity_files(certs_dir(data_dir), identity)
    return {"TLS_CERT": str(files.cert), "TLS_KEY": str(files.key), "TLS_CA": str(files.ca)}


def tls_settings(data_dir: pathlib.Path, identity: str) -> TlsSettings:
    """Return the TLS settings of ``identity`` for a client this process opens."""
    files = pki.identity_files(certs_dir(data_dir), identity)
    return TlsSettings(str(files.cert), str(files.key), str(files.ca))


def database_url(data_dir: pathlib.Path, service: str, shared_url: str | None) -> str:
    """Return a service's DATABASE_URL: its own SQLite file, or the shared PostgreSQL URL."""
    if shared_url:
        return shared_url
    return f"sqlite:///{data_dir.resolve()}/{service}.db"


@dataclass
class Component:
    """One process of the mesh."""

    name: str
    module: str
    env: dict[str, str]
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None


class Mesh:
    """The mesh's processes: the exchange emulators, four services and the gateway."""

    def __init__(
        self,
        data_dir: pathlib.Path,
        *,
        ports: Ports | None = None,
        venues: str = "sim",
        shared_database_url: str | None = None,
        log_level: str = "INFO",
        sim_rate_limits: bool = False,
        component_env: dict[str, dict[str, str]] | None = None,
        https: bool = False,
        replicas: Mapping[str, int] | None = None,
        log_rotation: Rotation | None = None,
    ) -> None:
        self.data_dir = data_dir
        # Each component's log file, rotated by size (COPYTRADE_LOG_MAX_BYTES, _BACKUPS).
        self.log_rotation = log_rotation or Rotation.from_env()
        self.logs: dict[str, ComponentLog] = {}
        # The REST gateway serves HTTPS with its mesh certificate (clients trust the mesh CA).
        self.https = https
        # Extra environment per component name (tests compress the resolver's time this way).
        self.component_env = component_env or {}
        self.ports = ports or Ports()
        self.venues = venues
        self.shared_database_url = shared_database_url
        self.log_level = log_level
        self.sim_rate_limits = sim_rate_limits
        self.components: list[Component] = []
        # Replicas per service (broker, engine, sync; 1 by default). Several replicas share one
        # database through leases: on SQLite the second one refuses to start (meshkit.leases).
        self.replicas = {service: 1 for service in REPLICABLE}
        for service, count in (replicas or {}).items():
            if service not in REPLICABLE or count < 1:
                raise ValueError(
                    f"replicas: {service}={count}: only {', '.join(REPLICABLE)} may have"
                    " replicas, at least 1 each"
                )
            self.replicas[service] = count
        # Each replica of a replicated service listens on its own gRPC, metrics and health
        # ports: the first keeps the service's gRPC port, the rest are free loopback ports.
        self.replica_ports: dict[str, list[ReplicaPorts]] = {}
        taken = {
            self.ports.gateway,
            self.ports.broker,
            self.ports.engine,
            self.ports.sync,
            self.ports.recon,
            *self.ports.venues.values(),
        }
        for service, count in self.replicas.items():
            if count > 1:
                picked = free_ports(3 * count, exclude=taken)
                taken.update(picked)
                first = getattr(self.ports, service)
                self.replica_ports[service] = [
                    ReplicaPorts(
                        grpc=first if index == 0 else picked[3 * index],
                        metrics=picked[3 * index + 1],
                        health=picked[3 * index + 2],
                    )
                    for index in range(count)
                ]

    @property
    def gateway_url(self) -> str:
        """Return the base URL of the REST gateway."""
        return f"{'https' if self.https else 'http'}://127.0.0.1:{self.ports.gateway}"

    @property
    def ca_file(self) -> pathlib.Path:
        """Return the mesh CA certificate (what an HTTPS client of the gateway trusts)."""
        return certs_dir(self.data_dir) / "ca.crt"

    def ssl_context(self) -> ssl.SSLContext | bool:
        """Return what an aiohttp client of the gateway passes as ``ssl``."""
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.https else True

    @property
    def venue_urls(self) -> dict[str, str]:
        """Return the emulators' base URLs (empty with live venues)."""
        if self.venues != "sim":
            return {}
        from exchange_sim.server import VENUES as EMULATED

        return {
            name: f"http://127.0.0.1:{port}"
            for name, port in self.ports.venues.items()
            if name in EMULATED
        }

    def gateway_database_url(self) -> str:
        """Return the DATABASE_URL of the gateway (where users and tokens live)."""
        return database_url(self.data_dir, "gateway", self.shared_database_url)

    def _metrics_port(self, offset: int) -> str:
        return str(self.ports.metrics_base + offset) if self.ports.metrics_base else "0"

    def replica_names(self, service: str) -> list[str]:
        """Return the component names of a service's replicas (``[service]`` when one)."""
        return replica_names(service, self.replicas.get(service, 1))

    def service_of(self, name: str) -> str:
        """Return the service a component name belongs to (``engine-2`` -> ``engine``)."""
        for service in REPLICABLE:
            if name in self.replica_names(service):
                return service
        return name

    def service_address(self, service: str) -> str:
        """Return what a caller of ``service`` dials: its address, or its replicas' listed."""
        ports = self.replica_ports.get(service)
        if ports:
            return ",".join(f"127.0.0.1:{r.grpc}" for r in ports)
        return f"127.0.0.1:{getattr(self.ports, service)}"

    def grpc_ports(self) -> dict[str, int]:
        """Return the gRPC port of every gRPC component by name (each replica apart)."""
        result: dict[str, int] = {}
        for service in ("broker", "engine", "sync", "recon"):
            ports = self.replica_ports.get(service)
            if ports:
                names = self.replica_names(service)
                result.update({n: r.grpc for n, r in zip(names, ports, strict=True)})
            else:
                result[service] = getattr(self.ports, service)
        return result

    def replica_port(self, name: str) -> ReplicaPorts:
        """Return the ports of one replica (``engine-2``) of a replicated service."""
        service = self.service_of(name)
        names = self.replica_names(service)
        if service not in self.replica_ports or name not in names:
            raise KeyError(f"{name} is not a replica of a replicated service")
        return self.replica_ports[service][names.index(name)]

    def _replicate(self, component: Component) -> list[Component]:
        # One component per replica: its own ports and REPLICA_ID, and its own component_env
        # (applied after the service's).
        ports = self.replica_ports.get(component.name)
        if not ports:
            return [component]
        result = []
        for name, own in zip(self.replica_names(component.name), ports, strict=True):
            env = {
                **component.env,
                "GRPC_PORT": str(own.grpc),
                "METRICS_PORT": str(own.metrics),
                "HEALTH_PORT": str(own.health),
                "REPLICA_ID": name,
            }
            result.append(Component(name, component.module, env, list(component.args)))
        return result

    def _plan(self) -> list[Component]:
        p = self.ports
        addrs = {
            "BROKER_SVC_ADDR": self.service_address("broker"),
            "ENGINE_SVC_ADDR": self.service_address("engine"),
            "SYNC_SVC_ADDR": self.service_address("sync"),
            "RECON_SVC_ADDR": f"127.0.0.1:{p.recon}",
        }
        common = {"LOG_LEVEL": self.log_level, "BIND_HOST": "127.0.0.1"}
        certs = certs_dir(self.data_dir)
        public_key = {"ASSERTION_PUBLIC_KEY": str(pki.public_key_path(certs))}

        def svc(name: str, port: int, offset: int, **extra: str) -> Component:
            env = {
                **common,
                **addrs,
                **tls_env(self.data_dir, name),
                **public_key,
                "GRPC_PORT": str(port),
                "METRICS_PORT": self._metrics_port(offset),
                "DATABASE_URL": database_url(self.data_dir, name, self.shared_database_url),
                **extra,
            }
            return Component(name, f"{name}_svc", env)

        plan: list[Component] = []
        if self.venues == "sim":
            emulated = self.venue_urls
            sim_args = ["--host", "127.0.0.1", "--venues", ",".join(emulated)]
            for venue in emulated:
                sim_args += [f"--{venue}-port", str(p.venues[venue])]
            plan.append(
                Component(
                    "exchange_sim",
                    "exchange_sim",
                    {**common, "SIM_RATE_LIMITS": "on" if self.sim_rate_limits else "off"},
                    sim_args,
                )
            )
        venue_env = ",".join(f"{k}={v}" for k, v in self.venue_urls.items())
        plan += [
            # Our limiter follows the emulators' switch: always on against real venues.
            svc(
                "broker",
                p.broker,
                1,
                ENCRYPTION_KEY=encryption_key(self.data_dir),
                ENCRYPTION_KEYS_PREVIOUS=encryption_key(self.data_dir, previous=True),
                VENUE_URLS=venue_env,
                BROKER_RATE_LIMITS="on" if self.sim_rate_limits or self.venues != "sim" else "off",
            ),
            svc("sync", p.sync, 3),
            svc("engine", p.engine, 2),
            svc("recon", p.recon, 4),
        ]
        gateway_env = {
            **common,
            **addrs,
            **tls_env(self.data_dir, "gateway"),
            "ASSERTION_SIGNING_KEY": str(pki.signing_key_path(certs)),
            "GATEWAY_PORT": str(p.gateway),
            "DATABASE_URL": self.gateway_database_url(),
            "GATEWAY_WEBHOOK_SECRET_KEY": webhook_secret_key(self.data_dir),
        }
        if self.https:
            gateway_tls = pki.identity_files(certs, "gateway")
            gateway_env.update(
                GATEWAY_HTTPS_CERT=str(gateway_tls.cert), GATEWAY_HTTPS_KEY=str(gateway_tls.key)
            )
        plan.append(Component("gateway", "gateway", gateway_env))
        # A service's component_env applies to all its replicas, a replica's (engine-2) after.
        for component in plan:
            component.env.update(self.component_env.get(component.name, {}))
        plan = [replica for component in plan for replica in self._replicate(component)]
        unknown = (
            set(self.component_env)
            - {component.name for component in plan}
            - {self.service_of(component.name) for component in plan}
        )
        if unknown:
            raise ValueError(f"component_env names no component of this mesh: {sorted(unknown)}")
        for component in plan:
            if component.name != self.service_of(component.name):
                component.env.update(self.component_env.get(component.name, {}))
        return plan

    def planned_ports(self) -> list[tuple[int, str]]:
        """Return every loopback port this mesh listens on, with what listens there."""
        p = self.ports
        rows = [
            (p.gateway, "REST gateway"),
            (p.broker, "broker gRPC"),
            (p.engine, "engine gRPC"),
            (p.sync, "sync gRPC"),
            (p.recon, "recon gRPC"),
        ]
        rows += [
            (port, f"{name} emulator")
            for name, port in p.venues.items()
            if self.venues == "sim" and name in self.venue_urls
        ]
        if p.metrics_base:
            rows += [
                (p.metrics_base + i, f"{name} metrics")
                for i, name in enumerate(("broker", "engine", "sync", "recon"), start=1)
                if name not in self.replica_ports
            ]
        for service, ports in self.replica_ports.items():
            for name, own in zip(self.replica_names(service), ports, strict=True):
                if own.grpc != getattr(p, service):
                    rows.append((own.grpc, f"{name} gRPC"))
                rows += [(own.metrics, f"{name} metrics"), (own.health, f"{name} health")]
        return rows

    def taken_ports(self) -> list[tuple[int, str, str]]:
        """Return (port, what needs it, what holds it) for each planned port already bound."""
        return [
            (port, what, port_holder(port) or "another process")
            for port, what in self.planned_ports()
            if not port_free(port)
        ]

    def ensure_credentials(self) -> list[str]:
        """Make the mesh's CA, certificates and assertion keys on first run; say what was made."""
        return pki.ensure_mesh_credentials(certs_dir(self.data_dir))

    def start(self) -> None:
        """Start every component, with its log in ``<data dir>/logs/<name>.log``."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        self.ensure_credentials()
        self.components = self._plan()
        for component in self.components:
            self._spawn(component)

    def _spawn(self, component: Component) -> None:
        python_path = os.pathsep.join([str(ROOT / "gen"), str(ROOT)])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GRPC_", "DATABASE_URL"))}
        env.update(component.env)
        env["PYTHONPATH"] = python_path + (
            os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
        )
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("GRPC_VERBOSITY", "ERROR")  # the C-core's own stderr lines: errors only
        component.process = subprocess.Popen(
            [sys.executable, "-m", component.module, *component.args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(self.data_dir),
            start_new_session=True,
        )
        self.log_of(component.name).attach(component.process.stdout, component.process.stderr)

    def log_of(self, name: str) -> ComponentLog:
        """Return the log of component ``name``: ``<data dir>/logs/<name>.log``, JSON lines."""
        if name not in self.logs:
            path = self.data_dir / "logs" / f"{name}.log"
            self.logs[name] = ComponentLog(path, name, self.log_rotation)
        return self.logs[name]

    def drain_log(self, name: str, timeout: float = 5.0) -> None:
        """Wait until what an exited component wrote is in its log file."""
        if name in self.logs:
            self.logs[name].drain(timeout)

    def restart(self, name: str) -> None:
        """Start a stopped or killed component again, with the same command and environment."""
        for component in self.components:
            if component.name == name:
                if component.process is not None and component.process.poll() is None:
                    raise RuntimeError(f"{name} is still running")
                self._spawn(component)
                return
        raise KeyError(name)

    async def wait_ready(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109 - a polling budget
        """Wait until every gRPC service reports SERVING and the gateway and emulators answer."""
        deadline = time.monotonic() + timeout
        grpc_ports = self.grpc_ports()
        http_urls = [
            f"{self.gateway_url}/healthz",
            *(f"{u}/_sim/health" for u in self.venue_urls.values()),
        ]
        pending_grpc, pending_http = dict(grpc_ports), list(http_urls)
        import aiohttp

        probe_tls = tls_settings(self.data_dir, "operator")
        async with aiohttp.ClientSession() as session:
            while pending_grpc or pending_http:
                self._check_alive()
                for name, port in list(pending_grpc.items()):
                    if await grpc_serving(f"127.0.0.1:{port}", probe_tls):
                        del pending_grpc[name]
                for url in list(pending_http):
                    with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                        ssl_option = (
                            self.ssl_context() if url.startswith(self.gateway_url) else True
                        )
                        async with session.get(
                            url, timeout=aiohttp.ClientTimeout(total=1), ssl=ssl_option
                        ) as response:
                            if response.status < 500:
                                pending_http.remove(url)
                if time.monotonic() > deadline:
                    waiting = [*pending_grpc, *pending_http]
                    raise TimeoutError(
                        f"not ready after {timeout}s: {waiting}; logs in {self.data_dir}/logs"
                    )
                await asyncio.sleep(0.1)

    def _check_alive(self) -> None:
        for component in self.components:
            if component.process is not None and component.process.poll() is not None:
                self.drain_log(component.name)
                log = self.data_dir / "logs" / f"{component.name}.log"
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise RuntimeError(
                    f"{component.name} exited with code {component.process.returncode}:\n{tail}",
                )

    def addresses(self) -> list[tuple[str, str]]:
        """Return (what, where) for every address a person may want."""
        p = self.ports
        rows = [
            ("REST gateway", self.gateway_url),
            ("dashboard", f"{self.gateway_url}/dashboard"),
            ("OpenAPI", f"{self.gateway_url}/openapi.json"),
            ("broker gRPC", self.service_address("broker")),
            ("engine gRPC", self.service_address("engine")),
            ("sync gRPC", self.service_address("sync")),
            ("recon gRPC", f"127.0.0.1:{p.recon}"),
        ]
        rows += [(f"{name} emulator", url) for name, url in self.venue_urls.items()]
        if p.metrics_base:
            rows += [
                (f"{n} metrics", f"http://127.0.0.1:{p.metrics_base + i}/metrics")
                for i, n in enumerate(("broker", "engine", "sync", "recon"), start=1)
                if n not in self.replica_ports
            ]
        for service, ports in self.replica_ports.items():
            rows += [
                (f"{name} metrics", f"http://127.0.0.1:{own.metrics}/metrics")
                for name, own in zip(self.replica_names(service), ports, strict=True)
            ]
        rows.append(("logs", str(self.data_dir / "logs")))
        return rows

    def kill(self, name: str) -> None:
        """Kill one component at once (SIGKILL), for fault tests."""
        for component in self.components:
            if component.name == name and component.process is not None:
                component.process.kill()
                component.process.wait()

    def pause(self, name: str) -> None:
        """Freeze one component (SIGSTOP): it holds its sockets and leases but does nothing."""
        self._signal(name, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        """Wake a component frozen by :meth:`pause` (SIGCONT)."""
        self._signal(name, signal.SIGCONT)

    def _signal(self, name: str, signum: int) -> None:
        for component in self.components:
            if component.name == name:
                if component.process is None or component.process.poll() is not None:
                    raise RuntimeError(f"{name} is not running")
                component.process.send_signal(signum)
                return
        raise KeyError(name)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every component (gateway first), then SIGKILL what is left after ``grace``.

        A paused component is woken (SIGCONT) after its SIGTERM, so it can stop.
        """
        for component in reversed(self.components):
            if component.process is not None and component.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    component.process.send_signal(signal.SIGTERM)
                    component.process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + grace
        for component in self.components:
            if component.process is None:
                continue
            remaining = max(deadline - time.monotonic(), 0.1)
            try:
                component.process.wait(remaining)
            except subprocess.TimeoutExpired:
                component.process.kill()
                component.process.wait()
        for log in self.logs.values():
            log.drain()
            log.close()


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Return whether ``host:port`` can be bound now (a quick bind test)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def listening_pid(port: int) -> int | None:
    """Return the pid of the process listening on TCP ``port``, when /proc says (Linux)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = pathlib.Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return int(entry.name)
    return None


def process_name(pid: int) -> str:
    """Return a short name of a process: its program and, for ``python -m``, the module.

    Never its whole command line, which may hold a secret.
    """
    try:
        argv = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [word.decode(errors="replace") for word in argv if word]
    if not words:
        return "?"
    name = pathlib.Path(words[0]).name
    if "-m" in words[:-1]:
        name += f" -m {words[words.index('-m') + 1]}"
    return name


def port_holder(port: int) -> str | None:
    """Describe who listens on ``port`` (``pid 123 (python -m gateway)``), or ``None``."""
    pid = listening_pid(port)
    return None if pid is None else f"pid {pid} ({process_name(pid)})"


async def grpc_serving(address: str, tls: TlsSettings) -> bool:
    """Return whether the service at ``address`` reports SERVING, asked over mutual TLS."""
    async with clients.channel(address, tls=tls) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
        except grpc.aio.AioRpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING
