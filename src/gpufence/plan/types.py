"""The plan: typed, frozen results of tier decision and placement (what the emitters render)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gpufence._frozen import Frozen
from gpufence.model.inventory import CcMode, CcMultiGpuMode, SharingMode
from gpufence.plan.tiers import Mechanism, TierDecision

__all__ = [
    "DemandOutcome",
    "GpuPlan",
    "Instance",
    "LowerBound",
    "NodePlan",
    "Plan",
    "PlanStats",
    "PoolPlan",
]

MigStrategy = Literal["none", "single", "mixed"]


class Instance(Frozen):
    """One MIG instance of a tenant on a GPU, at a legal start of its profile."""

    tenant: str
    profile: str
    start: int
    size: int


class GpuPlan(Frozen):
    """One physical GPU: a tenant's whole GPU, MIG instances, or nothing."""

    index: int
    tenant: str | None = Field(default=None, description="Owner of a whole (non-MIG) GPU.")
    job_gpus: int | None = Field(default=None, description="GPUs of the job this GPU is part of.")
    instances: tuple[Instance, ...] = ()

    @property
    def used(self) -> bool:
        """Whether the GPU has an owner or MIG instances."""
        return self.tenant is not None or bool(self.instances)

    @property
    def geometry(self) -> tuple[str, ...]:
        """The GPU's MIG profiles, sorted."""
        return tuple(sorted(i.profile for i in self.instances))


class NodePlan(Frozen):
    """What the plan does with one node: its tenants, exclusivity, MIG/CC mode and GPUs."""

    name: str
    tenants: tuple[str, ...]
    exclusive: bool = Field(description="Reserved for its one tenant (tainted for it).")
    mig: bool
    cc_mode: CcMode | None
    cc_multi_gpu: CcMultiGpuMode | None
    gpus: tuple[GpuPlan, ...]

    @property
    def mig_geometry(self) -> tuple[str, ...] | None:
        """The geometry every GPU of the node has, or None when they differ (or no MIG)."""
        if not self.mig:
            return None
        shapes = {g.geometry for g in self.gpus}
        return next(iter(shapes)) if len(shapes) == 1 else None


class PoolPlan(Frozen):
    """What the plan does with one pool: strategy, workloads and nodes."""

    name: str
    gpu_model: str = Field(description="Catalog key of the pool's GPUs.")
    site: str
    sharing: SharingMode
    mig_strategy: MigStrategy
    workloads: tuple[tuple[str, int], ...] = Field(description="(tenant, GPUs per job) pairs.")
    nodes: tuple[NodePlan, ...]


class DemandOutcome(Frozen):
    """What became of one demand of one tenant."""

    tenant: str
    demand: int = Field(description="Index in the tenant's demand list (0-based).")
    what: str
    requested: int = Field(description="Jobs (whole-GPU demand) or instances (MIG demand).")
    placed: int
    pools: tuple[str, ...] = ()
    unplaced_reason: str | None = None


class LowerBound(Frozen):
    """GPUs one co-tenancy group needs at least on one GPU model (LP bound over geometries)."""

    gpu_model: str
    group: str = Field(description="'shared' or the tenant whose GPUs are its own.")
    instances: int
    slice_bound: int
    gpus: int
    used: int


class PlanStats(Frozen):
    """GPU usage of the plan against a lower bound (how close to optimal the packing is)."""

    gpus_total: int
    gpus_used: int
    whole_gpus: int
    mig_gpus: int
    mig_gpus_partial: int = Field(description="MIG GPUs with compute slices left free.")
    idle_on_exclusive_nodes: int = Field(description="Free GPUs on nodes reserved for one tenant.")
    nodes_used: int
    lower_bound: int
    gap_percent: float


class Plan(Frozen):
    """The isolation plan: tiers, placement per pool/node/GPU, outcomes, bound and gap."""

    mechanism_policy: Literal["weakest", "recommended"]
    strategy: Literal["packed", "first-fit"]
    tiers: tuple[TierDecision, ...]
    pools: tuple[PoolPlan, ...]
    outcomes: tuple[DemandOutcome, ...]
    bounds: tuple[LowerBound, ...]
    stats: PlanStats

    @property
    def unplaced(self) -> tuple[DemandOutcome, ...]:
        """Demand that was not fully placed."""
        return tuple(o for o in self.outcomes if o.placed < o.requested)

    def mechanism_of(self, tenant: str) -> Mechanism:
        """The isolation mechanism the plan uses for ``tenant``."""
        tier = next(t for t in self.tiers if t.tenant == tenant)
        return tier.mechanism(self.mechanism_policy == "recommended")
