"""The OpenAPI entries of the webhook routes (:mod:`gateway.webhooks.api`) and their paths.

Apart from the handlers so that :mod:`gateway.openapi` can import it without the server.
"""

from __future__ import annotations

from typing import Any

from gateway import auth
from gateway.webhooks import model

PATH = "/api/institutional/copy-trading/webhooks"
ITEM_PATH = PATH + "/{webhook_id}"
TEST_PATH = ITEM_PATH + "/test"
DELIVERIES_PATH = ITEM_PATH + "/deliveries"
DEFAULT_DELIVERIES = 50
MAX_DELIVERIES = 100

_TEXT = {"type": "string"}
_WEBHOOK = {
    "type": "object",
    "properties": {
        "webhook_id": _TEXT,
        "url": _TEXT,
        "events": {"type": "array", "items": {"type": "string", "enum": list(model.EVENTS)}},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
_DELIVERY = {
    "type": "object",
    "properties": {
        "delivery_id": _TEXT,
        "event_id": _TEXT,
        "event": _TEXT,
        "status": {"type": "string", "enum": ["pending", "delivered", "dropped"]},
        "attempts": {"type": "integer"},
        "next_attempt_at": {"type": "string", "format": "date-time", "nullable": True},
        "last_status_code": {"type": "integer", "nullable": True},
        "last_error": _TEXT,
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "payload": {"type": "object", "description": "The JSON body sent (docs/webhooks.md)."},
    },
}
_ID_PARAMETER = {"name": "webhook_id", "in": "path", "required": True, "schema": _TEXT}
_UNAUTHENTICATED = {"description": "No token, or an unknown, revoked or expired one."}
_NOT_FOUND = {"description": "No such webhook of yours."}


def _json(description: str, properties: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_paths() -> dict[str, dict[str, Any]]:
    """Return the OpenAPI path items of the webhook routes (served by the gateway itself)."""
    common = {"x-copytrade-plan": auth.PRO}
    return {
        PATH: {
            "post": {
                **common,
                "operationId": "Gateway_CreateWebhook",
                "summary": "Create a webhook (idempotent by url); its secret is shown only here.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["url", "events"],
                                "properties": {
                                    "url": {**_TEXT, "description": "http or https URL"},
                                    "events": _WEBHOOK["properties"]["events"],  # type: ignore[index]
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json(
                        "Created; secret signs every delivery.",
                        {"webhook": _WEBHOOK, "secret": _TEXT},
                    ),
                    "200": _json(
                        "Already there with these events (no secret).", {"webhook": _WEBHOOK}
                    ),
                    "400": {"description": "A bad url or events (the field is named)."},
                    "401": _UNAUTHENTICATED,
                    "409": {"description": "A webhook at this url with other events exists."},
                },
            },
            "get": {
                **common,
                "operationId": "Gateway_ListWebhooks",
                "summary": "The caller's webhooks.",
                "responses": {
                    "200": _json(
                        "The webhooks.", {"webhooks": {"type": "array", "items": _WEBHOOK}}
                    ),
                    "401": _UNAUTHENTICATED,
                },
            },
        },
        ITEM_PATH: {
            "delete": {
                **common,
                "operationId": "Gateway_DeleteWebhook",
                "summary": "Delete a webhook and its delivery log.",
                "parameters": [_ID_PARAMETER],
                "responses": {
                    "200": _json("Deleted.", {"webhook_id": _TEXT}),
                    "401": _UNAUTHENTICATED,
                    "404": _NOT_FOUND,
                },
            }
        },
        TEST_PATH: {
            "post": {
                **common,
                "operationId": "Gateway_TestWebhook",
                "summary": "Queue a signed webhook.test event to the webhook.",
                "parameters": [_ID_PARAMETER],
                "responses": {
                    "202": _json("Queued.", {"delivery": _DELIVERY}),
                    "401": _UNAUTHENTICATED,
                    "404": _NOT_FOUND,
                },
            }
        },
        DELIVERIES_PATH: {
            "get": {
                **common,
                "operationId": "Gateway_ListWebhookDeliveries",
                "summary": "The webhook's deliveries, newest first: pending, delivered or dropped.",
                "parameters": [
                    _ID_PARAMETER,
                    {
                        "name": "page_size",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": MAX_DELIVERIES,
                            "description": f"0 or absent: {DEFAULT_DELIVERIES}",
                        },
                    },
                ],
                "responses": {
                    "200": _json(
                        "The deliveries.", {"deliveries": {"type": "array", "items": _DELIVERY}}
                    ),
                    "400": {"description": "A bad page_size."},
                    "401": _UNAUTHENTICATED,
                    "404": _NOT_FOUND,
                },
            }
        },
    }
