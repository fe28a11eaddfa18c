"""Tier decision: which isolation mechanism each tenant needs, and why.

For each tenant the planner decides the *weakest acceptable* mechanism (what placement may use)
and the *recommended* one, from trust, data sensitivity, where capacity sits (owned, colocation,
rented) and the silicon in the fleet. Every decision lists the rules that fired. The rules (docs
planning.md explains each) are:

- ``no-soft-sharing``: time-slicing and MPS never span tenants (no memory or fault isolation;
  NVIDIA k8s-device-plugin README); sharing one GPU between tenants needs MIG or vGPU.
- ``hard-sharing``: public/internal data may share a GPU through MIG (or vGPU) partitions.
- ``untrusted-whole-gpus``: untrusted code is recommended whole GPUs (MIG partitions still share
  the host driver and PCIe link).
- ``confidential-no-gpu-sharing``: confidential data never shares a GPU (MIG under CC is not
  verified) and is recommended dedicated nodes.
- ``regulated-dedicated-node``: regulated data runs on dedicated nodes (control GPU-007).
- ``cc-shared-or-rented``: confidential/regulated data on a shared node or rented capacity needs
  CC on Hopper/Blackwell (control CC-001).
- ``cc-colocation``: on colocation capacity CC is recommended (others hold physical access).
- ``multi-gpu-cc``: multi-GPU confidential jobs need protected PCIe (Hopper HGX: the whole node is
  one CVM) or multi-GPU CC with NVLink encryption (Blackwell), so such tenants get whole nodes
  (control CC-003).
- ``ecc-required``: confidential/regulated data needs ECC on and data-center parts (GPU-006).
- ``consumer-single-tenant``: consumer GPUs only serve one tenant per node (control GPU-002).
- ``silicon-no-mig``: without MIG-capable silicon, hard sharing falls back to vGPU or whole GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from gpufence._frozen import Frozen
from gpufence.catalog import GpuModel
from gpufence.model.inventory import (
    DataSensitivity,
    Demand,
    Inventory,
    NodePool,
    Ownership,
    Site,
    Tenant,
    Trust,
)

__all__ = [
    "Mechanism",
    "Rule",
    "TierDecision",
    "decide_tier",
    "decide_tiers",
    "pool_refusal",
]


class Mechanism(StrEnum):
    """Isolation mechanisms, weakest first. Time-slicing and MPS never cross tenants."""

    TIME_SLICING = "time-slicing"
    MPS = "mps"
    MIG = "mig"
    VGPU = "vgpu"
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
    """A tier rule that fired for a tenant: stable id + why, in words."""

    id: str
    text: str


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


def _rule(rule_id: str, text: str) -> Rule:
    return Rule(id=rule_id, text=text)


def decide_tier(
    tenant: Tenant,
    *,
    mig_silicon: bool,
    vgpu_silicon: bool,
    consumer_silicon: bool = False,
    colocation: bool = False,
) -> TierDecision:
    """The tier of one tenant; ``*_silicon``: the fleet has (data-center) MIG / vGPU parts, or
    consumer parts; ``colocation``: some of the fleet sits in colocation sites."""
    sensitivity = tenant.data_sensitivity
    sensitive = sensitivity.needs_protection
    multi_gpu = any(d.gpus is not None and d.gpus_per_job > 1 for d in tenant.demand)
    rules = [
        _rule(
            "no-soft-sharing",
            "time-slicing and MPS never span tenants: they give no memory or fault isolation, "
            "so sharing one GPU between tenants needs MIG or vGPU",
        )
    ]
    if sensitivity is DataSensitivity.REGULATED:
        weakest = recommended = Mechanism.DEDICATED_NODE
        rules.append(
            _rule(
                "regulated-dedicated-node",
                "regulated data runs on dedicated nodes: another tenant on the node shares its "
                "kernel, driver, PCIe and NVLink (GPU-007)",
            )
        )
    elif sensitivity is DataSensitivity.CONFIDENTIAL:
        weakest, recommended = Mechanism.DEDICATED_GPU, Mechanism.DEDICATED_NODE
        rules.append(
            _rule(
                "confidential-no-gpu-sharing",
                "confidential data never shares a GPU (MIG inside confidential computing is not "
                "verified); whole GPUs at least, dedicated nodes recommended",
            )
        )
    else:
        if mig_silicon:
            weakest = Mechanism.MIG
        elif vgpu_silicon:
            weakest = Mechanism.VGPU
        else:
            weakest = Mechanism.DEDICATED_GPU
        rules.append(
            _rule(
                "hard-sharing",
                f"{sensitivity.value} data may share a GPU with other tenants through hardware "
                "partitions (MIG) or mediated vGPU",
            )
        )
        if not mig_silicon:
            rules.append(
                _rule(
                    "silicon-no-mig",
                    "no MIG-capable data-center GPU in the fleet: hard sharing falls back to "
                    + ("vGPU" if vgpu_silicon else "whole GPUs (no vGPU-capable part either)"),
                )
            )
        recommended = weakest
        if tenant.trust is Trust.UNTRUSTED:
            recommended = Mechanism.DEDICATED_GPU
            rules.append(
                _rule(
                    "untrusted-whole-gpus",
                    "untrusted code is recommended whole GPUs: MIG partitions isolate memory and "
                    "SMs but share the host driver and PCIe link",
                )
            )
    if sensitive:
        rules.append(
            _rule(
                "cc-shared-or-rented",
                f"{sensitivity.value} data on a shared node or rented capacity needs confidential "
                "computing on (Hopper or Blackwell) (CC-001)",
            )
        )
        rules.append(
            _rule(
                "ecc-required",
                f"{sensitivity.value} data needs ECC on and data-center parts: GeForce ECC is "
                "off by default or absent and GeForce has no CC (GPU-006)",
            )
        )
        if colocation:
            rules.append(
                _rule(
                    "cc-colocation",
                    "on colocation capacity others hold physical access: CC is recommended "
                    "there too",
                )
            )
        if multi_gpu:
            weakest = recommended = Mechanism.DEDICATED_NODE
            rules.append(
                _rule(
                    "multi-gpu-cc",
                    "multi-GPU confidential jobs need protected PCIe (Hopper HGX: all GPUs of "
                    "the node in one CVM) or multi-GPU CC with NVLink encryption (Blackwell), so "
                    "the tenant gets whole nodes (CC-003)",
                )
            )
    if consumer_silicon:
        rules.append(
            _rule(
                "consumer-single-tenant",
                "consumer (GeForce) GPUs only serve one tenant per node: no MIG, vGPU, ECC or CC "
                "separates tenants on them (GPU-002)",
            )
        )
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


def pool_refusal(
    tier: TierDecision,
    demand: Demand,
    pool: NodePool,
    model: GpuModel,
    site: Site,
    wanted: GpuModel | None,
) -> str | None:
    """Why ``pool`` can never serve ``demand`` of this tenant (a missing capability), or None.

    Capacity is not considered here; ``wanted`` is the demand's resolved ``gpu_model``.
    """
    if wanted is not None and wanted.key != model.key:
        return f"{model.key}, the demand asks for {wanted.key}"
    if demand.mig_profile is not None:
        if not model.mig_capable:
            return f"{model.key} has no MIG"
        if model.mig_profile(demand.mig_profile) is None:
            return f"{model.key} has no MIG profile {demand.mig_profile}"
        if model.consumer:
            return f"{model.key} is a consumer part"
    if tier.needs_ecc and not model.ecc:
        return f"{model.key} has no ECC, which {tier.data_sensitivity.value} data needs"
    if tier.needs_ecc and model.consumer:
        return (
            f"{model.key} is a consumer part; {tier.data_sensitivity.value} data needs a "
            "data-center GPU (ECC on, CC)"
        )
    rented = site.ownership is Ownership.RENTED
    if tier.cc_on_shared_or_rented and rented:
        if demand.mig_profile is not None:
            return (
                f"site {site.name} is rented, so {tier.data_sensitivity.value} data needs CC, "
                "and MIG inside confidential computing is not verified"
            )
        if not model.cc.supports_cc:
            return (
                f"site {site.name} is rented, so {tier.data_sensitivity.value} data needs "
                f"confidential computing, which {model.key} does not offer ({model.cc.value})"
            )
        if demand.gpus_per_job > 1 and not model.cc.supports_multi_gpu_cc:
            return (
                f"site {site.name} is rented and jobs span {demand.gpus_per_job} GPUs: "
                f"multi-GPU confidential computing is needed, {model.key} offers "
                f"{model.cc.value} only"
            )
    return None
