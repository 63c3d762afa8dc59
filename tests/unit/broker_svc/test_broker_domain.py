"""Pure broker policies: valuation, market checks, client order id reuse, key judgement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from broker_svc.domain.credentials import credential_violations, judge_credentials
from broker_svc.domain.model import (
    Balance,
    Credentials,
    KeyPermissions,
    Market,
    OrderRequest,
    OrderType,
    Side,
)
from broker_svc.domain.orders import differing_fields, market_violations, may_resend_after_absence
from broker_svc.domain.portfolio import pricing_symbols, value_portfolio

NOW = datetime(2026, 1, 1, tzinfo=UTC)
BTC = Market(
    "BTC/USDT",
    "BTC",
    "USDT",
    Decimal("0.00001"),
    Decimal("0.01"),
    Decimal("0.0001"),
    Decimal("5"),
    Decimal("100"),
)


def _request(**changes: object) -> OrderRequest:
    fields: dict[str, object] = {
        "client_order_id": "cid-1",
        "symbol": "BTC/USDT",
        "side": Side.BUY,
        "type": OrderType.LIMIT,
        "quantity": Decimal("0.001"),
        "price": Decimal("50000.01"),
    }
    fields.update(changes)
    return OrderRequest(**fields)


def test_portfolio_values_assets_at_their_quote_price_and_stables_one_to_one() -> None:
    balances = [
        Balance("BTC", Decimal("0.5"), Decimal("0.1")),
        Balance("USDT", Decimal("1000"), Decimal("0")),
        Balance("USDC", Decimal("10"), Decimal("0")),
        Balance("DOGE", Decimal("0"), Decimal("0")),
    ]
    portfolio = value_portfolio(balances, {"BTC/USDT": Decimal("50000")}, "USDT", NOW)
    values = {v.balance.asset: v.value for v in portfolio.balances}
    assert values == {"BTC": Decimal("30000.0"), "USDC": Decimal("10"), "USDT": Decimal("1000")}
    assert portfolio.equity == Decimal("31010.0")
    assert portfolio.quote_currency == "USDT"


def test_portfolio_leaves_an_unpriced_asset_without_value_and_out_of_equity() -> None:
    balances = [
        Balance("XYZ", Decimal("3"), Decimal("0")),
        Balance("USD", Decimal("5"), Decimal(0)),
    ]
    portfolio = value_portfolio(balances, {}, "USDT", NOW)
    assert [(v.balance.asset, v.value) for v in portfolio.balances] == [
        ("USD", Decimal("5")),
        ("XYZ", None),
    ]
    assert portfolio.equity == Decimal("5")


def test_portfolio_prices_through_an_equivalent_stable_quote() -> None:
    portfolio = value_portfolio(
        [Balance("ETH", Decimal("2"), Decimal("0"))],
        {"ETH/USDC": Decimal("3000")},
        "USDT",
        NOW,
    )
    assert portfolio.balances[0].value == Decimal("6000")


def test_pricing_symbols_try_the_quote_first_then_the_other_stables() -> None:
    assert pricing_symbols("BTC", "USDT") == ("BTC/USDT", "BTC/USDC", "BTC/USD")
    assert pricing_symbols("ETH", "BTC") == ("ETH/BTC",)


def test_an_order_on_the_market_grid_has_no_violation() -> None:
    assert market_violations(_request(), BTC) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quantity": Decimal("0.000115")}, "quantity"),
        ({"quantity": Decimal("0.00005")}, "quantity"),
        ({"quantity": Decimal("101")}, "quantity"),
        ({"price": Decimal("50000.001")}, "price"),
        ({"type": OrderType.STOP_LIMIT, "stop_price": Decimal("1.005")}, "stop_price"),
    ],
)
def test_an_order_off_the_market_grid_is_refused_naming_the_field(
    changes: dict[str, object],
    field: str,
) -> None:
    assert [name for name, _ in market_violations(_request(**changes), BTC)] == [field]


def test_a_reused_client_order_id_with_other_terms_names_what_differs() -> None:
    assert differing_fields(_request(), _request()) == []
    assert differing_fields(_request(quantity=Decimal("0.002"), side=Side.SELL), _request()) == [
        "side",
        "quantity",
    ]


def test_resend_after_absence_waits_for_the_venue_to_refuse_stale_requests() -> None:
    assert not may_resend_after_absence(NOW, NOW + timedelta(seconds=29), 30)
    assert may_resend_after_absence(NOW, NOW + timedelta(seconds=30), 30)


@pytest.mark.parametrize(
    ("reachable", "authenticated", "permissions", "ok", "reason"),
    [
        (True, True, KeyPermissions(True, False), True, ""),
        (False, False, None, False, "could not be reached"),
        (True, False, None, False, "rejected the credentials"),
        (True, True, None, False, "did not report"),
        (True, True, KeyPermissions(True, True), False, "can withdraw"),
        (True, True, KeyPermissions(True, False, True), False, "transfer"),
        (True, True, KeyPermissions(False, False), False, "cannot trade"),
    ],
)
def test_judge_credentials_accepts_only_trade_only_keys(
    reachable: bool,
    authenticated: bool,
    permissions: KeyPermissions | None,
    ok: bool,
    reason: str,
) -> None:
    report = judge_credentials(
        reachable=reachable,
        authenticated=authenticated,
        permissions=permissions,
        latency_ms=3,
    )
    assert report.ok is ok
    assert reason in report.reason
    assert bool(report.reason) is not ok


PEM = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\nAwEHoUQDQg==\n-----END EC PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("venue", "credentials"),
    [
        ("binance", Credentials("k" * 64, "s" * 64)),
        ("coinbase", Credentials("organizations/o/apiKeys/k", PEM)),
        ("coinbase", Credentials("organizations/o/apiKeys/k", PEM.replace("\n", "\r\n") + "\n")),
        ("coinbase", Credentials("key", "secret", "pass phrase")),
        ("kraken", Credentials("k", "c2VjcmV0IGtleSBieXRlcw==")),
    ],
)
def test_well_formed_credentials_have_no_violations(venue: str, credentials: Credentials) -> None:
    assert credential_violations(venue, credentials) == []


@pytest.mark.parametrize(
    ("venue", "credentials", "field"),
    [
        ("binance", Credentials("ab\ncd", "s"), "api_key"),
        ("binance", Credentials("ab cd", "s"), "api_key"),
        ("binance", Credentials("abécd", "s"), "api_key"),
        ("binance", Credentials("k", "s\x00s"), "api_secret"),
        ("binance", Credentials("k", "s\ns"), "api_secret"),
        ("coinbase", Credentials("k", PEM.replace("MHcC", "MH\x1bcC")), "api_secret"),
        ("coinbase", Credentials("k", PEM.replace("\n", "\r", 1)), "api_secret"),
        ("coinbase", Credentials("k", "s", "pass\r\nphrase"), "passphrase"),
        ("kraken", Credentials("k", "c2VjcmV0"[:-1]), "api_secret"),
        ("kraken", Credentials("k", "c2Vj*cmV0"), "api_secret"),
        ("kraken", Credentials("k", ""), "api_secret"),
    ],
)
def test_malformed_credentials_name_the_field(
    venue: str,
    credentials: Credentials,
    field: str,
) -> None:
    assert [name for name, _why in credential_violations(venue, credentials)] == [field]
