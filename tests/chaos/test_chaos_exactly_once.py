"""Exactly once under crashes and venue faults: no duplicated, lost or unresolved follower order.

Each test is one fault of the catalogue (docs/reliability.md §4) run once per seed on every
backend's mesh at the same time; the invariants are checked against the emulators' record.
A named fault point of the catalogue must be in the service's code (``faultpoint("<name>")``)
and must fire in at least one run per backend, or its row fails: a row that tests nothing is
never green.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from chaos_config import futures_faults, seeds_for, shape
from chaos_harness import RunResult, run_group
from chaos_mesh import ChaosMesh, fault_point_inserted
from chaos_plan import CATALOGUE, Fault
from chaos_summary import ROWS_PROPERTY, Row

pytestmark = pytest.mark.chaos


@pytest.mark.parametrize("fault", CATALOGUE, ids=[f.slug for f in CATALOGUE])
async def test_fault_leaves_every_leader_fill_copied_exactly_once(
    fault: Fault,
    chaos_meshes: dict[str, ChaosMesh],
    request: pytest.FixtureRequest,
) -> None:
    await _run_and_check(fault, chaos_meshes, request)


@pytest.mark.parametrize("fault", futures_faults(), ids=[f.slug for f in futures_faults()])
async def test_futures_fault_leaves_every_leader_fill_copied_exactly_once(
    fault: Fault,
    chaos_meshes: dict[str, ChaosMesh],
    request: pytest.FixtureRequest,
) -> None:
    """The futures leg (issue #18): a leader and followers on Binance USDⓈ-M perpetuals (entries,
    reduce-only exits, leverage capped by max_leverage); the emulator's futures records are the
    truth."""
    await _run_and_check(fault, chaos_meshes, request)


async def _run_and_check(
    fault: Fault,
    chaos_meshes: dict[str, ChaosMesh],
    request: pytest.FixtureRequest,
) -> None:
    # A point of the catalogue missing from the code would make its row test nothing.
    if fault.kind == "point":
        assert fault_point_inserted(fault.point), f"faultpoint({fault.point!r}) is not in the code"
    seeds = seeds_for(fault)
    groups = await asyncio.gather(
        *(run_group(mesh, fault, seeds, shape()) for mesh in chaos_meshes.values()),
        return_exceptions=True,
    )
    results: list[RunResult] = []
    errors = []
    for backend, group in zip(chaos_meshes, groups, strict=True):
        if isinstance(group, BaseException):
            errors.append(f"[{backend}] the harness failed: {type(group).__name__}: {group}")
        else:
            results.extend(group)
    # The summary table is built from the reports (tests/conftest.py), which also reach the
    # controller when the suite runs on pytest-xdist workers.
    request.node.user_properties.append((ROWS_PROPERTY, [Row.of(r).as_dict() for r in results]))
    if os.environ.get("CHAOS_VERBOSE"):
        print("\n\n".join(r.report() for r in results))
    failed = [r.report() for r in results if not r.ok]
    assert not errors and not failed, "\n\n".join(errors + failed)
    assert all(r.expected > 0 for r in results), "a run produced no leader fill to copy"
    for backend in chaos_meshes:
        fired = [r.fired for r in results if r.backend == backend]
        assert any(fired), (
            f"[{backend}] {fault.name}: the fault never fired in {len(fired)} "
            "runs (a point off the copy path, or rules no copy met)"
        )
