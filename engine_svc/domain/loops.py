"""Copy loops (pure): configurations whose copies would come back to their own source.

Every configuration that copies an exchange account (its own, or a published leader's) is an
edge "source account → target account" of one graph over every user's configurations. A
copy placed at a target account is a new trade of that account: when the account is itself
copied, directly or through other accounts, back into the source, each copy is copied again,
without end (until ``max_orders_per_minute``). A configuration that would close a cycle in
that graph is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from engine_svc.domain.model import CopyStatus, SourceKind

LOOP_STATUSES = frozenset({CopyStatus.ACTIVE, CopyStatus.REDUCING, CopyStatus.PAUSED})
"""The states of a configuration whose edges count: those that copy, or may again at once."""
LOOP_DESCRIPTION = "copying into this account would copy its own trades back"
"""What a refused target is told: nothing of the accounts (another user's) the loop runs through."""


class CopyEdge(Protocol):
    """What the copy loop check reads of a configuration (a ``CopyConfig`` is one)."""

    @property
    def config_id(self) -> str: ...

    @property
    def source_kind(self) -> SourceKind: ...

    @property
    def source_id(self) -> str: ...

    @property
    def target_exchange_ids(self) -> tuple[str, ...]: ...

    @property
    def status(self) -> CopyStatus: ...


@dataclass(frozen=True)
class ConfigEdges:
    """A configuration's source, targets and status: its edges, read without its settings."""

    config_id: str
    source_kind: SourceKind
    source_id: str
    target_exchange_ids: tuple[str, ...]
    status: CopyStatus


def copy_edges(configs: Iterable[CopyEdge], *, without: str = "") -> dict[str, set[str]]:
    """Return the graph "source account → target accounts" of ``configs`` (all users).

    Only configurations that copy an exchange account and are in :data:`LOOP_STATUSES`
    count; ``without`` leaves one configuration out (the one being resumed).
    """
    edges: dict[str, set[str]] = {}
    for config in configs:
        if (
            config.config_id == without
            or config.source_kind is not SourceKind.EXCHANGE
            or config.status not in LOOP_STATUSES
        ):
            continue
        edges.setdefault(config.source_id, set()).update(config.target_exchange_ids)
    return edges


def loop_targets(edges: dict[str, set[str]], source: str, targets: Sequence[str]) -> list[int]:
    """Return the indexes of ``targets`` that, copied from ``source``, would close a cycle.

    A target closes one when it is the source, or when the source is reachable from it.
    """
    return [i for i, target in enumerate(targets) if _reaches(edges, target, source)]


def _reaches(edges: dict[str, set[str]], start: str, goal: str) -> bool:
    # Depth-first search from ``start``; the graph is small (one edge per target).
    seen = {start}
    stack = [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        for nxt in edges.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False
