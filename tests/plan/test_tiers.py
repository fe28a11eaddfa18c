"""Tier decision: one case per rule, plus impossible demands as input errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpufence.errors import InputError
from gpufence.model.inventory import CcMode, CcMultiGpuMode, DataSensitivity, Tenant, Trust
from gpufence.plan import place
from gpufence.plan.tiers import Mechanism, decide_tier
from tests.plan.fleets import check_plan, inventory, pool, site, snapshot, snapshot_file, tenant


def _tier(
    trust: str, sensitivity: str, *, mig: bool = True, vgpu: bool = True, **kw: object
) -> tuple[Mechanism, Mechanism, set[str]]:
    t = Tenant.model_validate({"name": "t", "trust": trust, "data_sensitivity": sensitivity, **kw})
    decision = decide_tier(t, mig_silicon=mig, vgpu_silicon=vgpu)
    return decision.weakest, decision.recommended, {r.id for r in decision.rationale}


@pytest.mark.parametrize("trust", list(Trust))
@pytest.mark.parametrize("sensitivity", list(DataSensitivity))
def test_no_soft_sharing_ever(trust: Trust, sensitivity: DataSensitivity) -> None:
    weakest, recommended, rules = _tier(trust.value, sensitivity.value)
    assert "no-soft-sharing" in rules
    assert weakest not in (Mechanism.TIME_SLICING, Mechanism.MPS)
    assert recommended.strength >= weakest.strength


def test_hard_sharing_for_public_and_internal_data() -> None:
    weakest, recommended, rules = _tier("partner", "internal")
    assert (weakest, recommended) == (Mechanism.MIG, Mechanism.MIG)
    assert "hard-sharing" in rules


def test_without_mig_silicon_hard_sharing_falls_back() -> None:
    # Changed by issue 10 (rule time-sliced-vgpu): vGPU on parts without MIG is time-sliced,
    # judged like time-slicing across tenants, so the fallback is whole GPUs (before: vgpu).
    assert _tier("internal", "public", mig=False)[0] is Mechanism.DEDICATED_GPU
    weakest, _, rules = _tier("internal", "public", mig=False, vgpu=False)
    assert weakest is Mechanism.DEDICATED_GPU and "silicon-no-mig" in rules


def test_untrusted_recommended_whole_gpus() -> None:
    weakest, recommended, rules = _tier("untrusted", "public")
    assert (weakest, recommended) == (Mechanism.MIG, Mechanism.DEDICATED_GPU)
    assert "untrusted-whole-gpus" in rules


def test_confidential_never_shares_a_gpu() -> None:
    weakest, recommended, rules = _tier("partner", "confidential")
    assert (weakest, recommended) == (Mechanism.DEDICATED_GPU, Mechanism.DEDICATED_NODE)
    assert {"confidential-no-gpu-sharing", "cc-shared-or-rented", "ecc-required"} <= rules


def test_regulated_gets_dedicated_nodes() -> None:
    weakest, recommended, rules = _tier("internal", "regulated")
    assert weakest is recommended is Mechanism.DEDICATED_NODE
    assert "regulated-dedicated-node" in rules


def test_multi_gpu_confidential_jobs_get_whole_nodes() -> None:
    weakest, _, rules = _tier("partner", "confidential", demand=[{"gpus": 8, "gpus_per_job": 8}])
    assert weakest is Mechanism.DEDICATED_NODE and "multi-gpu-cc" in rules


def test_colocation_and_consumer_rules_fire_only_with_such_capacity() -> None:
    t = Tenant.model_validate({"name": "t", "trust": "partner", "data_sensitivity": "confidential"})
    plain = {r.id for r in decide_tier(t, mig_silicon=True, vgpu_silicon=True).rationale}
    assert not {"cc-colocation", "consumer-single-tenant"} & plain
    both = decide_tier(
        t, mig_silicon=True, vgpu_silicon=True, consumer_silicon=True, colocation=True
    )
    assert {"cc-colocation", "consumer-single-tenant"} <= {r.id for r in both.rationale}


# --- the rules applied by placement -------------------------------------------------------------


def test_cc_on_for_confidential_tenant_on_rented_capacity() -> None:
    data = inventory(
        [pool("h100", "H100-SXM5-80GB", site="r1")],
        [tenant("acme", "partner", "confidential", {"gpus": 2})],
        [site("r1", "rented")],
    )
    snap = snapshot(data)
    plan = place(snap)
    check_plan(snap, plan)
    node = plan.pools[0].nodes[0]
    assert node.tenants == ("acme",) and node.cc_mode is CcMode.ON
    assert node.cc_multi_gpu is CcMultiGpuMode.NONE


def test_confidential_tenant_never_shares_a_node() -> None:
    # Changed by issue 10 (rule cc-one-cvm-per-node): a shared node would need CC, and NVIDIA's
    # Confidential Containers put all GPUs of a CC node in one CVM, so even on CC silicon the
    # confidential tenant gets the node to itself (before: it shared with CC on).
    demand = [
        tenant("acme", "partner", "confidential", {"gpus": 2}),
        tenant("beta", "internal", "internal", {"gpus": 2}),
    ]
    cc = snapshot(inventory([pool("h100", "H100-SXM5-80GB", nodes=2)], demand))
    plan = place(cc)
    check_plan(cc, plan)
    assert [n.tenants for n in plan.pools[0].nodes] == [("acme",), ("beta",)]
    assert plan.pools[0].nodes[0].exclusive and plan.pools[0].nodes[0].cc_mode is CcMode.OFF
    no_cc = snapshot(inventory([pool("a100", "A100-SXM4-80GB", nodes=2)], demand))
    plan = place(no_cc)
    check_plan(no_cc, plan)
    assert [n.tenants for n in plan.pools[0].nodes] == [("acme",), ("beta",)]
    assert plan.pools[0].nodes[0].exclusive


@pytest.mark.parametrize(
    ("model", "mode"),
    [("H100-SXM5-80GB", CcMultiGpuMode.PROTECTED_PCIE), ("B200", CcMultiGpuMode.NVLE)],
)
def test_multi_gpu_confidential_job_gets_multi_gpu_cc(model: str, mode: CcMultiGpuMode) -> None:
    data = inventory(
        [pool("p", model, site="r1", nodes=2)],
        [tenant("acme", "partner", "confidential", {"gpus": 16, "gpus_per_job": 8})],
        [site("r1", "rented")],
    )
    snap = snapshot(data)
    plan = place(snap)
    check_plan(snap, plan)
    for node in plan.pools[0].nodes:
        assert node.exclusive and node.cc_mode is CcMode.ON and node.cc_multi_gpu is mode


def test_regulated_tenant_is_alone_on_its_nodes() -> None:
    data = inventory(
        [pool("h100", "H100-SXM5-80GB", nodes=2)],
        [
            tenant("health", "partner", "regulated", {"gpus": 2}),
            tenant("beta", "internal", "public", {"gpus": 2}),
        ],
    )
    snap = snapshot(data)
    plan = place(snap)
    check_plan(snap, plan)
    assert sorted(n.tenants for n in plan.pools[0].nodes) == [("beta",), ("health",)]


def test_consumer_gpus_serve_one_tenant_per_node() -> None:
    data = inventory(
        [pool("lab", "RTX-4090", nodes=2)],
        [
            tenant("a", "internal", "public", {"gpus": 2}),
            tenant("b", "internal", "internal", {"gpus": 2}),
        ],
    )
    snap = snapshot(data)
    plan = place(snap)
    check_plan(snap, plan)
    assert sorted(n.tenants for n in plan.pools[0].nodes) == [("a",), ("b",)]


def test_regulated_tenant_on_consumer_only_fleet_is_an_input_error(tmp_path: Path) -> None:
    data = inventory(
        [pool("lab", "RTX-4090", nodes=2)],
        [tenant("health", "partner", "regulated", {"gpus": 2})],
    )
    with pytest.raises(InputError) as info:
        place(snapshot_file(tmp_path, data))
    err = info.value
    assert "'health'" in err.message and "data-center GPU" in err.message
    assert err.location is not None and err.location.line is not None


def test_cc_demanded_on_ampere_only_rented_pool_is_an_input_error(tmp_path: Path) -> None:
    data = inventory(
        [pool("a100", "A100-SXM4-80GB", site="r1")],
        [tenant("acme", "partner", "confidential", {"gpus": 1})],
        [site("r1", "rented")],
    )
    with pytest.raises(InputError) as info:
        place(snapshot_file(tmp_path, data))
    assert "'acme'" in info.value.message
    assert "confidential computing" in info.value.message and "A100-SXM4-80GB" in info.value.message


def test_mig_demand_on_a_fleet_without_the_profile_is_an_input_error(tmp_path: Path) -> None:
    data = inventory(
        [pool("h100", "H100-SXM5-80GB")],
        [tenant("beta", "internal", "public", {"mig_profile": "1g.5gb", "count": 2})],
    )
    with pytest.raises(InputError, match=r"no MIG profile 1g\.5gb"):
        place(snapshot_file(tmp_path, data))


def test_unknown_demand_model_is_an_input_error_at_its_line(tmp_path: Path) -> None:
    data = inventory(
        [pool("h100", "H100-SXM5-80GB")],
        [tenant("beta", "internal", "public", {"gpus": 1, "gpu_model": "H999"})],
    )
    with pytest.raises(InputError) as info:
        place(snapshot_file(tmp_path, data))
    assert "H999" in info.value.message
    assert info.value.location is not None and info.value.location.line is not None


def test_job_larger_than_any_node_is_an_input_error(tmp_path: Path) -> None:
    data = inventory(
        [pool("h100", "H100-SXM5-80GB", gpn=4)],
        [tenant("beta", "internal", "public", {"gpus": 8, "gpus_per_job": 8})],
    )
    with pytest.raises(InputError, match="spans 8 GPUs"):
        place(snapshot_file(tmp_path, data))
