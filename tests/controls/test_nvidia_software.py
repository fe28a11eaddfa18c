"""FW-007 / FW-008: NVIDIA driver and Container Toolkit versions against the sourced bulletins.

The driver version comes from real nvidia-smi captures (../shared) through the GPU collector, as
`gpufence collect gpu` records it; the toolkit version is not recorded by any collector.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from gpufence.audit import audit_snapshot
from gpufence.collect.gpu.evidence import gpu_evidence
from gpufence.collect.gpu.nvidia_smi import parse_nvidia_smi
from gpufence.controls import controls_by_id
from gpufence.controls.nvidia_software import DRIVER_FACT, TOOLKIT_FACT
from gpufence.load.inventory import load_snapshot
from gpufence.model.context import AuditContext
from gpufence.model.evidence import EvidenceDocument
from gpufence.model.findings import Finding, Severity, Status
from tests.inventories import base_inventory, write_inventory

H100 = "nvidia-smi/nvidia_gpu_exporter__linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt"


def node_doc(observed: dict[str, Any] | None = None, raw: dict[str, Any] | None = None) -> Any:
    return EvidenceDocument.model_validate(
        {
            "schema": "gpufence.evidence/v1",
            "subject": "node/n1",
            "collector": "test",
            "collected_at": "2026-11-20T09:00:00Z",
            "observed": observed or {},
            "raw": raw or {},
        }
    )


def run(
    tmp_path: Path, control: str, docs: list[Any], context: AuditContext | None = None
) -> Finding:
    snapshot = load_snapshot(write_inventory(tmp_path, base_inventory()), [(d, "ev") for d in docs])
    if context is not None:
        snapshot = dataclasses.replace(snapshot, context=context)
    (finding,) = audit_snapshot(snapshot, [controls_by_id()[control]]).findings
    return finding


def test_driver_from_real_nvidia_smi_capture(tmp_path: Path, shared_dir: Path) -> None:
    report = parse_nvidia_smi([shared_dir / "data" / H100])
    assert report.driver_version == "590.48.01"
    finding = run(tmp_path, "FW-007", [gpu_evidence(report, "n1")])
    # R590 is not among the branches the transcribed 2025-10 / 2026-01 / 2026-05 bulletins list.
    assert finding.status is Status.NOT_EVALUATED, finding.message
    assert "R590" in finding.message and "590.48.01" in finding.evidence["version"]["value"]


@pytest.mark.parametrize(
    ("version", "expected", "words"),
    [
        ("570.133.20", Status.FAIL, "CVE-2025-33219"),  # below 570.211.01
        ("535.230.02", Status.FAIL, "CVE-2025-23244"),  # below 535.247.01
        ("535.309.01", Status.PASS, "at or above"),
        ("580.95.05", Status.FAIL, "580.159.03"),
        ("565.57.01", Status.NOT_EVALUATED, "R565"),  # end-of-life branch: not listed
        ("latest", Status.NOT_EVALUATED, "not <branch>"),
    ],
)
def test_driver_versions(tmp_path: Path, version: str, expected: Status, words: str) -> None:
    finding = run(tmp_path, "FW-007", [node_doc(raw={"driver_version": version})])
    assert finding.status is expected, finding.message
    assert words in finding.message


def test_driver_unrecorded_is_not_evaluated(tmp_path: Path) -> None:
    finding = run(tmp_path, "FW-007", [])
    assert finding.status is Status.NOT_EVALUATED and finding.resource == "cluster"
    assert "none of 1 node(s) (n1)" in finding.message and "collect gpu" in finding.message
    finding = run(tmp_path, "FW-007", [node_doc(observed={"gpu_state.ecc": True})])
    assert finding.status is Status.NOT_EVALUATED and finding.evidence["missing"] == DRIVER_FACT


def test_one_node_recorded_others_per_node(tmp_path: Path) -> None:
    data = base_inventory()
    data["node_pools"][0]["nodes"].append({"name": "n2"})
    docs = [node_doc(raw={"driver_version": "535.309.01"})]
    snapshot = load_snapshot(write_inventory(tmp_path, data), [(d, "ev") for d in docs])
    found = {
        f.resource: f.status
        for f in audit_snapshot(snapshot, [controls_by_id()["FW-007"]]).findings
    }
    assert found == {"node/n1": Status.PASS, "node/n2": Status.NOT_EVALUATED}


@pytest.mark.parametrize(
    ("version", "expected", "words"),
    [
        ("1.16.1", Status.FAIL, "CVE-2024-0132"),
        ("1.17.7", Status.FAIL, "CVE-2025-23266"),
        ("1.17.8-1", Status.PASS, "at or above"),
        ("v1.18.0", Status.PASS, "at or above"),
        ("1.17", Status.NOT_EVALUATED, "not X.Y.Z"),
    ],
)
def test_container_toolkit_versions(
    tmp_path: Path, version: str, expected: Status, words: str
) -> None:
    finding = run(tmp_path, "FW-008", [node_doc(observed={TOOLKIT_FACT: version})])
    assert finding.status is expected, finding.message
    assert words in finding.message


def test_container_toolkit_is_not_recorded_by_the_gpu_collector(
    tmp_path: Path, shared_dir: Path
) -> None:
    report = parse_nvidia_smi([shared_dir / "data" / H100])
    finding = run(tmp_path, "FW-008", [gpu_evidence(report, "n1")])
    assert finding.status is Status.NOT_EVALUATED and TOOLKIT_FACT in finding.message
    assert "no gpufence collector records it" in finding.message


def test_kev_flag_from_file_makes_it_critical(tmp_path: Path) -> None:
    docs = [node_doc(observed={TOOLKIT_FACT: "1.17.7"})]
    plain = run(tmp_path, "FW-008", docs)
    assert "CISA KEV" not in plain.message
    ctx = AuditContext(known_exploited={"CVE-2025-23266": "CISA KEV kev.json (added 2026-01-01)"})
    flagged = run(tmp_path, "FW-007", [node_doc(raw={"driver_version": "570.133.20"})], ctx)
    assert "CISA KEV" not in flagged.message  # the KEV file names no driver CVE
    flagged = run(tmp_path, "FW-008", docs, ctx)
    assert "kev.json" in flagged.message and flagged.severity is Severity.CRITICAL
