"""Wire-compatible local exchange emulators: Binance spot, Coinbase Advanced Trade, Kraken spot.

``python -m exchange_sim`` serves them; tests use ``start_venues``; ``ccxt_urls`` points ccxt
at them. See docs/design.md §4.4 for the admin API (``exchange_sim.admin``).
"""

from exchange_sim.server import VENUES, SimCluster, start_venues

__all__ = ["VENUES", "SimCluster", "start_venues"]
