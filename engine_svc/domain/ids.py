"""Identifiers: UUID checks and the deterministic client order id of an intent."""

from __future__ import annotations

import uuid

COPYTRADE_NAMESPACE = uuid.UUID("5b1c3a52-8a4e-5d7f-9c0b-6e2f41d3a7c9")
"""The UUIDv5 namespace of client order ids (docs/mesh-conventions.md "Ids, money, time")."""


def client_order_id(
    config_id: str,
    source_id: str,
    sequence: int,
    target_exchange_id: str,
    leg: int = 0,
) -> str:
    """Return the client order id of the intent keyed by its configuration, signal, account and leg.

    The id is derived once per intent, never per attempt, so every resend of the same intent
    carries the same id and a venue that deduplicates on it sees one order.

    Parameters
    ----------
    config_id, source_id, sequence, target_exchange_id, leg
        The unique key of the intent.

    Returns
    -------
    str
        A 36-character UUID string, accepted by every supported venue.
    """
    name = f"{config_id}/{source_id}/{sequence}/{target_exchange_id}/{leg}"
    return str(uuid.uuid5(COPYTRADE_NAMESPACE, name))


def is_uuid(text: str) -> bool:
    """Return whether ``text`` is a UUID in its canonical form (36 characters, lower case)."""
    if len(text) != 36:
        return False
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False
