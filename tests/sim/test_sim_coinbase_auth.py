"""Pure tests of the Coinbase emulator's request verification and wire ids (no server)."""

from __future__ import annotations

import hashlib
import hmac
import time
from decimal import Decimal

import ccxt.pro
import pytest

from exchange_sim.ccxt_urls import point_ccxt_at
from exchange_sim.coinbase import new_coinbase_state
from exchange_sim.coinbase.auth import AuthFailure, Verifier, is_cdp_secret, new_cdp_credentials
from exchange_sim.coinbase.state import WireIds
from exchange_sim.core.accounts import AccountBook
from tests.sim.test_sim_coinbase_support import claims_for, make_jwt

HOST = "127.0.0.1:9102"
PATH = "/api/v3/brokerage/accounts"


def _book() -> tuple[Verifier, dict[str, str], dict[str, str]]:
    accounts = AccountBook()
    key, pem = new_cdp_credentials()
    accounts.add(key, pem, now_ms=0)
    accounts.add("legacy", "s3cret", now_ms=0)
    return (
        Verifier(accounts),
        {"api_key": key, "api_secret": pem},
        {"api_key": "legacy", "api_secret": "s3cret"},
    )


def test_cdp_credentials_are_named_keys_with_sec1_pem_secrets() -> None:
    key, pem = new_cdp_credentials()
    assert key.startswith("organizations/") and "/apiKeys/" in key
    assert pem.startswith("-----BEGIN EC PRIVATE KEY-----") and is_cdp_secret(pem)
    assert not is_cdp_secret("s3cret")
    assert new_cdp_credentials() != (key, pem)


def test_rest_jwt_is_checked_for_signature_time_and_request() -> None:
    verifier, cdp, _ = _book()
    now = int(time.time())
    good = make_jwt(cdp, claims_for(cdp, f"GET http://{HOST}{PATH}", now=now))

    def verify(token: str, method: str = "GET", path: str = PATH, at: int = now) -> str:
        return verifier.verify_jwt(token, at, method=method, hosts=(HOST,), path=path).api_key

    assert verify(good) == cdp["api_key"]
    assert verify(good, at=now + 125) == cdp["api_key"]  # inside the 10 s leeway
    for bad, reason in [
        (lambda: verify(good, at=now + 131), "expired"),
        (lambda: verify(good, method="POST"), "uri"),
        (lambda: verify(good, path="/api/v3/brokerage/orders"), "uri"),
        (
            lambda: verify(good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")),
            "signature",
        ),
        (lambda: verify(good.rsplit(".", 1)[0]), "three segments"),
        (
            lambda: verify(make_jwt(cdp, claims_for(cdp, f"GET {HOST}{PATH}", now=now - 200))),
            "expired",
        ),
        (lambda: verify(make_jwt(cdp, {**claims_for(cdp, f"GET {HOST}{PATH}"), "sub": ""})), "sub"),
        (
            lambda: verify(
                make_jwt(
                    cdp,
                    {k: v for k, v in claims_for(cdp, f"GET {HOST}{PATH}").items() if k != "exp"},
                )
            ),
            "exp",
        ),
    ]:
        with pytest.raises(AuthFailure, match=reason):
            bad()


def test_ws_jwt_needs_no_uri_and_legacy_keys_cannot_use_jwt() -> None:
    verifier, cdp, _ = _book()
    now = int(time.time())
    assert (
        verifier.verify_jwt(make_jwt(cdp, claims_for(cdp, None, now=now)), now).api_key
        == cdp["api_key"]
    )
    with pytest.raises(AuthFailure, match="unknown key"):
        verifier.verify_jwt(
            make_jwt({**cdp, "api_key": "legacy"}, claims_for({**cdp, "api_key": "legacy"}, None)),
            now,
        )


def test_legacy_hmac_is_checked_over_timestamp_method_path_and_body() -> None:
    verifier, cdp, _ = _book()
    now = int(time.time())
    tail = "POST/api/v3/brokerage/orders" + '{"a":1}'

    def sign(secret: str, stamp: int) -> str:
        return hmac.new(secret.encode(), (str(stamp) + tail).encode(), hashlib.sha256).hexdigest()

    assert (
        verifier.verify_hmac("legacy", str(now), sign("s3cret", now), tail, now).api_key == "legacy"
    )
    with pytest.raises(AuthFailure, match="bad signature"):
        verifier.verify_hmac("legacy", str(now), sign("other", now), tail, now)
    with pytest.raises(AuthFailure, match="timestamp expired") as stale:
        verifier.verify_hmac("legacy", str(now - 31), sign("s3cret", now - 31), tail, now)
    assert stale.value.expired
    with pytest.raises(AuthFailure, match="unknown key"):  # a CDP key cannot sign the legacy way
        verifier.verify_hmac(cdp["api_key"], str(now), sign(cdp["api_secret"], now), tail, now)
    with pytest.raises(AuthFailure, match="required"):
        verifier.verify_hmac("legacy", None, "x", tail, now)


def test_wire_ids_round_trip_and_refuse_foreign_ids() -> None:
    ids, other = WireIds(), WireIds()
    wire = ids.order(42)
    assert len(wire) == 36 and wire.count("-") == 4 and wire[14] == "4"
    assert ids.order_number(wire) == 42 and ids.order_number(wire.upper()) == 42
    assert other.order_number(wire) is None and ids.order_number("not-a-uuid") is None
    assert ids.order_number(ids.trade(42)) is None
    assert ids.named("user", "k") == ids.named("user", "k") != other.named("user", "k")


def test_state_finds_markets_by_product_id_and_points_ccxt_at_rest_and_ws() -> None:
    state = new_coinbase_state()
    btc = state.market_by_name("BTC-USD")
    assert btc is not None and btc is state.market_by_name("BTC/USD")
    assert state.engine.fees.maker == Decimal("0.006") and state.engine.fees.taker == Decimal(
        "0.012"
    )
    ex = ccxt.pro.coinbase()
    point_ccxt_at(ex, "http://127.0.0.1:9102/")
    assert (
        ex.urls["api"]["rest"] == "http://127.0.0.1:9102"
        and ex.urls["api"]["ws"] == "ws://127.0.0.1:9102/ws"
    )
