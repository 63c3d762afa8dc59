"""Drive seeded runs on a live mesh, inject one fault per run, settle, check the invariants.

A *group* is one fault on one mesh with several seeds. Every seed gets a fresh user, a leader
on simulated Binance and its followers, all set up before the first fault. The seeds then
run one after another, each with its own fault (a kill, an armed fault point, or emulator
rules for the copies of one leader trade), and the next seed starts while the earlier ones
still settle. The group then waits for quiet (every leader fill has a terminal intent for
every follower, or the deadline) and checks each seed against the emulators' own record:

* **duplicates**: venue orders sharing a client order id on one follower account, plus
  intents sharing one (leader fill, follower) pair (INV-1);
* **missing**: (leader fill, follower) pairs without an intent (INV-2);
* **unresolved**: intents not terminal after quiet (INV-2);
* **qty**: an intent whose filled quantity differs from the venue order's, or that claims an
  order the venue does not hold, or a venue order behind a rejected or skipped intent;
* **phantom**: a follower venue order whose client order id no intent of the run carries
  (INV-3);
* **rejects**: a definitive reject not ending REJECTED with its reason, or retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from chaos_invariants import TERMINAL, check, rejected_count
from chaos_mesh import ChaosMesh
from chaos_plan import (
    FUTURES_MAX_LEVERAGE,
    FUTURES_VENUE,
    LEADER_BALANCES,
    NOT_FOUND_LAG_MAX_SECONDS,
    ORDER_PATH,
    Fault,
    Plan,
    Shape,
    plan_run,
    venue_rules,
)

from meshctl.api import ApiError, RestClient
from meshctl.demo import create_user, futures_client, leader_client

SETTLE_SECONDS = 75.0
SLOW_SETTLE_SECONDS = 100.0
"""How long a group may take to go quiet; slow faults wait out the broker's resend floor."""
RULE_WAIT_SECONDS = 6.0
CANCEL_WAIT_SECONDS = 8.0
DECIDED_WAIT_SECONDS = 30.0
"""T16: how long every leader fill may take to be decided for every follower before the stop
(a stop before then rightly leaves the later fills uncopied, which the check would count)."""
ARMED_WAIT_SECONDS = 8.0
LINGER_SECONDS = 1.0
"""After quiet, how long to wait for a late duplicate before reading the venues."""
MAX_TARGETS = 20
"""The most follower accounts one configuration may copy to (the engine's limit)."""
LEADER_VENUE = "binance"


class SimAccounts:
    """One emulator's admin API (account keys percent-encoded: Coinbase key names hold ``/``).

    With ``futures``, the Binance emulator's USDⓈ-M side (``/_sim/futures/``): an account's
    balances fund its futures wallet, and its orders and trades are the futures records.
    """

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, *, futures: bool = False
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.futures = futures

    def _records(self, api_key: str, what: str) -> str:
        account = f"accounts/{urllib.parse.quote(api_key, safe='')}/{what}"
        return f"futures/{account}" if self.futures else account

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(
            method,
            f"{self.base_url}/_sim/{path}",
            json=body,
            timeout=aiohttp.ClientTimeout(total=15),
        ) as reply:
            payload = await reply.json(content_type=None)
            if reply.status >= 400:
                raise RuntimeError(f"emulator {method} {path}: HTTP {reply.status} {payload}")
            return payload

    async def create_account(self, balances: dict[str, str]) -> dict[str, str]:
        """Open an account that may trade and may not withdraw."""
        keys = await self._call(
            "POST",
            "accounts",
            {
                "balances": {} if self.futures else balances,
                "can_trade": True,
                "can_withdraw": False,
            },
        )
        if self.futures:
            await self._call(
                "POST",
                self._records(keys["api_key"], "wallet"),
                {"amount": balances.get("USDT", "0")},
            )
        return keys

    async def orders(self, api_key: str) -> list[dict[str, Any]]:
        """Return the venue's record of an account's orders."""
        result = await self._call("GET", self._records(api_key, "orders"))
        return result["orders"] if isinstance(result, dict) else result

    async def trades(self, api_key: str) -> list[dict[str, Any]]:
        """Return the venue's record of an account's trades."""
        result = await self._call("GET", self._records(api_key, "trades"))
        return result["trades"] if isinstance(result, dict) else result

    async def leverages(self, api_key: str) -> dict[str, int]:
        """Return a futures account's leverage per market id (``BTCUSDT``)."""
        result = await self._call("GET", self._records(api_key, "settings"))
        return {symbol: int(entry["leverage"]) for symbol, entry in result.items()}

    async def add_faults(self, rules: list[dict[str, Any]]) -> None:
        """Add fault rules."""
        await self._call("POST", "faults", rules)

    async def faults(self) -> list[dict[str, Any]]:
        """Return the active fault rules."""
        return await self._call("GET", "faults")

    async def hold_matching(self, held: bool) -> None:
        """Hold (or release) the venue's matching of limit orders in every market."""
        await self._call("POST", "matching", {"held": held})

    async def clear_faults(self) -> int:
        """Remove every fault rule; return how many were left."""
        return int((await self._call("DELETE", "faults"))["cleared"])


