"""How the broker's records are stored: column lists and the text each value is kept as.

Ciphertexts and nonces are stored as base64 text, money as Decimal strings and times as
fixed-width ISO text.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from broker_svc.domain.model import (
    ExchangeAccount,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from broker_svc.domain.records import AccountRow, OrderRecord
from meshkit.codec import format_decimal, from_iso

ACCOUNT_COLUMNS = (
    "exchange_id, user_id, exchange_name, label, api_key_hint, ciphertext, nonce, key_id,"
    " request_id, created_at, deleted_at"
)
ORDER_COLUMNS = (
    "exchange_id, client_order_id, symbol, side, type, time_in_force, quantity, price, stop_price,"
    " venue_order_id, status, filled_quantity, average_price, sent_at, created_at, updated_at"
)


def b64(data: bytes) -> str:
    """Return ``data`` as base64 text."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """Return the bytes of base64 ``text`` (empty text: no bytes)."""
    return base64.b64decode(text) if text else b""


def decimal_or_none(text: str | None) -> Decimal | None:
    """Return the Decimal of stored text, ``None`` for none or empty."""
    return None if text is None or text == "" else Decimal(text)


def text_or_none(value: Decimal | None) -> str | None:
    """Return the stored text of a Decimal, ``None`` for none."""
    return None if value is None else format_decimal(value)


def account_row(row: dict[str, Any]) -> AccountRow:
    """Return the account and sealed credentials of an ``exchange_accounts`` row."""
    account = ExchangeAccount(
        exchange_id=row["exchange_id"],
        user_id=row["user_id"],
        exchange_name=row["exchange_name"],
        label=row["label"],
        api_key_hint=row["api_key_hint"],
        created_at=from_iso(row["created_at"]),
        deleted_at=from_iso(row["deleted_at"]) if row["deleted_at"] else None,
    )
    return AccountRow(account, unb64(row["ciphertext"]), unb64(row["nonce"]), row["key_id"])


def order_record(row: dict[str, Any]) -> OrderRecord:
    """Return the order record of a ``broker_orders`` row."""
    request = OrderRequest(
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        type=OrderType(row["type"]),
        quantity=Decimal(row["quantity"]),
        price=decimal_or_none(row["price"]),
        stop_price=decimal_or_none(row["stop_price"]),
        time_in_force=TimeInForce(row["time_in_force"]) if row["time_in_force"] else None,
    )
    return OrderRecord(
        exchange_id=row["exchange_id"],
        request=request,
        venue_order_id=row["venue_order_id"],
        status=OrderStatus(row["status"]),
        filled_quantity=Decimal(row["filled_quantity"]),
        average_price=decimal_or_none(row["average_price"]),
        sent_at=from_iso(row["sent_at"]),
        created_at=from_iso(row["created_at"]),
        updated_at=from_iso(row["updated_at"]),
    )
