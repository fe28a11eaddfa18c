"""Independent implementations: sushy-emulator (Redfish) and ipmi_sim (IPMI over LAN).

sushy-emulator lacks AccountService, SessionService, NetworkProtocol and FirmwareInventory: the
scanner must say NOT_EVALUATED with that reason, and still judge what it serves (Secure Boot,
certificate, anonymous access). ipmi_sim reproduces IPMI 2.0 with anonymous login and the
cipher-suite-0 bypass; ipmitool cross-checks what gpufence concludes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.integration.bmc_servers import (
    SECRET,
    USER,
    ipmi_sim,
    mockup_server,
    require_tool,
    sushy_emulator,
)

from gpufence.cli import main
from gpufence.testing.mockup_server import LoopbackPki, make_test_pki

pytestmark = [pytest.mark.integration]

STRICT_USERS = '  user 2 true  "opsadmin" "S7rong-Passw0rd-x" admin 10 md5'


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LoopbackPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def creds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BMC_TEST_PASSWORD", SECRET)
    path = tmp_path / "credentials.yaml"
    path.write_text(f"default: {{username: {USER}, password_env: BMC_TEST_PASSWORD}}\n")
    return path


def _scan(tmp: Path, args: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    evidence, findings = tmp / "evidence.json", tmp / "findings.json"
    main(
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
            "--no-progress",
        ]
    )
    docs = {d["subject"].split("/", 1)[1]: d for d in json.loads(evidence.read_text())["evidence"]}
    return docs, json.loads(findings.read_text())["findings"]


def _status(findings: list[dict[str, Any]], control: str, resource: str) -> dict[str, Any]:
    (found,) = [f for f in findings if f["control"] == control and f["resource"] == resource]
    return found


@pytest.mark.xdist_group("sushy")
def test_sushy_emulator(pki: LoopbackPki, creds: Path, tmp_path: Path) -> None:
    with sushy_emulator(tmp_path, pki) as url:
        docs, findings = _scan(
            tmp_path,
            [
                "--target",
                f"sushy={url}",
                "--credentials",
                str(creds),
                "--ca-bundle",
                str(pki.ca),
                "--no-ipmi",
            ],
        )
    doc = docs["sushy"]
    assert doc["raw"]["state"] == "scanned", doc["raw"]
    observed = doc["observed"]
    assert observed["bmc.model"] == "Joo Janta 200"
    assert observed["bmc.tls.negotiated"] == "TLSv1.2"  # sushy pins TLS 1.2
    assert observed["bmc.tls.tls1_0"] is False
    reasons = {m["fact"]: m["reason"] for m in doc["not_observed"]}
    assert reasons["bmc.account.lockout_threshold"] == "root has no AccountService link"
    assert "404" in reasons["bmc.firmware_inventory"]
    (system,) = observed["bmc.systems"]
    sb = _status(findings, "FW-001", f"bmc/sushy/system/{system['id']}")
    assert sb["status"] == "FAIL"  # the fake driver boots with Secure Boot disabled
    assert _status(findings, "OOB-008", "bmc/sushy")["status"] == "PASS"
    lockout = _status(findings, "OOB-012", "bmc/sushy")
    assert lockout["status"] == "NOT_EVALUATED"
    assert "AccountService" in lockout["message"]
    assert _status(findings, "OOB-005", "bmc/sushy")["status"] == "NOT_EVALUATED"


def _ipmitool(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    tool = require_tool("ipmitool", "ipmitool")
    return subprocess.run(
        [tool, "-I", "lanplus", "-H", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.xdist_group("ipmi_sim")
def test_ipmi_sim_weak_bmc(shared_dir: Path, pki: LoopbackPki, creds: Path, tmp_path: Path) -> None:
    with ipmi_sim(tmp_path) as port, mockup_server(shared_dir, tmp_path, pki, ("dmtf",)) as (rf,):
        docs, findings = _scan(
            tmp_path,
            [
                "--target",
                f"lab=https://127.0.0.1:{rf}",
                "--target",
                f"lab=ipmi://127.0.0.1:{port}",
                "--credentials",
                str(creds),
                "--ca-bundle",
                str(pki.ca),
                "--intrusive",
            ],
        )
        # ipmitool agrees: cipher suite 0 with a wrong password, and the factory password.
        zero = _ipmitool(
            port,
            "-C",
            "0",
            "-U",
            "ADMIN",
            "-P",
            "wrong",
            "-L",
            "ADMINISTRATOR",
            "user",
            "list",
            "1",
        )
        # -C 3: ipmi_sim does not answer Get Channel Cipher Suites (ipmitool waits 10 s).
        default = _ipmitool(port, "-C", "3", "-U", "ADMIN", "-P", "ADMIN", "mc", "info")
        wrong = _ipmitool(port, "-C", "3", "-U", "ADMIN", "-P", "wrong", "mc", "info")
    assert zero.returncode == 0, zero.stderr
    assert default.returncode == 0 and "Manufacturer" in default.stdout
    assert wrong.returncode != 0
    observed = docs["lab"]["observed"]
    caps = observed["bmc.ipmi.caps"]
    assert caps["ipmi_v2_0"] and caps["ipmi_v1_5"] and caps["anonymous_login"]
    assert "ADMIN" in observed["bmc.ipmi.cipher0_users"]
    assert observed["bmc.default_credentials"] is True
    assert docs["lab"]["raw"]["ipmi_intrusive"]["default_password_users"] == ["root", "ADMIN"]
    weak = _status(findings, "OOB-011", "bmc/lab")
    assert weak["status"] == "FAIL"
    assert "cipher suite 0" in weak["message"] and "anonymous login" in weak["message"]
    assert _status(findings, "OOB-002", "bmc/lab")["status"] == "FAIL"
    assert _status(findings, "OOB-003", "bmc/lab")["status"] == "FAIL"


@pytest.mark.xdist_group("ipmi_sim")
def test_ipmi_sim_hardened_bmc(tmp_path: Path) -> None:
    with ipmi_sim(tmp_path, users=STRICT_USERS, auths="md5") as port:
        docs, findings = _scan(
            tmp_path, ["--target", f"hard=ipmi://127.0.0.1:{port}", "--intrusive"]
        )
        zero = _ipmitool(port, "-C", "0", "-U", "nobody", "-P", "x", "user", "list", "1")
    assert zero.returncode != 0  # no such user: cipher 0 has no name to abuse
    observed = docs["hard"]["observed"]
    caps = observed["bmc.ipmi.caps"]
    assert not caps["anonymous_login"] and not caps["null_users"]
    assert caps["cleartext_auth"] == []
    assert observed["bmc.ipmi.cipher0_users"] == []
    assert "bmc.default_credentials" not in observed  # no Redfish: the check is incomplete
    ipmi_login = _status(findings, "OOB-011", "bmc/hard")
    assert ipmi_login["status"] == "PASS", ipmi_login["message"]
    assert _status(findings, "OOB-003", "bmc/hard")["status"] == "FAIL"  # it is still on