START_ATTEMPTS = 3
"""How often the harness sends a /start that timed out (same request_id each time)."""


@dataclass
class FollowerAccount:
    """A registered follower."""

    venue: str
    exchange_id: str
    api_key: str


@dataclass
class RunResult:
    """What one seed's run showed."""

    backend: str
    plan: Plan
    intents: int = 0
    expected: int = 0
    duplicates: int = 0
    missing: int = 0
    unresolved: int = 0
    qty: int = 0
    phantom: int = 0
    rejects: int = 0
    fired: bool | None = None
    busy: bool = False
    settled: bool = False
    outcomes: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0
    logs: str = ""

    @property
    def fault(self) -> Fault:
        """Return the run's fault."""
        return self.plan.fault

    @property
    def ok(self) -> bool:
        """Return whether every invariant held."""
        return not self.violations

    def report(self) -> str:
        """Return everything needed to understand and replay a failed run."""
        lines = [
            f"[{self.backend}] {self.plan.describe()}",
            f"  replay: CHAOS_SEEDS={self.plan.seed} .venv/bin/python -m pytest tests/chaos "
            f"-q -k {self.fault.slug!r}",
            f"  intents {self.intents}/{self.expected} expected, outcomes {dict(self.outcomes)}",
            *(f"  VIOLATION {v}" for v in self.violations),
            "  timeline:",
            *(f"    {e}" for e in self.events),
            f"  logs: {self.logs}",
        ]
        return "\n".join(lines)


