"""Issue #15's depth faults through the REST API, with the emulators' records as ground truth.

One mesh for the four cases, with time compressed for them:

* The engine's resolver rounds are a minute apart (``RESOLVER_INTERVAL_MS``): only the lookup
  made as soon as a send's outcome becomes unknown (the resolver's chase) can settle a copy in
  seconds. The resend lag is 3 s (``RESEND_LAG_SECONDS``, 90 s in production), the broker's
  venue timeout 2 s (``ORDER_TIMEOUT_MS``).
* Reconciliation's whole budget is 2 s (``RECONCILE_BUDGET_MS``, 5 s in production), well
  under the gateway's 15 s deadline.

The leader trades on simulated Binance, the follower is on simulated Kraken: the emulators'
fault rules match a method and a path on a whole venue, so a rule on Kraken's AddOrder meets
the copy and never the leader's own order, and a rule on Binance's ``/api/v3/`` meets the
leader's reads and never the follower's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import aiohttp
import pytest

from meshctl.api import RestClient, SimAdmin
from meshctl.demo import leader_client, register_keys
from meshctl.launcher import Mesh, Ports
from tests.e2e.helpers import print_logs, rfc3339, wait_for

T = TypeVar("T")

RECONCILE_BUDGET_S = 2.0
BROKER_TIMEOUT_S = 2.0
RESEND_LAG_S = 3
DEPTH_ENV = {
    "engine": {"RESOLVER_INTERVAL_MS": "60000", "RESEND_LAG_SECONDS": str(RESEND_LAG_S)},
    "broker": {
        "ORDER_TIMEOUT_MS": str(int(BROKER_TIMEOUT_S * 1000)),
        "RESEND_SAFE_AFTER_SECONDS": str(RESEND_LAG_S),
    },
    "recon": {"RECONCILE_BUDGET_MS": str(int(RECONCILE_BUDGET_S * 1000))},
}
SETTLED_S = 10.0
"""How soon after the leader's trade a copy whose send went unknown must be settled: a few
chase lookups, far under the minute between the resolver's rounds."""
ADD_ORDER = "/0/private/AddOrder"
REFUSED_KEY = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}


@pytest.fixture(scope="module")
def mesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mesh]:
    """One mesh on SQLite for the module (the faults are the venues' and the processes', not
    the storage's), with the compressed times above."""
    instance = Mesh(
        tmp_path_factory.mktemp("depth") / "mesh",
        ports=Ports.free(),
        log_level="INFO",
        component_env=DEPTH_ENV,
    )
    failed_before = request.session.testsfailed
    instance.start()
    try:
        asyncio.run(instance.wait_ready(timeout=60))
        yield instance
    finally:
        if request.session.testsfailed > failed_before:
            print_logs(instance)
        instance.stop()


@pytest.fixture
def kraken(mesh: Mesh, session: aiohttp.ClientSession) -> SimAdmin:
    """The Kraken emulator's admin API."""
    return SimAdmin(session, mesh.venue_urls["kraken"])


async def _poll(
    what: str,
    read: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout: float,  # noqa: ASYNC109 - a polling deadline
) -> T:
    """Read (through ``wait_for``) until ``done`` holds for what was read; a failure names
    ``what`` and the last reading."""
    last: list[T] = []

    async def check() -> tuple[T] | None:
        last[:] = [await read()]
        return (last[0],) if done(last[0]) else None

    try:
        return (await wait_for(check, timeout))[0]
    except AssertionError:
        raise AssertionError(f"{what} not within {timeout} s; last: {last!r}") from None


async def _start(
    api: RestClient, binance: SimAdmin, kraken: SimAdmin, **settings: Any
) -> tuple[str, dict[str, str], dict[str, str]]:
    """A leader on Binance copied into a Kraken follower; return (config_id, both keys)."""
    leader_id, leader_keys = await register_keys(
        api, binance, "binance", "leader", {"USDT": "100000"}
    )
    follower_id, follower_keys = await register_keys(
        api, kraken, "kraken", "follower", {"USD": "10000"}
    )
    config = await api.call(
        "POST",
        "/start",
        {"source_exchange_id": leader_id, "target_exchange_ids": [follower_id], **settings},
    )
    return config["config_id"], leader_keys, follower_keys


async def _streaming(api: RestClient, config_id: str) -> None:
    # The leader's fills come over the stream once it is up: the signal reaches the engine
    # well inside a short max_signal_age, instead of at the next poll.
    await _poll(
        "the leader's fill stream",
        lambda: api.call("GET", f"/status/{config_id}"),
        lambda status: status.get("sync_mode") == "SYNC_MODE_WEBSOCKET",
        timeout=20,
    )


async def _leader_buys(mesh: Mesh, keys: dict[str, str]) -> None:
    exchange = leader_client(mesh.venue_urls["binance"], keys)
    try:
        await exchange.create_order("BTC/USDT", "market", "buy", 0.1)
    finally:
        await exchange.close()


async def _copies(api: RestClient, config_id: str) -> list[dict[str, Any]]:
    return list((await api.call("GET", f"/orders/{config_id}")).get("orders", []))


