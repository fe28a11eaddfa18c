"""Turn the planner's working state into the frozen :class:`~gpufence.plan.types.Plan`."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Protocol

from gpufence.catalog import CcLevel
from gpufence.model.inventory import CcMode, CcMultiGpuMode, Ownership, SharingMode
from gpufence.plan._state import WorkNode, WorkOutcome, WorkPool
from gpufence.plan.mig import MigGrid, grid_for
from gpufence.plan.tiers import TierDecision
from gpufence.plan.types import (
    DemandOutcome,
    GpuPlan,
    Instance,
    LowerBound,
    MigStrategy,
    NodePlan,
    Plan,
    PlanStats,
    PoolPlan,
)

__all__ = ["PlannerState", "build_plan"]


class PlannerState(Protocol):
    """What the placement leaves behind for the plan (the planner's working state)."""

    @property
    def pools(self) -> list[WorkPool]: ...
    @property
    def outcomes(self) -> list[WorkOutcome]: ...
    @property
    def bounds(self) -> list[LowerBound]: ...
    @property
    def tiers(self) -> Mapping[str, TierDecision]: ...
    @property
    def recommended(self) -> bool: ...
    @property
    def strategy(self) -> StrEnum: ...


def build_plan(planner: PlannerState) -> Plan:
    pools = tuple(_pool_plan(planner, p) for p in planner.pools)
    gpus = [g for p in planner.pools for n in p.nodes for g in n.gpus]
    used = sum(1 for g in gpus if g.used)
    whole = sum(1 for g in gpus if g.job_gpus is not None)
    partial = 0
    for pool in planner.pools:
        if pool.mig:
            grid = grid_for(pool.model)
            for g in (g for n in pool.nodes for g in n.gpus):
                if g.instances and g.job_gpus is None:
                    partial += sum(grid.shapes[s].compute for _, s, _ in g.instances) < grid.compute
    bound = whole + sum(b.gpus for b in planner.bounds)
    nodes = [n for p in planner.pools for n in p.nodes]
    return Plan(
        mechanism_policy="recommended" if planner.recommended else "weakest",
        strategy=planner.strategy.value,
        tiers=tuple(planner.tiers.values()),
        pools=pools,
        outcomes=tuple(
            DemandOutcome(
                tenant=o.tenant,
                demand=o.demand,
                what=o.what,
                requested=o.requested,
                placed=o.placed,
                pools=tuple(o.pools),
                unplaced_reason=o.reason if o.placed < o.requested else None,
            )
            for o in planner.outcomes
        ),
        bounds=tuple(planner.bounds),
        stats=PlanStats(
            gpus_total=len(gpus),
            gpus_used=used,
            whole_gpus=whole,
            mig_gpus=sum(1 for g in gpus if g.instances and g.job_gpus is None),
            mig_gpus_partial=partial,
            idle_on_exclusive_nodes=sum(n.free for n in nodes if n.exclusive is not None),
            nodes_used=sum(1 for n in nodes if not n.empty),
            lower_bound=bound,
            gap_percent=round(100.0 * (used - bound) / bound, 3) if bound else 0.0,
        ),
    )


def _pool_plan(planner: PlannerState, pool: WorkPool) -> PoolPlan:
    workloads: dict[tuple[str, int], None] = {}
    for node in pool.nodes:
        for g in node.gpus:
            if g.job_gpus is not None:
                owner = g.tenant if g.tenant is not None else g.instances[0][0]
                workloads[(owner, g.job_gpus)] = None
            else:
                for tenant, _, _ in g.instances:
                    workloads[(tenant, 1)] = None
    multi = {t for t, n in workloads if n > 1}
    grid = grid_for(pool.model) if pool.mig else None
    nodes = tuple(_node_plan(planner, pool, n, grid, multi) for n in pool.nodes)
    strategy: MigStrategy = "none"
    if pool.mig:
        # `single` needs every MIG GPU of the pool to carry identical instances (device plugin
        # rm.go); anything else, empty GPUs included, needs `mixed`.
        shapes = {g.geometry for n in nodes for g in n.gpus}
        only = next(iter(shapes)) if len(shapes) == 1 else ()
        strategy = "single" if only and len(set(only)) == 1 else "mixed"
    return PoolPlan(
        name=pool.spec.name,
        gpu_model=pool.model.key,
        site=pool.site.name,
        sharing=SharingMode.MIG if pool.mig else SharingMode.DEDICATED,
        mig_strategy=strategy,
        workloads=tuple(sorted(workloads)),
        nodes=nodes,
    )


def _node_plan(
    planner: PlannerState, pool: WorkPool, node: WorkNode, grid: MigGrid | None, multi: set[str]
) -> NodePlan:
    tenants = tuple(sorted(node.tenants))
    sensitive = [t for t in tenants if planner.tiers[t].needs_ecc]
    level = pool.model.cc
    # CC-001: sensitive data on a shared node or rented capacity needs CC on.
    cc_on = bool(sensitive) and (len(tenants) > 1 or pool.site.ownership is Ownership.RENTED)
    if planner.recommended and sensitive and level.supports_cc and not pool.mig:
        # Recommended policy: CC wherever the silicon carries every sensitive job on the node.
        cc_on = cc_on or all(t not in multi or level.supports_multi_gpu_cc for t in sensitive)
    multi_mode: CcMultiGpuMode | None = None
    if cc_on:
        multi_mode = CcMultiGpuMode.NONE
        if any(t in multi for t in sensitive):
            # CC-003: Hopper HGX protected PCIe, Blackwell multi-GPU CC with NVLink encryption.
            multi_mode = (
                CcMultiGpuMode.PROTECTED_PCIE
                if level is CcLevel.PROTECTED_PCIE
                else CcMultiGpuMode.NVLE
            )
    gpus = []
    for i, g in enumerate(node.gpus):
        instances: tuple[Instance, ...] = ()
        if grid is not None:
            instances = tuple(
                Instance(
                    tenant=tenant,
                    profile=grid.shapes[s].name,
                    start=start,
                    size=grid.shapes[s].size,
                )
                for tenant, s, start in sorted(g.instances, key=lambda x: x[2])
            )
        gpus.append(GpuPlan(index=i, tenant=g.tenant, job_gpus=g.job_gpus, instances=instances))
    return NodePlan(
        name=node.name,
        tenants=tenants,
        exclusive=node.exclusive is not None,
        mig=pool.mig,
        cc_mode=CcMode.ON if cc_on else CcMode.OFF,
        cc_multi_gpu=multi_mode,
        gpus=tuple(gpus),
    )
