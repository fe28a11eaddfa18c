"""The CLI contract: commands, formats, --output, --fail-on and exit codes (DESIGN.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from gpufence.cli import main
from gpufence.model.schemas import schema_for
from tests.conftest import REPO
from tests.inventories import base_inventory, write_inventory

EXAMPLE = REPO / "examples" / "neocloud" / "inventory.yaml"
EXAMPLE_EVIDENCE = REPO / "examples" / "neocloud" / "evidence"


def _failing_inventory(tmp_path: Path) -> Path:
    data = base_inventory()
    data["storage"][0]["encrypted_at_rest"] = False  # DAT-001, high
    return write_inventory(tmp_path, data)


def test_clean_inventory_without_evidence_is_incomplete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing failed, but BMC/Kubernetes controls saw nothing: INCOMPLETE, never PASS."""
    path = str(write_inventory(tmp_path, base_inventory()))
    assert main(["audit", path]) == 0
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert last.startswith("INCOMPLETE: nothing at or above 'low' failed, but ")
    assert "OOB-005" in last and "K8S-001" in last and "PASS" not in last
    # A CI gate asks for evidence: the same run exits 1.
    assert main(["audit", path, "--require-evidence"]) == 1
    capsys.readouterr()
    # Only critical controls gate: those that could not be evaluated are listed, no others.
    assert main(["audit", path, "--fail-on", "critical", "-f", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    unseen = doc["summary"]["unevaluated_controls"]
    critical = {
        f["control"]
        for f in doc["findings"]
        if f["status"] == "NOT_EVALUATED" and f["severity"] == "critical"
    }
    assert doc["summary"]["verdict"] == "incomplete" and critical <= set(unseen)


def test_failure_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(_failing_inventory(tmp_path))]) == 1
    out = capsys.readouterr().out
    assert "DAT-001" in out and out.rstrip().splitlines()[-1].startswith("FAIL")


@pytest.mark.parametrize(
    ("fail_on", "code"),
    [
        ("critical", 0),
        ("high", 1),
        ("medium", 1),
        ("low", 1),
        ("info", 1),
        ("never", 0),
    ],
)
def test_fail_on_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fail_on: str, code: int
) -> None:
    assert main(["audit", str(_failing_inventory(tmp_path)), "--fail-on", fail_on]) == code


