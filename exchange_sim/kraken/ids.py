"""Kraken identifiers: order and trade txids, ``cl_ord_id`` formats and ``userref``.

Txids look like Kraken's (``OQCLML-BW3P3-BUCMWZ``: a prefix letter and 16 base-32 characters in
6-5-6 groups). They are a reversible scramble of the core's integer ids, so the adapter keeps no
id table and ``order_txid(n)`` / ``order_number(txid)`` work for anyone holding the core id (the
admin API lists core ids). A well-formed txid that was never issued decodes to no order.

The core needs a client order id on every order; Kraken orders have a ``cl_ord_id``, a ``userref``
or neither (the two are mutually exclusive, docs.kraken.com "Spot Client Order Identifiers").
``internal_client_id`` stores whichever was given in that one field: a ``cl_ord_id`` as itself, a
``userref`` or nothing as a generated string longer than 18 characters and not a UUID, which no
valid ``cl_ord_id`` can equal. ``cl_ord_id_of`` and ``userref_of`` read it back.
"""

from __future__ import annotations

import re
import secrets

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_CHARS = 16
_MOD = 1 << (5 * _CHARS)
_LIMIT = 1 << 48  # core ids beyond this are not ids this emulator issued
_ORDER = ("O", 0x9E3779B97F4A7C15F39D, 0x5DEECE66D1234567ABCD)
_TRADE = ("T", 0xC2B2AE3D27D4EB4F1657, 0x27BB2EE687B0B0FD1B3F)
_POSITION = ("T", 0x165667B19E3779F9A2F3, 0x3C6EF372FE94F82BA54F)
_TXID_RE = re.compile(r"^[A-Z][A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{6}$")

_LONG_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_SHORT_UUID_RE = re.compile(r"^[0-9a-fA-F]{32}$")
_FREE_TEXT_RE = re.compile(r"^[\x21-\x7e]{1,18}$")
_USERREF_RE = re.compile(r"^userref:(-?[0-9]{1,10}):[0-9a-f]{16}$")
USERREF_MIN, USERREF_MAX = -(1 << 31), (1 << 31) - 1


def _encode(kind: tuple[str, int, int], number: int) -> str:
    prefix, mult, offset = kind
    value = (number * mult + offset) % _MOD
    chars = []
    for _ in range(_CHARS):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    body = "".join(reversed(chars))
    return f"{prefix}{body[:5]}-{body[5:10]}-{body[10:]}"


def _decode(kind: tuple[str, int, int], txid: str) -> int | None:
    prefix, mult, offset = kind
    if not _TXID_RE.match(txid) or txid[0] != prefix:
        return None
    value = 0
    for char in txid[1:].replace("-", ""):
        value = value * 32 + _INDEX[char]
    number = ((value - offset) * pow(mult, -1, _MOD)) % _MOD
    return number if 0 < number < _LIMIT else None


def order_txid(order_id: int) -> str:
    """The Kraken txid of core order ``order_id``."""
    return _encode(_ORDER, order_id)


def order_number(txid: str) -> int | None:
    """The core order id behind an order txid, or None if the emulator never issued it."""
    return _decode(_ORDER, txid)


def trade_txid(trade_id: int) -> str:
    """The Kraken txid of core trade ``trade_id``."""
    return _encode(_TRADE, trade_id)


def trade_number(txid: str) -> int | None:
    """The core trade id behind a trade txid, or None."""
    return _decode(_TRADE, txid)


def position_txid(trade_id: int) -> str:
    """The ``postxid`` Kraken reports beside a trade (no positions on spot: a stable filler id)."""
    return _encode(_POSITION, trade_id)


def is_txid(value: str) -> bool:
    """Whether ``value`` has the shape of a Kraken txid (issued or not)."""
    return bool(_TXID_RE.match(value))


def valid_cl_ord_id(value: str) -> bool:
    """Kraken's three ``cl_ord_id`` formats: long UUID, short (32 hex) UUID, or 1-18 characters of
    printable ASCII free text without spaces (docs.kraken.com; the character set of free text is
    unverified, so the emulator takes the narrow reading)."""
    return bool(
        _LONG_UUID_RE.match(value) or _SHORT_UUID_RE.match(value) or _FREE_TEXT_RE.match(value)
    )


def internal_client_id(cl_ord_id: str | None, userref: int | None) -> str:
    """The core client order id recording a ``cl_ord_id`` or a ``userref`` (see the module doc)."""
    if cl_ord_id is not None:
        return cl_ord_id
    suffix = secrets.token_hex(8)
    return f"userref:{userref}:{suffix}" if userref is not None else f"kraken:{suffix}"


def cl_ord_id_of(client_order_id: str) -> str | None:
    """The ``cl_ord_id`` an order was placed with, or None."""
    return client_order_id if valid_cl_ord_id(client_order_id) else None


def userref_of(client_order_id: str) -> int | None:
    """The ``userref`` an order was placed with, or None."""
    if valid_cl_ord_id(client_order_id):
        return None
    match = _USERREF_RE.match(client_order_id)
    return int(match.group(1)) if match else None
