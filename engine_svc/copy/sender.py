"""Sending an intent's order: the one place an intent becomes SENT, and the broker call.

:meth:`Sender.start_send` is the SENT transition, for a first send and a re-send alike: the
store moves the intent to SENT (compare-and-set, checked against its configuration's status
in the same statement) before the broker is called, so a crash after it leaves an order the
resolver looks up, never one sent twice under two ids.

Per first send the store is written twice (SENT, then the outcome) and read not at all: the
intent is the one the recorder just wrote (:meth:`Sender.hand_over`; an intent not handed
over, or sent again, is read), and of its configuration only what never changes is used
(the user and the target's venue, kept per configuration after the first read): whether the
configuration may send now is checked by the SENT write itself.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from engine_svc import metrics
from engine_svc.copy.outcomes import Outcomes
from engine_svc.domain import intents as rules
from engine_svc.domain.model import Intent, IntentState, SkipReason
from engine_svc.ports import BrokerPort, Clock, CopyStore, Ownership
from meshkit import errors
from meshkit.faultpoints import afaultpoint
from meshkit.leases import FENCED_WRITES, Fenced

log = logging.getLogger(__name__)

S = IntentState
_DEFINITIVE = (
    errors.InvalidArgument,
    errors.FailedPrecondition,
    errors.NotFound,
    errors.Unauthenticated,
    errors.PermissionDenied,
    errors.Unimplemented,
)
_PROVES_EXISTENCE = frozenset({"DUPLICATE_CLIENT_ORDER_ID"})
FENCED = "FENCED"
ORDER_TYPE_UNSUPPORTED = "ORDER_TYPE_UNSUPPORTED"
"""The broker's reason for an order type or time in force the venue cannot take."""
"""The broker's reason for a send under a lease token another replica has since superseded."""


LEVERAGE_RETRY_SECONDS = 1.0
"""The pause before an entry whose leverage could not be set (broker unreachable) is sent again."""


class _Leverage(enum.Enum):
    READY = "ready"  # set (or none to set): send the order
    RETRY = "retry"  # the broker did not answer: back to PENDING, sent again shortly
    REFUSED = "refused"  # the venue refused it: the entry is rejected, never placed


HANDED_OVER_LIMIT = 100_000
"""At most this many intents handed over and not yet sent are kept; past it they are read."""

ROUTES_LIMIT = 10_000
"""At most this many configurations' routes are kept; past it the oldest is read again."""


@dataclasses.dataclass(frozen=True)
class Route:
    """What of an intent's configuration its send needs; none of it ever changes."""

    user_id: str
    venue: str
    """The venue name of the intent's target account (``"unknown"`` when not recorded)."""


def fence_key(source_id: str) -> str:
    """Return the broker fence key of the engine's lease on ``source_id``."""
    return f"engine:{source_id}"


def _reason(error: errors.ServiceError) -> str:
    return error.reason.lower()


def _as_sent(intent: Intent, now: datetime, token: int | None) -> Intent:
    # The intent as EngineStore.mark_sent has just written it (the same five changes).
    return dataclasses.replace(
        intent,
        state=S.SENT,
        attempts=intent.attempts + 1,
        last_sent_at=now,
        not_found_count=0,
        sent_token=intent.sent_token if token is None else token,
    )


