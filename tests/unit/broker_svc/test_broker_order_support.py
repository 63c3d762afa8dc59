"""The venue order table: what each venue takes, and the refusal of what it does not."""

from __future__ import annotations

from decimal import Decimal

import pytest

from broker_svc.adapters.paper_exchange import paper_profile
from broker_svc.adapters.venues import VENUE_CLASSES
from broker_svc.domain.model import OrderRequest, OrderType, Side, TimeInForce
from broker_svc.domain.orders import unsupported_order

M, L, SM, SL = OrderType.MARKET, OrderType.LIMIT, OrderType.STOP_MARKET, OrderType.STOP_LIMIT
GTC, IOC, FOK, PO = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.POST_ONLY

# The real venues as ccxt 4.5.90 reaches them (docs/exchange-protocols.md §2.4, §3.4, §4.4).
EXPECTED = {
    "binance": {M: (), L: (GTC, IOC, FOK, PO), SM: (), SL: (GTC, IOC, FOK)},
    "coinbase": {M: (), L: (GTC, IOC, FOK, PO), SL: (GTC,)},
    "kraken": {M: (), L: (GTC, IOC, PO), SM: (), SL: (GTC,)},
}


@pytest.mark.parametrize("venue", sorted(EXPECTED))
def test_each_venue_lists_exactly_the_types_and_time_in_force_it_takes(venue: str) -> None:
    profile = VENUE_CLASSES[venue].profile()
    assert dict(profile.order_support) == EXPECTED[venue]
    assert profile.order_types == tuple(EXPECTED[venue])


@pytest.mark.parametrize(
    ("venue", "kind", "tif", "refused"),
    [
        ("coinbase", SM, None, "stop_market orders are not supported at coinbase"),
        ("kraken", L, FOK, "limit orders at kraken cannot be fok"),
        ("coinbase", SL, IOC, "stop_limit orders at coinbase cannot be ioc"),
        ("kraken", SL, PO, "stop_limit orders at kraken cannot be post_only"),
        ("binance", M, GTC, "market orders at binance cannot be gtc (time in force allowed: none)"),
        ("binance", SM, None, None),
        ("binance", SL, FOK, None),
        ("coinbase", L, PO, None),
        ("kraken", L, PO, None),
        ("kraken", SM, None, None),
        ("kraken", L, None, None),
    ],
)
def test_an_order_the_venue_cannot_take_is_refused_naming_venue_type_and_time_in_force(
    venue: str, kind: OrderType, tif: TimeInForce | None, refused: str | None
) -> None:
    why = unsupported_order(VENUE_CLASSES[venue].profile(), kind, tif)
    if refused is None:
        assert why is None
    else:
        assert why is not None and why.startswith(refused)


def test_the_paper_venue_takes_post_only_limits_but_no_post_only_stop() -> None:
    profile = paper_profile()
    assert unsupported_order(profile, L, PO) is None
    assert unsupported_order(profile, SL, PO) is not None


def _request(kind: OrderType, tif: TimeInForce | None) -> OrderRequest:
    return OrderRequest(
        "cid-1",
        "BTC/USD",
        Side.BUY,
        kind,
        Decimal("0.01"),
        price=Decimal("40000") if kind.has_limit_price else None,
        stop_price=Decimal("39000") if kind.has_stop_price else None,
        time_in_force=tif,
    )


@pytest.mark.parametrize("venue", sorted(EXPECTED))
def test_post_only_goes_to_ccxt_as_its_unified_post_only_without_a_time_in_force(
    venue: str,
) -> None:
    cls = VENUE_CLASSES[venue]
    exchange = cls.__new__(cls)  # only the pure argument builder is exercised
    kind, params = exchange._order_arguments(_request(L, PO))
    assert kind == "limit"
    assert params.get("postOnly") is True
    assert "timeInForce" not in params
    kind, params = exchange._order_arguments(_request(L, FOK if venue != "kraken" else IOC))
    assert "postOnly" not in params and params["timeInForce"] in ("FOK", "IOC")
