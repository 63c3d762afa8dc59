"""Point an unmodified ccxt ``coinbase`` at the emulator (docs/exchange-protocols.md §3.1)."""

from __future__ import annotations

from typing import Any


def point_coinbase_at(exchange: Any, base_url: str) -> None:
    """Rewrite a ccxt ``coinbase`` object's URLs to an emulator at ``base_url``.

    REST is one key, ``rest`` = ``<base>`` (ccxt appends ``/v2/...`` and ``/api/v3/...``);
    ccxt.pro's WebSocket is ``ws`` = ``ws://<host>/ws`` (a plain string). Nothing else changes:
    with the emulator's CDP credentials ccxt signs ES256 JWTs exactly as against Coinbase.
    """
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        ws = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        ws = "ws://" + base[len("http://") :]
    else:
        raise ValueError(f"base_url: expected http:// or https://, got {base_url!r}")
    api = exchange.urls["api"]
    api["rest"] = base
    if "ws" in api:
        api["ws"] = ws + "/ws"
