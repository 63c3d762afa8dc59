"""Point an unmodified ccxt exchange object at an emulator (docs/exchange-protocols.md §2.1).

Usage (the broker does exactly this when ``VENUE_URLS`` names an emulator)::

    ex = ccxt.async_support.binance({"apiKey": k, "secret": s, "options": binance_options()})
    point_ccxt_at(ex, "http://127.0.0.1:9101")

Only ``exchange.urls`` changes; signing, parsing and error mapping stay ccxt's own.
"""

from __future__ import annotations

from typing import Any

from exchange_sim.coinbase.ccxt_urls import point_coinbase_at
from exchange_sim.kraken.urls import point_kraken_at


def binance_options() -> dict[str, Any]:
    """The minimal ccxt options for Binance spot: ``load_markets`` then sends exactly
    ``GET /api/v3/exchangeInfo`` (no sapi currency or margin calls, no futures markets)."""
    return {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}


def _ws_base(base_url: str) -> str:
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://") :]
    if base_url.startswith("http://"):
        return "ws://" + base_url[len("http://") :]
    raise ValueError(f"base_url: expected http:// or https://, got {base_url!r}")


def point_binance_at(exchange: Any, base_url: str) -> None:
    """Rewrite a ccxt ``binance`` object's URLs to an emulator at ``base_url``.

    Spot REST (``public``/``private`` = ``/api/v3``), the endpoints ``load_markets`` calls with
    default options (``sapi`` = ``/sapi/v1``, ``fapiPublic`` = ``/fapi/v1``, ``dapiPublic`` =
    ``/dapi/v1``) and, for ccxt.pro, the WebSocket API (``ws-api`` spot = ``/ws-api/v3``).
    """
    base = base_url.rstrip("/")
    api = exchange.urls["api"]
    api["public"] = api["private"] = base + "/api/v3"
    api["sapi"] = base + "/sapi/v1"
    api["fapiPublic"] = base + "/fapi/v1"
    api["dapiPublic"] = base + "/dapi/v1"
    ws = api.get("ws")
    if isinstance(ws, dict):
        ws.setdefault("ws-api", {})["spot"] = _ws_base(base) + "/ws-api/v3"


def point_binanceusdm_at(exchange: Any, base_url: str) -> None:
    """Rewrite a ccxt ``binanceusdm`` object's URLs to the Binance emulator at ``base_url``.

    Everything ``point_binance_at`` rewrites, plus the USDⓈ-M REST sections (``fapiPublic``,
    ``fapiPrivate`` and their ``V2``/``V3`` = ``/fapi/v1|v2|v3``) and, for ccxt.pro, the linear
    stream base (``ws.linear`` = ``/ws``; ccxt opens ``/private/ws?listenKey=...`` from it).
    """
    point_binance_at(exchange, base_url)
    base = base_url.rstrip("/")
    api = exchange.urls["api"]
    for version in ("", "V2", "V3"):
        path = f"{base}/fapi/v{version[1:] or '1'}"
        api["fapiPublic" + version] = path
        api["fapiPrivate" + version] = path
    api["fapiData"] = base + "/futures/data"
    ws = api.get("ws")
    if isinstance(ws, dict):
        ws["linear"] = _ws_base(base) + "/ws"
        ws.setdefault("ws-api", {})["linear"] = _ws_base(base) + "/ws-fapi/v1"


_POINTERS = {
    "binance": point_binance_at,
    "binanceusdm": point_binanceusdm_at,
    "kraken": point_kraken_at,
    "coinbase": point_coinbase_at,
}


def point_ccxt_at(exchange: Any, base_url: str) -> None:
    """Rewrite ``exchange.urls`` so it talks to the emulator at ``base_url``.

    Dispatches on ``exchange.id``; venues without an emulator raise ``ValueError``.
    """
    pointer = _POINTERS.get(getattr(exchange, "id", ""))
    if pointer is None:
        raise ValueError(f"exchange: no emulator for {getattr(exchange, 'id', exchange)!r}")
    pointer(exchange, base_url)
