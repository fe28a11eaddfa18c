"""One policy for plan and audit, as a property over random small inventories.

1. Whatever placement the planner refuses under a policy rule, the audit FAILs on that rule
   (finding evidence ``policy_rule``) when an inventory declares that placement: a demand on a
   pool it may never use (:func:`pool_refusal`), a confidential/regulated tenant sharing a MIG
   GPU or a node, a regulated tenant next to another one.
2. Whatever the planner emits audits clean (no FAIL but advisory ones) on the GPU/CC controls.

Bounded: 40 examples of at most 2 pools x 2 nodes and 3 tenants (well under 30 s on 2 cores).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufence.catalog import CcLevel, GpuModel, load_catalog
from gpufence.controls import ALL_CONTROLS, audit_snapshot
from gpufence.errors import InputError
from gpufence.model.findings import Status
from gpufence.model.inventory import Demand, NodePool, Site, Tenant
from gpufence.plan import place, verify_plan
from gpufence.plan.tiers import decide_tiers, pool_refusal
from tests.plan.fleets import inventory, pool, site, snapshot, tenant

MODELS = ["H100-SXM5-80GB", "B200", "A100-SXM4-80GB", "L40S", "RTX-4090"]
POLICY_CONTROLS = [c for c in ALL_CONTROLS if c.id.startswith(("GPU-", "CC-"))]


@st.composite
def small_inventories(draw: st.DrawFn) -> dict[str, Any]:
    catalog = load_catalog()
    ownership = draw(st.sampled_from(["owned", "colocation", "rented"]))
    pools = [
        pool(f"p{i}", draw(st.sampled_from(MODELS)), nodes=draw(st.integers(1, 2)), gpn=8)
        for i in range(draw(st.integers(1, 2)))
    ]
    tenants = []
    for i in range(draw(st.integers(1, 3))):
        model = catalog.lookup(draw(st.sampled_from(pools))["gpu_model"])
        if model.mig_capable and draw(st.booleans()):
            profile = draw(st.sampled_from(model.mig_profiles)).name
            demand: dict[str, Any] = {"mig_profile": profile, "count": draw(st.integers(1, 4))}
        else:
            per_job = draw(st.sampled_from([1, 1, 2, 4]))
            demand = {"gpus": per_job * draw(st.integers(1, 2)), "gpus_per_job": per_job}
        tenants.append(
            tenant(
                f"t{i}",
                draw(st.sampled_from(["internal", "partner", "untrusted"])),
                draw(st.sampled_from(["public", "internal", "confidential", "regulated"])),
                demand,
            )
        )
    return inventory(pools, tenants, [site("s1", ownership)])


def _failed_rules(data: dict[str, Any]) -> set[str]:
    result = audit_snapshot(snapshot(data), POLICY_CONTROLS)
    return {
        str(f.evidence["policy_rule"])
        for f in result.findings
        if f.status is Status.FAIL and "policy_rule" in f.evidence
    }


def _declared_pool(
    base: dict[str, Any], model: GpuModel, sharing: str, workloads: list[tuple[str, int]]
) -> dict[str, Any]:
    """One node of ``model`` running ``workloads`` as the planner would have to declare it."""
    ownership = base["sites"][0]["ownership"]
    sensitive = any(
        t["data_sensitivity"] in ("confidential", "regulated")
        for t in base["tenants"]
        if t["name"] in {w for w, _ in workloads}
    )
    state: dict[str, Any] = {"mig": sharing == "mig", "ecc": model.ecc}
    wants_cc = sensitive and (ownership == "rented" or len(workloads) > 1)
    state["cc_mode"] = "on" if wants_cc and model.cc.supports_cc else "off"
    if state["cc_mode"] == "on":
        multi = any(n > 1 for _, n in workloads)
        state["cc_multi_gpu"] = (
            "none"
            if not multi or not model.cc.supports_multi_gpu_cc
            else ("protected-pcie" if model.cc is CcLevel.PROTECTED_PCIE else "nvle")
        )
    declared = {
        **pool("declared", model.key, nodes=1, gpn=8),
        "sharing": sharing,
        "workloads": [{"tenant": t, "gpus_per_job": n} for t, n in workloads],
        "gpu_state": state,
    }
    return {**base, "node_pools": [declared]}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(small_inventories(), st.booleans())
def test_planner_refusals_are_audit_failures_and_plans_audit_clean(
    data: dict[str, Any], recommended: bool
) -> None:
    catalog = load_catalog()
    snap = snapshot(data)
    tiers = decide_tiers(snap.inventory, snap.gpu_models)
    site_model = Site.model_validate(data["sites"][0])
    # 1a. Demands on pools the planner refuses under a rule.
    for spec in data["tenants"]:
        tenant_model = Tenant.model_validate(spec)
        tier = tiers[tenant_model.name]
        for demand_spec in spec["demand"]:
            demand = Demand.model_validate(demand_spec)
            for pool_spec in data["node_pools"]:
                model = catalog.lookup(pool_spec["gpu_model"])
                refusal = pool_refusal(
                    tier, demand, NodePool.model_validate(pool_spec), model, site_model, None
                )
                if refusal is None or refusal.rule is None:
                    continue
                sharing = "mig" if demand.mig_profile else "dedicated"
                declared = _declared_pool(
                    data, model, sharing, [(tenant_model.name, demand.gpus_per_job)]
                )
                assert refusal.rule in _failed_rules(declared), (refusal, declared)
    # 1b. Co-tenancy the planner never creates for sensitive and regulated tenants.
    names = [t["name"] for t in data["tenants"]]
    for spec in data["tenants"]:
        sensitivity = spec["data_sensitivity"]
        if sensitivity not in ("confidential", "regulated") or len(names) < 2:
            continue
        other = next(n for n in names if n != spec["name"])
        pair = [(spec["name"], 1), (other, 1)]
        mig_model = catalog.lookup("H100-SXM5-80GB")
        assert "confidential-no-gpu-sharing" in _failed_rules(
            _declared_pool(data, mig_model, "mig", pair)
        )
        node_rules = _failed_rules(_declared_pool(data, mig_model, "dedicated", pair))
        # A shared node needs CC, and a CC node is one CVM for one tenant.
        assert "cc-one-cvm-per-node" in node_rules
        if sensitivity == "regulated":
            assert "regulated-dedicated-node" in node_rules
    # 2. What the planner emits audits clean (advisory findings aside).
    try:
        plan = place(snap, recommended=recommended)
    except InputError:
        return  # some demand no pool can serve: covered by 1a
    failures = verify_plan(snap, plan)
    assert not failures, [(f.control, f.resource, f.message) for f in failures]
