"""The dev overlay, run: every Deployment's command as a local process with exactly the
environment its manifest gives it, then a leader's trade copied end to end through the gateway.

No cluster is needed. What a cluster would provide is mapped explicitly (the tables below):
ConfigMap and Secret references are resolved (the Secrets' values are made here: mesh
credentials from ``meshkit.pki.ensure_mesh_credentials``, a fresh encryption key, this run's
database), each Secret or emptyDir mount becomes a temp folder, each container port a free
loopback port, and each ``<service>:<port>`` in a value the loopback address of the pod the
Service selects, through the Service's targetPort. Readiness is asked the way the kubelet
asks it: the manifest's own readinessProbe, on its port. A wrong port, address, mount path,
Secret key or probe in the manifests makes this test fail.

PostgreSQL is this machine's own (``COPYTRADE_TEST_POSTGRES_URL``, one fresh schema shared by
every component, as in the cluster) in place of the dev StatefulSet; without it, each
component gets its own SQLite file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import pathlib
import re
import secrets
import signal
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
import grpc
import pytest
from deploy_manifests import ROOT, container_port, named, of_kind, pod_template, render, selects
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshctl.api import ApiError, RestClient, SimAdmin
from meshctl.demo import leader_client
from meshctl.launcher import free_ports
from meshkit import db, pki
from meshkit.testing import POSTGRES_ENV, database_urls

pytestmark = pytest.mark.timeout(150)

# Variables naming a port the container listens on: the value must be one of the pod's
# declared containerPorts, and becomes that port's free loopback port here.
LISTEN_PORT_VARIABLES = {
    "GRPC_PORT",
    "HEALTH_PORT",
    "METRICS_PORT",
    "GATEWAY_PORT",
    "SIM_BINANCE_PORT",
    "SIM_COINBASE_PORT",
    "SIM_KRAKEN_PORT",
}
# Variables naming the address to bind: every interface in a pod, loopback here.
BIND_VARIABLES = {"BIND_HOST": "0.0.0.0", "SIM_HOST": "0.0.0.0"}
# What the image (Dockerfile ENV) gives every container, besides PATH; HOME and TMPDIR are /tmp,
# which must be a writable mount because the root filesystem is read-only.
IMAGE_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "GRPC_VERBOSITY": "ERROR"}
IMAGE_TMP_VARIABLES = ("HOME", "TMPDIR")
# An address in a value: a Service name and a port (broker:50051, http://exchange-sim:9101).
ADDRESS = re.compile(r"(?<![\w.-])([a-z][a-z0-9-]*):(\d+)\b")


@dataclass
class Pod:
    """One Deployment's pod, as a local process."""

    name: str
    workload: dict[str, Any]
    folder: pathlib.Path
    ports: dict[int, int] = field(default_factory=dict)  # containerPort -> loopback port
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def container(self) -> dict[str, Any]:
        return pod_template(self.workload)["spec"]["containers"][0]


