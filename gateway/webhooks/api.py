"""``/webhooks``: a user's webhooks, their test event and delivery log (served by the gateway).

The webhooks live in the gateway's own store (they are per user, and the gateway owns the
users), so these routes are hand-written like ``GET /audit``: the same bearer token, rate
limit, pro plan, JSON Status errors (naming the field) and OpenAPI entries. Another user's
webhook is 404, whatever the verb.

- ``POST /webhooks`` ``{"url", "events"}``: 201 with the webhook and its ``secret`` (shown this
  once). Idempotent by (user, URL): the same URL and events again is 200 with the webhook and
  no secret; the same URL with other events is 409.
- ``GET /webhooks``; ``DELETE /webhooks/{webhook_id}`` (its deliveries go with it);
- ``POST /webhooks/{webhook_id}/test``: 202, queues a ``webhook.test`` event;
- ``GET /webhooks/{webhook_id}/deliveries``: newest first, ``page_size`` up to 100.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from google.rpc import code_pb2

from gateway import audit, auth
from gateway import server as gateway_server
from gateway.errors import HttpError, invalid_argument
from gateway.ports import WebhookStorePort
from gateway.webhooks import model
from gateway.webhooks.dispatcher import Dispatcher, DispatchSettings, delivery_json
from gateway.webhooks.model import Queued, TooManyWebhooks, WebhookConflict, WebhooksNotConfigured
from gateway.webhooks.spec import (
    DEFAULT_DELIVERIES,
    DELIVERIES_PATH,
    ITEM_PATH,
    MAX_DELIVERIES,
    PATH,
    TEST_PATH,
)
from meshkit import db, leases
from meshkit.codec import to_iso, utcnow
from meshkit.errors import FieldViolation
from meshkit.identity import ASSERTION_HEADER
from meshkit.interceptors import REQUEST_ID_HEADER

if TYPE_CHECKING:
    from gateway.server import Gateway

log = logging.getLogger("gateway.webhooks")

LEASE = "webhook-dispatcher"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def webhook_json(webhook: model.Webhook) -> dict[str, Any]:
    """Return a webhook as the API shows it (never its secret)."""
    return {
        "webhook_id": webhook.webhook_id,
        "url": webhook.url,
        "events": list(webhook.events),
        "created_at": webhook.created_at,
    }


def _not_found(webhook_id: str) -> HttpError:
    return HttpError(
        code_pb2.NOT_FOUND,
        f"no webhook {webhook_id} of yours",
        reason="WEBHOOK_NOT_FOUND",
        metadata={"webhook_id": webhook_id},
    )


class Webhooks:
    """The routes, the store and the dispatcher of one gateway application."""

    def __init__(
        self,
        gateway: Gateway,
        open_store: Callable[[db.Database], WebhookStorePort],
    ) -> None:
        self.gateway = gateway
        self.open_store = open_store
        self.store: WebhookStorePort | None = None
        self.dispatcher: Dispatcher | None = None
        self._keeper: leases.LeaseKeeper | None = None

    def install(self, app: web.Application) -> None:
        """Add the routes (before the API's catch-all) and the dispatcher's lifecycle."""
        app.router.add_post(PATH, self.create)
        app.router.add_get(PATH, self.list)
        app.router.add_delete(ITEM_PATH, self.delete)
        app.router.add_post(TEST_PATH, self.test)
        app.router.add_get(DELIVERIES_PATH, self.deliveries)
        app.cleanup_ctx.append(self.lifecycle)  # after the gateway's: its store is open

    # ------------------------------------------------------------------ lifecycle

    async def lifecycle(self, _app: web.Application) -> AsyncIterator[None]:
        """Open the store; run the dispatcher (under the lease on PostgreSQL)."""
        gateway = self.gateway
        assert gateway.store is not None
        database = gateway.store.database
        self.store = self.open_store(database)
        settings = gateway.settings
        if settings.webhook_secret_key:
            await self.store.seal_plaintext_secrets()
        else:
            log.warning(
                "webhooks cannot be created: GATEWAY_WEBHOOK_SECRET_KEY is not set (their"
                " signing secrets are stored sealed under it; docs/webhooks.md)"
            )
        self.dispatcher = Dispatcher(
            self.store,
            self.read_entries,
            DispatchSettings(
                poll_interval_seconds=settings.webhook_poll_interval_ms / 1000,
                retry_schedule_ms=settings.webhook_retry_schedule_ms,
                timeout_seconds=settings.webhook_timeout_ms / 1000,
            ),
        )
        run = gateway.deps.webhook_dispatcher
        try:
            if run and database.dialect == "postgresql":
                table = leases.LeaseTable(database, "gateway")
                dispatcher = self.dispatcher

                async def wanted() -> set[str]:
                    return {LEASE}

                async def acquired(resource: str, token: int) -> None:
                    async def fence(tx: Any) -> None:
                        await table.check_current(tx, resource, token)

                    dispatcher.start(fence)

                async def lost(_resource: str, _token: int) -> None:
                    await dispatcher.stop()

                self._keeper = leases.LeaseKeeper(
                    table,
                    service="gateway",
                    wanted=wanted,
                    on_acquired=acquired,
                    on_lost=lost,
                )
                await self._keeper.start()
            elif run:
                self.dispatcher.start()
            yield
        finally:
            if self._keeper is not None:
                await self._keeper.stop()
            await self.dispatcher.stop()

    async def read_entries(
        self, user_id: str, chain: str, before_seq: int, page_size: int
    ) -> list[dict[str, Any]]:
        """Read a user's entries of a service's chain, newest first, as ``GET /audit`` does."""
        gateway = self.gateway
        assert gateway.store is not None
        user = await gateway.store.get_user(user_id)
        if user is None:
            return []
        source = next(b for b in audit.BACKENDS if b.chain == chain)
        request_id = "webhooks-" + uuid.uuid4().hex[:16]
        metadata = (
            (REQUEST_ID_HEADER, request_id),
            (ASSERTION_HEADER, gateway.signer.sign(user.user_id, user.plan, request_id)),
        )
        call: Any = gateway.channels[source.service].unary_unary(
            source.grpc_path,
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=source.response_class.FromString,
        )
        reply = await call(
            source.request_class(page_size=page_size, before_seq=before_seq),
            timeout=gateway.settings.timeout_ms / 1000,
            metadata=metadata,
        )
        return [audit.from_proto(chain, e) for e in reply.entries]

    # ------------------------------------------------------------------ requests

    async def _caller(self, request: web.Request, label: str) -> auth.Principal:
        request[gateway_server.ROUTE_LABEL_KEY] = label
        principal = await self.gateway.authenticate(request)
        self.gateway.limiter.check(principal.user_id)
        if principal.plan != auth.PRO:
            raise HttpError(
                code_pb2.PERMISSION_DENIED,
                f"webhooks need the pro plan; your plan is {principal.plan}",
                reason="PLAN_REQUIRED",
                metadata={"required_plan": auth.PRO, "plan": principal.plan},
            )
        return principal

    def _store(self) -> WebhookStorePort:
        assert self.store is not None
        return self.store

    async def create(self, request: web.Request) -> web.Response:
        """Serve ``POST /webhooks``."""
        principal = await self._caller(request, PATH)
        raw = await self.gateway._read_body(request)
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise invalid_argument([FieldViolation("", "the body is not JSON")]) from None
        if not isinstance(body, dict):
            raise invalid_argument([FieldViolation("", "the body must be a JSON object")])
        violations = [
            FieldViolation(key, "is not a field of a webhook")
            for key in body
            if key not in ("url", "events")
        ]
        violations += model.url_violations(
            body.get("url"), allow_private=self.gateway.settings.webhook_allow_private_urls
        )
        violations += model.events_violations(body.get("events"))
        if violations:
            raise invalid_argument(violations)
        events = model.normalized_events(body["events"])
        try:
            webhook, secret = await self._store().create(
                principal.user_id, body["url"], events, utcnow()
            )
        except WebhookConflict as e:
            raise HttpError(
                code_pb2.ALREADY_EXISTS,
                "you have a webhook at this url with other events; delete it first",
                reason="WEBHOOK_EXISTS",
                metadata={"webhook_id": str(e)},
                violations=[FieldViolation("url", "already has a webhook with other events")],
            ) from None
        except TooManyWebhooks:
            raise HttpError(
                code_pb2.FAILED_PRECONDITION,
                f"a user has at most {model.MAX_WEBHOOKS_PER_USER} webhooks",
                reason="TOO_MANY_WEBHOOKS",
            ) from None
        except WebhooksNotConfigured:
            raise HttpError(
                code_pb2.UNAVAILABLE,
                "webhooks are not configured on this gateway (its operator has set no"
                " GATEWAY_WEBHOOK_SECRET_KEY)",
                reason="WEBHOOKS_NOT_CONFIGURED",
            ) from None
        out: dict[str, Any] = {"webhook": webhook_json(webhook)}
        if secret is not None:
            out["secret"] = secret
        return web.Response(
            text=_dumps(out),
            status=201 if secret is not None else 200,
            content_type="application/json",
        )

    async def list(self, request: web.Request) -> web.Response:
        """Serve ``GET /webhooks``."""
        principal = await self._caller(request, PATH)
        found = await self._store().of_user(principal.user_id)
        return web.Response(
            text=_dumps({"webhooks": [webhook_json(w) for w in found]}),
            content_type="application/json",
        )

    async def delete(self, request: web.Request) -> web.Response:
        """Serve ``DELETE /webhooks/{webhook_id}``."""
        principal = await self._caller(request, ITEM_PATH)
        webhook_id = request.match_info["webhook_id"]
        if not await self._store().delete(principal.user_id, webhook_id, utcnow()):
            raise _not_found(webhook_id)
        return web.Response(
            text=_dumps({"webhook_id": webhook_id}), content_type="application/json"
        )

    async def test(self, request: web.Request) -> web.Response:
        """Serve ``POST /webhooks/{webhook_id}/test``: queue a ``webhook.test`` delivery."""
        principal = await self._caller(request, TEST_PATH)
        webhook_id = request.match_info["webhook_id"]
        store = self._store()
        webhook = await store.get(principal.user_id, webhook_id)
        if webhook is None:
            raise _not_found(webhook_id)
        now = utcnow()
        event_id = "test:" + uuid.uuid4().hex
        body = model.payload(
            event_id,
            model.TEST_EVENT,
            to_iso(now),
            principal.user_id,
            {"webhook_id": webhook_id, "message": "a test event, sent on request"},
        )
        delivery = await store.queue_test(
            principal.user_id, Queued(webhook_id, event_id, model.TEST_EVENT, body), now
        )
        if self.dispatcher is not None:
            self.dispatcher.wake()
        return web.Response(
            text=_dumps({"delivery": delivery_json(delivery)}),
            status=202,
            content_type="application/json",
        )

    async def deliveries(self, request: web.Request) -> web.Response:
        """Serve ``GET /webhooks/{webhook_id}/deliveries``, newest first."""
        principal = await self._caller(request, DELIVERIES_PATH)
        webhook_id = request.match_info["webhook_id"]
        raw = request.query.get("page_size", "")
        size = DEFAULT_DELIVERIES
        if raw:
            try:
                size = int(raw)
            except ValueError:
                size = -1
            if not 0 <= size <= MAX_DELIVERIES:
                raise invalid_argument(
                    [
                        FieldViolation(
                            "page_size", f"must be a whole number from 0 to {MAX_DELIVERIES}"
                        )
                    ]
                )
            size = size or DEFAULT_DELIVERIES
        store = self._store()
        if await store.get(principal.user_id, webhook_id) is None:
            raise _not_found(webhook_id)
        found = await store.deliveries(principal.user_id, webhook_id, size)
        return web.Response(
            text=_dumps({"deliveries": [delivery_json(d) for d in found]}),
            content_type="application/json",
        )


def install(
    gateway: Gateway,
    app: web.Application,
    open_store: Callable[[db.Database], WebhookStorePort],
) -> Webhooks:
    """Serve the webhook routes on ``app`` and run the dispatcher (one line in ``build_app``).

    ``open_store`` builds the webhook store over the gateway's database (the composition root
    names the concrete one).
    """
    hooks = Webhooks(gateway, open_store)
    hooks.install(app)
    app[WEBHOOKS_KEY] = hooks
    return hooks


WEBHOOKS_KEY = web.AppKey("webhooks", Webhooks)
