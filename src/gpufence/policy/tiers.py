"""Tier decision from the rule set: which isolation mechanism each tenant needs, and why.

The planner decides from these functions (``gpufence.plan.tiers`` re-exports them) and the audit
controls judge with the same rule ids, so there is one copy of the policy. Every fired rule's
text comes from ``data/tiers.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from gpufence._frozen import Frozen
from gpufence.catalog import GpuModel
from gpufence.model.inventory import (
    DataSensitivity,
    Inventory,
    Ownership,
    Tenant,
    Trust,
)
from gpufence.policy.rules import rule

__all__ = [
    "SOFT_VGPU_MODES",
    "Mechanism",
    "Rule",
    "TierDecision",
    "decide_tier",
    "decide_tiers",
    "fired",
    "may_share_gpu",
]

SOFT_VGPU_MODES = frozenset({"time-sliced", "time-sliced-mig-backed"})
"""vGPU modes judged like time-slicing when they span tenants (rule time-sliced-vgpu)."""


class Mechanism(StrEnum):
    """Isolation mechanisms, weakest first. Time-slicing and MPS never cross tenants."""

    TIME_SLICING = "time-slicing"
    MPS = "mps"
    MIG = "mig"
    VGPU = "vgpu"
    """MIG-backed vGPU (time-sliced vGPU counts as time-slicing)."""
    DEDICATED_GPU = "dedicated-gpu"
    DEDICATED_NODE = "dedicated-node"

    @property
    def strength(self) -> int:
        """Rank of the isolation mechanism: higher isolates more."""
        return list(Mechanism).index(self)

    @property
    def shares_gpu(self) -> bool:
        """The tenant may share one physical GPU with other tenants (hardware partitions)."""
        return self in (Mechanism.MIG, Mechanism.VGPU)

    @property
    def shares_node(self) -> bool:
        """The tenant may share a node (host, PCIe, NVLink) with other tenants."""
        return self is not Mechanism.DEDICATED_NODE


class Rule(Frozen):
    """A tier rule that fired for a tenant: stable id + the rule's text."""

    id: str
    text: str


def fired(rule_id: str, detail: str = "") -> Rule:
    """The rule ``rule_id`` as fired for one tenant (``detail``: what made it fire)."""
    text = rule(rule_id).text
    return Rule(id=rule_id, text=f"{text} ({detail})" if detail else text)


def may_share_gpu(tenant: Tenant) -> bool:
    """Rule confidential-no-gpu-sharing: confidential/regulated data never shares a GPU."""
    return not tenant.data_sensitivity.needs_protection


class TierDecision(Frozen):
    """A tenant's isolation tier: the weakest acceptable and the recommended mechanism, with the
    rules.
    """

    tenant: str
    trust: Trust
    data_sensitivity: DataSensitivity
    weakest: Mechanism
    recommended: Mechanism
    needs_ecc: bool
    cc_on_shared_or_rented: bool
    """CC must be on wherever the tenant shares a node or runs on rented capacity."""
    multi_gpu_confidential: bool
    """The tenant runs multi-GPU jobs whose traffic between GPUs must stay protected."""
    rationale: tuple[Rule, ...]

    def mechanism(self, recommended: bool = False) -> Mechanism:
        """The recommended mechanism when ``recommended``, else the weakest acceptable one."""
        return self.recommended if recommended else self.weakest


def decide_tier(
    tenant: Tenant,
    *,
    mig_silicon: bool,
    vgpu_silicon: bool = False,
    consumer_silicon: bool = False,
    colocation: bool = False,
) -> TierDecision:
    """The tier of one tenant; ``*_silicon``: the fleet has (data-center) MIG / vGPU parts, or
    consumer parts; ``colocation``: some of the fleet sits in colocation sites.

    ``vgpu_silicon`` no longer changes the outcome: vGPU on a part without MIG is time-sliced,
    which the policy treats like time-slicing (rule time-sliced-vgpu); it is kept for callers.
    """
    sensitivity = tenant.data_sensitivity
    sensitive = sensitivity.needs_protection
    multi_gpu = any(d.gpus is not None and d.gpus_per_job > 1 for d in tenant.demand)
    rules = [fired("no-soft-sharing"), fired("time-sliced-vgpu")]
    if sensitivity is DataSensitivity.REGULATED:
        weakest = recommended = Mechanism.DEDICATED_NODE
        rules.append(fired("regulated-dedicated-node"))
    elif sensitivity is DataSensitivity.CONFIDENTIAL:
        weakest, recommended = Mechanism.DEDICATED_GPU, Mechanism.DEDICATED_NODE
        rules.append(fired("confidential-no-gpu-sharing"))
    else:
        weakest = Mechanism.MIG if mig_silicon else Mechanism.DEDICATED_GPU
        rules.append(fired("hard-sharing", f"{sensitivity.value} data"))
        if not mig_silicon:
            note = "vGPU-capable parts without MIG only time-slice" if vgpu_silicon else ""
            rules.append(fired("silicon-no-mig", note))
        recommended = weakest
        if tenant.trust is Trust.UNTRUSTED:
            recommended = Mechanism.DEDICATED_GPU
            rules.append(fired("untrusted-whole-gpus"))
    if sensitive:
        rules.append(fired("cc-shared-or-rented", f"{sensitivity.value} data"))
        rules.append(fired("mig-no-cc"))
        rules.append(fired("cc-one-cvm-per-node"))
        rules.append(fired("cc-containers-runtime"))
        rules.append(fired("ecc-required", f"{sensitivity.value} data"))
        if colocation:
            rules.append(fired("cc-colocation"))
        if multi_gpu:
            weakest = recommended = Mechanism.DEDICATED_NODE
            rules.append(fired("multi-gpu-cc"))
    if consumer_silicon:
        rules.append(fired("consumer-single-tenant"))
    return TierDecision(
        tenant=tenant.name,
        trust=tenant.trust,
        data_sensitivity=sensitivity,
        weakest=weakest,
        recommended=recommended,
        needs_ecc=sensitive,
        cc_on_shared_or_rented=sensitive,
        multi_gpu_confidential=sensitive and multi_gpu,
        rationale=tuple(rules),
    )


def decide_tiers(
    inventory: Inventory, gpu_models: Mapping[str, GpuModel]
) -> dict[str, TierDecision]:
    """Tier of every tenant (by name), given the fleet's silicon (pool name -> catalog row)."""
    datacenter = [m for m in gpu_models.values() if not m.consumer]
    sites = {s.name: s for s in inventory.sites}
    colocation = any(
        sites[p.site].ownership is Ownership.COLOCATION
        for p in inventory.node_pools
        if p.site in sites
    )
    return {
        t.name: decide_tier(
            t,
            mig_silicon=any(m.mig_capable for m in datacenter),
            vgpu_silicon=any(m.vgpu for m in datacenter),
            consumer_silicon=any(m.consumer for m in gpu_models.values()),
            colocation=colocation,
        )
        for t in inventory.tenants
    }
