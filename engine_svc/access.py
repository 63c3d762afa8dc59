"""Who may call each engine RPC: the identity in the caller's mesh certificate (default deny).

Every engine RPC is a user's (through the gateway, with a signed user assertion); recon
reads a configuration and its copied orders to prove them.
"""

from __future__ import annotations

from meshkit.access import table

SERVICE = "copytrade.engine.v1.EngineService"

RULES = table(
    SERVICE,
    {
        "StartCopy": {"gateway"},
        "StopCopy": {"gateway"},
        "PauseCopy": {"gateway"},
        "ResumeCopy": {"gateway"},
        "UpdateConfig": {"gateway"},
        "KillSwitch": {"gateway"},
        # Recon reads the configuration from here: GetCopyStatus also waits for the broker's
        # portfolios, and a frozen broker took the whole reconciliation budget.
        "ListConfigs": {"gateway", "recon"},
        "GetCopyStatus": {"gateway", "recon"},
        "ListCopiedOrders": {"gateway", "recon"},
        # A reconciliation run with auto_correct asks for a correction intent (for the user).
        "CorrectPosition": {"recon"},
        "ListAuditEntries": {"gateway"},
        # Before it forwards an account's removal to the broker (the broker never calls up).
        "ReleaseExchange": {"gateway"},
        # Published leaders: a user through the gateway.
        "PublishLeader": {"gateway"},
        "ListLeaders": {"gateway"},
        "UnpublishLeader": {"gateway"},
    },
)
