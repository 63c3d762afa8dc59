"""The chaos tier's knobs (seeds, run size); the env: conftest.py; the table: chaos_summary.py."""

from __future__ import annotations

import os
import zlib

from chaos_plan import FUTURES, Fault, Shape

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


def futures_faults() -> list[Fault]:
    """Return the futures leg's faults: every kill in the soak tier, the engine's in CI."""
    return list(FUTURES) if soak() else list(FUTURES[:1])


def seeds_for(fault: Fault) -> list[int]:
    """Return the seeds to run ``fault`` with (explicit, or derived from the base seed)."""
    explicit = os.environ.get("CHAOS_SEEDS", "").strip()
    if explicit:
        return [int(s) for s in explicit.split(",") if s.strip()]
    count = int(os.environ.get("CHAOS_SEED_COUNT", "25" if soak() else "5"))
    if fault.is_futures and not soak():
        # CI's budget: the futures leg runs one short seed there (more in the soak tier).
        count = int(os.environ.get("CHAOS_FUTURES_SEED_COUNT", "1"))
    if fault.kind == "point":
        # A named point fires at one place of the code, and its runs differ less than a kill's
        # at a random moment: CI runs each point with 3 seeds (the soak tier with all of them).
        default = count if soak() else min(count, 3)
        count = int(os.environ.get("CHAOS_POINT_SEED_COUNT", str(default)))
    base = int(os.environ.get("CHAOS_BASE_SEED", str(DEFAULT_BASE_SEED)))
    return [zlib.crc32(f"{base}:{fault.name}:{i}".encode()) & 0x7FFFFFFF for i in range(count)]
