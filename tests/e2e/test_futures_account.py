"""Through the REST API: a user's Binance keys, registered once more as a USDⓈ-M futures
account (``binanceusdm``), are tested and accepted, and the futures venue lists its perpetuals;
the Binance emulator's futures wallet is the venue's truth (issue #18)."""

from __future__ import annotations

import pytest

from meshctl.api import RestClient, SimAdmin
from meshctl.launcher import Mesh

# One mesh on SQLite (CI's budget): registering an account is stored as any other; the broker
# store runs on both backends in its service tests.
pytestmark = pytest.mark.parametrize("mesh", ["sqlite"], indirect=True)


async def test_binance_keys_register_as_a_futures_account(
    mesh: Mesh, api: RestClient, binance: SimAdmin
) -> None:
    keys = await binance.create_account({"USDT": "100"}, can_trade=True, can_withdraw=False)
    url = f"{binance.base_url}/_sim/futures/accounts/{keys['api_key']}/wallet"
    async with binance.session.post(url, json={"amount": "5000"}) as funded:
        assert funded.status == 200 and (await funded.json())["balance"] == "5000"
    credentials = {"api_key": keys["api_key"], "api_secret": keys["api_secret"]}

    tested = await api.call("POST", "/test-broker", {"exchange_name": "binanceusdm", **credentials})
    assert tested["ok"] and tested["can_trade"] and not tested.get("can_withdraw")

    for venue in ("binance", "binanceusdm"):
        await api.call(
            "POST", "/exchanges", {"exchange_name": venue, "label": venue, **credentials}
        )
    listed = (await api.call("GET", "/exchanges"))["exchanges"]
    assert sorted(e["exchange_name"] for e in listed) == ["binance", "binanceusdm"]

    supported = {
        v["exchange_name"]: v for v in (await api.call("GET", "/supported-exchanges"))["exchanges"]
    }
    futures = supported["binanceusdm"]
    assert "BTC/USDT:USDT" in [m["symbol"] for m in futures["markets"]]
    assert {"reduce_only", "positions", "leverage"} <= set(futures["features"])
