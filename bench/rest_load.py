"""REST read load: open-loop requests over the gateway's read endpoints at rising arrival rates.

A mesh runs as real processes (``meshctl.launcher.Mesh``, as ``copytrade up``) with the gateway's
per-user and per-address rate limits lifted (``GATEWAY_RATE_LIMIT_PER_SECOND=0``,
``GATEWAY_IP_RATE_LIMIT_PER_SECOND=0``). One user registers a Binance leader and followers on the
emulators, starts a copy configuration and the leader trades a few times, so that every read
returns real data: copied orders, counters, accounts.

The load is open-loop: each step schedules requests at a fixed arrival rate (``--rates``, for
``--seconds`` each) whether or not earlier ones have returned, and each latency runs from the
request's *scheduled* time to its full response, so a server that falls behind shows it (no
coordinated omission). The requests cycle over the read endpoints (``GET /status/{id}``,
``/orders/{id}``, ``/configs``, ``/exchanges``, ``/supported-exchanges``, ``/leaders``,
``/reconciliation-history/{id}``). They come from ``--clients`` separate processes (a small
HTTP/1.1 client on asyncio with uvloop when installed, keep-alive connections, ``--connections``
per process), so the load generator is not one busy event loop; its own CPU is measured and
printed beside the mesh's.

    .venv/bin/python bench/rest_load.py                      # 200, 500, 1000, 1500, 2000 req/s
    .venv/bin/python bench/rest_load.py --rates 200,500 --seconds 3 --no-record
    .venv/bin/python bench/rest_load.py --profile            # py-spy on every mesh process
    .venv/bin/python bench/rest_load.py --gateway-workers 2  # GATEWAY_WORKERS (each one's CPU)

Per step: achieved rate, p50, p99, max, errors (non-200 or failed), and CPU per request of each
mesh process and of the load generator; then the highest rate whose p99 stayed within 100 ms.
Appends one row to bench/RESULTS.md (``--no-record`` does not).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import pathlib
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "gen"), str(ROOT)]

from bench.benchlib import (  # noqa: E402
    CpuMeter,
    Profiler,
    append_row,
    machine,
    mesh_pids,
    percentile,
    py_spy,
)
from meshctl.api import RestClient, SimAdmin  # noqa: E402 - after the sys.path setup
from meshctl.demo import create_user, leader_client, register_keys, wait_for_copies  # noqa: E402
from meshctl.launcher import Mesh, Ports  # noqa: E402

API = "/api/institutional/copy-trading"
P99_BOUND_MS = 100.0
TARGET_RATE = 500
TARGET_P99_MS = 25.0
STEP_LEAD = 1.0  # seconds from sending a step to its start (each load process connects)
SETTLE = 1.0  # seconds between steps
REQUEST_TIMEOUT = 30.0  # seconds; a request still unanswered then is an error


# ----------------------------------------------------------------------------- load generator


@dataclass
class StepResult:
    """What one load process measured in one step."""

    latencies_ms: list[float] = field(default_factory=list)
    by_request: dict[int, list[float]] = field(default_factory=dict)  # index in the cycle
    errors: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    first_ms: float = 0.0
    last_ms: float = 0.0


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes]:
    # One keep-alive HTTP/1.1 exchange; the gateway answers with a Content-Length body.
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _load_step(
    host: str,
    port: int,
    requests: list[bytes],
    rate: float,
    seconds: float,
    connections: int,
    start_at: float,
    offset: float,
) -> StepResult:
    """Send ``rate * seconds`` requests at ``rate`` from ``start_at`` (wall clock), shifted by
    ``offset`` (a fraction of one interval, so that the load processes interleave)."""
    result = StepResult()
    total = max(1, round(rate * seconds))
    queue: asyncio.Queue[tuple[float, int] | None] = asyncio.Queue()
    clock_skew = time.time() - time.monotonic()
    t0 = start_at - clock_skew  # in monotonic time

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                scheduled, which = item
                try:
                    status, _ = await asyncio.wait_for(
                        _request(reader, writer, requests[which]), REQUEST_TIMEOUT
                    )
                    if status != 200:
                        result.errors[str(status)] = result.errors.get(str(status), 0) + 1
                except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as e:
                    result.errors[type(e).__name__] = result.errors.get(type(e).__name__, 0) + 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                done = time.monotonic()
                result.latencies_ms.append(1000 * (done - scheduled))
                result.by_request.setdefault(which, []).append(1000 * (done - scheduled))
                result.last_ms = 1000 * (done - t0)
        finally:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    for index in range(total):
        scheduled = t0 + (index + offset) / rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((scheduled, index % len(requests)))
        result.sent += 1
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return result


def _load_process(
    host: str,
    port: int,
    requests: list[bytes],
    connections: int,
    offset: float,
    pipe: Any,
) -> None:
    """One load process: for each (rate, seconds, start_at) it is sent, run the step and send
    back its results; None ends it."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    while (step := pipe.recv()) is not None:
        rate, seconds, start_at = step
        result = asyncio.run(
            _load_step(host, port, requests, rate, seconds, connections, start_at, offset)
        )
        pipe.send(result)
    pipe.close()


