"""Venue capabilities are typed data: a misspelt field is refused and every profile builds."""

from __future__ import annotations

import dataclasses

import pytest

from broker_svc.adapters.ccxt import CcxtExchange, VenueCapabilities
from broker_svc.adapters.venues import VENUE_CLASSES


def test_a_misspelt_capability_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="client_order_id_parma"):
        # The misspelling is the point.
        VenueCapabilities(ccxt_id="binance", client_order_id_parma="newClientOrderId")


def test_a_misspelt_capability_in_a_replace_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        dataclasses.replace(VENUE_CLASSES["binance"].capabilities, main_qoute="USD")


def test_capabilities_are_given_by_keyword_only() -> None:
    with pytest.raises(TypeError):
        VenueCapabilities("binance")  # positional on purpose


def test_capabilities_are_frozen() -> None:
    capabilities = VENUE_CLASSES["kraken"].capabilities
    with pytest.raises(dataclasses.FrozenInstanceError):
        capabilities.main_quote = "EUR"  # assignment on purpose


@pytest.mark.parametrize("venue", sorted(VENUE_CLASSES))
def test_every_venue_profile_builds(venue: str) -> None:
    cls = VENUE_CLASSES[venue]
    assert issubclass(cls, CcxtExchange)
    assert isinstance(cls.capabilities, VenueCapabilities)
    assert cls.capabilities.ccxt_id == venue
    profile = cls.profile()
    assert profile.name == venue
    assert profile.order_types
    assert profile.rate_limits
    cls.check_capabilities(cls.ccxt_class()().has)