class Sender:
    """Sends intents to the broker and records what it answers."""

    def __init__(
        self,
        store: CopyStore,
        broker: BrokerPort,
        clock: Clock,
        outcomes: Outcomes,
        ownership: Ownership | None = None,
    ) -> None:
        self._store = store
        self._broker = broker
        self._clock = clock
        self._outcomes = outcomes
        self._ownership = ownership
        self._in_flight: set[str] = set()
        self._leverage_set: dict[tuple[str, str], int] = {}
        """The leverage set on each (follower account, derivatives market) since start."""
        self._handed: dict[str, Intent] = {}
        """PENDING intents as recorded, by id, until their first send takes them."""
        self._routes: dict[str, tuple[str, dict[str, str]]] = {}
        """Per configuration: its user and its target accounts' venues (never changed)."""
        self.on_unknown: Callable[[str], None] | None = None
        """Called with the intent's id when a send's outcome becomes unknown (the resolver
        looks the order up at once: :meth:`engine_svc.copy.resolver.Resolver.chase`)."""

    def in_flight(self, intent_id: str) -> bool:
        """Return whether the intent's order is being sent right now (the broker not answered)."""
        return intent_id in self._in_flight

    def hand_over(self, intents: Iterable[Intent]) -> None:
        """Keep the PENDING ``intents`` just recorded, so their first send need not read them.

        Safe with a copy that is stale by the send: the SENT write is a compare-and-set on
        the state, so an intent that changed meanwhile is not sent from it.
        """
        for intent in intents:
            if intent.state is S.PENDING and len(self._handed) < HANDED_OVER_LIMIT:
                self._handed[intent.intent_id] = intent

    def forget_handed(self) -> None:
        """Drop every intent handed over (sending stops; the store keeps them)."""
        self._handed.clear()

    async def place(self, intent_id: str) -> float | None:
        """Send one PENDING intent; return the delay before a retry if rate limited, else None."""
        intent = self._handed.pop(intent_id, None)
        if intent is None:
            intent = await self._store.get_intent(intent_id)
        if intent is None or intent.state is not S.PENDING or intent_id in self._in_flight:
            return None
        self._in_flight.add(intent_id)
        try:
            started = await self.start_send(intent)
            if started is None:
                return None
            retry_after = await self._send(*started)
        finally:
            self._in_flight.discard(intent_id)
        await afaultpoint("engine.fanout_after_k")
        return retry_after

    async def resend(self, intent: Intent) -> float | None:
        """Send again, with the same client order id, an order the venue proved it never had.

        The caller has decided (:func:`engine_svc.domain.intents.may_resend`); this only
        sends. Returns the delay before a retry if rate limited, else None.
        """
        if intent.intent_id in self._in_flight:
            return None
        self._in_flight.add(intent.intent_id)
        try:
            started = await self.start_send(intent)
            if started is None:
                return None
            log.warning(
                "re-sending %s: the venue proved it never received it", intent.client_order_id
            )
            return await self._send(*started)
        finally:
            self._in_flight.discard(intent.intent_id)

    async def start_send(self, intent: Intent) -> tuple[Intent, Route] | None:
        """Move ``intent`` to SENT if its configuration may send it now: the one SENT transition.

        Returns the intent as now stored and its route (user, venue), or ``None`` when it may
        not leave: then, if the configuration's status is why, the intent is skipped with that
        reason (the configuration is read again to know). An intent whose source this replica
        does not hold (or no longer: the store fences it) is left as it is for the holder.
        The caller marks the intent in flight first, so the resolver leaves it alone.
        """
        now = self._clock.now()
        token: int | None = None
        if self._ownership is not None:
            token = self._ownership.token(intent.source_id)
            if token is None:
                return None
        try:
            sent = await self._store.mark_sent(intent, now, token)
        except Fenced:
            FENCED_WRITES.labels("engine", "mark_sent").inc()
            log.warning(
                "not sending %s: this replica's lease on its source was taken over",
                intent.client_order_id,
            )
            return None
        if not sent:
            config = await self._store.get_config(intent.config_id)
            if config is not None:
                blocked = rules.send_block(rules.exposure_side(intent), config.status)
                if blocked is not None:
                    await self._outcomes.skipped(intent, blocked)
            return None
        route = await self._route(intent)
        if route is None:
            return None
        metrics.INTENTS.labels(S.SENT.value).inc()
        return _as_sent(intent, now, token), route

    async def _route(self, intent: Intent) -> Route | None:
        # The user and the target venues of a configuration never change (its status does:
        # mark_sent checks that), so they are read once per configuration.
        known = self._routes.get(intent.config_id)
        if known is None:
            config = await self._store.get_config(intent.config_id)
            if config is None:
                return None
            if len(self._routes) >= ROUTES_LIMIT:
                del self._routes[next(iter(self._routes))]
            known = self._routes[intent.config_id] = (config.user_id, dict(config.target_venues))
        user_id, venues = known
        return Route(user_id, venues.get(intent.target_exchange_id, "") or "unknown")

    async def _send(self, intent: Intent, route: Route) -> float | None:
        venue = route.venue
        fence = None
        if self._ownership is not None:
            fence = (fence_key(intent.source_id), intent.sent_token)
        self._in_flight.add(intent.intent_id)
        try:
            leverage = await self._leverage_ready(intent, route)
            if leverage is not _Leverage.READY:
                return LEVERAGE_RETRY_SECONDS if leverage is _Leverage.RETRY else None
            try:
                if fence is None:
                    order = await self._broker.place_order(intent, route.user_id)
                else:
                    order = await self._broker.place_order(intent, route.user_id, fence=fence)
            except errors.ResourceExhausted as e:
                await self._outcomes.rate_limited(intent, _reason(e))
                return max(e.retry_after or 1.0, 0.05)
            except _DEFINITIVE as e:
                if e.reason == FENCED:
                    # Another replica took the source over: the order never left, and the
                    # new holder (fenced at the broker first) sends it. Nothing to record.
                    FENCED_WRITES.labels("engine", "place_order").inc()
                    log.warning("broker refused %s: lease taken over", intent.client_order_id)
                    return None
                if e.reason in _PROVES_EXISTENCE:
                    await self._unknown(intent, _reason(e))
                    return None
                if e.reason == ORDER_TYPE_UNSUPPORTED:
                    # Refused before any venue call: the venue cannot take this type or time
                    # in force. Never placed, never placed as something else: a skip.
                    await self._outcomes.skipped(
                        intent, SkipReason.ORDER_TYPE_UNSUPPORTED, e.message
                    )
                    return None
                await self._outcomes.rejected(intent, venue, _reason(e), e.message)
                return None
            except errors.AlreadyExists as e:
                await self._unknown(intent, _reason(e))
                return None
            except errors.ServiceError as e:
                await afaultpoint("engine.after_broker_timeout")
                await self._unknown(intent, _reason(e))
                return None
            except Exception:
                log.exception("placing %s failed in transport", intent.client_order_id)
                await self._unknown(intent, "outcome_unknown")
                return None
            await afaultpoint("engine.after_broker_ack")
            answered = self._clock.now()
            seconds = (answered - intent.leader_event_time).total_seconds()
            metrics.TRADE_EXECUTION_TIME.observe(max(seconds, 0.0))
            await self._outcomes.apply(intent, order, venue, answered)
            return None
        finally:
            self._in_flight.discard(intent.intent_id)

    async def _leverage_ready(self, intent: Intent, route: Route) -> _Leverage:
        """Set the leverage a derivatives entry asks for before it is sent, once per
        (account, market, leverage) since start (the broker call is idempotent, so a restart
        only asks again). A venue refusal rejects the entry (never placed); a broker that
        cannot be reached or answered late puts it back to PENDING, sent again shortly."""
        if intent.leverage is None or intent.reduce_only:
            return _Leverage.READY
        key = (intent.target_exchange_id, intent.symbol)
        if self._leverage_set.get(key) == intent.leverage:
            return _Leverage.READY
        try:
            await self._broker.set_leverage(
                intent.target_exchange_id, intent.symbol, intent.leverage, route.user_id
            )
        except _DEFINITIVE as e:
            await self._outcomes.rejected(
                intent, route.venue, _reason(e), f"leverage {intent.leverage} not set: {e.message}"
            )
            return _Leverage.REFUSED
        except Exception as e:
            log.warning(
                "setting leverage %s on %s at %s failed (%s); sending %s again shortly",
                intent.leverage,
                intent.symbol,
                intent.target_exchange_id,
                getattr(e, "message", type(e).__name__),
                intent.client_order_id,
            )
            await self._outcomes.rate_limited(intent, "leverage_not_set")
            return _Leverage.RETRY
        self._leverage_set[key] = intent.leverage
        return _Leverage.READY

    async def _unknown(self, intent: Intent, reason: str) -> None:
        # The order may or may not be at the venue: record it, and have it looked up now.
        await self._outcomes.unknown(intent, reason)
        if self.on_unknown is not None:
            self.on_unknown(intent.intent_id)
