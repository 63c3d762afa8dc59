"""Who may call each recon RPC: the identity in the caller's mesh certificate (default deny)."""

from __future__ import annotations

from meshkit.access import table

SERVICE = "copytrade.recon.v1.ReconService"

RULES = table(
    SERVICE,
    {
        "Reconcile": {"gateway"},
        "ListReconciliations": {"gateway"},
        "ListAuditEntries": {"gateway"},
        "ListReconciliationItems": {"gateway"},
    },
)