def test_json_output_matches_contract_and_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["audit", str(_failing_inventory(tmp_path)), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= {"findings", "summary"}
    fields = {
        "control",
        "title",
        "plane",
        "severity",
        "status",
        "resource",
        "message",
        "remediation",
        "references",
        "fingerprint",
        "evidence",
    }
    for finding in doc["findings"]:
        assert fields <= set(finding)
    jsonschema.Draft202012Validator(schema_for("findings")).validate(doc)
    failed = [f for f in doc["findings"] if f["status"] == "FAIL"]
    assert [f["control"] for f in failed] == ["DAT-001"]
    assert failed[0]["location"]["line"] > 1


def test_fingerprints_are_stable_across_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _failing_inventory(tmp_path)
    main(["audit", str(path), "--format", "json"])
    first = {f["fingerprint"] for f in json.loads(capsys.readouterr().out)["findings"]}
    main(["audit", str(path), "--format", "json"])
    second = {f["fingerprint"] for f in json.loads(capsys.readouterr().out)["findings"]}
    assert first == second and len(first) > 10


def test_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.sarif"
    code = main(["audit", str(_failing_inventory(tmp_path)), "-f", "sarif", "-o", str(out)])
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "wrote sarif report" in captured.err
    sarif = json.loads(out.read_text())
    assert sarif["version"] == "2.1.0"
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["DAT-001"]


def test_junit_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import xml.etree.ElementTree as ET

    main(["audit", str(_failing_inventory(tmp_path)), "-f", "junit"])
    root = ET.fromstring(capsys.readouterr().out.split("?>", 1)[1])
    assert root.get("failures") == "1"


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit"]) == 2
    assert main(["audit", "x.yaml", "--fail-on", "sometimes"]) == 2
    assert main(["no-such-command"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_unwritable_output_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_inventory(tmp_path, base_inventory())
    assert main(["audit", str(path), "-o", str(tmp_path / "missing-dir" / "r.json")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_internal_error_exits_3(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import gpufence.cli.audit as audit_cli

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(audit_cli, "run_audit", broken)
    path = write_inventory(tmp_path, base_inventory())
    assert main(["audit", str(path)]) == 3
    err = capsys.readouterr().err
    assert "internal error (RuntimeError)" in err and "Traceback" not in err
    assert main(["--debug", "audit", str(path)]) == 3
    assert "Traceback" in capsys.readouterr().err


def test_catalog_json_row(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "NVIDIA H100 80GB HBM3", "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["mig_max_instances"] == 7 and row["cc"] == "protected-pcie"
    assert "0x2330" in row["pci_device_ids"]
    assert {"name", "vgpu", "ecc", "consumer", "export_controlled"} <= set(row)


def test_catalog_table_and_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog"]) == 0
    table = capsys.readouterr().out
    assert "B300" in table and "RTX-4090" in table
    assert main(["catalog", "H999"]) == 2
    err = capsys.readouterr().err
    assert "unknown GPU model 'H999'" in err and "closest" in err


@pytest.mark.parametrize("name", ["inventory", "findings", "evidence"])
def test_schema_command(capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert main(["schema", name]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)


def test_inventory_schema_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    main(["schema", "inventory"])
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(EXAMPLE.read_text()))


def test_version_and_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gpufence", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout.startswith("gpufence ")


def test_example_audit_finds_the_planted_mistakes(capsys: pytest.CaptureFixture[str]) -> None:
    # The bundled evidence was collected in November 2026: widen the age limit as `make demo` does.
    code = main(
        [
            "audit",
            str(EXAMPLE),
            "--evidence",
            str(EXAMPLE_EVIDENCE),
            "--max-evidence-age",
            "3650d",
            "-f",
            "json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    failed = sorted((f["control"], f["resource"]) for f in doc["findings"] if f["status"] == "FAIL")
    assert code == 1
    assert failed == sorted(
        [
            ("GPU-001", "node/l40s-i01"),
            ("GPU-002", "node/rtx-l01"),
            ("GPU-008", "node/h200-a02"),
            # Advisory (low): the two untrusted tenants share the H100 MIG GPUs.
            ("GPU-012", "node/h100-m01"),
            ("GPU-012", "node/h100-m02"),
            ("CC-001", "node/h100-o01"),
            ("CC-001", "node/h200-a02"),
            ("CC-003", "node/h200-a02"),
            ("OOB-001", "bmc/rtx-l01-bmc"),
            ("OOB-003", "bmc/rtx-l01-bmc"),
            ("OOB-004", "bmc/rtx-l01-bmc"),
            ("FW-001", "node/rtx-l01"),
            ("DAT-001", "storage/scratch-nfs"),
            # The lab-mgmt route to the tenant front end, seen by the fabric plane too:
            ("FAB-008", "tenant/hooli-research"),
            ("FAB-008", "tenant/initech"),
            ("FAB-008", "tenant/nordlicht-batch"),
            ("FAB-009", "network/lab-mgmt"),
            # fabric/partitions.conf: a GUID without 0x makes OpenSM fail open (ALL=full):
            ("FAB-003", "network/ib-compute"),
            ("FAB-006", "network/ib-compute"),
            # broker/broker.yaml: release tokens live 24 h:
            ("DAT-004", "secrets/key-release"),
            # k8s/acme-ai-inference.yaml: the confidential tenant's pods run under runc:
            ("K8S-014", "k8s/ns/acme-ai/Deployment/llm-inference"),
        ]
    )


def test_malformed_evidence_is_exit_2_or_an_error_finding_when_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "broken.json").write_text('{"subject": "node/n1", not json')
    (evidence / "good.json").write_text(
        json.dumps(
            {
                "schema": "gpufence.evidence/v1",
                "subject": "node/n1",
                "collector": "nvml",
                "collected_at": datetime.now(UTC).isoformat(),
                "observed": {"gpu_state.ecc": False},
            }
        )
    )
    path = write_inventory(tmp_path, base_inventory())
    code = main(["audit", str(path), "--evidence", str(evidence), "-f", "json"])
    captured = capsys.readouterr()
    assert code == 2 and "broken.json:1:" in captured.err and captured.out == ""
    code = main(
        ["audit", str(path), "--evidence", str(evidence), "--skip-bad-evidence", "-f", "json"]
    )
    captured = capsys.readouterr()
    assert "skipped evidence" in captured.err and "broken.json:1:" in captured.err
    doc = json.loads(captured.out)
    drift = [f for f in doc["findings"] if f["control"] == "GPU-008" and f["status"] == "FAIL"]
    assert drift and code == 1
    (error,) = [f for f in doc["findings"] if f["status"] == "ERROR"]
    assert error["resource"] == "node/n1" and "broken.json" in error["message"]


def test_missing_evidence_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_inventory(tmp_path, base_inventory())
    assert main(["audit", str(path), "--evidence", str(tmp_path / "nope")]) == 2


def test_example_sarif_validates_against_the_oasis_schema(
    shared_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = json.loads((shared_dir / "data" / "sarif" / "sarif-schema-2.1.0.json").read_text())
    # This copy keeps the log object under definitions/Root with an empty top level; without the
    # $ref it would accept any document.
    schema = {**schema, "$ref": "#/definitions/Root"}
    main(["audit", str(EXAMPLE), "--evidence", str(EXAMPLE_EVIDENCE), "-f", "sarif"])
    doc = json.loads(capsys.readouterr().out)
    jsonschema.Draft7Validator(schema).validate(doc)
    run = doc["runs"][0]
    bands = {
        rule["id"]: float(rule["properties"]["security-severity"])
        for rule in run["tool"]["driver"]["rules"]
    }
    assert bands["CC-001"] > 9.0 and 7.0 <= bands["FW-001"] < 9.0
    for result in run["results"]:
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] > 1
