"""Tier decision for the planner: the policy's rules (``gpufence.policy``), and which pools a
demand can never use and under which rule (:func:`pool_refusal`).

The rules themselves (id, text, rationale, sources) live in ``gpufence/policy/data/tiers.yaml``;
``gpufence policy show`` prints them and docs/policy.md explains each.
"""

from __future__ import annotations

from gpufence._frozen import Frozen
from gpufence.catalog import GpuModel
from gpufence.model.inventory import Demand, NodePool, Ownership, Site
from gpufence.policy.tiers import (
    Mechanism,
    Rule,
    TierDecision,
    decide_tier,
    decide_tiers,
)

__all__ = [
    "Mechanism",
    "Refusal",
    "Rule",
    "TierDecision",
    "decide_tier",
    "decide_tiers",
    "pool_refusal",
]


class Refusal(Frozen):
    """Why a pool can never serve a demand: the policy rule (None: a plain capability or the
    demand's own model restriction) and the reason in words."""

    rule: str | None
    reason: str


def pool_refusal(
    tier: TierDecision,
    demand: Demand,
    pool: NodePool,
    model: GpuModel,
    site: Site,
    wanted: GpuModel | None,
) -> Refusal | None:
    """Why ``pool`` can never serve ``demand`` of this tenant, or None.

    Capacity is not considered here; ``wanted`` is the demand's resolved ``gpu_model``.
    """
    if wanted is not None and wanted.key != model.key:
        return Refusal(rule=None, reason=f"{model.key}, the demand asks for {wanted.key}")
    if demand.mig_profile is not None:
        if not model.mig_capable:
            return Refusal(rule="silicon-no-mig", reason=f"{model.key} has no MIG")
        if model.mig_profile(demand.mig_profile) is None:
            return Refusal(rule=None, reason=f"{model.key} has no MIG profile {demand.mig_profile}")
        if model.consumer:
            return Refusal(rule="consumer-single-tenant", reason=f"{model.key} is a consumer part")
    sensitivity = tier.data_sensitivity.value
    if tier.needs_ecc and not model.ecc:
        return Refusal(
            rule="ecc-required", reason=f"{model.key} has no ECC, which {sensitivity} data needs"
        )
    if tier.needs_ecc and model.consumer:
        return Refusal(
            rule="ecc-required",
            reason=f"{model.key} is a consumer part; {sensitivity} data needs a data-center GPU "
            "(ECC on, CC)",
        )
    rented = site.ownership is Ownership.RENTED
    if tier.cc_on_shared_or_rented and rented:
        if not model.cc.supports_cc:
            return Refusal(
                rule="cc-shared-or-rented",
                reason=f"site {site.name} is rented, so {sensitivity} data needs confidential "
                f"computing, which {model.key} does not offer ({model.cc.value})",
            )
        if demand.mig_profile is not None:
            return Refusal(
                rule="mig-no-cc",
                reason=f"site {site.name} is rented, so {sensitivity} data needs CC, and MIG is "
                "not part of NVIDIA's released confidential-computing modes",
            )
        if demand.gpus_per_job > 1 and not model.cc.supports_multi_gpu_cc:
            return Refusal(
                rule="multi-gpu-cc",
                reason=f"site {site.name} is rented and jobs span {demand.gpus_per_job} GPUs: "
                f"multi-GPU confidential computing is needed, {model.key} offers "
                f"{model.cc.value} only",
            )
    return None
