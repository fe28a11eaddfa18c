"""`gpufence attest verify`: interface, JSON shape, exit codes 0/1/2; audit integration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpufence.attest.broker.config import key_release_evidence, load_broker_config
from gpufence.audit import audit_snapshot
from gpufence.cli import main
from gpufence.controls.cc import key_release as attestation
from gpufence.load.inventory import load_snapshot
from tests.inventories import base_inventory, write_inventory

from .brokerkit import make_broker_kit

NONCE = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"
RIM = "switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["attest", "verify", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_switch_positive_json_shape(unit: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys,
        "--report",
        str(unit / "switchAttestationReport.txt"),
        "--certs",
        str(unit / "switchCertChain.txt"),
        "--rim",
        str(unit / RIM),
        "--nonce",
        NONCE,
        "--at",
        "2026-11-25T00:00:00Z",
        "--waive",
        "revocation",
        "--waive",
        "rim.*.revocation",
        "--waive",
        "fwid",
        "--format",
        "json",
    )
    doc = json.loads(out)
    assert code == 0 and doc["verdict"] == "pass"
    assert "SWITCH-0:revocation" in doc["waived_steps"] and "fwid" in doc["waivers"]
    device = doc["devices"][0]
    assert set(device["steps"][0]) == {"name", "status", "detail"}
    assert {s["status"] for s in device["steps"]} <= {"pass", "fail", "not_evaluated"}
    revocation = next(s for s in device["steps"] if s["name"] == "revocation")
    assert (
        revocation["status"] == "not_evaluated" and "revocation not checked" in revocation["detail"]
    )
    claims = device["claims"]
    assert (
        claims["measres"] == "success"
        and claims["x-nvidia-switch-attestation-report-signature-verified"] is True
    )
    assert (
        claims["x-nvidia-switch-attestation-report-cert-chain"]["x-nvidia-cert-ocsp-status"]
        == "not-checked"
    )


def test_fail_and_text_output(unit: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = unit / "sample_attestation_data" / "switch"
    code, out, _ = _run(
        capsys,
        "--report",
        str(sample / "switchAttestationReportInvalidSignature.txt"),
        "--certs",
        str(sample / "switchCertChain.txt"),
        "--at",
        "2026-11-25T00:00:00Z",
    )
    assert code == 1 and "FAIL signature" in out and "revocation not checked" in out


def test_policy_can_refuse_a_passing_verdict(
    unit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("id: strict\nversion: 1\n")
    code, out, _ = _run(
        capsys,
        "--report",
        str(unit / "switchAttestationReport.txt"),
        "--certs",
        str(unit / "switchCertChain.txt"),
        "--rim",
        str(unit / RIM),
        "--nonce",
        NONCE,
        "--at",
        "2026-11-25T00:00:00Z",
        "--policy",
        str(policy),
        "--format",
        "json",
    )
    doc = json.loads(out)
    assert code == 1 and doc["policy"]["allowed"] is False
    assert {r["code"] for r in doc["policy"]["reasons"]} == {"STEP_NOT_EVALUATED"}


def test_multi_device_evidence(att: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = (
        att
        / "nvidia-attestation-sdk/common-test-data/serialized_test_evidence/multi_gpu_hopper.json"
    )
    code, out, _ = _run(
        capsys, "--evidence", str(path), "--at", "2026-11-25T00:00:00Z", "--format", "json"
    )
    doc = json.loads(out)
    # No nonce, no RIM, offline: nothing replayable may read as a pass (issue 12).
    assert code == 1 and doc["verdict"] == "incomplete" and len(doc["devices"]) == 4
    assert {d["verdict"] for d in doc["devices"]} == {"incomplete"}


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({"r.txt": "zz not hex", "c.pem": ""}, "not a hex attestation report"),
        ({"r.txt": "11e0", "c.pem": "nothing"}, "not a PEM certificate chain"),
        ({"e.json": '[{"arch": "HOPPER",}]'}, "not JSON"),
        ({"e.json": '[{"arch": "VOLTA"}]'}, "unknown arch"),
    ],
)
def test_unreadable_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str], words: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    args = (
        ["--evidence", str(tmp_path / "e.json")]
        if "e.json" in files
        else ["--report", str(tmp_path / "r.txt"), "--certs", str(tmp_path / "c.pem")]
    )
    code, _, err = _run(capsys, *args)
    assert code == 2 and words in err and "Traceback" not in err


def test_bad_flags_exit_2(unit: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "--report", str(unit / "switchAttestationReport.txt"))[0] == 2
    code, _, err = _run(
        capsys,
        "--report",
        str(unit / "switchAttestationReport.txt"),
        "--certs",
        str(unit / "switchCertChain.txt"),
        "--nonce",
        "abcd",
    )
    assert code == 2 and "32 bytes" in err


def _findings(tmp_path: Path, broker_config: Path | None, with_evidence: bool) -> dict[str, str]:
    data = base_inventory()
    if broker_config is not None:
        data["secrets"]["key_release"]["broker_config"] = str(broker_config)
    snapshot = load_snapshot(write_inventory(tmp_path, data))
    if with_evidence and broker_config is not None:
        doc = key_release_evidence(load_broker_config(broker_config))
        snapshot = load_snapshot(write_inventory(tmp_path, data), [(doc, str(broker_config))])
    controls = [v for v in vars(attestation).values() if hasattr(v, "meta")]
    return {f.control: f.status.value for f in audit_snapshot(snapshot, controls).findings}


def test_broker_controls(tmp_path: Path) -> None:
    kit = make_broker_kit(tmp_path, token_ttl_s=3600)
    assert set(_findings(tmp_path, None, False).values()) == {"NOT_EVALUATED"}
    found = _findings(tmp_path, kit.config, True)
    assert found == {
        "CC-005": "PASS",
        "CC-006": "FAIL",
        "CC-007": "PASS",
        "DAT-004": "FAIL",
        "DAT-005": "PASS",
    }
    text = kit.config.read_text().replace(
        "kek: {source: file, path: kek.bin}", "kek: {source: embedded}"
    )
    kit.config.write_text(text.replace("token_ttl_s: 3600", "token_ttl_s: 300"))
    (tmp_path / "policy.yaml").write_text(
        (tmp_path / "policy.yaml").read_text() + "  allow_devtools: true\n"
    )
    assert _findings(tmp_path, kit.config, True) == {
        "CC-005": "FAIL",
        "CC-006": "FAIL",
        "CC-007": "PASS",
        "DAT-004": "PASS",
        "DAT-005": "FAIL",
    }
    # A secret declared without a policy, and the older form with no resources at all.
    text = kit.config.read_text()
    kit.config.write_text(text.replace("  policy: policy.yaml\n", ""))
    assert _findings(tmp_path, kit.config, True)["CC-007"] == "FAIL"
    kit.config.write_text(text.split("  policies:")[0])
    assert _findings(tmp_path, kit.config, True)["CC-007"] == "FAIL"
