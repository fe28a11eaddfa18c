"""Benchmark: `gpufence plan` placement on a synthetic fleet, against a first-fit baseline.

A fleet of N GPUs (default 10,000: H100, H200, A100, A30 and B200 pools over owned, colocation
and rented sites) and D demands (default 50,000: mostly single MIG instances of many small
tenants, some whole-GPU and 8-GPU jobs; one tenant in twenty confidential or regulated, asking
for whole GPUs on CC-capable parts). The
planner (strategy `packed`) and the baseline (strategy `first-fit`: MIG instances in arrival
order into the first GPU with a legal start, jobs into the first node with room) run in this
process on the same snapshot. Printed per run: wall time of `place()` (tiers, placement and the
frozen plan), peak traced memory (tracemalloc, a second run), GPUs used (any allocation), the
lower bound (whole GPUs + the LP bound of every MIG co-tenancy group), the gap, MIG GPUs with
compute slices left free, GPUs idle on nodes reserved for one tenant, unplaced jobs/instances.

    .venv/bin/python bench/plan_mig.py [--gpus 10000] [--demands 50000] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from gpufence.catalog import load_catalog
from gpufence.model.inventory import Inventory
from gpufence.model.snapshot import Snapshot
from gpufence.plan import Plan, Strategy, place, verify_plan

# (catalog key, share of the fleet's GPUs, GPUs per node)
MODELS = [
    ("H100-SXM5-80GB", 0.30, 8),
    ("H200-SXM-141GB", 0.20, 8),
    ("A100-SXM4-80GB", 0.20, 8),
    ("A30", 0.10, 4),
    ("B200", 0.20, 8),
]
NODES_PER_POOL = 16
# Weight of each MIG profile by its size class ("1g", "1g.2M", "2g", "3g", "4g", "7g", "+me").
SIZE_WEIGHTS = {"1": 0.90, "1r": 0.03, "2": 0.04, "3": 0.02, "4": 0.006, "7": 0.002, "me": 0.002}
SENSITIVE_DEMANDS = 0.004  # share of demands from confidential/regulated tenants (whole GPUs)
WHOLE_DEMANDS = 0.006  # share of whole-GPU demands of the other tenants


def _size_class(model_key: str, name: str) -> str:
    profile = load_catalog().lookup(model_key).mig_profile(name)
    assert profile is not None
    if profile.attribute is not None:
        return "me"
    if profile.compute_slices == 1:
        return "1r" if profile.memory_units > 1 and model_key != "A30" else "1"
    # A30's 4g is its whole GPU: count it with the 7g class.
    if model_key == "A30" and profile.compute_slices == 4:
        return "7"
    return str(profile.compute_slices)


def plan_fleet(gpus: int, demands: int, seed: int = 7) -> dict[str, Any]:
    """The benchmark inventory (a dict, as YAML would give it)."""
    rng = random.Random(seed)
    sites = [
        {"name": "own-1", "country": "DE", "ownership": "owned"},
        {"name": "colo-1", "country": "DE", "ownership": "colocation"},
        {"name": "rent-1", "country": "DE", "ownership": "rented"},
    ]
    pools: list[dict[str, Any]] = []
    for key, share, gpn in MODELS:
        left = round(gpus * share) // gpn
        while left > 0:
            count = min(NODES_PER_POOL, left)
            index = len(pools)
            pools.append(
                {
                    "name": f"{key.lower()}-{index:03d}",
                    "site": sites[index % len(sites)]["name"],
                    "gpu_model": key,
                    "gpus_per_node": gpn,
                    "sharing": "dedicated",
                    "nodes": [{"name": f"n{index:03d}-{n:02d}"} for n in range(count)],
                }
            )
            left -= count
    catalog = load_catalog()
    choices: dict[str, tuple[list[str], list[float]]] = {}
    for key, _, _ in MODELS:
        names = [p.name for p in catalog.lookup(key).mig_profiles]
        weights = [SIZE_WEIGHTS[_size_class(key, n)] for n in names]
        choices[key] = (names, weights)
    model_keys = [k for k, _, _ in MODELS]
    # MIG demand in proportion to the instances each model's share of the fleet can hold.
    model_weights = [w * catalog.lookup(k).mig_max_instances / 7 for k, w, _ in MODELS]
    cc_models = ["H100-SXM5-80GB", "H200-SXM-141GB", "B200"]
    n_tenants = max(20, demands // 50)
    tenants: list[dict[str, Any]] = []
    for i in range(n_tenants):
        # One tenant in twenty holds confidential (two thirds) or regulated data.
        sensitivity = (
            ("regulated" if i % 60 == 0 else "confidential")
            if i % 20 == 0
            else rng.choice(["public", "internal"])
        )
        tenants.append(
            {
                "name": f"t{i:05d}",
                "trust": rng.choice(["internal", "partner", "untrusted"]),
                "data_sensitivity": sensitivity,
                "demand": [],
            }
        )
    sensitive = [t for t in tenants if t["data_sensitivity"] in ("confidential", "regulated")]
    others = [t for t in tenants if t not in sensitive]
    for _ in range(demands):
        roll = rng.random()
        item: dict[str, Any]
        if roll < SENSITIVE_DEMANDS:
            # Confidential/regulated tenants take whole GPUs on CC-capable parts.
            owner = rng.choice(sensitive)
            per_job = 8 if rng.random() < 0.05 else 1
            item = {"gpus": per_job, "gpus_per_job": per_job, "gpu_model": rng.choice(cc_models)}
        elif roll < SENSITIVE_DEMANDS + WHOLE_DEMANDS:
            owner = rng.choice(others)
            per_job = rng.choices([1, 2, 8], [0.80, 0.15, 0.05])[0]
            key = rng.choice(model_keys if per_job < 8 else cc_models)  # A30 nodes hold 4
            item = {"gpus": per_job, "gpus_per_job": per_job, "gpu_model": key}
        else:
            owner = rng.choice(others)
            key = rng.choices(model_keys, model_weights)[0]
            names, weights = choices[key]
            item = {"mig_profile": rng.choices(names, weights)[0], "count": 1, "gpu_model": key}
        owner["demand"].append(item)
    return {
        "version": 1,
        "organization": {"name": "Bench", "country": "DE"},
        "sites": sites,
        "tenants": tenants,
        "node_pools": pools,
    }


def snapshot_of(data: dict[str, Any]) -> Snapshot:
    inventory = Inventory.model_validate(data)
    catalog = load_catalog()
    models = {p.name: catalog.lookup(p.gpu_model) for p in inventory.node_pools}
    return Snapshot(inventory=inventory, source_file="<bench>", gpu_models=models)


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = (line.split(":", 1)[1].strip() for line in info if "model name" in line)
            cpu = next(names, cpu)
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()} {platform.machine()}, {cpu or 'unknown CPU'}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )


def _timed(fn: Callable[[], Plan]) -> tuple[Plan, float, float]:
    """(result, wall seconds untraced, peak traced MiB from a second, traced run)."""
    start = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - start
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, wall, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=10_000)
    parser.add_argument("--demands", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    start = time.perf_counter()
    snap = snapshot_of(plan_fleet(args.gpus, args.demands, args.seed))
    build = time.perf_counter() - start
    gpus = sum(p.gpus_per_node * len(p.nodes) for p in snap.inventory.node_pools)
    demands = sum(len(t.demand) for t in snap.inventory.tenants)
    print(
        f"fleet: {gpus} GPUs in {len(snap.inventory.node_pools)} pools, {demands} demands of "
        f"{len(snap.inventory.tenants)} tenants (inventory built in {build:.2f} s)"
    )
    header = (
        f"{'strategy':<10} {'wall s':>7} {'peak MiB':>9} {'GPUs used':>9} {'bound':>7} "
        f"{'gap %':>6} {'MIG GPUs':>8} {'partial':>7} {'idle ded.':>9} {'unplaced':>8}"
    )
    print(header)
    rows = {}
    for strategy in (Strategy.PACKED, Strategy.FIRST_FIT):
        plan, wall, peak = _timed(lambda s=strategy: place(snap, strategy=s))
        s = plan.stats
        unplaced = sum(o.requested - o.placed for o in plan.outcomes)
        rows[strategy] = (plan, wall)
        print(
            f"{strategy.value:<10} {wall:>7.2f} {peak:>9.1f} {s.gpus_used:>9} {s.lower_bound:>7} "
            f"{s.gap_percent:>6.2f} {s.mig_gpus:>8} {s.mig_gpus_partial:>7} "
            f"{s.idle_on_exclusive_nodes:>9} {unplaced:>8}"
        )
    packed, packed_wall = rows[Strategy.PACKED]
    baseline, baseline_wall = rows[Strategy.FIRST_FIT]
    saved = baseline.stats.gpus_used - packed.stats.gpus_used
    print(
        f"packed vs first-fit: {saved} fewer GPUs "
        f"({100.0 * saved / baseline.stats.gpus_used:.2f} % of the baseline's), "
        f"time ratio {packed_wall / baseline_wall:.2f}"
    )
    start = time.perf_counter()
    failures = verify_plan(snap, packed)
    print(
        f"audit of the planned cluster (GPU-/CC- controls): {len(failures)} FAIL "
        f"({time.perf_counter() - start:.2f} s)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
