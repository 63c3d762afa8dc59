"""The broker's use-cases: accounts, credentials tests and orders, over the ports.

The servicer validates and translates; everything that decides happens here or in the domain.
Each concern has its module (``accounts``, ``connections``, ``orders``, ``market_data``,
``watches``; ``core`` holds what they share); :class:`Broker` (``broker``) is all of them in
one façade.
"""

from broker_svc.usecases.broker import Broker

__all__ = ["Broker"]
