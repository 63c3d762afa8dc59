"""What a chaos run does, drawn from one seed: followers, leader trades, the fault's parameters.

Everything random in a run comes from ``random.Random(seed)`` here, so a seed names the same
scenario every time (the processes' own timing still varies, as on a real machine).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from chaos_mesh import BROKER_ORDER_TIMEOUT_S

QUOTE = {"binance": "USDT", "binanceusdm": "USDT", "coinbase": "USD", "kraken": "USD"}
LEADER_SYMBOLS = {
    "BTC/USDT": (Decimal("0.01"), Decimal("0.2"), Decimal("0.001")),
    "ETH/USDT": (Decimal("0.2"), Decimal("3"), Decimal("0.01")),
}
LEADER_BALANCES = {"USDT": "100000"}
FUTURES_VENUE = "binanceusdm"
"""The futures leg's venue: Binance USDⓈ-M, on the Binance emulator's /fapi (issue #18)."""
FUTURES_FOLLOWER_USDT = (20_000, 60_001, 1_000)
"""A futures follower's wallet: big enough that most copies clear the perpetuals' minimum
notional (100 USDT on BTC) at the leader's sizes."""
FUTURES_MAX_LEVERAGE = "3"


@dataclass(frozen=True)
class Shape:
    """How big each run is."""

    followers: int = 3
    min_trades: int = 3
    max_trades: int = 6
    venues: tuple[str, ...] = ("binance",)
    max_gap_s: float = 0.4


@dataclass(frozen=True)
class Trade:
    """One leader market order, and the pause after it."""

    symbol: str
    side: str
    amount: Decimal
    gap_s: float


@dataclass(frozen=True)
class Follower:
    """One follower account."""

    venue: str
    balances: Mapping[str, str]


@dataclass(frozen=True)
class Fault:
    """One kind of fault, injected once per run.

    Attributes
    ----------
    name
        The row of the summary table.
    tests
        The catalogue ids it covers (docs/reliability.md §4).
    kind
        ``kill`` (SIGKILL a process at a random moment of the burst), ``point`` (arm a named
        fault point, then restart the process without it) or ``venue`` (emulator fault rules
        for the follower copies of one leader trade).
    target
        The component killed or armed; for a ``venue`` fault, the component killed while the
        venue holds back its reply to an order it has taken.
    point, action
        The fault point and its action (``kill`` by default; ``@n`` is drawn per run).
    hits
        What one hit of the point counts: ``signal`` (once per leader fill) or ``order``
        (once per follower order); the hit number is drawn within that range.
    venue_rule
        The emulator rules (see :func:`venue_rules`); a ``point`` fault may need one too.
    expect_rejected
        For definitive rejects: the reason every rejected copy must name.
    scenario
        ``cancel``: the follower venues hold their matching, so the copies rest; once every
        copy rests the run stops its configurations (which cancels them) with the point armed,
        and the venues release their matching after the restart.
    slow
        Settles only after the broker's own resend floor (an order that never reached the
        venue is proved absent only then).
    """

    name: str
    tests: str
    kind: str
    target: str = ""
    point: str = ""
    action: str = "kill"
    hits: str = "order"
    venue_rule: str = ""
    expect_rejected: str = ""
    slow: bool = False
    scenario: str = ""
    market: str = ""
    """``futures``: the leader and the followers trade Binance USDⓈ-M perpetuals
    (``BTC/USDT:USDT``); the emulator's /_sim/futures/ records are the truth."""

    @property
    def is_futures(self) -> bool:
        """Return whether the run trades perpetuals."""
        return self.market == "futures"

    @property
    def slug(self) -> str:
        """Return the fault's test id (``kill-engine``, ``point-engine.after_broker_ack``)."""
        text = self.name.replace("kill -9", "kill").replace(":", "").replace(",", "")
        return "-".join(text.replace("(", "").replace(")", "").split())


KILLS = [
    Fault("kill -9 engine", "T01-T07 (approx.)", "kill", target="engine"),
    Fault("kill -9 broker", "T13-T15 (approx.)", "kill", target="broker"),
    Fault("kill -9 sync", "T17-T18 (approx.)", "kill", target="sync"),
]
VENUE_FAULTS = [
    Fault("venue: execute, then 504", "T20", "venue", venue_rule="execute_then_504"),
    Fault("venue: execute, then late reply", "T20", "venue", venue_rule="execute_then_late"),
    Fault("venue: 5xx after executing", "T21", "venue", venue_rule="5xx_executed"),
    Fault("venue: 5xx without executing", "T21", "venue", venue_rule="5xx_not_executed", slow=True),
    Fault("venue: reset after executing", "T22", "venue", venue_rule="reset_executed"),
    Fault(
        "venue: reset without executing", "T22", "venue", venue_rule="reset_not_executed", slow=True
    ),
    Fault("venue: not-found lag", "T23", "venue", venue_rule="not_found_lag"),
    Fault(
        "venue: order taken, broker killed before reply",
        "T14",
        "venue",
        target="broker",
        venue_rule="execute_then_hold",
    ),
    Fault(
        "venue: order taken, engine killed mid-call",
        "T06-T07 (approx.)",
        "venue",
        target="engine",
        venue_rule="execute_then_hold",
    ),
    Fault("venue: duplicate id (order held)", "T24", "venue", venue_rule="duplicate_held"),
    Fault(
        "venue: reject insufficient balance",
        "T25",
        "venue",
        venue_rule="reject_insufficient",
        expect_rejected="insufficient",
    ),
    Fault(
        "venue: reject min notional",
        "T25",
        "venue",
        venue_rule="reject_min_notional",
        expect_rejected="notional",
    ),
]
POINTS = [
    Fault(
        "point engine.on_signal_recv",
        "T01",
        "point",
        "engine",
        "engine.on_signal_recv",
        hits="signal",
    ),
    Fault(
        "point engine.after_inbox_commit",
        "T02",
        "point",
        "engine",
        "engine.after_inbox_commit",
        hits="signal",
    ),
    Fault(
        "point engine.before_risk", "T03", "point", "engine", "engine.before_risk", hits="signal"
    ),
    Fault(
        "point engine.after_intent_commit",
        "T04",
        "point",
        "engine",
        "engine.after_intent_commit",
        hits="signal",
    ),
    Fault("point engine.fanout_after_k", "T05", "point", "engine", "engine.fanout_after_k"),
    Fault("point engine.after_broker_ack", "T06", "point", "engine", "engine.after_broker_ack"),
    Fault(
        "point engine.after_broker_timeout",
        "T07",
        "point",
        "engine",
        "engine.after_broker_timeout",
        hits="once",
        venue_rule="execute_then_504",
    ),
    Fault("point broker.before_send", "T13", "point", "broker", "broker.before_send", slow=True),
    Fault("point broker.after_send", "T14", "point", "broker", "broker.after_send"),
    Fault("point broker.before_reply", "T15", "point", "broker", "broker.before_reply"),
    Fault(
        "point broker.in_cancel",
        "T16",
        "point",
        "broker",
        "broker.in_cancel",
        hits="once",
        scenario="cancel",
    ),
    Fault(
        "point sync.after_fill_seen", "T17", "point", "sync", "sync.after_fill_seen", hits="signal"
    ),
    Fault(
        "point sync.after_outbox", "T18 (S2)", "point", "sync", "sync.after_outbox", hits="signal"
    ),
    Fault(
        "point sync.before_ack_recv",
        "T18 (S3)",
        "point",
        "sync",
        "sync.before_ack_recv",
        hits="signal",
    ),
]
CATALOGUE = KILLS + VENUE_FAULTS + POINTS
FUTURES = [
    Fault(
        f"futures: {kill.name}", f"{kill.tests}, #18", "kill", target=kill.target, market="futures"
    )
    for kill in KILLS
]
"""The futures leg: the kills, with a leader and followers on Binance USDⓈ-M perpetuals."""


@dataclass(frozen=True)
class Plan:
    """One seeded run."""

    seed: int
    fault: Fault
    followers: tuple[Follower, ...]
    trades: tuple[Trade, ...]
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def burst_seconds(self) -> float:
        """Return the planned length of the burst (the pauses between trades)."""
        return sum(t.gap_s for t in self.trades)

    def describe(self) -> str:
        """Return the plan in one paragraph (printed with every failure)."""
        trades = ", ".join(f"{t.side} {t.amount} {t.symbol} (+{t.gap_s:.2f}s)" for t in self.trades)
        followers = ", ".join(f"{f.venue} {dict(f.balances)}" for f in self.followers)
        return (
            f"seed {self.seed}, fault {self.fault.name!r} ({self.fault.tests}), "
            f"params {dict(self.params)}; followers: {followers}; leader trades: {trades}"
        )


def _step_round(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_DOWN) * step


def plan_run(seed: int, fault: Fault, shape: Shape) -> Plan:
    """Draw a run's followers, trades and fault parameters from ``seed``."""
    rng = random.Random(seed)
    if fault.is_futures:
        followers = tuple(
            Follower(FUTURES_VENUE, {"USDT": str(rng.randrange(*FUTURES_FOLLOWER_USDT))})
            for _ in range(shape.followers)
        )
    else:
        followers = tuple(
            Follower(venue, {QUOTE[venue]: str(rng.randrange(2_000, 20_001, 500))})
            for venue in (shape.venues[i % len(shape.venues)] for i in range(shape.followers))
        )
    positions: dict[str, Decimal] = {}
    trades: list[Trade] = []
    for index in range(rng.randint(shape.min_trades, shape.max_trades)):
        symbol = rng.choice(sorted(LEADER_SYMBOLS))
        low, high, step = LEADER_SYMBOLS[symbol]
        held = positions.get(symbol, Decimal(0))
        side = "sell" if index and held >= low and rng.random() < 0.3 else "buy"
        if side == "sell":
            amount = max(_step_round(held * Decimal(str(rng.uniform(0.3, 1.0))), step), low)
            amount = min(amount, held)
        else:
            amount = _step_round(Decimal(str(rng.uniform(float(low), float(high)))), step)
        positions[symbol] = held + (amount if side == "buy" else -amount)
        # A futures leader trades the perpetual: its sells reduce (or close) the long.
        traded = f"{symbol}:USDT" if fault.is_futures else symbol
        trades.append(Trade(traded, side, amount, round(rng.uniform(0.1, shape.max_gap_s), 3)))
    if fault.is_futures and len(trades) > 1 and all(t.side == "buy" for t in trades):
        # A futures run always has an exit (copied reduce-only): its last trade sells part of
        # the first position instead.
        first = trades[0]
        low, _, step = LEADER_SYMBOLS[first.symbol.split(":")[0]]
        held = sum((t.amount for t in trades[:-1] if t.symbol == first.symbol), Decimal(0))
        amount = min(max(_step_round(held / 2, step), low), held)
        trades[-1] = Trade(first.symbol, "sell", amount, trades[-1].gap_s)
    plan = Plan(seed, fault, followers, tuple(trades))
    return Plan(seed, fault, followers, tuple(trades), _params(rng, plan, shape))


def _params(rng: random.Random, plan: Plan, shape: Shape) -> dict[str, Any]:
    fault = plan.fault
    orders = len(plan.trades) * shape.followers
    params: dict[str, Any] = {}
    if fault.kind == "kill":
        # The mesh copies a fill within ~30 ms (the leader's fill stream): the kill comes at a
        # random moment of the window that opens as a random leader trade is sent.
        params["after_trade"] = rng.randrange(len(plan.trades))
        params["kill_delay_s"] = round(rng.uniform(0.0, 0.05), 3)
        params["down_s"] = round(rng.uniform(0.0, 1.0), 3)
    if fault.kind == "point":
        top = {"signal": len(plan.trades), "order": orders, "once": 1}[fault.hits]
        params["hit"] = rng.randint(1, max(top, 1))
    if fault.venue_rule:
        params["trade_index"] = rng.randrange(len(plan.trades))
        params["count"] = (
            1 if fault.venue_rule == "execute_then_hold" else rng.randint(1, shape.followers)
        )
        params.update(_rule_params(rng, fault.venue_rule))
    return params


_5XX_BODIES: list[Any] = [
    None,
    "<html><body><h1>502 Bad Gateway</h1></body></html>",
    {
        "code": -1006,
        "msg": "An unexpected response was received from the message bus. "
        "Execution status unknown.",
    },
    {
        "code": -1007,
        "msg": "Timeout waiting for response from backend server. Send status "
        "unknown; execution status unknown.",
    },
]


def _rule_params(rng: random.Random, rule: str) -> dict[str, Any]:
    if rule in ("5xx_executed", "5xx_not_executed"):
        return {"status": rng.choice([500, 502, 503]), "body": rng.randrange(len(_5XX_BODIES))}
    if rule == "not_found_lag":
        return {"lookups": rng.randint(3, 8)}
    return {}


NOT_FOUND_LAG_MAX_SECONDS = 2.0
"""The longest the not-found lag lasts: under the chaos RESEND_LAG_SECONDS (3). A venue that
hides an order for longer than the configured lag makes a resend legitimate (docs §2.4), and
Binance and Kraken take a client order id again once its order is closed: a duplicate."""

HOLD_REPLY_S = BROKER_ORDER_TIMEOUT_S * 0.75
"""How long the venue holds a reply back while the waiting process is killed (under the
broker's timeout, so the broker is still waiting)."""

ORDER_PATH = {
    "binance": ("POST", "/api/v3/order"),
    "coinbase": ("POST", "/api/v3/brokerage/orders"),
    "kraken": ("POST", "/0/private/AddOrder"),
}
LOOKUP_PATH = {
    "binance": ("GET", "/api/v3/order"),
    "coinbase": ("GET", "/api/v3/brokerage/orders/historical/*"),
    "kraken": ("POST", "/0/private/QueryOrders"),
}


def venue_rules(plan: Plan, venue: str) -> list[dict[str, Any]]:
    """Return the emulator fault rules of the plan's fault for the copies sent to ``venue``."""
    rule, params = plan.fault.venue_rule, plan.params
    method, path = ORDER_PATH[venue]
    base = {"method": method, "path": path, "count": params.get("count", 1)}
    if rule == "execute_then_504":
        return [{**base, "execute": True, "status": 504, "body": None}]
    if rule == "execute_then_hold":
        return [{**base, "execute": True, "status": None, "delay_s": HOLD_REPLY_S}]
    if rule == "execute_then_late":
        return [{**base, "execute": True, "status": None, "delay_s": BROKER_ORDER_TIMEOUT_S + 1.0}]
    if rule in ("5xx_executed", "5xx_not_executed"):
        body = _5XX_BODIES[params["body"]] if venue == "binance" else None
        return [
            {**base, "execute": rule == "5xx_executed", "status": params["status"], "body": body}
        ]
    if rule in ("reset_executed", "reset_not_executed"):
        return [{**base, "execute": rule == "reset_executed", "reset": True}]
    if rule == "not_found_lag":
        lookup_method, lookup_path = LOOKUP_PATH[venue]
        # The venue hides the order for at most NOT_FOUND_LAG_MAX_SECONDS from now (the rule's
        # ttl, kept by the emulator itself): longer would make a resend legitimate.
        return [
            {**base, "count": 1, "execute": True, "status": 504, "body": None},
            {
                "method": lookup_method,
                "path": lookup_path,
                "count": params["lookups"],
                "status": 400 if venue == "binance" else 404,
                "body": _not_found(venue),
                "ttl_s": NOT_FOUND_LAG_MAX_SECONDS,
            },
        ]
    if rule == "duplicate_held":
        return [{**base, "execute": True, "status": 400, "body": _duplicate(venue)}]
    if rule == "reject_insufficient":
        return [{**base, "execute": False, **_insufficient(venue)}]
    if rule == "reject_min_notional":
        return [{**base, "execute": False, **_min_notional(venue)}]
    raise ValueError(f"unknown venue rule {rule!r}")


def _not_found(venue: str) -> Any:
    if venue == "binance":
        return {"code": -2013, "msg": "Order does not exist."}
    if venue == "kraken":
        return {"error": ["EOrder:Unknown order"], "result": {}}
    return {"error": "unknown", "error_details": "order with this orderID was not found"}


def _duplicate(venue: str) -> Any:
    if venue == "binance":
        return {"code": -2010, "msg": "Duplicate order sent."}
    return {"error": ["EOrder:Duplicate order"], "result": {}}


def _insufficient(venue: str) -> dict[str, Any]:
    if venue == "binance":
        return {
            "status": 400,
            "body": {
                "code": -2010,
                "msg": "Account has insufficient balance for requested action.",
            },
        }
    if venue == "kraken":
        return {"status": 200, "body": {"error": ["EOrder:Insufficient funds"], "result": {}}}
    return _coinbase_failure("INSUFFICIENT_FUND", "PREVIEW_INSUFFICIENT_FUND")


def _min_notional(venue: str) -> dict[str, Any]:
    if venue == "binance":
        return {"status": 400, "body": {"code": -1013, "msg": "Filter failure: NOTIONAL"}}
    if venue == "kraken":
        return {"status": 200, "body": {"error": ["EOrder:Cost minimum not met"], "result": {}}}
    return _coinbase_failure("INVALID_QUOTE_SIZE", "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL")


def _coinbase_failure(error: str, preview: str) -> dict[str, Any]:
    # Coinbase rejects with HTTP 200 and success false; ccxt reads preview_failure_reason.
    return {
        "status": 200,
        "body": {
            "success": False,
            "failure_reason": "UNKNOWN_FAILURE_REASON",
            "error_response": {
                "error": error,
                "message": error.lower(),
                "preview_failure_reason": preview,
            },
        },
    }
