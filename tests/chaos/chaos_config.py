"""The chaos tier's knobs (seeds, run size) and the summary table; see conftest.py for the env."""

from __future__ import annotations

import os
import zlib
from collections import Counter
from dataclasses import dataclass, field

from chaos_harness import RunResult
from chaos_plan import Fault, Shape

DEFAULT_BASE_SEED = 20260417


def soak() -> bool:
    """Return whether the soak tier was asked for."""
    return os.environ.get("CHAOS_SOAK", "").strip() in ("1", "true", "yes", "on")


def shape() -> Shape:
    """Return the size of each run for this tier."""
    default_venues = "binance,coinbase,kraken" if soak() else "binance"
    venues = tuple(
        v.strip() for v in os.environ.get("CHAOS_VENUES", default_venues).split(",") if v.strip()
    )
    if soak():
        return Shape(followers=50, min_trades=4, max_trades=6, venues=venues)
    return Shape(followers=3, min_trades=3, max_trades=5, venues=venues)


def seeds_for(fault: Fault) -> list[int]:
    """Return the seeds to run ``fault`` with (explicit, or derived from the base seed)."""
    explicit = os.environ.get("CHAOS_SEEDS", "").strip()
    if explicit:
        return [int(s) for s in explicit.split(",") if s.strip()]
    count = int(os.environ.get("CHAOS_SEED_COUNT", "25" if soak() else "5"))
    if fault.kind == "point":
        count = int(os.environ.get("CHAOS_POINT_SEED_COUNT", str(count)))
    base = int(os.environ.get("CHAOS_BASE_SEED", str(DEFAULT_BASE_SEED)))
    return [zlib.crc32(f"{base}:{fault.name}:{i}".encode()) & 0x7FFFFFFF for i in range(count)]


@dataclass
class Collector:
    """Every run's result, for the table printed at the end of the session."""

    results: list[RunResult] = field(default_factory=list)

    def add(self, results: list[RunResult]) -> None:
        """Record results."""
        self.results.extend(results)

    def table(self) -> list[str]:
        """Return the summary table, one row per (backend, fault)."""
        rows: dict[tuple[str, str], list[RunResult]] = {}
        for result in self.results:
            rows.setdefault((result.backend, result.fault.name), []).append(result)
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
                f"{backend:<10} {name:<48} {results[0].fault.tests:<18} {len(results):>4} "
                f"{fired:>5} {busy:>4} {sum(r.intents for r in results):>7} "
                f"{sum(r.duplicates for r in results):>4} {sum(r.missing for r in results):>7} "
                f"{sum(r.unresolved for r in results):>6} {sum(r.qty for r in results):>4} "
                f"{sum(r.phantom for r in results):>7} {sum(r.rejects for r in results):>7} "
                f"{sum(r.seconds for r in results) / len(results):>6.1f}"
            )
        lines.append("-" * len(header))
        by_backend: dict[str, list[RunResult]] = {}
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
            counts = rows.setdefault((result.backend, result.fault.name), Counter())
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
