"""Broker throughput: orders a second through the broker's PlaceOrder RPC, per venue.

Two runs against the Binance, Coinbase and Kraken emulators (in this process, like the broker):

* limits off (the broker's ``BROKER_RATE_LIMITS=off`` and the emulators' limits off): how fast
  the broker itself places orders, ``--orders`` market orders from ``--callers`` concurrent
  callers spread over ``--accounts`` accounts;
* limits on (ours and the emulators'): callers keep sending for ``--seconds``, retrying after the
  RetryInfo of a RESOURCE_EXHAUSTED; the broker must stay inside every venue budget, so the
  emulators must have refused nothing (their 429/418 and lockouts, counted in their limiters).

    .venv/bin/python bench/broker_throughput.py --orders 300 --seconds 4
    .venv/bin/python bench/broker_throughput.py --orders 300 --seconds 4 --no-record  # dev run

Prints the figures, with the CPU this process used per order placed (benchlib.CpuMeter: the
broker, the emulators and the callers all run in it, so it bounds the broker's own), and
appends a row per run to bench/RESULTS.md with the machine it ran on unless ``--no-record``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import aiohttp
import grpc

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "gen"), str(ROOT)]

from google.type import decimal_pb2  # noqa: E402 - after the sys.path setup
from grpc_status import rpc_status  # noqa: E402 - after the sys.path setup

from bench.benchlib import CpuMeter, append_row, machine  # noqa: E402 - after the sys.path setup
from broker_svc.access import RULES  # noqa: E402 - after the sys.path setup
from broker_svc.config import Settings  # noqa: E402 - after the sys.path setup
from broker_svc.server import build_server  # noqa: E402 - after the sys.path setup
from copytrade.broker.v1 import broker_service_pb2 as pb  # noqa: E402 - after the sys.path setup
from copytrade.broker.v1 import broker_service_pb2_grpc as pb_grpc  # noqa: E402 - after the sys.path setup
from copytrade.common.v1 import types_pb2  # noqa: E402 - after the sys.path setup
from exchange_sim import start_venues  # noqa: E402 - after the sys.path setup
from meshkit.testing import AuthorizedStub, as_user, mesh_trust  # noqa: E402 - after the sys.path setup

VENUES = ("binance", "coinbase", "kraken")
SYMBOL = {"binance": "BTC/USDT", "coinbase": "BTC/USD", "kraken": "BTC/USD"}
QUOTE = {"binance": "USDT", "coinbase": "USD", "kraken": "USD"}
USER_ID = "0b9f3f6e-bbbb-4c1e-9b0a-00000000b0b0"


@dataclass
class Refusals:
    """What each emulator's limiter refused (429, 418, Kraken lockouts)."""

    by_venue: dict[str, int] = field(default_factory=dict)

    def watch(self, venue: str, limiter: Any) -> None:
        self.by_venue.setdefault(venue, 0)
        for name in dir(limiter):
            if name.startswith("admit") and callable(getattr(limiter, name)):
                setattr(limiter, name, self._counted(venue, getattr(limiter, name)))

    def _counted(self, venue: str, admit: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                return admit(*args, **kwargs)
            except Exception:
                self.by_venue[venue] += 1
                raise

        return counted


@dataclass
class Figures:
    placed: int = 0
    exhausted: int = 0
    failed: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.placed / self.seconds if self.seconds else 0.0


FENCE: pb.Fence | None = None
"""The lease every order is sent under (``--fenced``: as an engine replica sends), else none."""


def _order(exchange_id: str, venue: str, cid: str) -> pb.PlaceOrderRequest:
    return pb.PlaceOrderRequest(
        exchange_id=exchange_id,
        client_order_id=cid,
        symbol=SYMBOL[venue],
        side=types_pb2.ORDER_SIDE_BUY,
        type=types_pb2.ORDER_TYPE_MARKET,
        quantity=decimal_pb2.Decimal(value="0.001"),
        fence=FENCE,
    )


def _retry_after(error: grpc.aio.AioRpcError) -> float:
    from google.rpc import error_details_pb2

    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return 1.0


async def _register(
    stub: pb_grpc.BrokerServiceAsyncStub, session: aiohttp.ClientSession, url: str, venue: str
) -> str:
    async with session.post(
        url + "/_sim/accounts", json={"balances": {QUOTE[venue]: "100000000"}}
    ) as response:
        made = await response.json()
    registered = await stub.RegisterExchange(
        pb.RegisterExchangeRequest(
            exchange_name=venue, api_key=made["api_key"], api_secret=made["api_secret"]
        ),
        metadata=as_user(USER_ID),
    )
    return registered.exchange.exchange_id


async def _caller(
    stub: pb_grpc.BrokerServiceAsyncStub,
    exchange_id: str,
    venue: str,
    figures: Figures,
    *,
    budget: list[int] | None,
    until: float | None,
) -> None:
    while True:
        if budget is not None:
            if budget[0] <= 0:
                return
            budget[0] -= 1
        if until is not None and time.monotonic() >= until:
            return
        cid = str(uuid.uuid4())
        while True:
            try:
                await stub.PlaceOrder(_order(exchange_id, venue, cid), timeout=30)
                figures.placed += 1
                break
            except grpc.aio.AioRpcError as e:
                if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    figures.failed += 1
                    break
                figures.exhausted += 1
                wait = _retry_after(e)
                if until is not None and time.monotonic() + wait >= until:
                    return
                await asyncio.sleep(wait)


async def run(
    limits: bool, orders: int, seconds: float, accounts: int, callers: int
) -> dict[str, Any]:
    """Run one mode against the three venues; return figures per venue and the refusals."""
    cluster = await start_venues(VENUES, rate_limits=limits)
    refusals = Refusals()
    for venue in VENUES:
        refusals.watch(venue, cluster.states[venue].limiter)
    with tempfile.TemporaryDirectory(prefix="copytrade-bench-") as tmp:
        settings = Settings(
            encryption_key=os.urandom(32),
            grpc_port=0,
            metrics_port=0,
            database_url=f"sqlite:///{tmp}/broker.db",
            venue_urls=dict(cluster.urls),
            rate_limits=limits,
            rate_limit_max_wait_ms=2000,
            log_level="WARNING",
            **mesh_trust("broker"),
        )
        running, release = await build_server(settings)
        # Over mTLS through the broker's access table: registration as the gateway, orders as
        # the engine.
        authorized = AuthorizedStub(pb_grpc.BrokerServiceStub, f"127.0.0.1:{running.port}", RULES)
        # It hands out the methods of BrokerServiceStub on grpc.aio channels: the async stub's.
        stub = cast("pb_grpc.BrokerServiceAsyncStub", authorized)  # a type of the stubs only
        results: dict[str, Figures] = {}
        try:
            async with aiohttp.ClientSession() as session:
                for venue in VENUES:
                    ids = [
                        await _register(stub, session, cluster.urls[venue], venue)
                        for _ in range(accounts)
                    ]
                    figures = Figures()
                    budget = None if limits else [orders]
                    until = time.monotonic() + seconds if limits else None
                    meter = CpuMeter({"process": os.getpid()})
                    meter.start()
                    started = time.monotonic()
                    await asyncio.gather(
                        *(
                            _caller(
                                stub,
                                ids[index % accounts],
                                venue,
                                figures,
                                budget=budget,
                                until=until,
                            )
                            for index in range(callers)
                        )
                    )
                    figures.seconds = time.monotonic() - started
                    figures.cpu_seconds = meter.stop()["process"]
                    results[venue] = figures
        finally:
            await authorized.close()
            await running.stop(grace=None)
            await release()
            await cluster.close()
    return {"figures": results, "refusals": dict(refusals.by_venue)}


def _line(limits: bool, accounts: int, callers: int, outcome: dict[str, Any]) -> str:
    parts = []
    for venue, figures in outcome["figures"].items():
        part = f"{venue} {figures.rate:.1f} orders/s ({figures.placed} in {figures.seconds:.1f} s"
        if figures.placed:
            part += f", CPU {1000 * figures.cpu_seconds / figures.placed:.2f} ms per order"
        if limits:
            part += (
                f", {figures.exhausted} RESOURCE_EXHAUSTED retried,"
                f" venue 429/418: {outcome['refusals'][venue]}"
            )
        if figures.failed:
            part += f", {figures.failed} failed"
        parts.append(part + ")")
    mode = "limits on (ours and the venues')" if limits else "limits off"
    if FENCE is not None:
        mode += ", under a fence"
    return (
        f"broker_throughput PlaceOrder, {mode}, {accounts} accounts x {callers} callers: "
        + "; ".join(parts)
    )


def main() -> int:
    """Run both modes and record their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300, help="orders per venue, limits off")
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="run length per venue, limits on"
    )
    parser.add_argument("--accounts", type=int, default=2, help="accounts per venue")
    parser.add_argument("--callers", type=int, default=8, help="concurrent callers per venue")
    parser.add_argument(
        "--fenced", action="store_true", help="send every order under a lease, as the engine does"
    )
    parser.add_argument(
        "--no-record", action="store_true", help="print the figures, add no row to RESULTS.md"
    )
    args = parser.parse_args()
    if args.fenced:
        global FENCE
        FENCE = pb.Fence(key="engine:bench-source", token=1)
    started = time.monotonic()
    lines = []
    for limits in (False, True):
        outcome = asyncio.run(run(limits, args.orders, args.seconds, args.accounts, args.callers))
        line = _line(limits, args.accounts, args.callers, outcome)
        print(line, flush=True)
        lines.append(line)
        if limits and any(outcome["refusals"].values()):
            print("the venues refused requests: the broker broke a limit", file=sys.stderr)
    print(f"ran in {time.monotonic() - started:.1f} s on {machine()}")
    if not args.no_record:
        for line in lines:
            append_row(
                line
                + " (CPU: of the one process holding the broker, the emulators and the callers)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