class Cluster:
    """What the kubelet, the DNS and the Secret store would do, for the dev overlay."""

    def __init__(
        self, docs: list[dict[str, Any]], folder: pathlib.Path, database: dict[str, str]
    ) -> None:
        self.docs = docs
        self.folder = folder
        self.certs = folder / "certs"
        pki.ensure_mesh_credentials(self.certs)
        self.database = database  # component name -> DATABASE_URL
        self.encryption_key = base64.b64encode(secrets.token_bytes(32)).decode()
        self.webhook_key = base64.b64encode(secrets.token_bytes(32)).decode()
        self.pods = {
            d["metadata"]["name"]: Pod(d["metadata"]["name"], d, folder / d["metadata"]["name"])
            for d in of_kind(docs, "Deployment")
        }
        declared = [
            (pod, c["containerPort"])
            for pod in self.pods.values()
            for c in pod.container.get("ports", [])
        ]
        for (pod, port), free in zip(declared, free_ports(len(declared)), strict=True):
            pod.ports[port] = free
        # The Services, as DNS would answer them: "<name>:<port>" -> the selected pod's port.
        self.addresses: dict[str, str] = {}
        for service in of_kind(docs, "Service"):
            selected = [
                p
                for p in self.pods.values()
                if selects(
                    service["spec"]["selector"], pod_template(p.workload)["metadata"]["labels"]
                )
            ]
            for port in service["spec"]["ports"]:
                key = f"{service['metadata']['name']}:{port['port']}"
                if not selected:  # the dev PostgreSQL StatefulSet: this machine's own instead
                    continue
                assert len(selected) == 1, f"Service {key} selects {len(selected)} Deployments"
                target = container_port(selected[0].workload, port.get("targetPort", port["port"]))
                self.addresses[key] = f"127.0.0.1:{selected[0].ports[target]}"

    # Secrets: the values a person would create from `copytrade certs` and the README.
    def secret(self, name: str, key: str, component: str) -> str | None:
        identity = re.fullmatch(r"copytrade-(\w+)-tls", name)
        if identity and identity.group(1) in pki.IDENTITIES:
            files = pki.identity_files(self.certs, identity.group(1))
            path = {"tls.crt": files.cert, "tls.key": files.key, "ca.crt": files.ca}[key]
            return path.read_text()
        table = {
            ("copytrade-assertion-public", "public.pem"): lambda: pki.public_key_path(
                self.certs
            ).read_text(),
            ("copytrade-assertion-signing", "signing.key"): lambda: pki.signing_key_path(
                self.certs
            ).read_text(),
            ("copytrade-encryption", "ENCRYPTION_KEY"): lambda: self.encryption_key,
            ("copytrade-encryption", "ENCRYPTION_KEYS_PREVIOUS"): lambda: None,  # no rotation yet
            ("copytrade-webhooks", "GATEWAY_WEBHOOK_SECRET_KEY"): lambda: self.webhook_key,
            ("copytrade-database", "DATABASE_URL"): lambda: self.database[component],
        }
        assert (name, key) in table, (
            f"{component} references Secret {name} key {key}, which the README never creates"
        )
        return table[(name, key)]()

    def _secret_keys(self, name: str) -> list[str]:
        if re.fullmatch(r"copytrade-(\w+)-tls", name):
            return ["tls.crt", "tls.key", "ca.crt"]
        return {
            "copytrade-assertion-public": ["public.pem"],
            "copytrade-assertion-signing": ["signing.key"],
        }[name]

    def mounts(
        self, workload: dict[str, Any], component: str, folder: pathlib.Path
    ) -> dict[str, pathlib.Path]:
        """Make every volume of the pod a folder; return mountPath -> folder."""
        spec = pod_template(workload)["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        result: dict[str, pathlib.Path] = {}
        for mount in spec["containers"][0].get("volumeMounts", []):
            volume = volumes[mount["name"]]
            local = folder / "volumes" / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                items = volume["secret"].get("items") or [
                    {"key": k, "path": k} for k in self._secret_keys(name)
                ]
                for item in items:
                    value = self.secret(name, item["key"], component)
                    assert value is not None, (
                        f"{component} mounts {name}/{item['key']}, which is empty"
                    )
                    (local / item["path"]).write_text(value)
            else:
                assert "emptyDir" in volume, (
                    f"{component}: volume {mount['name']} is neither a Secret nor an emptyDir"
                )
            result[mount["mountPath"]] = local
        return result

    def environment(
        self, workload: dict[str, Any], component: str, folder: pathlib.Path, ports: dict[int, int]
    ) -> dict[str, str]:
        """Return the container's environment as the kubelet sets it, mapped to this machine."""
        container = pod_template(workload)["spec"]["containers"][0]
        raw: dict[str, str] = {}
        for source in container.get("envFrom", []):
            assert set(source) == {"configMapRef"}, f"{component}: envFrom {source} not supported"
            raw.update(named(self.docs, "ConfigMap", source["configMapRef"]["name"])["data"])
        for item in container.get("env", []):
            if "value" in item:
                assert "$(" not in item["value"], f"{component}: {item['name']} uses $(...)"
                raw[item["name"]] = item["value"]
                continue
            reference = item["valueFrom"]
            if "fieldRef" in reference:
                # The downward API: only the pod's own name is used (REPLICA_ID).
                path = reference["fieldRef"]["fieldPath"]
                assert path == "metadata.name", f"{component}: fieldRef {path} not supported"
                raw[item["name"]] = f"{component}-{uuid.uuid4().hex[:5]}"
                continue
            if "configMapKeyRef" in reference:
                ref = reference["configMapKeyRef"]
                raw[item["name"]] = named(self.docs, "ConfigMap", ref["name"])["data"][ref["key"]]
            else:
                ref = reference["secretKeyRef"]
                value = self.secret(ref["name"], ref["key"], component)
                if value is None:
                    assert ref.get("optional"), (
                        f"{component}: {item['name']} needs {ref['name']}/{ref['key']}"
                    )
                    continue
                raw[item["name"]] = value
        mounts = self.mounts(workload, component, folder)
        assert "/tmp" in mounts, (
            f"{component}: /tmp is not a writable mount (the root filesystem is read-only)"
        )
        env = {**IMAGE_ENV, **{name: str(mounts["/tmp"]) for name in IMAGE_TMP_VARIABLES}}
        for name, value in raw.items():
            if name in BIND_VARIABLES:
                assert value == BIND_VARIABLES[name], (
                    f"{component}: {name}={value} (pods bind every interface)"
                )
                value = "127.0.0.1"
            elif name in LISTEN_PORT_VARIABLES:
                assert int(value) in ports, (
                    f"{component}: {name}={value} is no containerPort of its pod"
                )
                value = str(ports[int(value)])
            else:
                value = self._map_addresses(component, name, value)
                for path in sorted(mounts, key=len, reverse=True):  # the deepest mount holds it
                    if value.startswith(path + "/"):
                        value = str(mounts[path]) + value[len(path) :]
                        break
            env[name] = value
        return env

    def _map_addresses(self, component: str, name: str, value: str) -> str:
        def replace(match: re.Match[str]) -> str:
            address = match.group(0)
            if match.group(1) in ("localhost",) or address.startswith("127."):
                return address
            assert address in self.addresses, (
                f"{component}: {name} names {address}, which no Service of the overlay serves"
            )
            return self.addresses[address]

        if "://" in value and "@" in value:  # a URL with a password: not an address of ours
            return value
        return ADDRESS.sub(replace, value)

    def command(self, workload: dict[str, Any]) -> list[str]:
        """Return the container's command with the image's python as this interpreter."""
        command = list(pod_template(workload)["spec"]["containers"][0]["command"])
        assert command[:2] == ["python", "-m"], command
        return [sys.executable, *command[1:]]

    def spawn(self, pod: Pod) -> None:
        pod.folder.mkdir(parents=True, exist_ok=True)
        pod.env = self.environment(pod.workload, pod.name, pod.folder, pod.ports)
        env = {
            **pod.env,
            "PATH": os.environ["PATH"],
            # The image installs the package; here it is the work tree and its gen/.
            "PYTHONPATH": os.pathsep.join([str(ROOT / "gen"), str(ROOT)]),
        }
        with open(pod.folder / "log", "ab") as log:
            pod.process = subprocess.Popen(
                self.command(pod.workload),
                env=env,
                cwd=pod.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def run_job(self, job: dict[str, Any]) -> None:
        component = job["metadata"]["name"].removesuffix("-migrate")
        folder = self.folder / job["metadata"]["name"]
        folder.mkdir(parents=True, exist_ok=True)
        env = {
            **self.environment(job, component, folder, {}),
            "PATH": os.environ["PATH"],
            "PYTHONPATH": os.pathsep.join([str(ROOT / "gen"), str(ROOT)]),
        }
        result = subprocess.run(
            self.command(job),
            env=env,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, (
            f"Job {job['metadata']['name']}: {result.stdout}{result.stderr}"
        )

    def check_alive(self) -> None:
        for pod in self.pods.values():
            if pod.process is not None and pod.process.poll() is not None:
                raise AssertionError(
                    f"{pod.name} exited with {pod.process.returncode}:\n{self.log(pod)}"
                )

    def log(self, pod: Pod) -> str:
        path = pod.folder / "log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every process, then SIGKILL what is left after ``grace`` (as Mesh.stop)."""
        running = [p.process for p in self.pods.values() if p.process is not None]
        for process in running:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in running:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _ssl(cluster: Cluster) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cluster.certs / "ca.crt"))


async def _probe(
    cluster: Cluster, pod: Pod, probe: dict[str, Any], session: aiohttp.ClientSession
) -> bool:
    """Ask one probe of the manifest, the way the kubelet does."""
    if "grpc" in probe:
        port = pod.ports[container_port(pod.workload, probe["grpc"]["port"])]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=probe["grpc"].get("service", "")),
                    timeout=1,
                )
            except grpc.aio.AioRpcError:
                return False
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    get = probe["httpGet"]
    port = pod.ports[container_port(pod.workload, get["port"])]
    scheme = get.get("scheme", "HTTP").lower()
    try:
        async with session.get(
            f"{scheme}://127.0.0.1:{port}{get['path']}",
            timeout=aiohttp.ClientTimeout(total=2),
            ssl=_ssl(cluster) if scheme == "https" else None,
        ) as response:
            return 200 <= response.status < 400
    except (aiohttp.ClientError, TimeoutError):
        return False


