"""`gpufence scan bmc` against the real Redfish captures, served over HTTPS by the mockup server.

For each capture the findings are what a person reading it would expect: DMTF public-rackmount1
has IPMI, Telnet and SNMPv1 on and Secure Boot off; the HPE iLO captures get, control by control,
what their own Security Dashboard (SecurityParams) says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.bmc_servers import SECRET, USER, mockup_server

from gpufence.cli import main
from gpufence.collect.bmc.tls import local_tls_support
from gpufence.model.observed_bmc import ObservedBmc
from gpufence.testing.mockup_server import LoopbackPki, make_test_pki

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LoopbackPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def credentials_file(tmp: Path, monkeypatch: pytest.MonkeyPatch, password: str = SECRET) -> Path:
    monkeypatch.setenv("BMC_TEST_PASSWORD", password)
    path = tmp / "credentials.yaml"
    path.write_text(f"default: {{username: {USER}, password_env: BMC_TEST_PASSWORD}}\n")
    return path


def scan(tmp: Path, args: list[str]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Run the CLI; returns (exit code, evidence by BMC name, findings JSON)."""
    evidence, findings = tmp / "evidence.json", tmp / "findings.json"
    code = main(
        [
            "scan",
            "bmc",
            *args,
            "--out",
            str(evidence),
            "--format",
            "json",
            "--output",
            str(findings),
            "--no-ipmi",
            "--no-progress",
        ]
    )
    docs = {d["subject"].split("/", 1)[1]: d for d in json.loads(evidence.read_text())["evidence"]}
    return code, docs, json.loads(findings.read_text())


