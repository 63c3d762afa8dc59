"""Published leaders (pure): the model, what may be published, and what followers see.

A leader is one exchange account its owner publishes so that any pro user may copy it. A
follower sees the leader's name, venue, publish time and trade count, and the leader's fills
as the signals its copies came from; never the account's balances, keys or id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine_svc.domain.settings import Violation

LEADER_UNPUBLISHED = "leader_unpublished"
"""The reason of a follower's configuration stopped because its leader was withdrawn."""
MAX_DISPLAY_NAME = 64


@dataclass(frozen=True)
class Leader:
    """A published (or withdrawn) leader."""

    leader_id: str
    user_id: str
    exchange_id: str
    exchange_name: str
    display_name: str
    start_sequence: int
    published_at: datetime
    unpublished_at: datetime | None = None

    @property
    def live(self) -> bool:
        """Return whether it is published now."""
        return self.unpublished_at is None


def check_display_name(name: str) -> list[Violation]:
    """Return the violations of a display name: 1 to 64 printable characters."""
    if not name or len(name) > MAX_DISPLAY_NAME or not name.isprintable():
        return [Violation("display_name", f"must be 1 to {MAX_DISPLAY_NAME} printable characters")]
    return []


def trade_count(leader: Leader, last_sequence: int) -> int:
    """Return how many trades the leader's log holds since it was published."""
    return max(0, last_sequence - leader.start_sequence)
