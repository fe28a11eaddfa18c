"""The planner benchmark's synthetic fleet stays a valid, plannable inventory (no rot)."""

from __future__ import annotations

import sys
from types import ModuleType

import pytest

from gpufence.plan import Strategy, place
from tests.conftest import REPO
from tests.plan.fleets import check_plan


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import plan_mig
    finally:
        sys.path.remove(str(REPO / "bench"))
    return plan_mig


def test_bench_fleet_plans_within_one_percent_of_the_bound(bench: ModuleType) -> None:
    data = bench.plan_fleet(800, 4000, seed=3)
    snap = bench.snapshot_of(data)
    assert sum(p.gpus_per_node * len(p.nodes) for p in snap.inventory.node_pools) == 800
    assert sum(len(t.demand) for t in snap.inventory.tenants) == 4000
    packed = place(snap)
    check_plan(snap, packed)
    assert packed.stats.gap_percent <= 1.0
    baseline = place(snap, strategy=Strategy.FIRST_FIT)
    check_plan(snap, baseline)
    assert baseline.stats.mig_gpus_partial >= packed.stats.mig_gpus_partial