class Run:
    """One seed on one mesh: its user, leader, followers and configuration, and its timeline."""

    def __init__(self, mesh: ChaosMesh, session: aiohttp.ClientSession, plan: Plan) -> None:
        self.mesh = mesh
        self.session = session
        self.plan = plan
        self.sims = {venue: SimAccounts(session, url) for venue, url in mesh.venue_urls.items()}
        # Binance USDⓈ-M is served by the Binance emulator (one port, /fapi).
        self.sims[FUTURES_VENUE] = SimAccounts(session, mesh.venue_urls["binance"], futures=True)
        self.leader_venue = FUTURES_VENUE if plan.fault.is_futures else LEADER_VENUE
        self.result = RunResult(mesh.backend, plan, logs=str(mesh.data_dir / "logs"))
        self.api: RestClient | None = None
        self.config_ids: list[str] = []
        self.leader_keys: dict[str, str] = {}
        self.followers: list[FollowerAccount] = []
        self.kill_times = []
        self.back_times = []
        self.resting_at_stop: set[str] = set()
        self._t0 = time.monotonic()

    def event(self, text: str) -> None:
        """Add a line to the run's timeline."""
        self.result.events.append(f"{time.monotonic() - self._t0:7.2f}s {text}")

    @property
    def rest(self) -> RestClient:
        """Return the REST client of the run's user."""
        assert self.api is not None, "setup() first"
        return self.api

    async def setup(self) -> None:
        """Create the user, the leader and the followers, and start copying."""
        fault = self.plan.fault.name.replace(" ", "_").replace(":", "")[:40]
        token = await create_user(self.mesh, f"chaos-{fault}-{self.plan.seed}"[:60])
        self.api = RestClient(self.session, self.mesh.gateway_url, token)
        self.leader_keys = await self.sims[self.leader_venue].create_account(dict(LEADER_BALANCES))
        leader_id = await self._register(self.leader_venue, self.leader_keys, "leader")

        async def follower(index: int) -> FollowerAccount:
            spec = self.plan.followers[index]
            keys = await self.sims[spec.venue].create_account(dict(spec.balances))
            exchange_id = await self._register(spec.venue, keys, f"follower-{index}")
            return FollowerAccount(spec.venue, exchange_id, keys["api_key"])

        self.followers = list(
            await asyncio.gather(*(follower(i) for i in range(len(self.plan.followers))))
        )
        # A configuration copies to at most MAX_TARGETS accounts: big runs use several.
        for first in range(0, len(self.followers), MAX_TARGETS):
            targets = self.followers[first : first + MAX_TARGETS]
            config = await self._start(
                {
                    "source_exchange_id": leader_id,
                    "target_exchange_ids": [f.exchange_id for f in targets],
                    "risk_limits": {
                        "max_position_size": 0.5,
                        "max_slippage": "0.02",
                        **(
                            {"max_leverage": FUTURES_MAX_LEVERAGE}
                            if self.plan.fault.is_futures
                            else {}
                        ),
                    },
                    "copy_settings": {"sizing_mode": "equity_ratio"},
                    "sync_settings": {"sync_interval": 1},
                    "request_id": f"chaos-{self.plan.seed}-{first}",
                }
            )
            self.config_ids.append(config["config_id"])
        self._t0 = time.monotonic()
        self.event(
            f"config {', '.join(self.config_ids)} started: leader on {self.leader_venue}, "
            f"{len(self.followers)} followers"
        )

    async def _start(self, body: dict[str, Any]) -> Any:
        # What a careful client does: a start that timed out (a mesh busy registering hundreds
        # of accounts) is sent again with the same request_id, which makes it idempotent.
        for attempt in range(START_ATTEMPTS):
            try:
                return await self.rest.call("POST", "/start", body)
            except ApiError as e:
                if e.status not in (503, 504) or attempt == START_ATTEMPTS - 1:
                    raise
                self.event(f"/start answered {e.status}; sent again with the same request_id")
                await asyncio.sleep(1.0)
        raise AssertionError("unreachable")

    async def _register(self, venue: str, keys: dict[str, str], label: str) -> str:
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

    # ------------------------------------------------------------------------------ the leader

    async def trade(self, exchange: Any, index: int) -> bool:
        """Place the plan's ``index``-th leader market order; return whether the venue took it."""
        trade = self.plan.trades[index]
        try:
            await exchange.create_order(trade.symbol, "market", trade.side, str(trade.amount))
        except Exception as e:
            self.event(
                f"leader trade {index} ({trade.side} {trade.amount} {trade.symbol}) "
                f"failed: {type(e).__name__}: {e}"
            )
            return False
        self.event(f"leader trade {index}: {trade.side} {trade.amount} {trade.symbol}")
        return True

    def leader(self) -> Any:
        """Return a ccxt client of the leader (close it after use)."""
        if self.plan.fault.is_futures:
            return futures_client(self.mesh.venue_urls["binance"], self.leader_keys)
        return leader_client(self.mesh.venue_urls[LEADER_VENUE], self.leader_keys)

    async def burst(self, trading: dict[int, asyncio.Event] | None = None) -> None:
        """Place every leader trade of the plan with its pauses.

        ``trading[i]`` is set as trade ``i`` is sent: the mesh may copy the fill before the
        leader's own reply arrives.
        """
        exchange = self.leader()
        try:
            for index, trade in enumerate(self.plan.trades):
                if trading and index in trading:
                    trading[index].set()
                await self.trade(exchange, index)
                await asyncio.sleep(trade.gap_s)
        finally:
            await exchange.close()

    async def burst_with_venue_fault(self) -> None:
        """Place the trades; the copies of one trade meet the plan's emulator rules."""
        exchange = self.leader()
        faulted = self.plan.params["trade_index"]
        added: dict[str, int] = {}
        try:
            for index, trade in enumerate(self.plan.trades):
                if index == faulted:
                    added = await self._add_rules()
                placed = await self.trade(exchange, index)
                if index == faulted:
                    # A copy of an earlier trade may reach the venue first and take the
                    # pass-through: the leader's own order then meets a rule (not a copy).
                    await self._await_rules(added, leader_met_rule=not placed)
                await asyncio.sleep(trade.gap_s)
        finally:
            await exchange.close()
            for venue in added:
                await self.sims[venue].clear_faults()

    @property
    def follower_venues(self) -> list[str]:
        """The venues the followers are on, in name order."""
        return sorted({f.venue for f in self.followers})

    async def burst_then_stop(self) -> None:
        """T16: the copies rest (the follower venues hold matching); once they all rest, stop
        the configurations, which cancels them: the armed broker dies inside a cancel."""
        venues = self.follower_venues
        for venue in venues:
            await self.sims[venue].hold_matching(True)
        self.event(f"matching held at {venues}: copies rest")
        await self.burst()
        deadline = time.monotonic() + DECIDED_WAIT_SECONDS
        while True:
            fills, intents = await self.leader_fills(), await self.intents()
            on_the_way = [
                i
                for i in intents
                if i.get("state")
                in ("INTENT_STATE_PENDING", "INTENT_STATE_SENT", "INTENT_STATE_UNKNOWN")
            ]
            if len(intents) >= len(fills) * len(self.followers) and not on_the_way:
                break
            if time.monotonic() > deadline:
                self.event(
                    f"after {DECIDED_WAIT_SECONDS:.0f}s only {len(intents)} of "
                    f"{len(fills) * len(self.followers)} copies decided, "
                    f"{len(on_the_way)} on the way"
                )
                break
            await asyncio.sleep(0.1)
        self.resting_at_stop = {
            i["client_order_id"] for i in intents if i.get("state") == "INTENT_STATE_ACCEPTED"
        }
        self.event(
            f"{len(self.resting_at_stop)} copies rest at the venues; stopping the configurations"
        )
        for config_id in self.config_ids:
            try:
                reply = await self.rest.call("POST", "/stop", {"config_id": config_id})
                self.event(f"stop {config_id}: {reply.get('cancelled_orders', 0)} cancelled")
            except Exception as e:
                self.event(f"stop {config_id} failed: {type(e).__name__}: {e}")

    async def release_matching(self) -> None:
        """Let the follower venues match again, once the copies the stop wanted cancelled are
        cancelled (the engine carries out a failed cancel when the broker is back) or after
        CANCEL_WAIT_SECONDS: a copy still resting then trades, and the check reports it."""
        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                states = {i["client_order_id"]: i.get("state") for i in await self.intents()}
                if not any(states.get(c) == "INTENT_STATE_ACCEPTED" for c in self.resting_at_stop):
                    break
            await asyncio.sleep(0.2)
        venues = self.follower_venues
        for venue in venues:
            await self.sims[venue].hold_matching(False)
        self.event(f"matching released at {venues}")

    async def _add_rules(self) -> dict[str, int]:
        # Rules match a path on every account, and the mesh copies a fill within milliseconds:
        # they go in before the leader's order, behind a pass-through rule (no status, no
        # delay) that the leader's own order uses up, so only follower requests meet them.
        fault = self.plan.fault
        added: dict[str, int] = {}
        for venue in self.follower_venues:
            rules = venue_rules(self.plan, venue)
            if not rules:
                continue
            if venue == LEADER_VENUE:
                method, path = ORDER_PATH[venue]
                rules = [{"method": method, "path": path, "status": None, "count": 1}, *rules]
            await self.sims[venue].add_faults(rules)
            added[venue] = sum(int(r["count"]) for r in rules)
        self.event(
            f"emulator rules {fault.venue_rule} added (behind one pass-through for the "
            f"leader's order): {added}"
        )
        return added

    async def _await_rules(self, added: dict[str, int], *, leader_met_rule: bool = False) -> None:
        fault = self.plan.fault
        deadline = time.monotonic() + RULE_WAIT_SECONDS
        left: dict[str, int] = dict(added)
        used = {v: 1 if v == LEADER_VENUE else 0 for v in added}  # the pass-through
        killed = False
        first_met: float | None = None
        while time.monotonic() < deadline:
            left = {v: sum(int(r["count"]) for r in await self.sims[v].faults()) for v in added}
            met = {v: added[v] - left[v] - used[v] for v in added}
            if first_met is None and any(met.values()):
                first_met = time.monotonic()
            if (
                fault.venue_rule == "not_found_lag"
                and first_met is not None
                and time.monotonic() - first_met > NOT_FOUND_LAG_MAX_SECONDS
            ):
                break  # a venue may hide an order only for less than the configured lag
            if fault.kind == "venue" and fault.target and not killed and any(met.values()):
                # The venue has taken (and executed) an order and holds the reply back: the
                # process waiting for it dies now.
                self.kill_times.append(time.time())
                self.mesh.kill(fault.target)
                killed = True
                self.event(f"an order reached the venue, reply held: kill -9 {fault.target}")
            if not any(left.values()):
                break
            await asyncio.sleep(0.02)
        for venue in added:
            await self.sims[venue].clear_faults()
        consumed = {v: max(added[v] - left.get(v, 0) - used[v], 0) for v in added}
        self.result.fired = self.result.busy = any(consumed.values())
        if leader_met_rule and consumed.get(LEADER_VENUE):
            consumed[LEADER_VENUE] -= 1
            self.event("the leader's own order met a rule: not counted as a copy")
        self.consumed_orders = sum(
            min(consumed[v], self.plan.params.get("count", 1)) for v in consumed
        )
        self.event(f"emulator rules cleared; follower requests that met them: {consumed}")
        if killed:
            took = await self.mesh.restart(fault.target)
            self.back_times.append(time.time())
            self.event(f"{fault.target} restarted, serving after {took:.2f}s")

    consumed_orders = 0
    rejected = 0
    resent = 0
    kill_times: list[float]
    back_times: list[float]

    # ------------------------------------------------------------------------------ the truth

    async def leader_fills(self) -> list[dict[str, Any]]:
        """Return the leader's fills at the venue."""
        return await self.sims[self.leader_venue].trades(self.leader_keys["api_key"])

    async def intents(self) -> list[dict[str, Any]]:
        """Return the configurations' intents (the engine's record)."""
        intents: list[dict[str, Any]] = []
        for config_id in self.config_ids:
            reply = await self.rest.call("GET", f"/orders/{config_id}?page_size=1000")
            intents.extend(reply.get("orders", []))
        return intents

    async def settled(self) -> bool:
        """Return whether every leader fill has a terminal intent for every follower."""
        try:
            fills = await self.leader_fills()
            intents = await self.intents()
        except Exception:
            return False
        pairs = {(i.get("signal_id", ""), i.get("target_exchange_id", "")) for i in intents}
        wanted = {(str(f["trade_id"]), a.exchange_id) for f in fills for a in self.followers}
        return wanted <= pairs and all(i.get("state") in TERMINAL for i in intents)

    async def wait_quiet(self, deadline: float) -> bool:
        """Wait until :meth:`settled` or the deadline; return whether it settled."""
        while not await self.settled():
            if time.monotonic() > deadline:
                self.event("not quiet by the deadline")
                return False
            await asyncio.sleep(0.3)
        self.event("quiet")
        return True

    async def check(self) -> RunResult:
        """Compare the engine's record with the venues' and fill in the result."""
        fills = await self.leader_fills()
        intents = await self.intents()
        venue_orders = {
            f.exchange_id: await self.sims[f.venue].orders(f.api_key) for f in self.followers
        }
        # The reject count is checked over the whole group (run_group): a copy of one seed
        # may meet the rule the next seed put in.
        # A broker killed mid-order leaves entries UNKNOWN: no exit may be sized before them.
        found = check(
            fills,
            intents,
            venue_orders,
            expect_rejected=self.plan.fault.expect_rejected,
            check_exits=self.plan.fault.target == "broker",
        )
        self.rejected = rejected_count(intents)
        if self.plan.fault.is_futures:
            # Every market a follower traded was set to at most max_leverage first.
            for follower in self.followers:
                leverages = await self.sims[follower.venue].leverages(follower.api_key)
                for symbol in sorted({o["symbol"] for o in venue_orders[follower.exchange_id]}):
                    if leverages.get(symbol, 0) > int(FUTURES_MAX_LEVERAGE):
                        found.violations.append(
                            f"leverage: follower {follower.exchange_id} traded {symbol} at "
                            f"{leverages.get(symbol)}x, above max_leverage {FUTURES_MAX_LEVERAGE}"
                        )
        if self.resting_at_stop:
            # T16: the stop asked for these cancels; each must end cancelled as the venue says.
            ended = {i["client_order_id"]: i.get("state") for i in intents}
            for client_order_id in sorted(self.resting_at_stop):
                if ended.get(client_order_id) != "INTENT_STATE_CANCELED":
                    found.violations.append(
                        f"cancel: {client_order_id} rested when its configuration was stopped "
                        f"but ended {ended.get(client_order_id)}"
                    )
        # Sent again with the same id: a send whose answer the engine never heard (its deadline
        # passed first on a loaded machine), proven absent at the venue, then re-sent.
        self.resent = sum(
            1
            for i in intents
            if i.get("state") != "INTENT_STATE_REJECTED" and int(i.get("attempts") or 1) > 1
        )
        result = self.result
        for name in (
            "intents",
            "expected",
            "duplicates",
            "missing",
            "unresolved",
            "qty",
            "phantom",
            "rejects",
            "outcomes",
        ):
            setattr(result, name, getattr(found, name))
        result.violations.extend(found.violations)
        if self.kill_times:
            back = self.back_times[0] if self.back_times else self.kill_times[0]
            work = in_flight_at(self.kill_times[0], back, fills, intents, len(self.followers))
            result.busy = bool(work)
            self.event(f"at the kill: {work or 'nothing of this seed in flight'}")
        return result

    async def retire(self) -> None:
        """Stop the configuration and quiet its leader's source (sync has no unwatch)."""
        try:
            for config_id in self.config_ids:
                await self.rest.call(
                    "PATCH",
                    f"/configs/{config_id}",
                    {
                        "sync_settings": {
                            "sync_interval": 3600,
                            "enable_websocket": False,
                            "enable_polling": True,
                        }
                    },
                )
                await self.rest.call("POST", "/stop", {"config_id": config_id})
        except Exception as e:
            self.event(f"retiring the config failed: {e}")


