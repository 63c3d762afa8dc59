"""Reconciliation at scale: one configuration's window of N copies reconciled through REST.

What is seeded, and how (the mesh's own processes then read it through their normal code):

* the leader's fills: rows of sync's signal log (``signals``), bulk SQL into sync's SQLite
  database while sync is stopped;
* the copies: one FILLED intent per (fill, follower account) in the engine's ``order_intents``,
  bulk SQL into the engine's database while the engine is stopped (its inbox is moved past the
  seeded fills, so nothing is copied again when it restarts);
* the followers' venue records: a Binance emulator run by this script (the mesh's broker is
  pointed at it with ``VENUE_URLS``), whose accounts and orders are made in-process through
  the emulator's own matching engine before it serves: one filled market order (and its trade)
  per copy, with the copy's client order id. (Its order listing then returns the ended orders
  themselves instead of a copy of each per page served: the emulator's own cost, not the
  mesh's, and quadratic in an account's orders.)

Then one reconciliation, the RPC ``POST /reconcile`` makes, called as the gateway calls it (its
mesh identity and the user's signed assertion; the gateway's own deadline, at most 10 minutes,
would cut a large window on a busy machine) (recon reads the configuration and copies from
the engine, the signals from sync, each follower's orders, trades and balances from the broker,
which reads the emulator through ccxt) and the figures: wall time, items/s, the report's counts
(every item must be ``matched``), the peak RSS of every process (sampled every 50 ms), CPU per
copy of each process (:class:`benchlib.CpuMeter`) and, with ``--profile``, py-spy's hottest
code per process.

    .venv/bin/python bench/recon_scale.py --copies 20000 --no-record   # a development run
    .venv/bin/python bench/recon_scale.py                               # 1,000,000 copies
    .venv/bin/python bench/recon_scale.py --profile

A configuration copies to at most 20 accounts, so N copies are N/20 leader fills at each of
20 follower accounts (``--followers`` changes that).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
from google.protobuf import json_format

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "gen"), str(ROOT)]

from bench.benchlib import (  # noqa: E402 - after the sys.path setup
    CpuMeter,
    Profiler,
    append_row,
    mesh_pids,
    py_spy,
    rss_mb,
)
from meshctl.api import RestClient  # noqa: E402 - after the sys.path setup
from meshctl.launcher import Mesh, Ports, database_url, free_ports  # noqa: E402 - after the sys.path setup

MAX_TARGETS = 20
"""The follower accounts one copy configuration may name (engine_svc.domain.settings)."""
SYMBOL = "BTC/USDT"
QUANTITY = Decimal("0.001")
NAMESPACE = uuid.UUID("6f0d5d1c-8a3e-5b57-9a52-2f1d3f2a7c11")
"""The namespace of the seeded copies' client order ids (UUIDv5, the mesh's form)."""
BUDGET_MS = 3_000_000
"""Recon's time budget for the bench (the default is 5 s)."""


def client_order_id(target: int, index: int) -> str:
    """The seeded copy of fill ``index`` at follower ``target``: its client order id."""
    return str(uuid.uuid5(NAMESPACE, f"recon-scale:{target}:{index}"))


def side_of(index: int) -> str:
    """Fills alternate buy and sell, so the followers' positions stay small."""
    return "buy" if index % 2 == 0 else "sell"


# -- the emulator process ------------------------------------------------------------------