async def _wait(predicate, what: str, cluster: Cluster, timeout: float = 30.0):  # noqa: ASYNC109 - a polling deadline
    deadline = time.monotonic() + timeout
    while True:
        cluster.check_alive()
        result = await predicate()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def _retry_unavailable(call, cluster: Cluster, timeout: float = 15.0):  # noqa: ASYNC109 - a retry deadline
    # A component that started before its peer holds its channel in gRPC's reconnect backoff
    # for a moment after both are ready: the gateway answers 503 (UNAVAILABLE), which a client
    # retries (as a pod started before its peers would see it in a cluster too).
    deadline = time.monotonic() + timeout
    while True:
        cluster.check_alive()
        try:
            return await call()
        except ApiError as e:
            if e.status != 503 or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.25)


@pytest.fixture(params=database_urls())
async def database(request: pytest.FixtureRequest, tmp_path: pathlib.Path):
    """DATABASE_URL per component: one fresh PostgreSQL schema for all, or a SQLite file each."""
    names = ["broker", "engine", "sync", "recon", "gateway", "exchange-sim"]
    if request.param == "sqlite":
        yield {name: f"sqlite:///{tmp_path}/{name}.db" for name in names}
        return
    base = os.environ[POSTGRES_ENV]
    schema = f"k8s_{uuid.uuid4().hex[:10]}"
    admin = await db.connect(base)
    await admin.execute(f"CREATE SCHEMA {schema}")
    await admin.close()
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    try:
        yield dict.fromkeys(names, url)
    finally:
        admin = await db.connect(base)
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