def _epoch(stamp: Any) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def in_flight_at(
    moment: float,
    back: float,
    fills: Sequence[dict[str, Any]],
    intents: Sequence[dict[str, Any]],
    followers: int,
) -> str:
    """Describe, after the fact, this run's copy work under way when a process was killed at
    ``moment`` and serving again at ``back`` (epoch seconds): fills made before the kill but
    copied after it, intents written before it and last changed after it, fills made while
    the process was down."""
    created = [(_epoch(i.get("create_time")), _epoch(i.get("update_time"))) for i in intents]
    open_intents = sum(1 for c, u in created if c is not None and u is not None and c <= moment < u)
    by_fill: dict[str, list[float]] = {}
    for intent, (c, _u) in zip(intents, created, strict=True):
        if c is not None:
            by_fill.setdefault(str(intent.get("signal_id", "")), []).append(c)
    uncopied = down = 0
    for fill in fills:
        made_at = int(fill.get("time_ms", 0)) / 1000
        if made_at <= moment:
            made = by_fill.get(str(fill["trade_id"]), [])
            uncopied += sum(1 for c in made if c > moment) + max(followers - len(made), 0)
        elif made_at <= back:
            down += 1
    if not open_intents and not uncopied and not down:
        return ""
    return (
        f"{uncopied} copies of earlier fills not yet written, {open_intents} intents open, "
        f"{down} leader fills while it was down"
    )