async def serve_venue(params: dict[str, Any], port: int) -> None:
    """Run a Binance emulator holding the seeded accounts and orders, until SIGTERM."""
    from exchange_sim.core.orders import OrderRequest, OrderType, Side
    from exchange_sim.server import start_venues

    cluster = await start_venues(("binance",), ports={"binance": port})
    engine = cluster.states["binance"].engine
    key, secret = params["leader"]
    engine.create_account(key, secret, balances={"USDT": Decimal(1_000_000)})
    started = time.monotonic()
    for target, (key, secret) in enumerate(params["followers"]):
        engine.create_account(
            key, secret, balances={"USDT": Decimal(100_000_000), "BTC": Decimal(1_000)}
        )
        for index in range(params["signals"]):
            engine.place_order(
                key,
                OrderRequest(
                    symbol=SYMBOL,
                    side=Side(side_of(index).upper()),
                    type=OrderType.MARKET,
                    client_order_id=client_order_id(target, index),
                    quantity=QUANTITY,
                ),
            )
    # Every seeded order has ended (filled): listing them needs no snapshot copy of each per
    # page (the emulator copies every order of the account for each page it serves).
    history = engine._orders_by_account  # the bench's own seeded emulator
    engine.orders = lambda api_key, symbol=None: [  # type: ignore[method-assign]
        o for o in history.get(api_key, []) if symbol is None or o.symbol == symbol
    ]
    print(f"ready {time.monotonic() - started:.1f}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await cluster.close()


# -- seeding the services' stores -----------------------------------------------------------


def _sqlite_path(url: str) -> str:
    # meshctl.launcher.database_url gives sqlite:///<path> for a service's own SQLite file.
    return url.split("sqlite:///", 1)[1] if url.startswith("sqlite:///") else url


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seed_stores(
    data_dir: pathlib.Path,
    config_id: str,
    source_id: str,
    targets: list[str],
    signals: int,
    first_event: datetime,
) -> tuple[int, int]:
    """Bulk-insert the leader's fills (sync) and their copies (engine); return the sequences."""
    sync = sqlite3.connect(_sqlite_path(database_url(data_dir, "sync", None)))
    engine = sqlite3.connect(_sqlite_path(database_url(data_dir, "engine", None)))
    try:
        base = sync.execute(
            "SELECT COALESCE(MAX(sequence), 0) FROM signals WHERE source_id = ?", (source_id,)
        ).fetchone()[0]
        now = datetime.now(UTC)
        log_time = _iso(now)
        rows = []
        for index in range(signals):
            event = _iso(first_event + timedelta(microseconds=index))
            rows.append(
                (
                    source_id,
                    base + 1 + index,
                    f"recon-scale-{base + 1 + index}",
                    SYMBOL,
                    side_of(index),
                    str(QUANTITY),
                    "60000",
                    "market",
                    event,
                    log_time,
                    "binance",
                )
            )
        sync.executemany(
            "INSERT INTO signals (source_id, sequence, signal_id, symbol, side, quantity, price,"
            " order_type, event_time, log_time, exchange_name) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        sync.commit()
        columns = (
            "intent_id, config_id, source_id, sequence, signal_id, target_exchange_id, leg,"
            " client_order_id, symbol, side, type, quantity, price, state, reason,"
            " venue_order_id, filled_quantity, average_price, leader_quantity, leader_price,"
            " leader_event_time, latency_ms, not_found_count, attempts, created_at, updated_at,"
            " last_sent_at"
        )
        insert = f"INSERT INTO order_intents ({columns}) VALUES ({', '.join('?' * 27)})"
        batch: list[tuple[Any, ...]] = []
        for index in range(signals):
            sequence = base + 1 + index
            event = _iso(first_event + timedelta(microseconds=index))
            for target, exchange_id in enumerate(targets):
                created = _iso(now + timedelta(microseconds=index * len(targets) + target))
                batch.append(
                    (
                        str(uuid.uuid4()),
                        config_id,
                        source_id,
                        sequence,
                        f"recon-scale-{sequence}",
                        exchange_id,
                        0,
                        client_order_id(target, index),
                        SYMBOL,
                        side_of(index),
                        "market",
                        str(QUANTITY),
                        None,
                        "FILLED",
                        "",
                        "",
                        str(QUANTITY),
                        "60000",
                        str(QUANTITY),
                        "60000",
                        event,
                        5.0,
                        0,
                        1,
                        created,
                        created,
                        created,
                    )
                )
            if len(batch) >= 50_000:
                engine.executemany(insert, batch)
                batch.clear()
        if batch:
            engine.executemany(insert, batch)
        last = base + signals
        # The engine resumes a source after the highest sequence of its inbox: past the seed.
        engine.execute(
            "INSERT INTO signal_inbox (source_id, sequence, signal_id, signal, received_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (source_id, last, f"recon-scale-{last}", "{}", log_time),
        )
        engine.execute(
            "UPDATE copy_trading_configs SET last_sequence = ? WHERE id = ?", (last, config_id)
        )
        engine.commit()
        return base + 1, last
    finally:
        sync.close()
        engine.close()


# -- the run -------------------------------------------------------------------------------


async def _create_user(mesh: Mesh) -> tuple[str, str]:
    from gateway.users import add_user
    from meshkit import db

    database = await db.connect(mesh.gateway_database_url())
    try:
        user_id, token = await add_user(database, "bench", "pro")
    finally:
        await database.close()
    return user_id, token


async def _reconcile_as_gateway(
    mesh: Mesh, user_id: str, config_id: str, start_time: datetime
) -> Any:
    # The gateway's own call (its mesh identity and the user's assertion, signed with the
    # mesh's key): the same RPC POST /reconcile makes, without the gateway's deadline
    # (GATEWAY_TIMEOUT_MS, at most 10 minutes), which a large window on a busy machine passes.
    from copytrade.recon.v1 import recon_service_pb2 as recon_pb
    from copytrade.recon.v1 import recon_service_pb2_grpc as recon_grpc
    from meshctl.launcher import certs_dir, tls_settings
    from meshkit import clients, pki
    from meshkit.codec import timestamp_to_proto
    from meshkit.identity import ASSERTION_HEADER, AssertionSigner

    signer = AssertionSigner.from_file(pki.signing_key_path(certs_dir(mesh.data_dir)))
    channel = clients.channel(
        mesh.service_address("recon"), tls=tls_settings(mesh.data_dir, "gateway")
    )
    try:
        return await recon_grpc.ReconServiceStub(channel).Reconcile(
            recon_pb.ReconcileRequest(
                config_id=config_id, start_time=timestamp_to_proto(start_time)
            ),
            metadata=((ASSERTION_HEADER, signer.sign(user_id, "pro")),),
            timeout=BUDGET_MS / 1000 + 60,
        )
    finally:
        await channel.close()


class RssSampler:
    """The peak resident memory of each process, sampled every ``interval`` seconds."""

    def __init__(self, pids: dict[str, int], interval: float = 0.05) -> None:
        self.pids = pids
        self.interval = interval
        self.peak: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_mb(pid))
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return self.peak


async def run(copies: int, followers: int, profile: bool, keep: bool) -> dict[str, Any]:
    """Seed ``copies`` copies and reconcile them once; return the figures."""
    followers = max(1, min(followers, MAX_TARGETS, copies))
    signals = max(1, copies // followers)
    copies = signals * followers
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="copytrade-recon-scale-"))
    params: dict[str, Any] = {
        "leader": [secrets.token_hex(16), secrets.token_hex(32)],
        "followers": [[secrets.token_hex(16), secrets.token_hex(32)] for _ in range(followers)],
        "signals": signals,
    }
    params_path = tmp / "venue.json"
    params_path.write_text(json.dumps(params))
    ports = Ports.free()
    taken = [ports.gateway, ports.broker, ports.engine, ports.sync, ports.recon]
    venue_port = free_ports(1, exclude=[*taken, *ports.venues.values()])[0]
    started = time.monotonic()
    venue = subprocess.Popen(  # noqa: ASYNC220 - once, before anything is timed
        [sys.executable, __file__, "--serve-venue", str(params_path), "--port", str(venue_port)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    mesh: Mesh | None = None
    try:
        assert venue.stdout is not None
        line = await asyncio.to_thread(venue.stdout.readline)
        if not line.startswith("ready"):
            raise SystemExit(f"the emulator did not start: {line!r}")
        venue_seconds = time.monotonic() - started
        venue_url = f"http://127.0.0.1:{venue_port}"
        mesh = Mesh(tmp / "mesh", ports=ports, log_level="WARNING")
        urls = {**mesh.venue_urls, "binance": venue_url}
        mesh.component_env.update(
            {
                "broker": {"VENUE_URLS": ",".join(f"{k}={v}" for k, v in urls.items())},
                "recon": {"RECONCILE_BUDGET_MS": str(BUDGET_MS), "RPC_TIMEOUT_SECONDS": "600"},
            }
        )
        mesh.start()
        await mesh.wait_ready()
        user_id, token = await _create_user(mesh)
        async with aiohttp.ClientSession() as session:
            api = RestClient(session, mesh.gateway_url, token)

            async def register(keys: list[str]) -> str:
                reply = await api.call(
                    "POST",
                    "/exchanges",
                    {"exchange_name": "binance", "api_key": keys[0], "api_secret": keys[1]},
                )
                return str(reply["exchange"]["exchange_id"])

            leader_id = await register(params["leader"])
            targets = [await register(keys) for keys in params["followers"]]
            config_id = (
                await api.call(
                    "POST",
                    "/start",
                    {
                        "source_exchange_id": leader_id,
                        "target_exchange_ids": targets,
                        "copy_settings": {"allow_quote_equivalence": True},
                    },
                )
            )["config_id"]
            await asyncio.sleep(1.0)  # past the configuration's create time
            engine_db = sqlite3.connect(_sqlite_path(database_url(mesh.data_dir, "engine", None)))
            source_id, target_json = engine_db.execute(
                "SELECT source_id, target_exchange_ids FROM copy_trading_configs WHERE id = ?",
                (config_id,),
            ).fetchone()
            engine_db.close()
            order = json.loads(target_json)  # the engine's order of the targets
            assert sorted(order) == sorted(targets)
            mesh.kill("engine")
            mesh.kill("sync")
            seed_started = time.monotonic()
            first_event = datetime.now(UTC) - timedelta(microseconds=signals + 1000)
            start_time = first_event - timedelta(seconds=1)
            seed_stores(mesh.data_dir, config_id, source_id, targets, signals, first_event)
            seed_seconds = time.monotonic() - seed_started
            mesh.restart("sync")
            mesh.restart("engine")
            await mesh.wait_ready()
            pids = mesh_pids(mesh)
            pids["exchange_sim (seeded binance)"] = venue.pid
            pids.pop("exchange_sim", None)  # the mesh's own emulators stay idle
            meter = CpuMeter(pids)
            sampler = RssSampler(pids)
            before = {name: rss_mb(pid) for name, pid in pids.items()}
            profiler = Profiler(pids, tmp) if profile else None
            if profiler is not None:
                profiler.start(max(10.0, copies / 1_000))
            sampler.start()
            meter.start()
            clock = time.monotonic()
            reply = await _reconcile_as_gateway(mesh, user_id, config_id, start_time)
            wall = time.monotonic() - clock
            meter.stop()
            peak = sampler.stop()
            body = reply.SerializeToString()
            report = json_format.MessageToDict(reply, preserving_proto_field_name=True)["report"]
            odd = [i for i in report.get("items", []) if i.get("outcome") != "ITEM_OUTCOME_MATCHED"]
            for item in odd[:5]:
                print(
                    f"not matched: {item.get('kind')} {item.get('outcome')}: {item.get('detail')}"
                )
            profile_lines = profiler.report(max(10.0, copies / 1_000)) if profiler else []
            return {
                "copies": copies,
                "signals": signals,
                "followers": followers,
                "wall": wall,
                "report": {k: v for k, v in report.items() if k != "items"},
                "items_in_reply": len(report.get("items", [])),
                "reply_mb": len(body) / 1e6,
                "peak": peak,
                "before": before,
                "cpu": meter,
                "venue_seconds": venue_seconds,
                "seed_seconds": seed_seconds,
                "profile": profile_lines,
            }
    finally:
        if mesh is not None:
            mesh.stop()
        venue.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            venue.wait(timeout=30)
        if venue.poll() is None:
            venue.kill()
        if not keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    """Run the benchmark, print the figures and (unless ``--no-record``) add a row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=1_000_000)
    parser.add_argument("--followers", type=int, default=MAX_TARGETS)
    parser.add_argument("--profile", action="store_true", help="sample every process (py-spy)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument(
        "--no-record", action="store_true", help="print the figures, add no row to RESULTS.md"
    )
    parser.add_argument("--serve-venue", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_venue is not None:
        asyncio.run(serve_venue(json.loads(args.serve_venue.read_text()), args.port))
        return 0
    if args.profile:
        py_spy()
    figures = asyncio.run(run(args.copies, args.followers, args.profile, args.keep))
    report = figures["report"]
    wall = figures["wall"]
    total = int(report.get("total_count", 0))
    counts = ", ".join(
        f"{name.removesuffix('_count')} {report[name]}"
        for name in (
            "matched_count",
            "mismatched_count",
            "missing_count",
            "duplicate_count",
            "error_count",
            "extra_count",
        )
        if report.get(name)
    )
    peaks = ", ".join(
        f"{name} {figures['before'][name]:.0f}->{peak:.0f}"
        for name, peak in sorted(figures["peak"].items(), key=lambda kv: -kv[1])
    )
    line = (
        f"recon_scale: {figures['copies']:,} copies ({figures['signals']:,} leader fills x"
        f" {figures['followers']} follower accounts on a Binance emulator), one Reconcile (the RPC"
        " of POST /reconcile, called as the gateway)"
        f" in {wall:.2f} s ({total / wall:,.0f} items/s; {total:,} items: {counts or '-'};"
        f" the reply {figures['reply_mb']:.1f} MB with {figures['items_in_reply']:,} items);"
        f" RSS MB before->peak: {peaks}; {figures['cpu'].per_copy(figures['copies'])}"
        f" (seeded: sync's signals and the engine's intents by bulk SQL, the emulator's"
        f" orders through its matching engine in-process, {figures['venue_seconds']:.0f} s)"
    )
    if figures["profile"]:
        line += " (py-spy: " + "; ".join(figures["profile"]) + ")"
    print(line)
    if not args.no_record:
        append_row(line)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
