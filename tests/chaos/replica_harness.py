"""The replica tier: several engine, sync and broker replicas on one PostgreSQL database.

One mesh (:data:`REPLICAS`: 3 engines, 2 syncs, 2 brokers, ``LEASE_TTL_MS`` of
:data:`LEASE_TTL_MS`) and one *book* per module: a user, :data:`LEADERS` leaders on simulated
Binance and :data:`FOLLOWERS` followers over the three venues, each leader copied by its own
configuration (so the engines each hold some leaders). Each scenario then trades every leader,
injects one fault on one replica while a fan-out is under way (kill -9, or SIGSTOP past its
lease and SIGCONT), trades the leaders of the replica it hit once more, waits for quiet and
checks the window's fills with the invariants of :mod:`chaos_invariants` (per leader: every
fill copied once to each of its followers, nothing duplicated, nothing left open).

**Takeover time**: from the fault to the first follower order at a venue (the emulators' own
``created_ms``) that copies a leader fill made after the fault, on a leader the replica held.
It covers the lease expiry, the survivor's round, the fence, the lookups of what the dead
replica left open and the subscription. Printed and put in the summary; never asserted
(``bench/takeover.py`` reports it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
import grpc
from chaos_harness import FollowerAccount, SimAccounts
from chaos_invariants import TERMINAL, Findings, check
from chaos_mesh import CHAOS_ENV, ChaosMesh
from chaos_plan import LEADER_BALANCES, QUOTE

from copytrade.sync.v1 import sync_service_pb2 as sync_pb
from copytrade.sync.v1 import sync_service_pb2_grpc as sync_grpc
from meshctl.api import ApiError, RestClient
from meshctl.demo import create_user, leader_client
from meshctl.launcher import tls_settings
from meshkit import clients, db
from meshkit.codec import from_iso

REPLICAS = {"engine": 3, "sync": 2, "broker": 2}
LEASE_TTL_MS = 2000
"""Shorter than production's 3000, so that a run's takeovers fit CI's budget."""
LEADERS = 3
FOLLOWERS = 50
VENUES = ("binance", "coinbase", "kraken")
LEADER_VENUE = "binance"
MAX_TARGETS = 20
SETTLE_SECONDS = 60.0
TAKEOVER_WAIT_SECONDS = 30.0
PAUSE_SECONDS = 3 * LEASE_TTL_MS / 1000
LINGER_SECONDS = 1.0
DEFAULT_BASE_SEED = 20260512
SYMBOLS = {
    "BTC/USDT": (Decimal("0.02"), Decimal("0.08")),
    "ETH/USDT": (Decimal("0.3"), Decimal("1.2")),
}
FAULT_TRADE = ("BTC/USDT", Decimal("0.05"))
"""The leader trade placed right after the fault, on the hit replica's leaders (what the
takeover time waits for a copy of)."""


def replica_env() -> dict[str, dict[str, str]]:
    """Return the chaos environment plus the lease TTL for the replicated services."""
    env = {name: dict(values) for name, values in CHAOS_ENV.items()}
    for service in REPLICAS:
        env.setdefault(service, {})["LEASE_TTL_MS"] = str(LEASE_TTL_MS)
    return env


def soak() -> bool:
    """Return whether the soak tier was asked for (``CHAOS_SOAK=1``)."""
    return os.environ.get("CHAOS_SOAK", "").strip() in ("1", "true", "yes", "on")


def seeds_for(scenario: str) -> list[int]:
    """Return the seeds of a scenario: ``CHAOS_SEEDS``, else ``CHAOS_REPLICA_SEED_COUNT``
    (1 in CI, 5 with ``CHAOS_SOAK``) drawn from ``CHAOS_BASE_SEED``."""
    explicit = os.environ.get("CHAOS_SEEDS", "").strip()
    if explicit:
        return [int(s) for s in explicit.split(",") if s.strip()]
    count = int(os.environ.get("CHAOS_REPLICA_SEED_COUNT", "5" if soak() else "1"))
    base = int(os.environ.get("CHAOS_BASE_SEED", str(DEFAULT_BASE_SEED)))
    return [
        zlib.crc32(f"{base}:replicas:{scenario}:{i}".encode()) & 0x7FFFFFFF for i in range(count)
    ]


