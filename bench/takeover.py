"""Takeover time: an engine replica killed with -9 mid fan-out, to the next copy of its leaders.

Three meshes on PostgreSQL, one after the other, each with leaders on simulated Binance and
followers over Binance, Coinbase and Kraken (the replica chaos tier's book,
``tests/chaos/replica_harness.py``):

* **replicas**: 3 engines, 2 syncs, 2 brokers. An engine replica holding a leader is killed
  while that leader's fan-out is under way; the survivors take its leaders over.
* **separate hosts**: the same, each replica declaring a host of its own (``REPLICA_HOST``), as
  pods on several machines: the dead engine's leases move only when they expire (the TTL);
* **baseline**: one engine, killed the same way and restarted at once (what a single engine
  under a process supervisor gets).

Two figures, both times, on the leaders the killed engine held:

* **takeover**: from the kill to the first order another engine (or the restarted one) sends
  for them, under its new lease token (its intents' ``sent_token``): how long copying stalls;
* **later fill**: from the kill to the first follower order at a venue (the emulator's
  ``created_ms``) copying a leader fill made after the kill; it also waits for the backlog of
  fills the leaders made meanwhile, copied in order before it.

Each run is also checked with the chaos invariants (0 duplicates, 0 missing, 0 unresolved).

    .venv/bin/python bench/takeover.py                  # 3 kills each, LEASE_TTL_MS 3000
    .venv/bin/python bench/takeover.py --runs 10 --lease-ttl-ms 2000

Needs PostgreSQL (``--postgres``, default ``$COPYTRADE_TEST_POSTGRES_URL``). Prints p50 and
max of each, and appends a row to bench/RESULTS.md with the machine it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import sys
import tempfile
import time

import aiohttp

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The replica chaos tier's harness is the book and the scenario driver measured here.
sys.path[:0] = [str(ROOT / "gen"), str(ROOT), str(ROOT / "tests" / "chaos")]

# tests/ is outside mypy's files (pyproject): these two imports are untyped here.
from chaos_mesh import (  # type: ignore[import-not-found]  # noqa: E402 - after the sys.path setup
    CHAOS_ENV,
    ChaosMesh,
    create_schema,
    drop_schema,
)
from replica_harness import (  # type: ignore[import-not-found]  # noqa: E402 - after the sys.path setup
    REPLICAS,
    Book,
    ScenarioResult,
    drive,
    takeover_summary,
)

from bench.benchlib import append_row, machine  # noqa: E402 - after the sys.path setup


def environment(
    lease_ttl_ms: int, replicas: dict[str, int] | None, separate_hosts: bool
) -> dict[str, dict[str, str]]:
    """Return the chaos environment with ``LEASE_TTL_MS`` for the replicated services.

    With ``separate_hosts`` each replica declares a host of its own (``REPLICA_HOST``), as pods
    on several machines would: a dead replica's leases then move only when they expire.
    """
    env = {name: dict(values) for name, values in CHAOS_ENV.items()}
    for service in REPLICAS:
        env.setdefault(service, {})["LEASE_TTL_MS"] = str(lease_ttl_ms)
        if separate_hosts:
            for index in range(1, (replicas or {}).get(service, 1) + 1):
                env[f"{service}-{index}"] = {"REPLICA_HOST": f"host-of-{service}-{index}"}
    return env


async def measure(
    postgres: str,
    replicas: dict[str, int] | None,
    runs: int,
    leaders: int,
    followers: int,
    lease_ttl_ms: int,
    separate_hosts: bool = False,
) -> list[ScenarioResult]:
    """Start a mesh, kill an engine ``runs`` times, return each run's result."""
    schema, url = await create_schema(postgres)
    folder = pathlib.Path(tempfile.mkdtemp(prefix="takeover-"))
    mesh = ChaosMesh(
        folder,
        backend="postgresql",
        shared_database_url=url,
        extra_env=environment(lease_ttl_ms, replicas, separate_hosts),
        replicas=replicas,
        log_level="WARNING",
    )
    results: list[ScenarioResult] = []
    try:
        mesh.start()
        await mesh.wait_ready(timeout=120)
        async with aiohttp.ClientSession() as session:
            book = Book(mesh, session)
            await book.setup(1, leaders=leaders, followers=followers)
            for _ in range(100):
                if len(await book.holders("engine")) == len(book.leaders):
                    break
                await asyncio.sleep(0.2)
            for run in range(runs):
                result = await drive(
                    book,
                    "takeover",
                    "engine",
                    "kill",
                    1000 + run,
                    restart_at_once=replicas is None,
                )
                verdict = "ok" if result.ok else f"{len(result.findings.violations)} violations"
                takeover = "n/a" if result.takeover_s is None else f"{result.takeover_s:.2f} s"
                later = "n/a" if result.first_copy_s is None else f"{result.first_copy_s:.2f} s"
                print(
                    f"  run {run + 1}: {result.target} killed, takeover {takeover},"
                    f" first copy of a later fill {later} ({verdict})"
                )
                if not result.ok:
                    print(result.report(str(folder / "logs")))
                results.append(result)
    finally:
        await asyncio.to_thread(mesh.stop, 5)
        await drop_schema(postgres, schema)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run both meshes, print the figures and append a row to bench/RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="kills per mesh (default 3)")
    parser.add_argument("--leaders", type=int, default=3)
    parser.add_argument("--followers", type=int, default=30)
    parser.add_argument("--lease-ttl-ms", type=int, default=3000, help="LEASE_TTL_MS (3000)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("COPYTRADE_TEST_POSTGRES_URL", ""),
        help="a PostgreSQL URL (one fresh schema per mesh)",
    )
    args = parser.parse_args(argv)
    if not args.postgres:
        parser.error("replicas need PostgreSQL: --postgres or COPYTRADE_TEST_POSTGRES_URL")
    started = time.monotonic()
    common = (args.runs, args.leaders, args.followers, args.lease_ttl_ms)
    print(f"replicas {REPLICAS} on one host, LEASE_TTL_MS {args.lease_ttl_ms}:")
    replicated = asyncio.run(measure(args.postgres, REPLICAS, *common))
    print(f"replicas {REPLICAS} declaring separate hosts (pods on several machines):")
    separate = asyncio.run(measure(args.postgres, REPLICAS, *common, separate_hosts=True))
    print("baseline, one engine restarted at once:")
    baseline = asyncio.run(measure(args.postgres, None, *common))
    bad = sum(not r.ok for r in replicated + separate + baseline)

    def figures(results: list[ScenarioResult]) -> str:
        return (
            f"takeover {takeover_summary(r.takeover_s for r in results)}, first copy of a"
            f" later fill {takeover_summary(r.first_copy_s for r in results)}"
            f" ({len(results)} kills)"
        )

    line = (
        f"takeover (kill -9 of an engine mid fan-out to the taker's first send),"
        f" LEASE_TTL_MS {args.lease_ttl_ms}, {args.leaders} leaders x {args.followers} followers"
        f" on binance/coinbase/kraken: 3 engines/2 syncs/2 brokers on one host (the dead"
        f" process is seen gone) {figures(replicated)}; the same declaring separate hosts"
        f" (its leases expire) {figures(separate)}; baseline, one engine restarted at once"
        f" {figures(baseline)}; runs breaking an invariant: {bad}"
    )
    print(line)
    print(f"ran in {time.monotonic() - started:.1f} s on {machine()}")
    append_row(line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
