"""Which leader sources this engine replica copies, and taking one over from another replica.

Engine replicas share the work through leases (:mod:`meshkit.leases`), one per leader source
that has live configurations or intents not yet final. Taking a source over, in order:

1. **Fence the broker** at the new token (``Fence("engine:<source>", token)``): from then on
   the broker refuses any order sent under the previous holder's token, and records every
   attempt it lets through, so its "never placed" answer is final.
2. **Send and resolve** under the token: the previous holder's SENT and UNKNOWN orders are
   looked up (one the broker never placed is sent again at once, with the same client order
   id, :func:`engine_svc.domain.intents.may_resend`, unless its leader trade is older than
   ``max_signal_age``: then it is skipped ``stale_on_resend``); its PENDING intents are queued.
   Configurations whose orders no venue could answer for are halted, as at start-up.
3. **Take new signals**: subscribe the source on the signal stream, from the inbox.

A lease lost (released to a replica that joined, or expired while this one was paused) stops
all three at once: the stores refuse what is still written under the old token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from engine_svc import metrics
from engine_svc.copy import Copier
from engine_svc.copy.sender import fence_key
from engine_svc.ports import BrokerPort
from meshkit import errors

log = logging.getLogger(__name__)


class _Advanced(Exception):
    """The lease was moved to ``token`` to pass the broker's fence: take over under it."""

    def __init__(self, token: int) -> None:
        super().__init__(token)
        self.token = token


class SourceOwnership:
    """The sources this replica holds: fenced (may send and resolve), and copying (signals)."""

    def __init__(self) -> None:
        self._tokens: dict[str, int] = {}
        self._copying: set[str] = set()

    def token(self, source_id: str) -> int | None:
        """Return the token this replica sends ``source_id``'s orders under, if it holds it."""
        return self._tokens.get(source_id)

    def sources(self) -> set[str]:
        """Return the sources whose orders this replica sends and resolves now."""
        return set(self._tokens)

    def copying(self, source_id: str) -> bool:
        """Return whether this replica takes ``source_id``'s new signals."""
        return source_id in self._copying

    def fenced(self, source_id: str, token: int) -> None:
        """Record that the broker was fenced at ``token`` for ``source_id``."""
        self._tokens[source_id] = token

    def copy(self, source_id: str, token: int) -> bool:
        """Start taking ``source_id``'s signals, if it is still held under ``token``."""
        if self._tokens.get(source_id) != token:
            return False
        self._copying.add(source_id)
        return True

    def drop(self, source_id: str, token: int) -> bool:
        """Forget ``source_id`` if it was held under ``token``; return whether it was."""
        if self._tokens.get(source_id) != token:
            return False
        del self._tokens[source_id]
        self._copying.discard(source_id)
        return True


class Takeover:
    """Runs the three steps of taking a source over, and the stop when its lease is lost."""

    def __init__(
        self,
        ownership: SourceOwnership,
        broker: BrokerPort,
        copier: Copier,
        halt: Callable[[dict[str, str]], Awaitable[list[str]]],
        subscribe: Callable[[str], Awaitable[None]],
        forget: Callable[[str], Awaitable[None]],
        held: Callable[[str, int], bool],
        advance: Callable[[str, int, int], Awaitable[int | None]],
    ) -> None:
        self._ownership = ownership
        self._broker = broker
        self._copier = copier
        self._halt = halt
        self._subscribe = subscribe
        self._forget = forget
        self._held = held
        self._advance = advance
        self._in_progress: set[str] = set()

    @property
    def in_progress(self) -> set[str]:
        """The sources being taken over now."""
        return set(self._in_progress)

    async def acquired(self, source_id: str, token: int) -> None:
        """Take ``source_id`` over under ``token`` (the lease keeper calls it).

        A step that fails (the store, an unexpected answer) is tried again while the lease is
        still ours: a held source is never left half taken over.
        """
        started = time.monotonic()
        self._in_progress.add(source_id)
        try:
            while self._held(source_id, token):
                try:
                    await self._take_over(source_id, token, started)
                    return
                except _Advanced as e:
                    token = e.token  # the lease moved past the broker's fence: go on under it
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("taking %s over failed; trying again", source_id)
                    await asyncio.sleep(1.0)
        finally:
            self._in_progress.discard(source_id)

    async def _take_over(self, source_id: str, token: int, started: float) -> None:
        if not await self._fence(source_id, token):
            return
        self._ownership.fenced(source_id, token)
        unproven = await self._copier.reconcile_at_start(source_ids={source_id})
        if unproven:
            halted = await self._halt(unproven)
            log.error("taking %s over halted %d configurations", source_id, len(halted))
        recovered = await self._copier.recover({source_id})
        if not self._ownership.copy(source_id, token):
            return
        await self._subscribe(source_id)
        metrics.TAKEOVER_SECONDS.observe(time.monotonic() - started)
        log.info(
            "copying %s under token %d (%d pending intents queued) after %.2fs",
            source_id,
            token,
            recovered,
            time.monotonic() - started,
        )

    async def _fence(self, source_id: str, token: int) -> bool:
        # Until the broker has the new token nothing may be sent or resolved: retry while the
        # lease is still ours (the broker may be restarting).
        delay = 0.05
        while self._held(source_id, token):
            try:
                await self._broker.fence(fence_key(source_id), token)
                return True
            except errors.FailedPrecondition as e:
                # The broker knows a higher token than this lease's (the engine's database was
                # restored, or its lease rows lost): move the lease past it, never back.
                stored = int(e.metadata.get("fence_token", "0") or 0)
                log.warning("broker fence of %s refused token %d: %s", source_id, token, e)
                advanced = await self._advance(source_id, token, stored) if stored else None
                if advanced is None:
                    return False
                raise _Advanced(advanced) from None
            except errors.ServiceError as e:
                log.info("fencing %s at the broker failed (%s); retrying", source_id, e.reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        return False

    async def lost(self, source_id: str, token: int) -> None:
        """Stop copying and sending ``source_id`` (the lease keeper calls it)."""
        if self._ownership.drop(source_id, token):
            await self._forget(source_id)
            log.info("no longer copying %s (token %d)", source_id, token)
