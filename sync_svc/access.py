"""Who may call each sync RPC: the identity in the caller's mesh certificate (default deny).

Strategies publish through the gateway; only the engine watches leader accounts and reads
the signal stream; recon reads the signal log to prove copies.
"""

from __future__ import annotations

from meshkit.access import table

SERVICE = "copytrade.sync.v1.SyncService"

RULES = table(
    SERVICE,
    {
        "CreateBacktest": {"gateway"},
        "PublishSignals": {"gateway"},
        "WatchExchangeSource": {"engine"},
        "UnwatchExchangeSource": {"engine"},
        "GetSource": {"engine"},
        "ListSignals": {"engine", "recon"},
        "StreamSignals": {"engine"},
    },
)
