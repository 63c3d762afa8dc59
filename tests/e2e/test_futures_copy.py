"""Through the REST API and the Binance emulator's USDⓈ-M futures: a futures leader's position
changes are copied as position changes (issue #18). The follower's leverage is set to at most
its max_leverage before its first order, it gets its share of the leader's long, the leader
halving it makes the follower halve its own with a reduce-only order, and the leader's
liquidation closes the follower (reduce-only), never opens a short. A second follower sizing
on margin (``futures_sizing`` margin) commits the leader's margin share at its own 3x: the
leader's first entry from flat carries its 10x, read by sync before any position existed. The
emulator's ``/_sim/futures`` records are the ground truth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from meshctl.api import RestClient, SimAdmin
from meshctl.demo import futures_client, register_futures_keys
from meshctl.launcher import Mesh
from tests.e2e.helpers import wait_for

PERP = "BTC/USDT:USDT"


async def _admin(sim: SimAdmin, method: str, path: str, body: Any = None) -> Any:
    async with sim.session.request(method, f"{sim.base_url}/_sim/futures{path}", json=body) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def _position(sim: SimAdmin, api_key: str) -> Decimal:
    positions = await _admin(sim, "GET", f"/accounts/{api_key}/positions")
    return sum((Decimal(p["amount"]) for p in positions if p["symbol"] == "BTCUSDT"), Decimal(0))


async def test_a_futures_leaders_position_changes_are_copied_as_position_changes(
    mesh: Mesh, api: RestClient, binance: SimAdmin
) -> None:
    leader_id, leader_keys = await register_futures_keys(api, binance, "leader", "10000")
    follower_id, follower_keys = await register_futures_keys(api, binance, "follower", "10000")
    margin_id, margin_keys = await register_futures_keys(api, binance, "margin", "10000")
    leader = futures_client(mesh.venue_urls["binance"], leader_keys)
    # The leader trades at 10x, set while it is flat, before it is followed.
    await leader.set_leverage(10, PERP)
    started = datetime.now(UTC)
    config_id = (
        await api.call(
            "POST",
            "/start",
            {
                "source_exchange_id": leader_id,
                "target_exchange_ids": [follower_id],
                "risk_limits": {"max_leverage": "3"},
                "copy_settings": {"sizing_mode": "multiplier", "multiplier": "0.4"},
                "sync_settings": {"sync_interval": 1},
            },
        )
    )["config_id"]
    margin_config = (
        await api.call(
            "POST",
            "/start",
            {
                "source_exchange_id": leader_id,
                "target_exchange_ids": [margin_id],
                "risk_limits": {"max_leverage": "3"},
                "copy_settings": {
                    "sizing_mode": "multiplier",
                    "multiplier": "0.4",
                    "futures_sizing": "margin",
                },
                "sync_settings": {"sync_interval": 1},
            },
        )
    )["config_id"]

    async def copies(
        count: int, config: str = config_id
    ) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
        async def done() -> list[dict[str, Any]]:
            orders = (await api.call("GET", f"/orders/{config}")).get("orders", [])
            final = [
                o
                for o in orders
                if o["state"]
                in ("INTENT_STATE_FILLED", "INTENT_STATE_SKIPPED", "INTENT_STATE_REJECTED")
            ]
            return sorted(final, key=lambda o: int(o["sequence"])) if len(final) >= count else []

        return done

    try:
        # The leader opens a 0.5 BTC long at 10x: the follower (multiplier 0.4) opens 0.2 at
        # no more than its max_leverage, set before its first order.
        await leader.create_order(PERP, "market", "buy", 0.5)
        (opened,) = await wait_for(await copies(1))
        assert opened["state"] == "INTENT_STATE_FILLED", opened
        assert not opened.get("reduce_only")
        assert await _position(binance, follower_keys["api_key"]) == Decimal("0.2")
        settings = await _admin(binance, "GET", f"/accounts/{follower_keys['api_key']}/settings")
        assert settings["BTCUSDT"]["leverage"] == 3  # 10x at the leader, at most 3x here
        # On margin: 0.4 of the leader's 2,500 margin (25,000 at 10x) is 1,000, at 3x 3,000 of
        # notional: 0.06 BTC (sized on notional, 0.2 BTC would commit 3,333 of margin).
        (by_margin,) = await wait_for(await copies(1, margin_config))
        assert by_margin["state"] == "INTENT_STATE_FILLED", by_margin
        assert Decimal(by_margin["quantity"]) == Decimal("0.06")
        assert await _position(binance, margin_keys["api_key"]) == Decimal("0.06")

        # The leader closes half: the follower closes half of its own, reduce-only.
        await leader.create_order(PERP, "market", "sell", 0.25)
        _, reduced = await wait_for(await copies(2))
        assert reduced["state"] == "INTENT_STATE_FILLED", reduced
        assert reduced["reduce_only"] and Decimal(reduced["quantity"]) == Decimal("0.1")
        assert await _position(binance, follower_keys["api_key"]) == Decimal("0.1")

        # The status shows the follower's position as the venue records it, and reconciliation
        # matches it (long 0.1: what the entry and the reduce-only exit should have left).
        [truth] = [
            p
            for p in await _admin(binance, "GET", f"/accounts/{follower_keys['api_key']}/positions")
            if p["symbol"] == "BTCUSDT"
        ]
        status = await api.call("GET", f"/status/{config_id}")
        [shown] = [p for p in status["positions"] if p.get("symbol") == PERP]
        assert (shown["exchange_id"], shown["side"], shown["asset"]) == (follower_id, "long", "BTC")
        assert Decimal(shown["quantity"]) == Decimal(shown["contracts"]) == Decimal(truth["amount"])
        assert Decimal(shown["entry_price"]) == Decimal(truth["entry_price"])
        assert Decimal(shown["mark_price"]) == Decimal(truth["mark_price"])
        assert Decimal(shown["unrealized_pnl"]) == Decimal(truth["unrealized_pnl"])
        [account] = status["accounts"]
        [copied] = [p for p in account["positions"] if p["symbol"] == PERP]
        assert (copied["side"], Decimal(copied["quantity"])) == ("long", Decimal("0.1"))
        window = {"config_id": config_id, "start_time": started.isoformat().replace("+00:00", "Z")}
        report = (await api.call("POST", "/reconcile", window))["report"]
        [held] = [i for i in report["items"] if i.get("kind") == "position"]
        assert held["outcome"] == "ITEM_OUTCOME_MATCHED", held
        assert (held["symbol"], held["venue_side"], held["expected_side"]) == (PERP, "long", "long")
        assert (
            Decimal(held["venue_position"]) == Decimal(held["expected_position"]) == Decimal("0.1")
        )
        assert report["missing_count"] == report["duplicate_count"] == 0
        # The leader's long after its half close is 0.25: the follower's 0.1 is its 0.4 share.
        assert held["detail"].endswith(
            "the leader holds long 0.25 after the last fill copied (the expected position is 0.4"
            " of it)"
        ), held

        # The leader is liquidated (its mark falls below its liquidation price): the follower's
        # copy closes its whole long reduce-only, and never opens a short.
        mark = Decimal((await _admin(binance, "GET", "/prices"))["BTCUSDT"])
        moved = await _admin(
            binance, "POST", "/prices", {"symbol": "BTCUSDT", "price": str(mark * Decimal("0.15"))}
        )
        assert any(o["client_order_id"].startswith("autoclose-") for o in moved["orders"])
        assert await _position(binance, leader_keys["api_key"]) == 0
        *_, closed = await wait_for(await copies(3))
        assert closed["state"] == "INTENT_STATE_FILLED", closed
        assert closed["reduce_only"] and Decimal(closed["quantity"]) == Decimal("0.1")
        assert await _position(binance, follower_keys["api_key"]) == 0
        venue_orders = await _admin(binance, "GET", f"/accounts/{follower_keys['api_key']}/orders")
        assert [o["reduce_only"] for o in venue_orders] == [False, True, True]
    finally:
        await leader.close()
        await api.call("POST", "/stop", {"config_id": config_id})
        await api.call("POST", "/stop", {"config_id": margin_config})