async def test_the_dev_overlay_run_as_processes_copies_a_leader_trade(
    tmp_path: pathlib.Path,
    database: dict[str, str],
) -> None:
    docs = render("overlays/dev")
    cluster = Cluster(docs, tmp_path / "cluster", database)
    assert set(cluster.pods) == {"exchange-sim", "broker", "engine", "sync", "recon", "gateway"}
    jobs = of_kind(docs, "Job")
    assert {job["metadata"]["name"] for job in jobs} >= {
        f"{name}-migrate" for name in ("broker", "engine", "sync", "recon", "gateway")
    }
    for job in jobs:
        cluster.run_job(job)
    try:
        for pod in cluster.pods.values():
            cluster.spawn(pod)
        connector = aiohttp.TCPConnector(ssl=_ssl(cluster))
        async with aiohttp.ClientSession(connector=connector) as session:
            for pod in cluster.pods.values():
                probe = pod.container["readinessProbe"]
                await _wait(
                    lambda p=pod, q=probe: _probe(cluster, p, q, session),
                    f"{pod.name} ready",
                    cluster,
                )
            for pod in cluster.pods.values():
                assert await _probe(cluster, pod, pod.container["livenessProbe"], session), (
                    f"{pod.name} live"
                )
                scrape = pod_template(pod.workload)["metadata"].get("annotations", {})
                if scrape.get("prometheus.io/scrape") == "true":
                    port = pod.ports[int(scrape["prometheus.io/port"])]
                    scheme = scrape.get("prometheus.io/scheme", "http")
                    async with session.get(
                        f"{scheme}://127.0.0.1:{port}{scrape['prometheus.io/path']}"
                    ) as r:
                        assert r.status == 200, f"{pod.name} metrics"

            # A user, created where the gateway's manifest says its database is.
            from gateway.users import add_user

            gateway_db = await db.connect(cluster.pods["gateway"].env["DATABASE_URL"])
            try:
                _user, token = await add_user(gateway_db, "k8s", "pro")
            finally:
                await gateway_db.close()
            api = RestClient(session, f"https://{cluster.addresses['gateway:443']}", token)
            # The emulator the broker's VENUE_URLS names, the one the leader trades on.
            venues = dict(
                part.split("=", 1) for part in cluster.pods["broker"].env["VENUE_URLS"].split(",")
            )
            binance = SimAdmin(session, venues["binance"])
            accounts = {}
            for label, balance in (("leader", "100000"), ("follower", "10000")):
                keys = await binance.create_account(
                    {"USDT": balance}, can_trade=True, can_withdraw=False
                )
                reply = await api.call(
                    "POST",
                    "/exchanges",
                    {
                        "exchange_name": "binance",
                        "api_key": keys["api_key"],
                        "api_secret": keys["api_secret"],
                        "label": label,
                    },
                )
                accounts[label] = (reply["exchange"]["exchange_id"], keys)
            start = {
                "request_id": str(uuid.uuid4()),  # makes a retry of /start safe
                "source_exchange_id": accounts["leader"][0],
                "target_exchange_ids": [accounts["follower"][0]],
                "risk_limits": {"max_position_size": 0.5, "max_slippage": "0.01"},
                "sync_settings": {"sync_interval": 1},
            }
            config = await _retry_unavailable(lambda: api.call("POST", "/start", start), cluster)
            assert config["status"] == "COPY_STATUS_ACTIVE"

            exchange = leader_client(venues["binance"], accounts["leader"][1])
            try:
                await exchange.create_order("BTC/USDT", "market", "buy", 0.1)
            finally:
                await exchange.close()
            follower_key = accounts["follower"][1]["api_key"]
            orders = await _wait(
                lambda: binance.orders(follower_key), "the follower's copy", cluster
            )
            assert len(orders) == 1
            assert Decimal(str(orders[0]["quantity"])) == Decimal("0.01")
            assert orders[0]["side"].lower() == "buy"
    except BaseException:
        for pod in cluster.pods.values():
            code = pod.process.poll() if pod.process is not None else None
            print(
                f"\n===== {pod.name}: {'running' if code is None else f'exited {code}'} =====\n"
                f"{cluster.log(pod)}"
            )
        raise
    finally:
        cluster.stop()
