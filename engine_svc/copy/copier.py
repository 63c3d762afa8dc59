"""The :class:`Copier`: the copy path's parts built and wired together, behind one face."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from engine_svc.copy import startup
from engine_svc.copy.cancels import Canceller
from engine_svc.copy.dispatch import Dispatcher
from engine_svc.copy.outcomes import Outcomes
from engine_svc.copy.reads import BROKER_WAIT_SECONDS, FollowerReader
from engine_svc.copy.recorder import Recorder
from engine_svc.copy.resolver import Resolver
from engine_svc.copy.sender import Sender
from engine_svc.domain.model import CopyConfig, Intent, Signal
from engine_svc.ports import BrokerPort, Clock, CopyStore, Ownership


class Copier:
    """Turns signals into intents and intents into orders; resolves unknown outcomes."""

    def __init__(
        self,
        store: CopyStore,
        broker: BrokerPort,
        clock: Clock,
        *,
        resend_lag_seconds: float = 90.0,
        market_cache_seconds: float = 30.0,
        candle_cache_seconds: float = 300.0,
        resolver_concurrency: int = 8,
        broker_wait_seconds: float = BROKER_WAIT_SECONDS,
        ownership: Ownership | None = None,
    ) -> None:
        self._store = store
        self._broker_wait = broker_wait_seconds
        outcomes = Outcomes(store, clock)
        self._sender = Sender(store, broker, clock, outcomes, ownership)
        self.dispatcher = Dispatcher(self._sender.place)
        reader = FollowerReader(
            broker,
            clock,
            market_cache_seconds=market_cache_seconds,
            candle_cache_seconds=candle_cache_seconds,
            broker_wait_seconds=broker_wait_seconds,
        )
        self._recorder = Recorder(store, reader, self.dispatcher, clock, ownership)
        self._canceller = Canceller(store, broker, clock, outcomes, self._sender)
        self._recorder.cancel_copies = self._canceller.cancel_copies
        self._resolver = Resolver(
            store,
            broker,
            clock,
            outcomes,
            self._sender,
            self._canceller,
            self.dispatcher,
            resend_lag_seconds=resend_lag_seconds,
            concurrency=resolver_concurrency,
            ownership=ownership,
        )
        self._sender.on_unknown = self._resolver.chase

    async def record(self, signal: Signal) -> list[Intent]:
        """Write the signal and every intent it makes in one transaction (see ``recorder``)."""
        return await self._recorder.record(signal)

    def enqueue(self, intents: Iterable[Intent]) -> None:
        """Queue the PENDING intents for sending, each on its account's queue."""
        intents = list(intents)
        self._sender.hand_over(intents)  # their first send need not read them again
        self.dispatcher.enqueue_pending(intents)

    async def place(self, intent_id: str) -> float | None:
        """Send one PENDING intent; return the delay before a retry if rate limited, else None."""
        return await self._sender.place(intent_id)

    async def resolve(self) -> None:
        """Look up every order whose outcome is not final, once (see ``resolver``)."""
        await self._resolver.resolve()

    async def reconcile_at_start(
        self,
        *,
        rounds: int = 3,
        round_pause: float = 1.0,
        source_ids: Collection[str] | None = None,
    ) -> dict[str, str]:
        """Ask the venues about every order a previous holder left unresolved (see ``startup``).

        ``source_ids`` limits it to the intents of those sources (a takeover). Returns, for
        each configuration with an order no venue could be asked about, why.
        """
        return await startup.reconcile_at_start(
            self._store,
            self._resolver,
            broker_wait_seconds=self._broker_wait,
            rounds=rounds,
            round_pause=round_pause,
            source_ids=source_ids,
        )

    async def recover(self, source_ids: Collection[str] | None = None) -> int:
        """Queue every PENDING intent found (of those sources): a crash before the send."""
        return await startup.recover(self._store, self.dispatcher, source_ids)

    async def cancel_resting(self, config: CopyConfig) -> int:
        """Cancel the configuration's copied orders that may rest at a venue; return the count."""
        return await self._canceller.cancel_resting(config)

    async def cancel_copies(self, copies: list[tuple[Intent, CopyConfig]]) -> None:
        """Cancel at the venue copies already marked ``cancel_wanted`` (see ``cancels``)."""
        await self._canceller.cancel_copies(copies)

    async def stop(self) -> None:
        """Stop sending; what was queued stays in the store for the next start."""
        await self.dispatcher.stop()
        self._sender.forget_handed()
        await self._resolver.stop()
