"""A broker slowed on purpose delays a leader's copies and never skips them for a read that timed
out; slowness that outlasts ``max_signal_age`` skips them as ``stale``, never as unreadable.

The broker's ``GetPortfolio`` and ``GetMarket`` handlers sleep at the fault points
``broker.before_portfolio_read`` and ``broker.before_market_read`` (``FAULTPOINTS``) longer than
the engine's read deadline (``READ_TIMEOUT_MS``), as a broker under load answers late. Each
case runs its own mesh on SQLite (the faults are armed when the broker starts). A leader on
simulated Binance is copied by followers on simulated Binance, Coinbase and Kraken; the
emulators' records are the ground truth.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from meshctl.api import RestClient, SimAdmin
from meshctl.demo import create_user, leader_client, register_keys
from meshctl.launcher import Mesh, Ports
from tests.e2e.helpers import print_logs, wait_for

READ_DEADLINE_S = 0.3
"""The engine's deadline for a broker read (``READ_TIMEOUT_MS``; 5 s in production)."""
PLACE_DEADLINE_S = 1.5
"""The engine's deadline for ``PlaceOrder`` (``PLACE_TIMEOUT_MS``; 20 s in production), above
the broker's own venue timeout (``ORDER_TIMEOUT_MS``, 1 s here; 10 s in production)."""
LATE_REPLIES = 2
"""``PlaceOrder`` calls answered after the engine's deadline (the order is at the venue)."""
LATE_S = 1.0
"""How late the slowed broker answers a read: past the engine's deadline, well inside sync's."""
VENUES = ("binance", "coinbase", "kraken")
FOLLOWERS_PER_VENUE = 2
SLOW_READS = 3 * FOLLOWERS_PER_VENUE * len(VENUES)
"""Reads of each kind answered late (the first ones): each follower's first read, and more."""
MAX_AGE_S = 4
"""The second case's ``max_signal_age_seconds``: the fill reaches the engine well inside it."""
FINAL = {
    f"INTENT_STATE_{state}" for state in ("FILLED", "CANCELED", "EXPIRED", "REJECTED", "SKIPPED")
}
SLOW_LOG = "broker slow (OutcomeUnknown)"
"""What the engine logs when it asks a read again that the broker did not answer in time."""


@contextlib.asynccontextmanager
async def _mesh(data_dir: Path, faults: str) -> AsyncIterator[Mesh]:
    instance = Mesh(
        data_dir,
        ports=Ports.free(),
        log_level="INFO",
        component_env={
            "engine": {
                "READ_TIMEOUT_MS": str(int(READ_DEADLINE_S * 1000)),
                "PLACE_TIMEOUT_MS": str(int(PLACE_DEADLINE_S * 1000)),
            },
            "broker": {"FAULTPOINTS": faults, "ORDER_TIMEOUT_MS": "1000"},
        },
    )
    instance.start()
    failed = True
    try:
        await instance.wait_ready(timeout=60)
        yield instance
        failed = False
    finally:
        if failed:
            print_logs(instance)
        instance.stop()


async def _fan_out(
    mesh: Mesh, http: aiohttp.ClientSession, **settings: Any
) -> tuple[RestClient, str, dict[str, tuple[SimAdmin, str]]]:
    """Followers on the three venues copying a Binance leader that buys once; return the REST
    client, the configuration and each follower's (emulator, api key) by exchange id."""
    api = RestClient(http, mesh.gateway_url, await create_user(mesh, "alice"))
    sims = {venue: SimAdmin(http, mesh.venue_urls[venue]) for venue in VENUES}
    leader_id, leader_keys = await register_keys(
        api, sims["binance"], "binance", "leader", {"USDT": "100000"}
    )
    followers: dict[str, tuple[SimAdmin, str]] = {}
    for index in range(FOLLOWERS_PER_VENUE):
        for venue in VENUES:
            quote = "USDT" if venue == "binance" else "USD"
            exchange_id, keys = await register_keys(
                api, sims[venue], venue, f"{venue}-{index}", {quote: "10000"}
            )
            followers[exchange_id] = (sims[venue], keys["api_key"])
    config = await api.call(
        "POST",
        "/start",
        {
            "source_exchange_id": leader_id,
            "target_exchange_ids": list(followers),
            "copy_settings": {"allow_quote_equivalence": True, **settings},
            "sync_settings": {"sync_interval": 1},
        },
    )
    # No wait for the leader's stream through /status: it reads the followers' portfolios,
    # which would meet the slowed reads before the signal does. A fill the stream misses is
    # found by the next poll, a second later.
    leader = leader_client(mesh.venue_urls["binance"], leader_keys)
    try:
        await leader.create_order("BTC/USDT", "market", "buy", 0.1)
    finally:
        await leader.close()
    return api, config["config_id"], followers


