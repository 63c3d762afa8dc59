"""The chaos summary table: one row per run, gathered from the tests' reports.

Plain data only (no harness import), so that the session's root conftest can gather the rows
on the pytest-xdist controller, where the chaos directory's conftest is never loaded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaos_harness import RunResult

ROWS_PROPERTY = "chaos_rows"
"""The ``user_properties`` key under which a chaos test hands its runs' rows to the summary."""


@dataclass(frozen=True)
class Row:
    """What the summary table keeps of one run: plain values, so that a pytest-xdist worker
    can hand it to the controller (through the report's ``user_properties``)."""

    backend: str
    fault_name: str
    tests: str
    fired: bool
    busy: bool
    intents: int
    duplicates: int
    missing: int
    unresolved: int
    qty: int
    phantom: int
    rejects: int
    seconds: float
    outcomes: dict[str, int]

    @classmethod
    def of(cls, result: RunResult) -> Row:
        """Return the row of ``result``."""
        return cls(
            backend=result.backend,
            fault_name=result.fault.name,
            tests=result.fault.tests,
            fired=bool(result.fired),
            busy=result.busy,
            intents=result.intents,
            duplicates=result.duplicates,
            missing=result.missing,
            unresolved=result.unresolved,
            qty=result.qty,
            phantom=result.phantom,
            rejects=result.rejects,
            seconds=result.seconds,
            outcomes=dict(result.outcomes),
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the row as plain data."""
        return asdict(self)


@dataclass
class Collector:
    """Every run's row, for the table printed at the end of the session."""

    results: list[Row] = field(default_factory=list)

    def add(self, results: list[RunResult]) -> None:
        """Record results."""
        self.results.extend(Row.of(r) for r in results)

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        """Record rows handed over as plain data (:meth:`Row.as_dict`)."""
        self.results.extend(Row(**row) for row in rows)

    def table(self) -> list[str]:
        """Return the summary table, one row per (backend, fault)."""
        rows: dict[tuple[str, str], list[Row]] = {}
        for result in self.results:
            rows.setdefault((result.backend, result.fault_name), []).append(result)
        header = (
            f"{'backend':<10} {'fault':<48} {'tests':<18} {'runs':>4} {'fired':>5} "
            f"{'busy':>4} {'intents':>7} {'dup':>4} {'missing':>7} {'unres.':>6} {'qty':>4} "
            f"{'phantom':>7} {'rejects':>7} {'s/run':>6}"
        )
        lines = [header, "-" * len(header)]
        for (backend, name), results in rows.items():
            fired = sum(1 for r in results if r.fired)
            busy = sum(1 for r in results if r.busy)
            lines.append(
                f"{backend:<10} {name:<48} {results[0].tests:<18} {len(results):>4} "
                f"{fired:>5} {busy:>4} {sum(r.intents for r in results):>7} "
                f"{sum(r.duplicates for r in results):>4} {sum(r.missing for r in results):>7} "
                f"{sum(r.unresolved for r in results):>6} {sum(r.qty for r in results):>4} "
                f"{sum(r.phantom for r in results):>7} {sum(r.rejects for r in results):>7} "
                f"{sum(r.seconds for r in results) / len(results):>6.1f}"
            )
        lines.append("-" * len(header))
        by_backend: dict[str, list[Row]] = {}
        for result in self.results:
            by_backend.setdefault(result.backend, []).append(result)
        for backend, results in by_backend.items():
            outcomes: Counter[str] = Counter()
            for result in results:
                outcomes.update(result.outcomes)
            lines.append(
                f"{backend}: {len(results)} runs, {sum(1 for r in results if r.fired)} faults "
                f"injected, {sum(r.intents for r in results)} intents; outcomes: "
                + ", ".join(f"{name} {count}" for name, count in outcomes.most_common())
            )
        lines.extend(self._skips_by_fault())
        return lines

    def _skips_by_fault(self) -> list[str]:
        # Where the copies that were not made went: a skip or reject is decided (not missing),
        # but a row with many of them (stale, unavailable) says where recovery is slow.
        rows: dict[tuple[str, str], Counter[str]] = {}
        for result in self.results:
            counts = rows.setdefault((result.backend, result.fault_name), Counter())
            counts.update(
                {
                    name: n
                    for name, n in result.outcomes.items()
                    if name not in ("filled", "canceled")
                }
            )
        found = [(key, counts) for key, counts in rows.items() if counts]
        if not found:
            return []
        lines = ["copies not made, by fault (skips and rejects, each with its reason):"]
        for (backend, name), counts in found:
            lines.append(
                f"  {backend:<10} {name:<48} "
                + ", ".join(f"{outcome} {count}" for outcome, count in counts.most_common())
            )
        return lines
