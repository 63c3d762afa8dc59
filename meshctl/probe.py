"""Ask the running components what they are: health, version, and the engine's config counts.

The gRPC services answer ``grpc.health.v1.Health`` and ``copytrade.common.v1.ServerInfoService``
(:mod:`meshkit.server_info`) to any mesh certificate; this module calls them with the
operator's (``<data dir>/certs/operator``), the identity no access table lists, so it can read
what runs but never call a service's own RPCs, or, inside a pod, with the pod's own ``TLS_*``.
The gateway answers ``/readyz`` and ``/version`` over HTTP(S). A component that does not answer
is reported as down with the reason, never as a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from copytrade.common.v1 import server_info_service_pb2, server_info_service_pb2_grpc
from meshctl.launcher import Ports, certs_dir, tls_settings
from meshkit import clients
from meshkit.settings import TlsSettings

SERVICES = ("broker", "engine", "sync", "recon")
"""The gRPC components, in the order they are shown (the gateway comes first)."""
ADDRESS_VARIABLES = {service: f"{service.upper()}_SVC_ADDR" for service in SERVICES}
GATEWAY_URL_VARIABLE = "GATEWAY_URL"
TIMEOUT_SECONDS = 3.0
"""How long one component may take to answer before it is reported down."""
SERVING = "SERVING"
DOWN = "DOWN"


@dataclass(frozen=True)
class Target:
    """One component to ask: its name (``engine``, ``engine-2``) and where it listens."""

    component: str
    address: str


@dataclass
class Answer:
    """What one component said, or why it said nothing."""

    target: Target
    health: str = DOWN
    version: str = ""
    detail: str = ""
    copy_configs_by_status: dict[str, int] = field(default_factory=dict)

    @property
    def up(self) -> bool:
        """Return whether the component serves."""
        return self.health == SERVING


def targets(
    ports: Ports,
    environ: Mapping[str, str] = os.environ,
    *,
    gateway_url: str | None = None,
) -> list[Target]:
    """Return the gateway and each gRPC service's address.

    ``GATEWAY_URL`` and the services' own ``<SVC>_SVC_ADDR`` variables (a comma-separated list
    names each replica) win over the local mesh's ports (``copytrade up``, or
    ``--port-base``).
    """
    url = gateway_url or environ.get(GATEWAY_URL_VARIABLE, "").strip()
    result = [Target("gateway", url.rstrip("/") or f"http://127.0.0.1:{ports.gateway}")]
    for service in SERVICES:
        given = environ.get(ADDRESS_VARIABLES[service], "").strip()
        addresses = [a.strip() for a in given.split(",") if a.strip()] or [
            f"127.0.0.1:{getattr(ports, service)}"
        ]
        if len(addresses) == 1:
            result.append(Target(service, addresses[0]))
        else:
            result += [
                Target(f"{service}-{index}", address)
                for index, address in enumerate(addresses, start=1)
            ]
    return result


def _reason(error: grpc.aio.AioRpcError) -> str:
    details = " ".join((error.details() or "").split())
    code = error.code().name
    if error.code() == grpc.StatusCode.UNAVAILABLE:
        return f"unreachable ({details[:160] or code})"
    if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer within {TIMEOUT_SECONDS:g}s"
    return f"{code}: {details[:160]}"


async def ask_service(target: Target, tls: TlsSettings) -> Answer:
    """Ask one gRPC component for its health and its server info."""
    answer = Answer(target)
    try:
        channel = clients.channel(target.address, tls=tls)
    except OSError as e:
        answer.detail = f"cannot read the operator's certificate: {e.strerror or e}"
        return answer
    async with channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as e:
            answer.detail = _reason(e)
            return answer
        answer.health = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        try:
            info = await server_info_service_pb2_grpc.ServerInfoServiceStub(channel).GetServerInfo(
                server_info_service_pb2.GetServerInfoRequest(), timeout=TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as e:
            # An older component (no info service) still has its health shown.
            answer.version = "unknown"
            answer.detail = (
                "no ServerInfoService (older version)"
                if e.code() == grpc.StatusCode.UNIMPLEMENTED
                else _reason(e)
            )
            return answer
        answer.version = info.version
        answer.copy_configs_by_status = dict(info.copy_configs_by_status)
    return answer


def gateway_ssl(url: str, ca_file: pathlib.Path | None) -> ssl.SSLContext | bool:
    """Return what an HTTPS client of the gateway passes as ``ssl``: the mesh CA when it is
    there (``copytrade up --tls``), else the system's trust."""
    if url.startswith("https:") and ca_file is not None and ca_file.is_file():
        return ssl.create_default_context(cafile=str(ca_file))
    return True


async def ask_gateway(target: Target, ssl_option: ssl.SSLContext | bool = True) -> Answer:
    """Ask the gateway's ``/readyz`` (its backends and store) and ``/version``."""
    answer = Answer(target)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(f"{target.address}/readyz", ssl=ssl_option) as response:
                body = await response.json(content_type=None)
                answer.health = str(body.get("status") or f"HTTP {response.status}")
                if not answer.up:
                    down = {k: v for k, v in (body.get("backends") or {}).items() if v != SERVING}
                    if body.get("database") not in (None, "ok"):
                        down["database"] = body["database"]
                    answer.detail = ", ".join(f"{k} {v}" for k, v in down.items())
            with contextlib.suppress(TimeoutError, aiohttp.ClientError, ValueError):
                async with session.get(f"{target.address}/version", ssl=ssl_option) as response:
                    if response.status == 200:
                        answer.version = str((await response.json()).get("version", ""))
            answer.version = answer.version or "unknown"
    except (TimeoutError, aiohttp.ClientError, ValueError, OSError) as e:
        answer.health = DOWN
        answer.detail = _http_reason(e)
    return answer


def _http_reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {TIMEOUT_SECONDS:g}s"
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"unreachable: {error.os_error.strerror or error.os_error}"
    return f"unreachable: {type(error).__name__}: {' '.join(str(error).split())[:160]}"


def _missing(tls: TlsSettings) -> list[str]:
    return [path for path in (tls.cert, tls.key, tls.ca) if not os.path.isfile(path)]


def client_tls(data_dir: pathlib.Path, environ: Mapping[str, str]) -> TlsSettings:
    """Return the certificate to ask with: ``TLS_CERT``, ``TLS_KEY`` and ``TLS_CA`` when all
    three are set (inside a pod: that component's own identity, which the open services admit),
    else the operator's in ``<data dir>/certs/operator``."""
    given = {name: environ.get(name, "").strip() for name in ("TLS_CERT", "TLS_KEY", "TLS_CA")}
    if all(given.values()):
        return TlsSettings(given["TLS_CERT"], given["TLS_KEY"], given["TLS_CA"])
    return tls_settings(data_dir, "operator")


async def ask_all(
    data_dir: pathlib.Path, wanted: list[Target], environ: Mapping[str, str] = os.environ
) -> list[Answer]:
    """Ask every target at once, with the certificate of :func:`client_tls`."""
    tls = client_tls(data_dir, environ)
    missing = _missing(tls)
    ca_file = pathlib.Path(tls.ca) if environ.get("TLS_CA", "").strip() else None
    ca_file = ca_file or certs_dir(data_dir) / "ca.crt"

    async def one(target: Target) -> Answer:
        if target.component == "gateway":
            return await ask_gateway(target, gateway_ssl(target.address, ca_file))
        if missing:
            return Answer(target, detail=f"no client certificate: {missing[0]} is missing")
        return await ask_service(target, tls)

    return list(await asyncio.gather(*(one(target) for target in wanted)))