@dataclass
class Leader:
    """A leader account, its configuration and its followers."""

    index: int
    keys: dict[str, str]
    exchange_id: str
    followers: list[FollowerAccount]
    config_id: str = ""


@dataclass
class ScenarioResult:
    """What one seed of one scenario showed."""

    scenario: str
    seed: int
    target: str = ""
    held: list[str] = field(default_factory=list)
    findings: Findings = field(default_factory=Findings)
    takeover_s: float | None = None
    """Engine faults: the fault to the first order a taker sends for the replica's leaders;
    other faults: the same as :attr:`first_copy_s`."""
    first_copy_s: float | None = None
    """The fault to the first copy, at a venue, of a leader fill made after the fault (the
    backlog of signals traded meanwhile is copied before it)."""
    fired: bool = False
    busy: bool = False
    settled: bool = False
    fenced_writes: float | None = None
    broker_fenced: float | None = None
    leases_lost_expired: float | None = None
    seconds: float = 0.0
    events: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return whether every invariant held."""
        return not self.violations and not self.findings.violations

    def report(self, logs: str) -> str:
        """Return everything needed to understand and replay the run."""
        f = self.findings
        return "\n".join(
            [
                f"[replicas] {self.scenario} on {self.target} (held {self.held}), seed {self.seed}",
                f"  replay: CHAOS_SEEDS={self.seed} .venv/bin/python -m pytest "
                "tests/chaos/test_replicas.py -q",
                f"  takeover {_seconds(self.takeover_s)}, first copy of a later fill"
                f" {_seconds(self.first_copy_s)}, fenced writes {self.fenced_writes}"
                f" (orders the brokers refused as fenced {self.broker_fenced}),"
                f" leases lost (expired) {self.leases_lost_expired}",
                f"  intents {f.intents}/{f.expected} expected, outcomes {dict(f.outcomes)}",
                *(f"  VIOLATION {v}" for v in [*self.violations, *f.violations]),
                "  timeline:",
                *(f"    {e}" for e in self.events),
                f"  logs: {logs}",
            ]
        )


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}s"


def takeover_summary(values: Iterable[float | None]) -> str:
    """Return ``p50 x.xs max y.ys`` over the measured takeovers (``n/a`` when none)."""
    measured = [v for v in values if v is not None]
    if not measured:
        return "n/a"
    return f"p50 {statistics.median(measured):.2f}s max {max(measured):.2f}s"


class Book:
    """The module's user, leaders, followers and configurations on a replica mesh."""

    def __init__(
        self,
        mesh: ChaosMesh,
        session: aiohttp.ClientSession,
        token: str = "",
        leaders: Sequence[Leader] = (),
    ) -> None:
        self.mesh = mesh
        self.session = session
        self.sims = {venue: SimAccounts(session, url) for venue, url in mesh.venue_urls.items()}
        self.leaders: list[Leader] = list(leaders)
        self.token = token
        self.api: RestClient | None = (
            RestClient(session, mesh.gateway_url, token) if token else None
        )
        self.events: list[str] = []
        self._t0 = time.monotonic()

    @property
    def rest(self) -> RestClient:
        """Return the REST client of the book's user."""
        assert self.api is not None, "setup() first"
        return self.api

    async def setup(self, seed: int, *, leaders: int = LEADERS, followers: int = FOLLOWERS) -> None:
        """Create the user, the leaders and the followers, and start one copy per leader."""
        rng = random.Random(seed)
        self.token = await create_user(self.mesh, f"replicas-{seed}")
        self.api = RestClient(self.session, self.mesh.gateway_url, self.token)

        async def register(venue: str, keys: dict[str, str], label: str) -> str:
            reply = await self.rest.call(
                "POST",
                "/exchanges",
                {
                    "exchange_name": venue,
                    "api_key": keys["api_key"],
                    "api_secret": keys["api_secret"],
                    "label": label,
                },
            )
            return str(reply["exchange"]["exchange_id"])

        async def follower(index: int) -> FollowerAccount:
            venue = VENUES[index % len(VENUES)]
            keys = await self.sims[venue].create_account(
                {QUOTE[venue]: str(rng.randrange(2_000, 20_001, 500))}
            )
            return FollowerAccount(
                venue, await register(venue, keys, f"follower-{index}"), keys["api_key"]
            )

        async def leader(index: int) -> tuple[dict[str, str], str]:
            keys = await self.sims[LEADER_VENUE].create_account(dict(LEADER_BALANCES))
            return keys, await register(LEADER_VENUE, keys, f"leader-{index}")

        accounts = list(await asyncio.gather(*(follower(i) for i in range(followers))))
        made = await asyncio.gather(*(leader(i) for i in range(leaders)))
        for index, (keys, exchange_id) in enumerate(made):
            mine = accounts[index::leaders]
            assert len(mine) <= MAX_TARGETS, "a configuration copies to at most 20 accounts"
            self.leaders.append(Leader(index, keys, exchange_id, mine))

        async def start(leader: Leader) -> None:
            body = {
                "source_exchange_id": leader.exchange_id,
                "target_exchange_ids": [f.exchange_id for f in leader.followers],
                "risk_limits": {"max_position_size": 0.5, "max_slippage": "0.02"},
                "copy_settings": {"sizing_mode": "equity_ratio"},
                "sync_settings": {"sync_interval": 1},
                "request_id": f"replicas-{seed}-{leader.index}",
            }
            for attempt in range(3):
                try:
                    leader.config_id = str(
                        (await self.rest.call("POST", "/start", body))["config_id"]
                    )
                    return
                except ApiError as e:
                    if e.status not in (503, 504) or attempt == 2:
                        raise
                    await asyncio.sleep(1.0)

        await asyncio.gather(*(start(leader) for leader in self.leaders))

    # ------------------------------------------------------------------------ who holds what

    async def holders(self, service: str) -> dict[str, str]:
        """Return the live owner of each leader's lease in ``service`` (``engine``, ``sync``).

        Sync answers its ListLeases RPC (asked as the engine, which its access table allows);
        the engine has no such RPC, so its lease table is read (``engine_leases``, through the
        shared PostgreSQL schema). Empty when the service keeps no leases.
        """
        ours = {leader.exchange_id for leader in self.leaders}
        if service == "sync":
            address = self.mesh.service_address("sync")
            tls = tls_settings(self.mesh.data_dir, "engine")
            with contextlib.suppress(grpc.aio.AioRpcError):
                async with clients.channel(address, tls=tls) as channel:
                    reply = await sync_grpc.SyncServiceStub(channel).ListLeases(
                        sync_pb.ListLeasesRequest(), timeout=5
                    )
                return {
                    lease.resource: lease.owner
                    for lease in reply.leases
                    if lease.live and lease.resource in ours
                }
            return {}
        url = self.mesh.shared_database_url
        assert url, "the replica tier runs on PostgreSQL"
        database = await db.connect(url)
        try:
            rows = await database.fetchall(
                "SELECT resource, owner, expires_at - CAST(EXTRACT(EPOCH FROM clock_timestamp())"
                f" * 1000 AS BIGINT) AS left_ms FROM {service}_leases"
            )
        except Exception:
            return {}
        finally:
            await database.close()
        return {
            row["resource"]: row["owner"]
            for row in rows
            if row["owner"] and int(row["left_ms"]) > 0 and row["resource"] in ours
        }

    # ------------------------------------------------------------------------------ trading

    def plan_trades(self, rng: random.Random, count: int) -> list[tuple[str, str, Decimal, float]]:
        """Draw ``count`` leader market orders: a buy, then its sell, and so on (the leader
        stays near flat across scenarios)."""
        trades: list[tuple[str, str, Decimal, float]] = []
        while len(trades) < count:
            symbol = rng.choice(sorted(SYMBOLS))
            low, high = SYMBOLS[symbol]
            step = Decimal("0.001") if symbol.startswith("BTC") else Decimal("0.01")
            amount = (
                Decimal(str(rng.uniform(float(low), float(high)))) / step
            ).to_integral_value() * step
            trades.append((symbol, "buy", amount, round(rng.uniform(0.15, 0.4), 3)))
            trades.append((symbol, "sell", amount, round(rng.uniform(0.15, 0.4), 3)))
        return trades[:count]

    async def trade(self, exchange: Any, symbol: str, side: str, amount: Decimal) -> bool:
        """Place one leader market order; return whether the venue took it."""
        try:
            await exchange.create_order(symbol, "market", side, str(amount))
        except Exception as e:
            self.event(f"leader trade {side} {amount} {symbol} failed: {type(e).__name__}: {e}")
            return False
        return True

    def client(self, leader: Leader) -> Any:
        """Return a ccxt client of ``leader`` (close it after use)."""
        return leader_client(self.mesh.venue_urls[LEADER_VENUE], leader.keys)

    def event(self, text: str) -> None:
        """Add a line to the current scenario's timeline."""
        self.events.append(f"{time.monotonic() - self._t0:7.2f}s {text}")

    # ------------------------------------------------------------------------------ the truth

    async def fills(self, leader: Leader, since_ms: int) -> list[dict[str, Any]]:
        """Return the leader's fills at the venue made at or after ``since_ms``."""
        trades = await self.sims[LEADER_VENUE].trades(leader.keys["api_key"])
        return [t for t in trades if int(t.get("time_ms", 0)) >= since_ms]

    async def intents(self, leader: Leader) -> list[dict[str, Any]]:
        """Return every intent of the leader's configuration."""
        reply = await self.rest.call("GET", f"/orders/{leader.config_id}?page_size=1000")
        return list(reply.get("orders", []))

    async def settled(self, since_ms: int) -> bool:
        """Return whether every fill since ``since_ms`` has a terminal intent per follower."""
        try:
            for leader in self.leaders:
                fills = await self.fills(leader, since_ms)
                ids = {str(f["trade_id"]) for f in fills}
                intents = [i for i in await self.intents(leader) if i.get("signal_id") in ids]
                pairs = {(i.get("signal_id"), i.get("target_exchange_id")) for i in intents}
                wanted = {(t, f.exchange_id) for t in ids for f in leader.followers}
                if not wanted <= pairs or any(i.get("state") not in TERMINAL for i in intents):
                    return False
        except Exception:
            return False
        return True

    async def wait_quiet(self, since_ms: int, timeout: float = SETTLE_SECONDS) -> bool:  # noqa: ASYNC109 - a polling budget
        """Wait until :meth:`settled` or ``timeout``; return whether it settled."""
        deadline = time.monotonic() + timeout
        while not await self.settled(since_ms):
            if time.monotonic() > deadline:
                self.event("not quiet by the deadline")
                return False
            await asyncio.sleep(0.3)
        self.event("quiet")
        return True

    async def check(self, since_ms: int) -> Findings:
        """Check the fills made since ``since_ms``, leader by leader, against the venues.

        A venue order belongs to the window when its intent copies a fill of the window, or
        when it was made in the window and no intent of the configuration carries its client
        order id (a phantom).
        """
        total = Findings()
        for leader in self.leaders:
            fills = await self.fills(leader, since_ms)
            ids = {str(f["trade_id"]) for f in fills}
            every = await self.intents(leader)
            intents = [i for i in every if i.get("signal_id") in ids]
            window = {str(i.get("client_order_id")) for i in intents}
            known = {str(i.get("client_order_id")) for i in every}
            orders: dict[str, list[dict[str, Any]]] = {}
            for follower in leader.followers:
                held = await self.sims[follower.venue].orders(follower.api_key)
                orders[follower.exchange_id] = [
                    o
                    for o in held
                    if str(o.get("client_order_id")) in window
                    or (
                        int(o.get("created_ms") or 0) >= since_ms
                        and str(o.get("client_order_id")) not in known
                    )
                ]
            found = check(fills, intents, orders)
            for name in (
                "intents",
                "expected",
                "duplicates",
                "missing",
                "unresolved",
                "qty",
                "phantom",
            ):
                setattr(total, name, getattr(total, name) + getattr(found, name))
            total.outcomes.update(found.outcomes)
            total.violations.extend(f"leader {leader.index}: {v}" for v in found.violations)
        return total

    async def first_copy_ms(self, leaders: Sequence[Leader], after_ms: int) -> int | None:
        """Return when the first follower order copying a fill made at or after ``after_ms``,
        on one of ``leaders``, reached its venue (``created_ms``); ``None`` when none has."""
        first: int | None = None
        for leader in leaders:
            ids = {str(f["trade_id"]) for f in await self.fills(leader, after_ms)}
            if not ids:
                continue
            cids = {
                str(i.get("client_order_id")): i.get("target_exchange_id")
                for i in await self.intents(leader)
                if i.get("signal_id") in ids
            }
            venues = {f.exchange_id: f for f in leader.followers}
            for target in set(cids.values()):
                follower = venues.get(str(target))
                if follower is None:
                    continue
                for order in await self.sims[follower.venue].orders(follower.api_key):
                    if str(order.get("client_order_id")) in cids:
                        made = int(order.get("created_ms") or 0)
                        first = made if first is None else min(first, made)
        return first

    async def lease_tokens(self, service: str, sources: Sequence[str]) -> dict[str, int]:
        """Return the current lease token of each of ``sources`` in ``service`` (engine only)."""
        if service != "engine" or not self.mesh.shared_database_url:
            return {}
        database = await db.connect(self.mesh.shared_database_url)
        try:
            rows = await database.fetchall("SELECT resource, token FROM engine_leases")
        finally:
            await database.close()
        return {r["resource"]: int(r["token"]) for r in rows if r["resource"] in sources}

    async def first_send_by_a_taker_ms(
        self,
        tokens: Mapping[str, int],
        timeout: float = TAKEOVER_WAIT_SECONDS,  # noqa: ASYNC109 - a polling budget
    ) -> int | None:
        """Wait for the first order sent, for one of the sources, under a token above the one
        it had at the fault (a taker's); return when it was sent (``None`` at the deadline)."""
        assert self.mesh.shared_database_url
        deadline = time.monotonic() + timeout
        database = await db.connect(self.mesh.shared_database_url)
        try:
            while time.monotonic() < deadline:
                first: int | None = None
                for source, token in tokens.items():
                    row = await database.fetchone(
                        "SELECT MIN(last_sent_at) AS first FROM order_intents"
                        " WHERE source_id = ? AND sent_token > ?",
                        (source, token),
                    )
                    if row and row["first"]:
                        sent = int(from_iso(row["first"]).timestamp() * 1000)
                        first = sent if first is None else min(first, sent)
                if first is not None:
                    return first
                await asyncio.sleep(0.1)
        finally:
            await database.close()
        return None

    async def wait_first_copy(
        self,
        leaders: Sequence[Leader],
        after_ms: int,
        timeout: float = TAKEOVER_WAIT_SECONDS,  # noqa: ASYNC109 - a polling budget
    ) -> int | None:
        """Wait (up to ``timeout``) for :meth:`first_copy_ms`; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ApiError, aiohttp.ClientError, asyncio.TimeoutError):
                first = await self.first_copy_ms(leaders, after_ms)
                if first is not None:
                    return first
            await asyncio.sleep(0.1)
        return None


def now_ms() -> int:
    """Return the wall clock in milliseconds (the emulators stamp orders with it)."""
    return int(time.time() * 1000)


async def drive(
    book: Book,
    scenario: str,
    service: str,
    fault: str,
    seed: int,
    *,
    restart_at_once: bool = False,
) -> ScenarioResult:
    """Run one seed of one scenario: trade, hit one ``service`` replica, measure, settle, check.

    ``fault`` is ``kill`` (SIGKILL, measure the takeover, then restart the replica; with
    ``restart_at_once`` the restart starts right after the kill, the single-replica baseline)
    or ``pause`` (SIGSTOP for :data:`PAUSE_SECONDS`, trade while it sleeps, then SIGCONT).
    """
    rng = random.Random(seed)
    mesh = book.mesh
    result = ScenarioResult(scenario, seed)
    book.events = result.events
    book._t0 = started = time.monotonic()
    await heal(mesh)
    names = mesh.replica_names(service)
    holders = await book.holders(service) if service in ("engine", "sync") else {}
    by_owner: dict[str, list[str]] = {}
    for source, owner in holders.items():
        by_owner.setdefault(owner, []).append(source)
    candidates = sorted(n for n in by_owner if n in names)
    target = rng.choice(candidates) if candidates else rng.choice(names)
    hit = [leader for leader in book.leaders if holders.get(leader.exchange_id) == target]
    if not hit:
        # No lease names this replica (a broker, or a service without leases): every leader.
        hit = list(book.leaders)
    result.target = target
    result.held = [f"leader-{leader.index}" for leader in hit]
    book.event(
        f"leases of {service}: {holders or 'none seen'}; target {target} holds {result.held}"
    )
    metrics_before: dict[str, float] = {}
    if fault == "pause":
        metrics_before = await _lease_metrics(mesh, target)
        metrics_before["broker"] = await _broker_fenced(mesh)

    tokens = await book.lease_tokens(service, [leader.exchange_id for leader in hit])
    since_ms = now_ms()
    trigger = hit[0]
    after_trade = rng.randrange(1, 3)
    kill_delay = round(rng.uniform(0.0, 0.05), 3)
    triggered = asyncio.Event()

    async def burst(leader: Leader) -> None:
        exchange = book.client(leader)
        try:
            for index, (symbol, side, amount, gap) in enumerate(book.plan_trades(rng, 4)):
                placed = await book.trade(exchange, symbol, side, amount)
                book.event(
                    f"leader-{leader.index} trade {index}: {side} {amount} {symbol}"
                    + ("" if placed else " (failed)")
                )
                if leader is trigger and index == after_trade:
                    triggered.set()
                await asyncio.sleep(gap)
        finally:
            await exchange.close()
            triggered.set()

    bursts = [asyncio.create_task(burst(leader)) for leader in book.leaders]
    await triggered.wait()
    await asyncio.sleep(kill_delay)
    fault_ms = now_ms()
    restarting: asyncio.Task[float] | None = None
    if fault == "kill":
        mesh.kill(target)
        book.event(
            f"kill -9 {target} (fan-out of leader-{trigger.index} trade {after_trade} under way)"
        )
        if restart_at_once:
            restarting = asyncio.create_task(mesh.restart(target))
    else:
        mesh.pause(target)
        book.event(f"SIGSTOP {target} for {PAUSE_SECONDS:.1f}s (LEASE_TTL_MS {LEASE_TTL_MS})")
    result.fired = True
    await _trade_each(book, hit, "after the fault")
    # Measured while the run goes on: a paused replica is woken after PAUSE_SECONDS whether
    # or not its leaders were copied again by then.
    measuring = asyncio.create_task(book.wait_first_copy(hit, fault_ms))
    if fault == "pause":
        await asyncio.sleep(max(PAUSE_SECONDS - (now_ms() - fault_ms) / 1000, 0))
        after = await book.holders(service)
        still = [leader.exchange_id for leader in hit if after.get(leader.exchange_id) == target]
        book.event(f"leases while {target} sleeps: {after}")
        if service in ("engine", "sync") and holders and still:
            result.violations.append(
                f"{target} was paused {PAUSE_SECONDS:.1f}s (3x its lease) but still holds {still}"
            )
        await _trade_each(book, hit, "while the paused replica sleeps")
        mesh.resume(target)
        book.event(f"SIGCONT {target}")
        await _trade_each(book, hit, "after the wake-up")
    first = await measuring
    if first is not None:
        result.first_copy_s = max(first - fault_ms, 0) / 1000
    book.event(
        f"first copy of a fill made after the fault: {_seconds(result.first_copy_s)} after it"
    )
    result.takeover_s = result.first_copy_s
    if service == "engine" and tokens:
        sent = await book.first_send_by_a_taker_ms(tokens)
        result.takeover_s = None if sent is None else max(sent - fault_ms, 0) / 1000
        book.event(f"first order a taker sent for them: {_seconds(result.takeover_s)} after it")
    await asyncio.gather(*bursts)
    if fault == "kill":
        took = await (restarting if restarting is not None else mesh.restart(target))
        book.event(f"{target} restarted, serving after {took:.2f}s")
    result.settled = await book.wait_quiet(since_ms)
    await asyncio.sleep(LINGER_SECONDS)
    result.findings = await book.check(since_ms)
    if fault == "pause":
        after_wake = await _lease_metrics(mesh, target)
        result.fenced_writes = after_wake["fenced"] - metrics_before.get("fenced", 0.0)
        result.leases_lost_expired = after_wake["lost"] - metrics_before.get("lost", 0.0)
        result.broker_fenced = await _broker_fenced(mesh) - metrics_before.get("broker", 0.0)
        book.event(
            f"{target} after waking: fenced writes {result.fenced_writes:g}, leases lost"
            f" (expired) {result.leases_lost_expired:g}; orders the brokers refused as fenced"
            f" {result.broker_fenced:g}"
        )
        if holders and result.leases_lost_expired < 1:
            result.violations.append(
                f"{target} slept past its lease but never counted a lease lost as expired"
            )
    dead = mesh.dead_components()
    if dead:
        result.violations.append(f"components exited on their own: {dead}")
    result.busy = bool(result.findings.intents)
    result.seconds = time.monotonic() - started
    return result


async def _trade_each(book: Book, leaders: Sequence[Leader], why: str) -> None:
    symbol, amount = FAULT_TRADE

    async def one(leader: Leader) -> None:
        exchange = book.client(leader)
        try:
            for side in ("buy", "sell"):
                placed = await book.trade(exchange, symbol, side, amount)
                book.event(
                    f"leader-{leader.index} {why}: {side} {amount} {symbol}"
                    + ("" if placed else " (failed)")
                )
        finally:
            await exchange.close()

    await asyncio.gather(*(one(leader) for leader in leaders))


async def _lease_metrics(mesh: ChaosMesh, name: str) -> dict[str, float]:
    service = mesh.service_of(name)
    return {
        "fenced": await mesh.metric(name, "copytrade_fenced_writes_total", {"service": service}),
        "lost": await mesh.metric(
            name, "copytrade_leases_lost_total", {"service": service, "why": "expired"}
        ),
    }


async def _broker_fenced(mesh: ChaosMesh) -> float:
    # Orders sent under a token the broker no longer accepts, over every broker replica.
    total = 0.0
    for name in mesh.replica_names("broker"):
        if mesh.replicas["broker"] > 1:
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                total += await mesh.metric(
                    name, "copytrade_fenced_writes_total", {"service": "broker"}
                )
    return total


async def heal(mesh: ChaosMesh) -> list[str]:
    """Restart every component found dead; return their names."""
    dead = mesh.dead_components()
    for name in dead:
        await mesh.restart(name)
    return dead


def outcome_counts(results: Sequence[ScenarioResult]) -> Counter[str]:
    """Return the outcomes of every run together."""
    total: Counter[str] = Counter()
    for result in results:
        total.update(result.findings.outcomes)
    return total


def as_rows(results: Sequence[ScenarioResult], name: str) -> list[dict[str, Any]]:
    """Return the chaos summary rows (:class:`chaos_summary.Row` as plain data) of ``results``;
    the takeover figure travels in the ``tests`` column (``takeover max 3.1s``)."""
    measured = [r.takeover_s for r in results if r.takeover_s is not None]
    label = f"takeover max {max(measured):.1f}s" if measured else "takeover n/a"
    return [
        {
            "backend": "pg-replicas",
            "fault_name": name,
            "tests": label,
            "fired": r.fired,
            "busy": r.busy,
            "intents": r.findings.intents,
            "duplicates": r.findings.duplicates,
            "missing": r.findings.missing,
            "unresolved": r.findings.unresolved,
            "qty": r.findings.qty,
            "phantom": r.findings.phantom,
            "rejects": r.findings.rejects,
            "seconds": r.seconds,
            "outcomes": dict(r.findings.outcomes),
        }
        for r in results
    ]


def takeover_properties(results: Sequence[ScenarioResult]) -> Mapping[str, Any]:
    """Return the takeover figures of ``results`` as plain data for ``user_properties``."""
    return {
        "scenario": results[0].scenario if results else "",
        "takeover_seconds": [r.takeover_s for r in results],
        "fenced_writes": [r.fenced_writes for r in results],
        "broker_fenced": [r.broker_fenced for r in results],
    }
