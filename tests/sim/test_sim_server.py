"""The emulator launcher: venue registry, ports, CLI options and the ccxt URL helper."""

from __future__ import annotations

import aiohttp
import ccxt
import ccxt.pro
import pytest

from exchange_sim import VENUES, start_venues
from exchange_sim.ccxt_urls import binance_options, point_ccxt_at
from exchange_sim.server import parse_args


async def test_port_zero_picks_a_free_port_and_reports_it() -> None:
    cluster = await start_venues(("binance",))
    try:
        url = cluster.urls["binance"]
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        async with (
            aiohttp.ClientSession() as session,
            session.get(url + "/api/v3/ping") as response,
        ):
            assert response.status == 200 and await response.json() == {}
            assert response.headers["X-MBX-USED-WEIGHT-1M"] == "1"
    finally:
        await cluster.close()


async def test_unknown_venue_is_refused() -> None:
    with pytest.raises(ValueError, match="venues: unknown venue 'ftx'"):
        await start_venues(("ftx",))


def test_cli_defaults_flags_and_environment() -> None:
    args = parse_args([], environ={})
    assert (args.host, args.binance_port, args.rate_limits, args.venues) == (
        "127.0.0.1",
        9101,
        True,
        "binance,coinbase,kraken",
    )
    args = parse_args([], environ={"SIM_RATE_LIMITS": "off", "SIM_BINANCE_PORT": "0"})
    assert (args.rate_limits, args.binance_port) == (False, 0)
    args = parse_args(
        ["--binance-port", "9200", "--rate-limits"], environ={"SIM_RATE_LIMITS": "off"}
    )
    assert (args.rate_limits, args.binance_port) == (True, 9200)
    assert set(VENUES) >= {"binance"} and VENUES["binance"].default_port == 9101


def test_point_ccxt_at_rewrites_exactly_the_emulated_urls() -> None:
    ex = ccxt.pro.binance({"options": binance_options()})
    point_ccxt_at(ex, "http://127.0.0.1:9101/")
    api = ex.urls["api"]
    assert api["public"] == api["private"] == "http://127.0.0.1:9101/api/v3"
    assert api["sapi"] == "http://127.0.0.1:9101/sapi/v1"
    assert (api["fapiPublic"], api["dapiPublic"]) == (
        "http://127.0.0.1:9101/fapi/v1",
        "http://127.0.0.1:9101/dapi/v1",
    )
    assert api["ws"]["ws-api"]["spot"] == "ws://127.0.0.1:9101/ws-api/v3"
    assert (
        ex.options["fetchMarkets"]["types"] == ["spot"] and ex.options["fetchCurrencies"] is False
    )
    with pytest.raises(ValueError, match="no emulator"):
        point_ccxt_at(ccxt.okx(), "http://127.0.0.1:1")


async def test_default_ccxt_options_also_load_markets() -> None:
    import ccxt.async_support as ccxt_async

    cluster = await start_venues(("binance",))
    async with (
        aiohttp.ClientSession() as session,
        session.post(cluster.urls["binance"] + "/_sim/accounts", json={}) as response,
    ):
        creds = await response.json()
    ex = ccxt_async.binance(
        {"apiKey": creds["api_key"], "secret": creds["api_secret"], "enableRateLimit": False}
    )
    point_ccxt_at(ex, cluster.urls["binance"])
    try:
        markets = await ex.load_markets()
        # with default options ccxt also loads the USDⓈ-M perpetuals (/fapi/v1/exchangeInfo)
        assert set(markets) == {
            "BTC/USDT",
            "ETH/USDT",
            "BNB/USDT",
            "BTC/USDT:USDT",
            "ETH/USDT:USDT",
        }
    finally:
        await ex.close()
        await cluster.close()


@pytest.mark.parametrize("venue", ["binance", "coinbase", "kraken"])
async def test_held_matching_through_the_admin_api_leaves_a_ccxt_limit_open_until_released(
    venue: str,
) -> None:
    cluster = await start_venues((venue,))
    url = cluster.urls[venue]
    symbol = "BTC/USDT" if venue == "binance" else "BTC/USD"
    try:
        async with aiohttp.ClientSession() as session:

            async def admin(path: str, body: object) -> tuple[int, dict]:
                async with session.post(f"{url}/_sim/{path}", json=body) as response:
                    return response.status, await response.json()

            status, refused = await admin("matching", {"held": "yes"})
            assert status == 400 and refused["error"].startswith("held:")
            status, refused = await admin("matching", {"held": True, "symbol": "NOPE/USD"})
            assert status == 400 and refused["error"].startswith("symbol:")
            status, held = await admin("matching", {"held": True})
            assert status == 200 and symbol in held["held"]
            quote = symbol.split("/")[1]
            _, keys = await admin("accounts", {"balances": {quote: "100000"}})
            exchange = getattr(ccxt.async_support, venue)(
                {"apiKey": keys["api_key"], "secret": keys["api_secret"]}
            )
            point_ccxt_at(exchange, url)
            try:
                order = await exchange.create_order(
                    symbol, "limit", "buy", 0.01, 60000, {"timeInForce": "IOC"}
                )
                found = await exchange.fetch_order(order["id"], symbol)
                assert found["status"] == "open" and not found["filled"]
                status, released = await admin("matching", {"held": False})
                assert status == 200 and released["held"] == []
                assert len(released["orders"]) == 1
                found = await exchange.fetch_order(order["id"], symbol)
                assert found["status"] == "closed" and found["filled"] == 0.01
            finally:
                await exchange.close()
    finally:
        await cluster.close()
