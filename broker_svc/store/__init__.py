"""The broker's tables: exchange accounts with sealed credentials, the key check, orders, fences.

:class:`BrokerStore` (``broker_store``) is the one concrete store, built from a table class per
module (``accounts``, ``key_check``, ``orders``, ``fences``; ``rows`` says how values are
stored). Use cases see it through :class:`broker_svc.ports.BrokerStorePort`.
"""

from broker_svc.domain.records import AccountRow, KeyCheck, OrderRecord
from broker_svc.store.broker_store import AUDIT_TABLE, SCHEMA_DIR, BrokerStore

__all__ = ["AUDIT_TABLE", "SCHEMA_DIR", "AccountRow", "BrokerStore", "KeyCheck", "OrderRecord"]
