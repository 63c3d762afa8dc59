"""The live exchange port through ccxt: one ``ccxt.pro`` client per account.

Per-venue differences are data (:class:`VenueCapabilities`) or a tiny subclass per venue
(:mod:`broker_svc.adapters.binance`, ``coinbase``, ``kraken``); the shared code never branches
on a venue's name. The package splits by concern: ``capabilities`` (the data), ``errors``
(ccxt exceptions to :mod:`meshkit.errors`), ``transport`` (the client, its hooks and the call
wrapper), ``parse`` (ccxt structures to the model), ``rest`` and ``streams`` (the calls), and
``exchange`` (:class:`CcxtExchange`, all of it together).
"""

from broker_svc.adapters.ccxt.capabilities import DEFAULT_REQUIRED_CCXT_HAS, VenueCapabilities
from broker_svc.adapters.ccxt.errors import DEFAULT_RETRY_AFTER, translate_error, venue_text
from broker_svc.adapters.ccxt.exchange import CcxtExchange
from broker_svc.adapters.ccxt.parse import from_millis, to_decimal, to_millis
from broker_svc.adapters.ccxt.transport import Seen

__all__ = [
    "DEFAULT_REQUIRED_CCXT_HAS",
    "DEFAULT_RETRY_AFTER",
    "CcxtExchange",
    "Seen",
    "VenueCapabilities",
    "from_millis",
    "to_decimal",
    "to_millis",
    "translate_error",
    "venue_text",
]