# ---------------------------------------------------------------------------------- drivers


async def _drive_kill(mesh: ChaosMesh, run: Run) -> None:
    target, params = run.plan.fault.target, run.plan.params
    trading = {params["after_trade"]: asyncio.Event()}
    burst = asyncio.create_task(run.burst(trading))
    await trading[params["after_trade"]].wait()
    await asyncio.sleep(params["kill_delay_s"])
    run.kill_times.append(time.time())
    mesh.kill(target)
    run.event(f"kill -9 {target}")
    await asyncio.sleep(params["down_s"])
    took = await mesh.restart(target)
    run.back_times.append(time.time())
    run.event(f"{target} restarted, serving after {took:.2f}s")
    run.result.fired = True
    await burst


async def _drive_point(mesh: ChaosMesh, run: Run) -> None:
    fault, params = run.plan.fault, run.plan.params
    spec = f"{fault.point}={fault.action}@{params['hit']}"
    log = mesh.log_path(fault.target)
    offset = log.stat().st_size
    try:
        took = await mesh.restart(fault.target, faultpoints=spec)
        run.event(f"{fault.target} restarted armed with {spec}, serving after {took:.2f}s")
    except RuntimeError:
        # The point fired on work left by the previous seed before the process served.
        run.event(f"{fault.target} restarted armed with {spec}: it died while starting")
    try:
        if fault.scenario == "cancel":
            await run.burst_then_stop()
        elif fault.venue_rule:
            await run.burst_with_venue_fault()
        else:
            await run.burst()
        if fault.action.startswith("kill"):
            died = await mesh.wait_exit(fault.target, ARMED_WAIT_SECONDS)
        else:
            await asyncio.sleep(ARMED_WAIT_SECONDS / 2)
            died = False
        with open(log, "rb") as handle:  # noqa: ASYNC230 - a local log, read once per fault
            handle.seek(offset)
            fired = f"faultpoint {fault.point} fired".encode() in handle.read()
        run.result.fired = run.result.busy = fired
        run.event(
            f"fault point {'fired' if fired else 'not hit'}{', process died' if died else ''}"
        )
        took = await mesh.restart(fault.target)
        run.event(f"{fault.target} restarted without FAULTPOINTS, serving after {took:.2f}s")
    finally:
        if fault.scenario == "cancel":
            await run.release_matching()


