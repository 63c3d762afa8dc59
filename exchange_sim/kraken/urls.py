"""Point an unmodified ccxt ``kraken`` (sync, async_support or pro) at the Kraken emulator."""

from __future__ import annotations

from typing import Any

WS_PUBLIC_PATH = "/ws"  # not served: public channels are not emulated
WS_PRIVATE_PATH = "/ws-auth"  # ccxt only uses it as the key of its token cache (doc §4.1)


def _ws_base(base_url: str) -> str:
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://") :]
    if base_url.startswith("http://"):
        return "ws://" + base_url[len("http://") :]
    raise ValueError(f"base_url: expected http:// or https://, got {base_url!r}")


def point_kraken_at(exchange: Any, base_url: str) -> None:
    """Rewrite a ccxt ``kraken`` object's URLs to an emulator at ``base_url``.

    REST ``public`` and ``private`` become ``base_url`` (ccxt appends ``/0/public/<Method>`` and
    ``/0/private/<Method>``). For ccxt.pro, ``privateV2`` (the ``executions`` channel) becomes
    ``ws://…/ws-auth/v2``; every other WebSocket URL is pointed at the emulator too, so nothing
    can reach the real venue by accident (public channels are not served: such a watch fails).
    """
    base = base_url.rstrip("/")
    api = exchange.urls["api"]
    api["public"] = api["private"] = base
    ws = api.get("ws")
    if isinstance(ws, dict):
        ws_base = _ws_base(base)
        ws["public"] = ws["beta"] = ws_base + WS_PUBLIC_PATH
        ws["publicV2"] = ws_base + WS_PUBLIC_PATH + "/v2"
        ws["private"] = ws["beta-private"] = ws_base + WS_PRIVATE_PATH
        ws["privateV2"] = ws_base + WS_PRIVATE_PATH + "/v2"
