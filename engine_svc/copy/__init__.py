"""The copy path: signal → intents (one transaction) → orders → resolved outcomes.

Where each part lives:

- ``recorder``: a signal and every intent it makes, in one transaction (with the daily loss
  state); ``reads``: what the decisions read about the followers first (portfolios, markets,
  candles; caches; waiting for an unreachable broker);
- ``dispatch``: one ordered send queue per follower account;
- ``sender``: the one SENT transition and the broker call; ``outcomes``: recording what
  became of an intent;
- ``resolver``: looking up unresolved orders, re-sending only the proved lost;
- ``cancels``: cancelling resting orders; ``startup``: reconciliation before new signals;
- ``copier``: :class:`Copier`, all of it wired together.
"""

from __future__ import annotations

from engine_svc.copy.copier import Copier

__all__ = ["Copier"]