async def _decided(api: RestClient, config_id: str, count: int) -> list[dict[str, Any]]:
    """Every copy of the fill once each is final."""

    async def final() -> list[dict[str, Any]] | None:
        copies = (await api.call("GET", f"/orders/{config_id}")).get("orders", [])
        if len(copies) == count and {c["state"] for c in copies} <= FINAL:
            return list(copies)
        return None

    return await wait_for(final, timeout=30)


def _log(mesh: Mesh, name: str) -> str:
    return (mesh.data_dir / "logs" / f"{name}.log").read_text(errors="replace")


async def test_a_slow_broker_delays_every_copy_and_skips_none(tmp_path: Path) -> None:
    faults = ";".join(
        [
            *(
                f"broker.before_{kind}_read=sleep:{LATE_S}@1-{SLOW_READS}"
                for kind in ("portfolio", "market")
            ),
            # The first orders' replies come after the engine's deadline: their outcome is
            # unknown to the engine until it looks them up, never sent twice, never skipped.
            f"broker.before_reply=sleep:{PLACE_DEADLINE_S + 1}@1-{LATE_REPLIES}",
        ]
    )
    async with _mesh(tmp_path / "mesh", faults) as mesh, aiohttp.ClientSession() as http:
        api, config_id, followers = await _fan_out(mesh, http)
        copies = await _decided(api, config_id, len(followers))
        unfilled = {
            c["target_exchange_id"]: (c["state"], c.get("reason"))
            for c in copies
            if c["state"] != "INTENT_STATE_FILLED"
        }
        assert unfilled == {}, f"copies not filled under a slow broker: {unfilled}"
        # The broker did answer the signal's reads late (each follower's portfolio and market at
        # least), and the engine asked them again.
        assert _log(mesh, "engine").count(SLOW_LOG) >= 2 * len(followers)
        assert f"broker.before_reply fired: sleep:{PLACE_DEADLINE_S + 1:g}" in _log(mesh, "broker")
        late = [c for c in copies if int(c.get("attempts", 0)) != 1]
        assert late == [], f"copies sent more than once: {late}"
        assert {c["target_exchange_id"] for c in copies} == set(followers)
        for copy in copies:
            sim, api_key = followers[copy["target_exchange_id"]]
            orders = await sim.orders(api_key)
            # Exactly the copy, once, filled as the engine says.
            assert [o["client_order_id"] for o in orders] == [copy["client_order_id"]], orders
            assert (
                Decimal(str(orders[0]["filled_quantity"])) == Decimal(copy["filled_quantity"]) > 0
            )
        await api.call("POST", "/stop", {"config_id": config_id})


async def test_a_broker_slow_past_max_signal_age_skips_the_copies_as_stale(
    tmp_path: Path,
) -> None:
    faults = ";".join(
        f"broker.before_{kind}_read=sleep:{LATE_S}" for kind in ("portfolio", "market")
    )
    async with _mesh(tmp_path / "mesh", faults) as mesh, aiohttp.ClientSession() as http:
        api, config_id, followers = await _fan_out(mesh, http, max_signal_age_seconds=MAX_AGE_S)
        copies = await _decided(api, config_id, len(followers))
        assert SLOW_LOG in _log(mesh, "engine"), "the engine never waited for the broker"
        reasons = {c["target_exchange_id"]: (c["state"], c.get("reason")) for c in copies}
        assert reasons == dict.fromkeys(followers, ("INTENT_STATE_SKIPPED", "stale")), reasons
        for sim, api_key in followers.values():
            assert await sim.orders(api_key) == []
        await api.call("POST", "/stop", {"config_id": config_id})
