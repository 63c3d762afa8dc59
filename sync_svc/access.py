"""Who may call each sync RPC: the identity in the caller's mesh certificate (default deny).

Strategies publish through the gateway; only the engine watches leader accounts and reads
the signal stream; recon reads the signal log to prove copies; the lease status is a service-only
read.
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
        # Which replica reads which leader: a read for the mesh's own services (the guard
        # keeps the operator identity out of every table).
        "ListLeases": {"engine", "recon"},
    },
)
