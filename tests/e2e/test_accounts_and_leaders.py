"""Public leaders and accounts in use, through REST and the Binance emulator, on one mesh.

Alice publishes her leader account; Bob follows it with his own account and the emulator
records Bob's copy of Alice's trade; Bob never reaches Alice's account; a used account's
removal is 409 naming what uses it; Alice unpublishes and Bob's configuration stops with the
reason. One test, so that one mesh serves both items (docs/public-leaders.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp

from meshctl.api import ApiError, RestClient, SimAdmin
from meshctl.demo import create_user, leader_client, register_keys
from meshctl.launcher import Mesh
from tests.e2e.helpers import rfc3339, wait_for


async def _refused(client: RestClient, method: str, path: str, body: Any = None) -> ApiError:
    try:
        await client.call(method, path, body)
    except ApiError as e:
        return e
    raise AssertionError(f"{method} {path} was not refused")


async def test_a_published_leader_is_copied_by_another_user_until_it_is_unpublished(
    mesh: Mesh,
    api: RestClient,
    binance: SimAdmin,
    session: aiohttp.ClientSession,
) -> None:
    alice = api
    bob = RestClient(session, mesh.gateway_url, await create_user(mesh, "bob"))
    carol = RestClient(session, mesh.gateway_url, await create_user(mesh, "carol", "free"))
    leader_account, leader_keys = await register_keys(
        alice, binance, "binance", "leader", {"USDT": "100000"}
    )
    follower_account, follower_keys = await register_keys(
        bob, binance, "binance", "follower", {"USDT": "10000"}
    )

    # Bob can neither publish, copy nor remove Alice's account.
    for method, path, body in [
        ("POST", "/leaders", {"exchange_id": leader_account, "display_name": "mine now"}),
        (
            "POST",
            "/start",
            {"source_exchange_id": leader_account, "target_exchange_ids": [follower_account]},
        ),
        ("DELETE", f"/exchanges/{leader_account}", None),
    ]:
        assert (await _refused(bob, method, path, body)).status == 404, path

    published = await alice.call(
        "POST", "/leaders", {"exchange_id": leader_account, "display_name": "Alice BTC"}
    )
    leader_id = published["leader"]["leader_id"]
    listed = (await bob.call("GET", "/leaders"))["leaders"]
    assert [(x["leader_id"], x["display_name"], x["exchange_name"]) for x in listed] == [
        (leader_id, "Alice BTC", "binance")
    ]
    assert listed[0]["exchange_id"] == "" and listed[0]["mine"] is False
    assert (await _refused(bob, "DELETE", f"/leaders/{leader_id}")).status == 404
    follow = {"source_leader_id": leader_id, "target_exchange_ids": [follower_account]}
    assert (await _refused(carol, "POST", "/start", follow)).status == 403  # not pro
    config = await bob.call("POST", "/start", follow)
    config_id = config["config_id"]
    assert config["config"]["source_leader_id"] == leader_id
    assert config["config"]["source_exchange_id"] == ""

    started = datetime.now(UTC) - timedelta(seconds=1)
    exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
    try:
        await exchange.create_order("BTC/USDT", "market", "buy", 0.1)
    finally:
        await exchange.close()

    async def follower_orders():
        return await binance.orders(follower_keys["api_key"])

    orders = await wait_for(follower_orders)
    assert len(orders) == 1
    # 0.1 BTC x Bob's equity 10,000 / Alice's ~100,000 USDT, rounded down to 0.00001.
    assert Decimal(str(orders[0]["quantity"])) == Decimal("0.01")
    assert len(await binance.orders(leader_keys["api_key"])) == 1  # Alice's own order only

    copied = (await bob.call("GET", f"/orders/{config_id}"))["orders"]
    assert [(o["client_order_id"], o["source_id"]) for o in copied] == [
        (orders[0]["client_order_id"], leader_id)
    ]
    status = await bob.call("GET", f"/status/{config_id}")
    assert {p["exchange_id"] for p in status["positions"]} <= {follower_account}
    assert [a["exchange_id"] for a in status["accounts"]] == [follower_account]
    assert leader_account not in str(status) and leader_account not in str(copied)

    async def one_trade_listed():
        leaders = (await bob.call("GET", "/leaders"))["leaders"]
        return leaders if int(leaders[0]["trade_count"]) == 1 else None

    await wait_for(one_trade_listed)
    # Reconciliation proves Bob's copy against Alice's fill, without Bob reading her account.
    report = (
        await bob.call(
            "POST",
            "/reconcile",
            {
                "config_id": config_id,
                "start_time": rfc3339(started),
                "end_time": rfc3339(datetime.now(UTC)),
            },
        )
    )["report"]
    copies = [i for i in report["items"] if i.get("kind", "copy") == "copy"]
    assert [(i["client_order_id"], i["outcome"]) for i in copies] == [
        (orders[0]["client_order_id"], "ITEM_OUTCOME_MATCHED")
    ]
    assert report["matched_count"] == report["total_count"]

    # Accounts in use: 409 naming what uses them, nothing removed.
    in_use = await _refused(bob, "DELETE", f"/exchanges/{follower_account}")
    assert in_use.status == 409 and config_id in in_use.body["message"]
    in_use = await _refused(alice, "DELETE", f"/exchanges/{leader_account}")
    assert in_use.status == 409 and leader_id in in_use.body["message"]
    assert config_id not in str(in_use.body)  # Bob's configuration is not Alice's to see

    unpublished = await alice.call("DELETE", f"/leaders/{leader_id}")
    assert unpublished["stopped_followers"] == 1
    status = await bob.call("GET", f"/status/{config_id}")
    assert status["config"]["status"] == "COPY_STATUS_STOPPED"
    assert status["config"]["status_reason"] == "leader_unpublished"
    assert (await bob.call("GET", "/leaders"))["leaders"] == []
    await bob.call("DELETE", f"/exchanges/{follower_account}")
    await alice.call("DELETE", f"/exchanges/{leader_account}")
