"""The five inventories of issue 10 audited clean before; each must FAIL on the right rule, with
the rule's rationale in the finding. Plus NOT_EVALUATED where the facts a new check needs are
missing, and the advisory rules as low-severity findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpufence.audit import audit_snapshot
from gpufence.load.inventory import load_snapshot
from gpufence.model.findings import Finding, Severity, Status
from gpufence.policy import load_policy
from tests.inventories import base_inventory, write_inventory


def _audit(tmp_path: Path, data: dict[str, Any]) -> list[Finding]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return list(audit_snapshot(load_snapshot(write_inventory(tmp_path, data))).findings)


def _fails_on(findings: list[Finding], rule_id: str) -> list[Finding]:
    return [
        f for f in findings if f.status is Status.FAIL and f.evidence.get("policy_rule") == rule_id
    ]


def _inventory(
    model: str,
    *,
    ownership: str = "owned",
    sharing: str = "dedicated",
    state: dict[str, Any] | None = None,
    tenants: list[tuple[str, str, str]] | None = None,
    per_job: int = 1,
) -> dict[str, Any]:
    data = base_inventory()
    data["sites"][0]["ownership"] = ownership
    tenants = tenants or [("acme", "partner", "confidential"), ("mallory", "untrusted", "public")]
    data["tenants"] = [{"name": n, "trust": t, "data_sensitivity": s} for n, t, s in tenants]
    pool = data["node_pools"][0]
    pool.update(gpu_model=model, sharing=sharing)
    pool["workloads"] = [
        {"tenant": n, "gpus_per_job": per_job if s == "confidential" else 1} for n, _, s in tenants
    ]
    pool["gpu_state"] = state if state is not None else {"ecc": True}
    data["storage"][0]["tenants"] = [tenants[0][0]]
    return data


@pytest.mark.parametrize("model", ["H100-SXM5-80GB", "B200"])
def test_confidential_and_untrusted_share_mig_on_rented_capacity(
    tmp_path: Path, model: str
) -> None:
    data = _inventory(
        model,
        ownership="rented",
        sharing="mig",
        state={"mig": True, "ecc": True, "cc_mode": "on"},
    )
    findings = _audit(tmp_path, data)
    (shared,) = _fails_on(findings, "confidential-no-gpu-sharing")
    assert shared.control == "GPU-012" and shared.severity is Severity.CRITICAL
    assert "acme" in shared.message and "untrusted: mallory" in shared.message
    assert (
        shared.evidence["rationale"] == load_policy().get("confidential-no-gpu-sharing").rationale
    )
    # ... and MIG + CC is itself a FAIL (never a PASS), naming the generation's released modes.
    (mig_cc,) = _fails_on(findings, "mig-no-cc")
    assert mig_cc.control == "CC-009"
    generation = "Blackwell" if model == "B200" else "Hopper"
    assert generation in mig_cc.message


def test_confidential_and_untrusted_share_vgpu_on_a_rented_pool(tmp_path: Path) -> None:
    data = _inventory(
        "H100-SXM5-80GB",
        ownership="rented",
        sharing="vgpu",
        state={"vgpu": True, "vgpu_mode": "mig-backed", "ecc": True, "cc_mode": "on"},
    )
    (shared,) = _fails_on(_audit(tmp_path, data), "confidential-no-gpu-sharing")
    assert shared.control == "GPU-012" and "through vgpu" in shared.message


def test_mig_and_cc_on_one_h100_node(tmp_path: Path) -> None:
    data = _inventory(
        "H100-SXM5-80GB",
        sharing="mig",
        state={"mig": True, "ecc": True, "cc_mode": "on"},
        tenants=[("solo", "internal", "internal")],
    )
    findings = _audit(tmp_path, data)
    (fail,) = _fails_on(findings, "mig-no-cc")
    assert fail.control == "CC-009" and "protected PCIe only" in fail.message
    # CC-001 and CC-002 still pass (CC on, on silicon that has it): the new control catches it.
    assert {f.status for f in findings if f.control in ("CC-001", "CC-002")} == {Status.PASS}


@pytest.mark.parametrize("mode", ["protected-pcie", "nvle"])
def test_multi_gpu_cc_node_shared_with_another_tenant(tmp_path: Path, mode: str) -> None:
    model = "H100-SXM5-80GB" if mode == "protected-pcie" else "B200"
    data = _inventory(
        model,
        state={"ecc": True, "mig": False, "cc_mode": "on", "cc_multi_gpu": mode},
        tenants=[("acme", "partner", "confidential"), ("beta", "internal", "internal")],
        per_job=4,
    )
    findings = _audit(tmp_path, data)
    assert {f.status for f in findings if f.control == "CC-003"} == {Status.PASS}
    (fail,) = _fails_on(findings, "cc-one-cvm-per-node")
    assert fail.control == "CC-008" and fail.severity is Severity.CRITICAL
    assert "one confidential VM" in fail.message and "acme, beta" in fail.message


def test_confidential_tenant_alone_on_an_rtx_4090_with_ecc_on(tmp_path: Path) -> None:
    data = _inventory(
        "RTX-4090", state={"ecc": True}, tenants=[("acme", "partner", "confidential")]
    )
    (fail,) = _fails_on(_audit(tmp_path, data), "ecc-required")
    assert fail.control == "GPU-006" and "consumer" in fail.message
    assert fail.evidence["rationale"] == load_policy().get("ecc-required").rationale


# --- what MIG and vGPU do not isolate ----------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status"),
    [
        ("time-sliced", Status.FAIL),
        ("time-sliced-mig-backed", Status.FAIL),
        ("mig-backed", Status.PASS),
        (None, Status.NOT_EVALUATED),
    ],
)
def test_vgpu_mode_across_tenants(tmp_path: Path, mode: str | None, status: Status) -> None:
    state: dict[str, Any] = {"vgpu": True, "ecc": True}
    if mode:
        state["vgpu_mode"] = mode
    data = _inventory(
        "L40S" if mode != "mig-backed" else "H100-SXM5-80GB",
        sharing="vgpu",
        state=state,
        tenants=[("a", "internal", "internal"), ("b", "partner", "public")],
    )
    (gpu1,) = [f for f in _audit(tmp_path, data) if f.control == "GPU-001"]
    assert gpu1.status is status
    if status is Status.FAIL:
        assert gpu1.evidence["policy_rule"] == "time-sliced-vgpu"
    if status is Status.NOT_EVALUATED:
        assert gpu1.evidence["missing"] == "vgpu_mode"


def test_mig_cotenancy_names_residual_risks_or_flags_untrusted(tmp_path: Path) -> None:
    trusted = _inventory(
        "H100-SXM5-80GB",
        sharing="mig",
        state={"mig": True, "ecc": True, "cc_mode": "off"},
        tenants=[("a", "internal", "internal"), ("b", "partner", "public")],
    )
    (ok,) = [f for f in _audit(tmp_path / "t", trusted) if f.control == "GPU-012"]
    assert ok.status is Status.PASS
    assert "L2" in ok.message and "compute instances inside one GPU instance" in ok.message
    untrusted = _inventory(
        "H100-SXM5-80GB",
        sharing="mig",
        state={"mig": True, "ecc": True, "cc_mode": "off"},
        tenants=[("a", "internal", "internal"), ("u", "untrusted", "public")],
    )
    (advisory,) = _fails_on(_audit(tmp_path / "u", untrusted), "untrusted-whole-gpus")
    assert advisory.severity is Severity.LOW and advisory.evidence["advisory"] is True


def test_cc_colocation_is_an_advisory_low_finding(tmp_path: Path) -> None:
    data = _inventory(
        "H100-SXM5-80GB",
        ownership="colocation",
        state={"ecc": True, "mig": False, "cc_mode": "off"},
        tenants=[("acme", "partner", "confidential")],
    )
    (advisory,) = _fails_on(_audit(tmp_path, data), "cc-colocation")
    assert advisory.control == "CC-001" and advisory.severity is Severity.LOW
    data["node_pools"][0]["gpu_state"].pop("cc_mode")
    unknown = [
        f
        for f in _audit(tmp_path / "u", data)
        if f.control == "CC-001" and f.status is Status.NOT_EVALUATED
    ]
    assert unknown and unknown[0].severity is Severity.LOW


def test_new_cc_checks_are_not_evaluated_without_their_facts(tmp_path: Path) -> None:
    # MIG pool on CC-capable silicon, CC mode not declared: MIG + CC cannot be ruled out.
    data = _inventory(
        "H100-SXM5-80GB",
        sharing="mig",
        state={"mig": True, "ecc": True},
        tenants=[("a", "internal", "internal")],
    )
    (mig_cc,) = [f for f in _audit(tmp_path / "m", data) if f.control == "CC-009"]
    assert mig_cc.status is Status.NOT_EVALUATED and mig_cc.evidence["missing"] == "CC mode"
    # CC on, MIG mode unknown on MIG-capable silicon.
    data = _inventory(
        "H100-SXM5-80GB", state={"ecc": True, "cc_mode": "on"}, tenants=[("a", "partner", "public")]
    )
    (mig_cc,) = [f for f in _audit(tmp_path / "c", data) if f.control == "CC-009"]
    assert mig_cc.status is Status.NOT_EVALUATED and mig_cc.evidence["missing"] == "MIG mode"
