"""The reconciliation service's storage (:class:`ReconStore`); its code is in :mod:`.reports`."""

from __future__ import annotations

from recon_svc.store.reports import AUDIT_TABLE, SCHEMA_DIR, SERVICE, ReconStore

__all__ = ["AUDIT_TABLE", "SCHEMA_DIR", "SERVICE", "ReconStore"]