def _raw_requests(host: str, port: int, token: str, paths: list[str]) -> list[bytes]:
    return [
        (
            f"GET {API}{path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
        ).encode()
        for path in paths
    ]


# ----------------------------------------------------------------------------- the mesh


async def _seed(mesh: Mesh, followers: int, orders: int) -> tuple[str, list[str]]:
    """A user with a leader, followers, one configuration and copied orders; (token, paths)."""
    token = await create_user(mesh, "bench")
    async with aiohttp.ClientSession() as session:
        api = RestClient(session, mesh.gateway_url, token)
        sim = SimAdmin(session, mesh.venue_urls["binance"])
        leader_id, leader_keys = await register_keys(
            api, sim, "binance", "leader", {"USDT": "1000000"}
        )
        targets = [
            (await register_keys(api, sim, "binance", f"follower {n}", {"USDT": "100000"}))[0]
            for n in range(followers)
        ]
        started = await api.call(
            "POST",
            "/start",
            {
                "source_exchange_id": leader_id,
                "target_exchange_ids": targets,
                "copy_settings": {"allow_quote_equivalence": True},
                "risk_limits": {"max_orders_per_minute": 1000},
                "sync_settings": {"sync_interval": 1, "enable_websocket": True},
            },
        )
        config_id = started["config_id"]
        exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
        try:
            for index in range(orders):
                await exchange.create_order(
                    "BTC/USDT", "market", "buy" if index % 2 == 0 else "sell", 0.02
                )
        finally:
            await exchange.close()
        await wait_for_copies(api, config_id, expected_signals=orders, timeout=120)
        # The reads must answer 200 before the load starts.
        paths = [
            f"/status/{config_id}",
            f"/orders/{config_id}",
            "/configs",
            "/exchanges",
            f"/status/{config_id}",
            "/supported-exchanges",
            f"/orders/{config_id}",
            "/leaders",
            f"/reconciliation-history/{config_id}",
        ]
        for path in sorted(set(paths)):
            await api.call("GET", path)
    return token, paths


@dataclass
class Step:
    rate: int
    seconds: float
    achieved: float
    count: int
    p50: float
    p99: float
    max: float
    errors: dict[str, int]
    cpu: dict[str, float]
    load_cpu: float
    p99_by_endpoint: dict[str, float]


def _summarise(
    rate: int,
    seconds: float,
    parts: list[StepResult],
    cpu: dict[str, float],
    load_cpu: float,
    names: list[str],
) -> Step:
    latencies = [v for p in parts for v in p.latencies_ms]
    errors: dict[str, int] = {}
    for part in parts:
        for key, n in part.errors.items():
            errors[key] = errors.get(key, 0) + n
    span_ms = max((p.last_ms for p in parts), default=0.0)
    achieved = len(latencies) / (span_ms / 1000) if span_ms > 0 else 0.0
    by_name: dict[str, list[float]] = {}
    for part in parts:
        for which, values in part.by_request.items():
            by_name.setdefault(names[which], []).extend(values)
    return Step(
        rate,
        seconds,
        achieved,
        len(latencies),
        percentile(latencies, 0.5) if latencies else 0.0,
        percentile(latencies, 0.99) if latencies else 0.0,
        max(latencies, default=0.0),
        errors,
        cpu,
        load_cpu,
        {name: percentile(values, 0.99) for name, values in sorted(by_name.items())},
    )


