"""The planned cluster as an inventory, and the audit it must pass.

A plan is only as good as the audit it implies (DESIGN.md): :func:`planned_inventory` turns the
plan into the inventory the operator would declare after applying it (same sites, tenants, pools
and nodes; workloads, sharing, MIG/CC state and node tenants as planned), and :func:`verify_plan`
runs every GPU-* and CC-* control over it.
"""

from __future__ import annotations

from gpufence.catalog import load_catalog
from gpufence.controls import ALL_CONTROLS, audit_snapshot
from gpufence.model.findings import Finding, Status
from gpufence.model.inventory import GpuState, Inventory, Node, NodePool, SharingMode, Workload
from gpufence.model.snapshot import Snapshot
from gpufence.plan.types import NodePlan, Plan, PoolPlan

__all__ = [
    "PLAN_DECIDES",
    "PLAN_PLANES",
    "planned_inventory",
    "planned_snapshot",
    "verify_plan",
]

PLAN_PLANES = ("GPU-", "CC-")
"""Control families the planned cluster is audited against."""

PLAN_DECIDES = frozenset(
    {f"GPU-00{i}" for i in range(1, 8)} | {"GPU-012"} | {f"CC-00{i}" for i in (1, 2, 3, 4, 8, 9)}
)
"""Controls that read only what the planner decides (sharing, tenants per node, MIG/ECC/CC
state). A FAIL of one of them in the planned cluster is a planner bug; other GPU-/CC- controls
judge evidence or the key broker, which a plan does not change."""


def _node(node: Node, planned: NodePlan) -> Node:
    state: dict[str, object] = {"cc_mode": planned.cc_mode}
    if planned.cc_multi_gpu is not None:
        state["cc_multi_gpu"] = planned.cc_multi_gpu
    if planned.mig_geometry is not None:
        state["mig_geometry"] = planned.mig_geometry
    return node.model_copy(
        update={"tenants": planned.tenants, "gpu_state": GpuState.model_validate(state)}
    )


def _pool(pool: NodePool, planned: PoolPlan) -> NodePool:
    model = load_catalog().get(planned.gpu_model)
    assert model is not None
    by_name = {n.name: n for n in planned.nodes}
    return pool.model_copy(
        update={
            "sharing": planned.sharing,
            "workloads": tuple(Workload(tenant=t, gpus_per_job=n) for t, n in planned.workloads),
            # Built from scratch: a pool-level CC or MIG setting of today must not leak through.
            "gpu_state": GpuState(
                mig=planned.sharing is SharingMode.MIG, vgpu=False, ecc=model.ecc
            ),
            "nodes": tuple(_node(n, by_name[n.name]) for n in pool.nodes),
        }
    )


def planned_inventory(inventory: Inventory, plan: Plan) -> Inventory:
    """``inventory`` as it is declared once ``plan`` is applied (validated again)."""
    planned = {p.name: p for p in plan.pools}
    pools = tuple(_pool(p, planned[p.name]) for p in inventory.node_pools)
    data = inventory.model_copy(update={"node_pools": pools}).model_dump()
    return Inventory.model_validate(data)


def planned_snapshot(snapshot: Snapshot, plan: Plan) -> Snapshot:
    """A snapshot of the planned inventory (same catalog rows per pool, no evidence)."""
    return Snapshot(
        inventory=planned_inventory(snapshot.inventory, plan),
        source_file=f"{snapshot.source_file} (planned)",
        gpu_models=snapshot.gpu_models,
    )


def verify_plan(
    snapshot: Snapshot, plan: Plan, *, decided_only: bool = False, advisory: bool = False
) -> tuple[Finding, ...]:
    """Every GPU-*/CC-* FAIL the planned cluster would have (``decided_only``: only those of
    :data:`PLAN_DECIDES`); empty for a sound plan.

    Findings of advisory rules (untrusted-whole-gpus, cc-colocation: low-severity
    recommendations) are not failures of the plan: the default "weakest acceptable" placement
    may stay below them, ``--recommended`` follows them where the silicon allows. With
    ``advisory`` they are included (``evidence["advisory"]`` is True on them)."""
    controls = [
        c
        for c in ALL_CONTROLS
        if c.meta.id.startswith(PLAN_PLANES) and (not decided_only or c.meta.id in PLAN_DECIDES)
    ]
    result = audit_snapshot(planned_snapshot(snapshot, plan), controls)
    return tuple(
        f
        for f in result.findings
        if f.status is Status.FAIL and (advisory or f.evidence.get("advisory") is not True)
    )