def by_control(findings: dict[str, Any], resource_prefix: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in findings["findings"]:
        if f["resource"] == resource_prefix or f["resource"].startswith(resource_prefix + "/"):
            out.setdefault(f["control"], []).append(f)
    return out


def status(found: dict[str, list[dict[str, Any]]], control: str) -> str:
    statuses = {f["status"] for f in found[control]}
    assert len(statuses) == 1, found[control]
    return statuses.pop()


@pytest.fixture(scope="module")
def fleet(
    shared: Path, pki: LoopbackPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, dict[str, Any], dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("fleet")
    with (
        pytest.MonkeyPatch.context() as mp,
        mockup_server(shared, tmp, pki, ("dmtf", "dl380a", "dl360"), count=3) as ports,
    ):
        creds = credentials_file(tmp, mp)
        targets = [
            f"{name}=https://127.0.0.1:{port}"
            for name, port in zip(("dmtf", "dl380a", "dl360"), ports, strict=True)
        ]
        args = [a for t in targets for a in ("--target", t)]
        yield scan(tmp, [*args, "--credentials", str(creds), "--ca-bundle", str(pki.ca)])


@pytest.fixture(scope="module")
def shared() -> Path:
    from tests.conftest import SHARED

    if not SHARED.is_dir():
        import os

        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED} is missing")
        pytest.skip(f"{SHARED} not present")
    return SHARED


def test_every_bmc_scanned(fleet: tuple[int, dict[str, Any], dict[str, Any]]) -> None:
    code, docs, _ = fleet
    assert code == 1  # the captures have real problems
    assert {name: d["raw"]["state"] for name, d in docs.items()} == {
        "dmtf": "scanned",
        "dl380a": "scanned",
        "dl360": "scanned",
    }
    for doc in docs.values():
        assert doc["observed"]["bmc.tls.cert_trusted"] is True
        assert doc["observed"]["bmc.redfish.anonymous_readable"] == []
        # Every fact the scanner wrote has the shape the controls read it as.
        assert ObservedBmc.read(doc["observed"]).unreadable == {}


def test_dmtf_rackmount_findings(fleet: tuple[int, dict[str, Any], dict[str, Any]]) -> None:
    _, docs, findings = fleet
    found = by_control(findings, "bmc/dmtf")
    assert status(found, "OOB-003") == "FAIL"  # IPMI over LAN on
    legacy = found["OOB-018"][0]
    assert legacy["status"] == "FAIL"
    assert "Telnet" in legacy["message"] and "SNMPv1" in legacy["message"]
    (secure_boot,) = found["FW-001"]
    assert secure_boot["status"] == "FAIL"
    assert secure_boot["resource"] == "bmc/dmtf/system/437XR1138R2"
    assert status(found, "OOB-007") == "FAIL"  # the reported HTTPS cert expired in 2019
    assert "expired 2019-09-07" in found["OOB-007"][0]["message"]
    assert status(found, "OOB-020") == "FAIL"  # host interface with AuthNone
    assert status(found, "OOB-019") == "FAIL"  # serial console over Telnet
    assert status(found, "FW-004") == "FAIL"  # TPM 1.2
    for passing in (
        "OOB-006",
        "OOB-008",
        "OOB-010",
        "OOB-012",
        "OOB-013",
        "OOB-014",
        "OOB-016",
        "OOB-017",
        "OOB-021",
        "OOB-022",
        "OOB-023",
        "FW-005",
    ):
        assert status(found, passing) == "PASS", found[passing]
    assert status(found, "OOB-002") == "NOT_EVALUATED"
    assert "--intrusive" in found["OOB-002"][0]["message"]
    assert docs["dmtf"]["observed"]["bmc.account.lockout_threshold"] == 5


# iLO Security Dashboard parameter -> the gpufence control that judges the same setting.
PARAM_CONTROL = {
    "SNMPv1": "OOB-018",
    "Global Component Integrity": "FW-005",
    "Default SSL Certificate In Use": "OOB-007",
    "Secure Boot": "FW-001",
    "Password Complexity": "OOB-013",
    "IPMI/DCMI Over LAN": "OOB-003",
    "Authentication Failure Logging": "OOB-014",
    "Security Override Switch": "OOB-024",
    "Access Panel Status": "OOB-024",
}


def _security_params(tree: Path) -> dict[str, dict[str, Any]]:
    params = {}
    for path in (tree / "Managers/1/SecurityService/SecurityDashboard/SecurityParams").glob(
        "*/index.json"
    ):
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        params[data["Name"]] = data
    return params


@pytest.mark.parametrize("name", ["dl380a", "dl360"])
def test_ilo_findings_follow_its_security_dashboard(
    name: str, shared: Path, fleet: tuple[int, dict[str, Any], dict[str, Any]]
) -> None:
    _, _, findings = fleet
    found = by_control(findings, f"bmc/{name}")
    folder = {"dl380a": "DL380a", "dl360": "DL360"}[name]
    params = _security_params(shared / "redfish-mockups/hpe-ilo-redfish-emulator" / folder)
    assert params, "capture has no SecurityParams"
    for param, data in params.items():
        control = PARAM_CONTROL.get(param)
        if control is None:
            continue
        expected = "FAIL" if data["SecurityStatus"] == "Risk" else "PASS"
        assert status(found, control) == expected, (param, found[control])
    risks = sorted(p for p, d in params.items() if d["SecurityStatus"] == "Risk")
    dashboard = found["OOB-025"][0]
    assert dashboard["status"] == "FAIL"
    for risk in risks:
        assert risk in dashboard["message"]
    # Stricter than iLO on purpose: host tools reach iLO over KCS without credentials.
    assert params["Require Host Authentication"]["State"] == "Disabled"
    assert status(found, "OOB-020") == "FAIL"
    # iLO's SecurityService enables TLS 1.0/1.1 in both captures.
    assert status(found, "OOB-006") == "FAIL"
    assert "TLSv1.1" in found["OOB-006"][0]["message"]
    # The unauthenticated root leaks the iLO firmware version.
    assert status(found, "OOB-010") == "FAIL"


def test_weak_tls_variant_is_detected_by_handshake(
    shared: Path, pki: LoopbackPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("TLSv1", "TLSv1.1"):
        reason = local_tls_support(version)
        if reason is not None:
            pytest.skip(reason)
    creds = credentials_file(tmp_path, monkeypatch)
    with mockup_server(shared, tmp_path, pki, ("dmtf",), weak_tls=True) as (port,):
        _, docs, findings = scan(
            tmp_path,
            [
                "--target",
                f"weak=https://127.0.0.1:{port}",
                "--credentials",
                str(creds),
                "--ca-bundle",
                str(pki.ca),
            ],
        )
    observed = docs["weak"]["observed"]
    assert observed["bmc.tls.tls1_0"] is True and observed["bmc.tls.tls1_1"] is True
    # DMTF's SecurityPolicy allows TLS 1.3 only: the handshake, not the setting, finds it.
    assert observed["bmc.tls.configured_legacy"] == []
    (weak,) = by_control(findings, "bmc/weak")["OOB-006"]
    assert weak["status"] == "FAIL"
    assert "accepts TLS 1.0 (handshake)" in weak["message"]


def test_plain_http_without_auth(shared: Path, tmp_path: Path) -> None:
    with mockup_server(shared, tmp_path, None, ("dmtf",), user=None) as (port,):
        _, docs, findings = scan(tmp_path, ["--target", f"open=http://127.0.0.1:{port}"])
    doc = docs["open"]
    assert doc["observed"]["bmc.redfish_scheme"] == "http"
    assert len(doc["observed"]["bmc.redfish.anonymous_readable"]) >= 3
    found = by_control(findings, "bmc/open")
    assert status(found, "OOB-005") == "FAIL"
    assert "plain http://" in found["OOB-005"][0]["message"]
    assert status(found, "OOB-008") == "FAIL"


def test_untrusted_certificate_keeps_credentials_home(
    shared: Path, pki: LoopbackPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = credentials_file(tmp_path, monkeypatch)
    with mockup_server(shared, tmp_path, pki, ("dl360",)) as (port,):
        # No --ca-bundle: the test CA is not trusted, so no authenticated request is made.
        _, docs, findings = scan(
            tmp_path, ["--target", f"ilo=https://127.0.0.1:{port}", "--credentials", str(creds)]
        )
    doc = docs["ilo"]
    assert doc["raw"]["state"] == "partial"
    assert "not trusted" in doc["raw"]["reason"]
    assert doc["raw"]["fetched"] == []  # the authenticated walk never ran
    assert doc["observed"]["bmc.tls.cert_trusted"] is False
    # What anyone can learn is still reported.
    assert doc["observed"]["bmc.root_disclosure"]["ManagerFirmwareVersion"] == "3.11"
    assert doc["observed"]["bmc.redfish.anonymous_readable"] == []
    reasons = {m["fact"]: m["reason"] for m in doc["not_observed"]}
    assert "--ca-bundle" in reasons["bmc.account.lockout_threshold"]
    found = by_control(findings, "bmc/ilo")
    assert status(found, "OOB-007") == "FAIL"
    assert status(found, "OOB-012") == "NOT_EVALUATED"


def test_wrong_password_stops_at_the_first_401(
    shared: Path, pki: LoopbackPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = credentials_file(tmp_path, monkeypatch, password="not-" + SECRET)
    with mockup_server(shared, tmp_path, pki, ("dmtf",)) as (port,):
        _, docs, findings = scan(
            tmp_path,
            [
                "--target",
                f"bmc1=https://127.0.0.1:{port}",
                "--credentials",
                str(creds),
                "--ca-bundle",
                str(pki.ca),
            ],
        )
    doc = docs["bmc1"]
    assert doc["raw"]["state"] == "partial"
    assert "credentials rejected (401)" in doc["raw"]["reason"]
    assert len(doc["raw"]["fetched"]) == 1  # one rejected request, no retries
    assert status(by_control(findings, "bmc/bmc1"), "OOB-013") == "NOT_EVALUATED"