async def test_a_copy_the_venue_took_but_answered_too_late_is_filled_in_seconds_once(
    mesh: Mesh, api: RestClient, binance: SimAdmin, kraken: SimAdmin
) -> None:
    config_id, leader_keys, follower_keys = await _start(
        api, binance, kraken, sync_settings={"sync_interval": 1}
    )
    await _streaming(api, config_id)
    # Kraken places the copy, then holds its reply past the broker's timeout: the outcome of
    # the send is unknown to the engine, though the order is filled at the venue.
    await kraken._call(
        "POST",
        "faults",
        {
            "method": "POST",
            "path": ADD_ORDER,
            "execute": True,
            "delay_s": BROKER_TIMEOUT_S + 1.0,
            "count": 1,
        },
    )
    try:
        await _leader_buys(mesh, leader_keys)
        [copy] = await _poll(
            "the copy filled",
            lambda: _copies(api, config_id),
            lambda copies: [c["state"] for c in copies] == ["INTENT_STATE_FILLED"],
            timeout=SETTLED_S,
        )
        assert await kraken._call("GET", "faults") == [], "the late reply never happened"
    finally:
        await kraken._call("DELETE", "faults")
    orders = await kraken.orders(follower_keys["api_key"])
    assert [o["client_order_id"] for o in orders] == [copy["client_order_id"]]
    assert Decimal(str(orders[0]["filled_quantity"])) == Decimal(copy["filled_quantity"]) > 0
    assert int(copy.get("attempts", 0)) == 1, "the copy was sent again"
    await api.call("POST", "/stop", {"config_id": config_id})


async def test_a_resend_past_max_signal_age_is_skipped_stale_and_never_reaches_the_venue(
    mesh: Mesh, api: RestClient, binance: SimAdmin, kraken: SimAdmin
) -> None:
    # The resend lag (3 s) passes max_signal_age (2 s): by the time the venue has proved it
    # never took the copy, the leader's trade is too old to copy.
    config_id, leader_keys, follower_keys = await _start(
        api,
        binance,
        kraken,
        sync_settings={"sync_interval": 1},
        copy_settings={"max_signal_age_seconds": RESEND_LAG_S - 1},
    )
    await _streaming(api, config_id)
    # Kraken reads the copy's request, drops it and resets the connection: the broker cannot
    # tell whether the order was placed, and every lookup then says it does not exist.
    await kraken._call(
        "POST",
        "faults",
        {"method": "POST", "path": ADD_ORDER, "execute": False, "reset": True, "count": 1},
    )
    try:
        await _leader_buys(mesh, leader_keys)
        [copy] = await _poll(
            "the copy skipped",
            lambda: _copies(api, config_id),
            lambda copies: [c["state"] for c in copies] == ["INTENT_STATE_SKIPPED"],
            timeout=SETTLED_S,
        )
        assert await kraken._call("GET", "faults") == [], "the reset never happened"
    finally:
        await kraken._call("DELETE", "faults")
    assert copy["reason"] == "stale_on_resend"
    assert copy["client_order_id"]
    # SKIPPED is final: the engine never sends it again, and the venue never had it.
    assert await kraken.orders(follower_keys["api_key"]) == []
    await api.call("POST", "/stop", {"config_id": config_id})


async def test_a_leader_venue_refusing_the_keys_shows_in_the_status_until_it_accepts_them(
    mesh: Mesh, api: RestClient, binance: SimAdmin, kraken: SimAdmin
) -> None:
    config_id, _, _ = await _start(
        api,
        binance,
        kraken,
        sync_settings={"sync_interval": 1, "enable_websocket": False, "max_retries": 1},
    )

    async def status() -> dict[str, Any]:
        return dict(await api.call("GET", f"/status/{config_id}"))

    await _poll(
        "a first read of the leader",
        status,
        lambda s: bool(s.get("last_sync_time")) and not s.get("source_error"),
        timeout=15,
    )
    # Binance answers every spot call as it answers a key it does not accept.
    await binance._call(
        "POST",
        "faults",
        {"method": "*", "path": "/api/v3/*", "status": 401, "body": REFUSED_KEY, "count": -1},
    )
    try:
        failing = await _poll(
            "the cause in the status",
            status,
            lambda s: "BROKER_CREDENTIALS_REJECTED" in s.get("source_error", ""),
            timeout=15,
        )
        assert REFUSED_KEY["msg"] in failing["source_error"]
    finally:
        await binance._call("DELETE", "faults")
    await _poll("the error gone", status, lambda s: not s.get("source_error"), timeout=15)
    await api.call("POST", "/stop", {"config_id": config_id})


async def test_a_reconciliation_with_the_engine_frozen_is_a_report_with_an_error_not_a_504(
    mesh: Mesh, api: RestClient, binance: SimAdmin, kraken: SimAdmin
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    config_id, _, _ = await _start(api, binance, kraken, sync_settings={"sync_interval": 1})

    async def reconcile() -> dict[str, Any]:
        body = {
            "config_id": config_id,
            "start_time": rfc3339(started),
            "end_time": rfc3339(datetime.now(UTC)),
        }
        # Bounded well under the gateway's 15 s deadline, which a wait past the budget meets.
        async with asyncio.timeout(RECONCILE_BUDGET_S + 8):
            return dict((await api.call("POST", "/reconcile", body))["report"])

    mesh.pause("engine")  # SIGSTOP: it holds its sockets and answers nothing
    try:
        frozen = await reconcile()
    finally:
        mesh.resume("engine")
    errors = [i for i in frozen.get("items", []) if i["outcome"] == "ITEM_OUTCOME_ERROR"]
    assert errors and int(frozen["error_count"]) == len(errors), frozen
    assert "the engine" in errors[0]["detail"], errors
    # Awake again, the engine is read as before: a report without errors.
    normal = await _poll(
        "a reconciliation without errors",
        reconcile,
        lambda report: not int(report.get("error_count", 0)),
        timeout=15,
    )
    assert normal["reconciliation_id"] != frozen["reconciliation_id"]
    await api.call("POST", "/stop", {"config_id": config_id})
