"""End to end: evidence collected from the real nvidia-smi samples, audited against an inventory.

GPU-005 (MIG off in a MIG pool), GPU-006 (ECC off for confidential data), GPU-008 (observed state
contradicts the inventory, MIG geometry included) and CC-001 (CC off for a confidential tenant on
shared capacity) must read the observed facts; GPU-009..011 read the per-GPU detail.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from gpufence.audit import audit
from gpufence.cli import main
from gpufence.controls.engine import Control
from gpufence.controls.gpu import observed as gpu_observed
from gpufence.model.findings import Status
from tests.inventories import base_inventory, write_inventory

A100_XML = "nvidia-smi/telegraf__a100-sxm4-v12.xml"
H100_MIG = "nvidia-smi/nvidia_gpu_exporter__linux-x86_64__nvidia-h100-mig__590.48.01.txt"
H100 = "nvidia-smi/nvidia_gpu_exporter__linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt"

GEOMETRY = ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]


def _inventory(tmp_path: Path) -> Path:
    data: dict[str, Any] = base_inventory()
    data["tenants"] = [
        {"name": "alpha", "trust": "partner", "data_sensitivity": "confidential"},
        {"name": "beta", "trust": "untrusted", "data_sensitivity": "public"},
    ]
    data["storage"][0]["tenants"] = ["alpha"]
    pool = data["node_pools"][0]
    pool.update(
        name="hmig",
        gpus_per_node=1,
        sharing="mig",
        workloads=[{"tenant": "alpha"}, {"tenant": "beta"}],
        gpu_state={"mig": True, "ecc": True, "cc_mode": "off", "mig_geometry": GEOMETRY},
        nodes=[
            {"name": "h-mig", "bmc": "n1-bmc"},
            {"name": "h-nomig"},
            {"name": "h-eccoff", "gpu_state": {"mig": False, "mig_geometry": []}},
        ],
    )
    data["node_pools"].append(
        {
            "name": "a100",
            "site": "fra1",
            "gpu_model": "A100-SXM4-80GB",
            "gpus_per_node": 1,
            "sharing": "mig",
            "workloads": [{"tenant": "beta"}],
            "networks": ["compute"],
            "gpu_state": {"mig": True, "ecc": True, "mig_geometry": ["2g.20gb", "3g.40gb"]},
            "nodes": [{"name": "a1"}],
        }
    )
    return write_inventory(tmp_path, data)


def _collect(tmp_path: Path, shared_dir: Path) -> Path:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    data = shared_dir / "data"
    h100 = (data / H100).read_text()
    # The real H100 capture with ECC turned off (both in the idle and the load -q dump).
    ecc_off = re.sub(
        r"(ECC Mode\n\s+Current\s+: )Enabled(\n\s+Pending\s+: )Enabled",
        r"\1Disabled\2Disabled",
        h100,
    )
    assert ecc_off != h100
    (tmp_path / "h100-ecc-off.txt").write_text(ecc_off)
    for node, source in (
        ("h-mig", data / H100_MIG),
        ("h-nomig", data / H100),
        ("h-eccoff", tmp_path / "h100-ecc-off.txt"),
        ("a1", data / A100_XML),
    ):
        args = ["collect", "gpu", "--from", str(source), "--node", node, "--out", str(evidence)]
        assert main(args) == 0
    return evidence


def _by(findings: list[dict[str, Any]], control: str) -> dict[str, dict[str, Any]]:
    return {f["resource"]: f for f in findings if f["control"] == control}


def test_audit_reads_observed_gpu_state(
    tmp_path: Path, shared_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = _inventory(tmp_path)
    evidence = _collect(tmp_path, shared_dir)
    capsys.readouterr()
    code = main(["audit", str(inventory), "--evidence", str(evidence), "--format", "json"])
    assert code == 1
    findings = json.loads(capsys.readouterr().out)["findings"]

    mig = _by(findings, "GPU-005")
    assert mig["node/h-mig"]["status"] == "PASS"
    assert mig["node/h-nomig"]["status"] == "FAIL"
    assert mig["node/a1"]["status"] == "PASS"
    assert mig["node/h-nomig"]["evidence"]["mig"]["source"] == "observed"

    ecc = _by(findings, "GPU-006")
    assert (
        ecc["node/h-eccoff"]["status"] == "FAIL" and "ECC is off" in ecc["node/h-eccoff"]["message"]
    )
    assert ecc["node/h-mig"]["status"] == "PASS"
    assert "node/a1" not in ecc  # a1 serves no confidential tenant

    drift = _by(findings, "GPU-008")
    assert drift["node/h-mig"]["status"] == "PASS"  # MIG, ECC, CC and geometry as declared
    assert drift["node/h-eccoff"]["status"] == "FAIL"
    assert "ecc: declared true, observed false" in drift["node/h-eccoff"]["message"]
    nomig = drift["node/h-nomig"]["message"]
    assert "mig: declared true, observed false" in nomig and "mig_geometry" in nomig
    a1 = drift["node/a1"]["message"]
    assert "mig_geometry" in a1 and "1g.20gb" in a1

    cc = _by(findings, "CC-001")
    assert cc["node/h-mig"]["status"] == "FAIL"
    assert cc["node/h-mig"]["evidence"]["cc_mode"]["source"] == "observed"


def test_audit_without_evidence_is_not_evaluated(tmp_path: Path) -> None:
    data = json.loads(json.dumps(base_inventory()))
    data["node_pools"][0]["gpu_state"] = {}
    run = audit(write_inventory(tmp_path, data))
    gpu005 = [f for f in run.result.findings if f.control == "GPU-008"]
    assert [f.status for f in gpu005] == [Status.NOT_EVALUATED]


def _run(tmp_path: Path, inventory: Path, evidence: Path, ctl: Control) -> dict[str, Any]:
    run = audit(inventory, [evidence], [ctl])
    return {f.resource: f for f in run.result.findings}


def test_gpu_observed_controls(tmp_path: Path, shared_dir: Path) -> None:
    inventory = _inventory(tmp_path)
    evidence = _collect(tmp_path, shared_dir)

    model = _run(tmp_path, inventory, evidence, gpu_observed.installed_gpus_differ)
    assert model["node/h-mig"].status is Status.PASS
    assert model["node/a1"].status is Status.PASS

    # The A100 sample presented as an H100 node: wrong silicon for the pool.
    (evidence / "h-nomig.json").write_text(
        (evidence / "a1.json").read_text().replace('"node/a1"', '"node/h-nomig"')
    )
    model = _run(tmp_path, inventory, evidence, gpu_observed.installed_gpus_differ)
    assert model["node/h-nomig"].status is Status.FAIL
    assert "A100-SXM4-80GB (0x20B2)" in model["node/h-nomig"].message

    pending = _run(tmp_path, inventory, evidence, gpu_observed.pending_mode_drops_protection)
    assert {f.status for f in pending.values()} == {Status.PASS}
    doc = json.loads((evidence / "h-mig.json").read_text())
    doc["raw"]["gpus"][0]["ecc_mode_pending"] = "disabled"
    (evidence / "h-mig.json").write_text(json.dumps(doc))
    pending = _run(tmp_path, inventory, evidence, gpu_observed.pending_mode_drops_protection)
    assert pending["node/h-mig"].status is Status.FAIL
    assert "ECC on, pending off" in pending["node/h-mig"].message

    split = _run(tmp_path, inventory, evidence, gpu_observed.compute_instance_split)
    assert split["node/h-mig"].status is Status.PASS
    instances = doc["raw"]["gpus"][0]["mig_instances"]
    instances[1]["gpu_instance_id"] = instances[0]["gpu_instance_id"]  # two CIs in one GI
    (evidence / "h-mig.json").write_text(json.dumps(doc))
    split = _run(tmp_path, inventory, evidence, gpu_observed.compute_instance_split)
    assert split["node/h-mig"].status is Status.FAIL
    assert "alpha, beta" in split["node/h-mig"].message


def test_gpu_observed_controls_without_evidence(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path, base_inventory())
    for ctl in (
        gpu_observed.installed_gpus_differ,
        gpu_observed.pending_mode_drops_protection,
        gpu_observed.compute_instance_split,
    ):
        findings = audit(inventory, [], [ctl]).result.findings
        assert [f.status for f in findings] == [Status.NOT_EVALUATED]
        assert "gpufence collect gpu" in findings[0].message