def run(args: argparse.Namespace) -> tuple[list[Step], list[str]]:
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    env: dict[str, str] = {
        "GATEWAY_RATE_LIMIT_PER_SECOND": "0",
        "GATEWAY_IP_RATE_LIMIT_PER_SECOND": "0",
        "GATEWAY_WORKERS": str(args.gateway_workers),
    }
    with tempfile.TemporaryDirectory(prefix="copytrade-bench-") as tmp:
        mesh = Mesh(
            pathlib.Path(tmp),
            ports=Ports.free(),
            log_level="WARNING",
            component_env={"gateway": env},
        )
        mesh.start()
        try:
            asyncio.run(mesh.wait_ready())
            token, paths = asyncio.run(_seed(mesh, args.followers, args.orders))
            if args.endpoints:
                wanted = {e.strip() for e in args.endpoints.split(",")}
                paths = [path for path in paths if path.split("/")[1] in wanted]
                if not paths:
                    raise SystemExit(f"--endpoints names none of {sorted(_PATH_NAMES)}")
            pids = mesh_pids(mesh)
            if args.gateway_workers > 1:  # their CPU, not their supervisor's (gateway/workers.py)
                pids.update(
                    (f"gateway.w{n}", pid) for n, pid in enumerate(_children(pids["gateway"]))
                )
            host, port = "127.0.0.1", int(mesh.gateway_url.rsplit(":", 1)[1])
            raw = _raw_requests(host, port, token, paths)
            # The load processes (spawned, so started apart from this one) each get a step's
            # rate share and the wall-clock instant it starts at; a step starts once every
            # process has sent back the previous one's results (its requests all answered).
            ctx = multiprocessing.get_context("spawn")
            procs, pipes = [], []
            for index in range(args.clients):
                parent, child = ctx.Pipe()
                proc = ctx.Process(
                    target=_load_process,
                    args=(host, port, raw, args.connections, index / args.clients, child),
                )
                proc.start()
                procs.append(proc)
                pipes.append(parent)
            results: list[Step] = []
            profile_lines: list[str] = []
            profiled_rate = args.profile_rate or rates[len(rates) // 2]
            names = [path.split("/")[1] for path in paths]
            try:
                for rate in rates:
                    start = time.time() + STEP_LEAD
                    for pipe in pipes:
                        pipe.send((rate / args.clients, args.seconds, start))
                    meter = CpuMeter(pids)
                    load_meter = CpuMeter({str(p.pid): p.pid for p in procs if p.pid})
                    time.sleep(max(0.0, start - time.time() - 0.05))
                    meter.start()
                    load_meter.start()
                    profiler = None
                    if args.profile and rate == profiled_rate:
                        out = pathlib.Path(args.profile_dir or tmp)
                        out.mkdir(parents=True, exist_ok=True)
                        profiler = Profiler(pids, out)
                        profiler.start(args.seconds)
                    parts = [pipe.recv() for pipe in pipes]
                    cpu = meter.stop()
                    load_cpu = sum(load_meter.stop().values())
                    if profiler is not None:
                        profile_lines = [
                            f"at {rate} req/s: {line}" for line in profiler.report(args.seconds)
                        ]
                    step = _summarise(rate, args.seconds, parts, cpu, load_cpu, names)
                    results.append(step)
                    print(_step_line(step), flush=True)
                    print("  " + _endpoint_line(step), flush=True)
                    time.sleep(SETTLE)
            finally:
                for pipe in pipes:
                    with contextlib.suppress(OSError):
                        pipe.send(None)
                for proc in procs:
                    proc.join(timeout=30)
                    if proc.is_alive():
                        proc.kill()
            return results, profile_lines
        finally:
            mesh.stop()


def _children(pid: int) -> list[int]:
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return sorted(found)


def _cpu_phrase(step: Step) -> str:
    if not step.count:
        return "CPU per request: -"
    parts = [
        f"{name} {1000 * seconds / step.count:.2f}"
        for name, seconds in sorted(step.cpu.items(), key=lambda kv: -kv[1])
        if seconds > 0.005
    ]
    parts.append(f"load generator {1000 * step.load_cpu / step.count:.2f}")
    return "CPU per request (ms): " + ", ".join(parts)


def _step_line(step: Step) -> str:
    errors = sum(step.errors.values())
    kinds = ", ".join(f"{k} x{v}" for k, v in sorted(step.errors.items()))
    detail = f" ({kinds})" if errors else ""
    return (
        f"{step.rate} req/s: achieved {step.achieved:.0f} req/s ({step.count} in"
        f" {step.seconds:.0f} s), p50 {step.p50:.1f} ms, p99 {step.p99:.1f} ms,"
        f" max {step.max:.1f} ms, errors {errors}{detail}; {_cpu_phrase(step)}"
    )


def _endpoint_line(step: Step) -> str:
    return f"p99 by endpoint at {step.rate} req/s (ms): " + ", ".join(
        f"{name} {p99:.1f}" for name, p99 in step.p99_by_endpoint.items()
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="200,500,1000,1500,2000", help="req/s per step")
    parser.add_argument("--seconds", type=float, default=5.0, help="each step's length")
    parser.add_argument("--clients", type=int, default=2, help="load generator processes")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive, per process")
    parser.add_argument("--followers", type=int, default=5)
    parser.add_argument("--orders", type=int, default=20, help="leader orders copied first")
    parser.add_argument("--profile", action="store_true", help="py-spy on every mesh process")
    parser.add_argument(
        "--profile-rate", type=int, default=0, help="the step profiled (default: the middle one)"
    )
    parser.add_argument(
        "--profile-dir", default="", help="keep py-spy's raw stacks (<process>.folded) here"
    )
    parser.add_argument(
        "--endpoints",
        default="",
        help="comma-separated subset of: " + ", ".join(_PATH_NAMES) + " (default: all)",
    )
    parser.add_argument(
        "--gateway-workers", type=int, default=1, help="GATEWAY_WORKERS of the gateway"
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    if args.profile:
        py_spy()
    started = time.monotonic()
    steps, profile = run(args)
    within = [s.rate for s in steps if s.p99 <= P99_BOUND_MS and not s.errors and s.count]
    best = max(within, default=0)
    at_target = next((s for s in steps if s.rate == TARGET_RATE), None)
    line = (
        f"rest_load open-loop GETs over {args.endpoints or 'all ' + str(len(_PATH_NAMES))}"
        f" read endpoints, rate limits"
        f" lifted, {args.gateway_workers} gateway worker(s), load from {args.clients} processes x"
        f" {args.connections} keep-alive connections (raw HTTP/1.1 on asyncio), {args.seconds:.0f}"
        f" s per step: " + "; ".join(_step_line(s) for s in steps)
    )
    line += f"; highest rate with p99 <= {P99_BOUND_MS:.0f} ms: {best} req/s"
    if at_target is not None:
        met = at_target.p99 <= TARGET_P99_MS and not at_target.errors
        line += f" (target p99 <= {TARGET_P99_MS:.0f} ms at {TARGET_RATE} req/s: "
        line += f"{'met' if met else 'not met'}, {at_target.p99:.1f} ms)"
    if at_target is not None:
        line += "; " + _endpoint_line(at_target)
    if profile:
        line += " (py-spy: " + "; ".join(profile) + ")"
    print(f"highest rate with p99 <= {P99_BOUND_MS:.0f} ms: {best} req/s")
    for p in profile:
        print(p)
    print(f"ran in {time.monotonic() - started:.1f} s on {machine()}")
    if not args.no_record:
        append_row(line)
    return 0


_PATH_NAMES = (
    "status",
    "orders",
    "configs",
    "exchanges",
    "supported-exchanges",
    "leaders",
    "reconciliation-history",
)


if __name__ == "__main__":
    sys.exit(main())
