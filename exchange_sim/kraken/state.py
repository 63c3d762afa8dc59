"""The state of one emulated Kraken: the core venue state plus Kraken's names, nonces and tokens."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from exchange_sim.core.markets import Market
from exchange_sim.core.state import VenueState
from exchange_sim.kraken.auth import NonceBook
from exchange_sim.kraken.markets import ASSETS, KrakenAsset, KrakenPair

#: Kraken: a WebSocket token must be used (to subscribe) within 15 minutes of its creation.
TOKEN_LIFETIME_S = 900


class TokenBook:
    """WebSocket tokens from ``GetWebSocketsToken``: token -> (api key, issue time)."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, int]] = {}

    def issue(self, api_key: str, now_ms: int) -> str:
        """A new token for ``api_key`` (base64-like, as Kraken's)."""
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (api_key, now_ms)
        return token

    def account_of(self, token: str, now_ms: int) -> str | None:
        """The API key behind a token that is still valid for a new subscription, or None."""
        entry = self._tokens.get(token)
        if entry is None or now_ms - entry[1] > TOKEN_LIFETIME_S * 1000:
            return None
        return entry[0]


@dataclass
class KrakenState(VenueState):
    """A ``VenueState`` with the Kraken pairs, per-key nonces and WebSocket tokens."""

    pairs: tuple[KrakenPair, ...] = ()
    nonces: NonceBook = field(default_factory=NonceBook)
    tokens: TokenBook = field(default_factory=TokenBook)

    def __post_init__(self) -> None:
        self.by_symbol = {p.symbol: p for p in self.pairs}
        self._by_name: dict[str, KrakenPair] = {}
        for pair in self.pairs:
            for name in (pair.pair_id, pair.altname, pair.wsname, pair.symbol):
                self._by_name[name.upper()] = pair
        self.assets_by_code: dict[str, KrakenAsset] = {a.code: a for a in ASSETS}
        self.assets_by_name: dict[str, KrakenAsset] = {}
        for asset in ASSETS:
            self.assets_by_name[asset.asset_id] = asset
            self.assets_by_name[asset.altname] = asset
            self.assets_by_name[asset.code] = asset

    def pair(self, name: str) -> KrakenPair | None:
        """A pair by Kraken id (``XXBTZUSD``), altname (``XBTUSD``), wsname or unified symbol."""
        return self._by_name.get(name.upper())

    def market_by_name(self, name: str) -> Market | None:
        """Also accept Kraken's pair names in the admin API (``XXBTZUSD``, ``XBTUSD``)."""
        pair = self.pair(name)
        return pair.market if pair is not None else super().market_by_name(name)

    def asset_id(self, code: str) -> str:
        """Kraken's id of a core asset (``BTC`` -> ``XXBT``); unknown assets keep their name."""
        asset = self.assets_by_code.get(code)
        return asset.asset_id if asset is not None else code