async def _drive_venue(mesh: ChaosMesh, run: Run) -> None:
    await run.burst_with_venue_fault()


DRIVERS = {"kill": _drive_kill, "point": _drive_point, "venue": _drive_venue}


async def _heal(mesh: ChaosMesh) -> list[str]:
    dead = mesh.dead_components()
    for name in dead:
        await mesh.restart(name)
    return dead


async def run_group(
    mesh: ChaosMesh,
    fault: Fault,
    seeds: Sequence[int],
    shape: Shape,
) -> list[RunResult]:
    """Run ``fault`` once per seed on ``mesh``; return one result per seed."""
    started = time.monotonic()
    phases: list[str] = []

    def phase(name: str, since: float) -> float:
        now = time.monotonic()
        phases.append(f"{name} {now - since:.1f}s")
        return now

    crashed_before = await _heal(mesh)
    plans = [plan_run(seed, fault, shape) for seed in seeds]
    async with aiohttp.ClientSession() as session:
        runs = [Run(mesh, session, plan) for plan in plans]
        await asyncio.gather(*(run.setup() for run in runs))
        mark = phase("setup", started)
        previous: Run | None = None
        for run in runs:
            if crashed_before:
                run.event(f"components found dead before the group and restarted: {crashed_before}")
            if previous is not None and fault.venue_rule == "not_found_lag":
                # Rules match a path for every account: this run's "not found" answers must not
                # meet the previous run's lookups, or one order stays hidden across both runs'
                # rules, longer than the resend lag (the fault model says shorter).
                await previous.wait_quiet(time.monotonic() + SETTLE_SECONDS)
            previous = run
            try:
                await DRIVERS[fault.kind](mesh, run)
            except Exception as e:
                run.result.violations.append(f"harness: driving failed: {type(e).__name__}: {e}")
                await _heal(mesh)
        mark = phase("drive", mark)
        deadline = time.monotonic() + (SLOW_SETTLE_SECONDS if fault.slow else SETTLE_SECONDS)
        settled = await asyncio.gather(*(run.wait_quiet(deadline) for run in runs))
        await asyncio.sleep(LINGER_SECONDS)
        mark = phase("settle", mark)
        crashed = mesh.dead_components()
        results = []
        for run, quiet in zip(runs, settled, strict=True):
            result = await run.check()
            result.settled = quiet
            if crashed:
                result.violations.append(f"components exited on their own: {crashed}")
            results.append(result)
        if fault.expect_rejected:
            sent = sum(run.consumed_orders for run in runs)
            rejected = sum(run.rejected for run in runs)
            resent = sum(run.resent for run in runs)
            # Each copy that met the reject ends REJECTED, unless the engine never heard the
            # reject: then it is UNKNOWN, proven absent and re-sent (attempts > 1), never lost.
            if not rejected <= sent <= rejected + resent:
                for result in results:
                    result.rejects += 1
                    result.violations.append(
                        f"rejects: {sent} copies of this group met a definitive reject, but "
                        f"{rejected} intents are REJECTED and {resent} were re-sent after an "
                        "unknown outcome (a reject retried, or a copy lost)"
                    )
            elif sent != rejected:
                for run in runs:
                    run.event(
                        f"{sent - rejected} of the group's {sent} rejects went unheard "
                        "(engine deadline first): proven absent, re-sent"
                    )
        mark = phase("check", mark)
        await asyncio.gather(*(run.retire() for run in runs))
    await _heal(mesh)
    phase("retire", mark)
    elapsed = time.monotonic() - started
    for run in runs:
        run.event(f"group of {len(runs)} seeds on {mesh.backend}: {', '.join(phases)}")
        run.result.seconds = elapsed / len(runs)
    return results
