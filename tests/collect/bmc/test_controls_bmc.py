"""Every BMC-scan control on synthetic scan evidence: PASS, FAIL, and NOT_EVALUATED with a reason.

The evidence documents are what `gpufence scan bmc` writes (subject ``bmc/<name>``, ``bmc.*``
facts); the integration tests check the same controls on real captures.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from gpufence.audit import audit_snapshot
from gpufence.collect.bmc.evidence import scan_snapshot
from gpufence.collect.bmc.targets import BmcTarget
from gpufence.controls import ALL_CONTROLS, controls_by_id
from gpufence.load.inventory import load_snapshot
from gpufence.model.evidence import EvidenceDocument, StaleEvidence
from gpufence.model.findings import Finding, Severity, Status
from tests.inventories import base_inventory, write_inventory

CERT_OK = {"issuer": "CN=Corp CA", "not_after": "2030-01-01", "problems": []}
SB = {"enabled": False, "current_boot": "Disabled", "mode": "UserMode"}


def doc(
    subject: str = "bmc/n1-bmc", when: str = "2026-11-20T09:00:00Z", **facts: Any
) -> EvidenceDocument:
    return EvidenceDocument.model_validate(
        {
            "schema": "gpufence.evidence/v1",
            "subject": subject,
            "collector": "gpufence-bmc-scan",
            "collected_at": when,
            "observed": {f"bmc.{k.replace('__', '.')}": v for k, v in facts.items()},
        }
    )


def run(
    tmp_path: Path, control: str, docs: list[EvidenceDocument], data: dict[str, Any] | None = None
) -> list[Finding]:
    snapshot = load_snapshot(
        write_inventory(tmp_path, data or base_inventory()), [(d, "ev.json") for d in docs]
    )
    return list(audit_snapshot(snapshot, [controls_by_id()[control]]).findings)


def one(
    tmp_path: Path, control: str, docs: list[EvidenceDocument], resource: str = "bmc/n1-bmc"
) -> Finding:
    (found,) = [f for f in run(tmp_path, control, docs) if f.resource == resource]
    return found


CASES: list[tuple[str, dict[str, Any], Status, str]] = [
    ("OOB-005", {"redfish_scheme": "http"}, Status.FAIL, "plain http://"),
    ("OOB-005", {"redfish_scheme": "https", "http_enabled": True}, Status.FAIL, "HTTP enabled"),
    ("OOB-005", {"redfish_scheme": "https", "http_enabled": False}, Status.PASS, "HTTPS only"),
    ("OOB-006", {"tls__tls1_0": True, "tls__tls1_1": False}, Status.FAIL, "accepts TLS 1.0"),
    ("OOB-006", {"tls__configured_legacy": ["TLSv1.1"]}, Status.FAIL, "allow TLSv1.1"),
    ("OOB-006", {"tls__tls1_0": False, "tls__tls1_1": False}, Status.PASS, "handshakes refused"),
    (
        "OOB-007",
        {"tls__cert": {**CERT_OK, "problems": ["self-signed"]}},
        Status.FAIL,
        "self-signed",
    ),
    ("OOB-007", {"tls__cert": CERT_OK, "tls__cert_trusted": False}, Status.FAIL, "does not chain"),
    ("OOB-007", {"tls__cert": CERT_OK, "tls__reported_cert_problems": []}, Status.PASS, "Corp CA"),
    ("OOB-008", {"redfish__anonymous_readable": ["/redfish/v1/Systems"]}, Status.FAIL, "Systems"),
    ("OOB-008", {"redfish__anonymous_readable": []}, Status.PASS, "refuse"),
    ("OOB-009", {"redfish__anonymous_write": True}, Status.FAIL, "accepted"),
    ("OOB-009", {"redfish__anonymous_write": False}, Status.PASS, "refused"),
    ("OOB-010", {"root_disclosure": {"ManagerFirmwareVersion": "1.66"}}, Status.FAIL, "1.66"),
    ("OOB-010", {"root_disclosure": {"Vendor": "HPE"}}, Status.PASS, "no firmware"),
    ("OOB-011", {"ipmi__cipher0_users": ["ADMIN"]}, Status.FAIL, "cipher suite 0"),
    (
        "OOB-011",
        {"ipmi__caps": {"anonymous_login": True, "cleartext_auth": []}},
        Status.FAIL,
        "anonymous",
    ),
    (
        "OOB-011",
        {"ipmi__caps": {"cleartext_auth": []}, "ipmi__cipher0_users": []},
        Status.PASS,
        "cipher 0 refused",
    ),
    ("OOB-011", {"ipmi_over_lan": False}, Status.PASS, "disabled"),
    ("OOB-012", {"account__lockout_threshold": 0}, Status.FAIL, "never locked"),
    ("OOB-012", {"account__lockout_threshold": 5}, Status.PASS, "after 5"),
    (
        "OOB-012",
        {"account__failure_delay": {"after_failures": 1, "delay_s": 10}},
        Status.PASS,
        "10 s delay",
    ),
    ("OOB-013", {"account__min_password_length": 1}, Status.FAIL, "length 1"),
    (
        "OOB-013",
        {"account__min_password_length": 12, "account__password_complexity": False},
        Status.FAIL,
        "complexity",
    ),
    ("OOB-013", {"account__min_password_length": 12}, Status.PASS, "12"),
    ("OOB-014", {"account__auth_failure_logging_threshold": 0}, Status.FAIL, "not logged"),
    ("OOB-014", {"account__auth_failure_logging_threshold": 3}, Status.PASS, "logged"),
    (
        "OOB-015",
        {
            "accounts": [
                {
                    "username": "root",
                    "role": "Administrator",
                    "enabled": True,
                    "password_change_required": True,
                }
            ]
        },
        Status.FAIL,
        "initial password",
    ),
    (
        "OOB-015",
        {
            "accounts": [
                {
                    "username": "ops",
                    "role": "Administrator",
                    "enabled": True,
                    "account_types": ["Redfish", "IPMI"],
                }
            ]
        },
        Status.FAIL,
        "IPMI access",
    ),
    (
        "OOB-015",
        {"accounts": [{"username": "ops", "role": "Administrator", "enabled": True}]},
        Status.PASS,
        "1 administrator",
    ),
    ("OOB-016", {"account__directory": [], "account__mfa": []}, Status.FAIL, "no directory"),
    ("OOB-016", {"account__directory": ["LDAP"], "account__mfa": []}, Status.PASS, "LDAP"),
    ("OOB-017", {"session__timeout_s": 86400}, Status.FAIL, "86400"),
    ("OOB-017", {"session__timeout_s": 600}, Status.PASS, "600"),
    ("OOB-018", {"protocols": {"Telnet": {"enabled": True}}}, Status.FAIL, "Telnet"),
    (
        "OOB-018",
        {"snmp": {"v1": False, "v2c": False, "default_community": True}},
        Status.FAIL,
        "community",
    ),
    (
        "OOB-018",
        {
            "protocols": {
                "SSH": {"enabled": True},
                "Telnet": {"enabled": False},
                "FTP": {"enabled": False},
                "SSDP": {"enabled": False},
            },
            "snmp": {"v1": False, "v2c": False},
        },
        Status.PASS,
        "no Telnet",
    ),
    # Protocols the BMC does not report are unknown, not off (issue 11).
    (
        "OOB-018",
        {"protocols": {"SSH": {"enabled": True}}, "snmp": {"v1": False, "v2c": False}},
        Status.NOT_EVALUATED,
        "does not report Telnet, FTP, SSDP",
    ),
    # A console that could speak Telnet, with the Telnet service off, does not offer it.
    (
        "OOB-019",
        {
            "console": {"SerialConsole": {"enabled": True, "connect_types": ["Telnet", "SSH"]}},
            "protocols": {"Telnet": {"enabled": False, "port": 23}},
        },
        Status.PASS,
        "without Telnet",
    ),
    # HPE iLO's idle timeout, 0 = never (Managers/{id} Oem.Hpe.IdleConnectionTimeoutMinutes).
    (
        "OOB-017",
        {
            "session__timeout_s": 30,
            "session__vendor_idle_timeout": {"seconds": None, "never": True, "source": "iLO"},
        },
        Status.FAIL,
        "never time out",
    ),
    (
        "OOB-023",
        {"ntp": {"value": False, "servers": [], "unlisted": True}},
        Status.NOT_EVALUATED,
        "lists no servers",
    ),
    (
        "OOB-019",
        {"console": {"CommandShell": {"enabled": True, "connect_types": ["Telnet"]}}},
        Status.FAIL,
        "Telnet",
    ),
    ("OOB-019", {"console": {"virtual_media_encrypted": False}}, Status.FAIL, "virtual media"),
    (
        "OOB-019",
        {"console": {"CommandShell": {"enabled": True, "connect_types": ["SSH"]}}},
        Status.PASS,
        "CommandShell",
    ),
    (
        "OOB-020",
        {"host_interface__credential_free": {"value": True, "paths": ["AuthNone"]}},
        Status.FAIL,
        "AuthNone",
    ),
    (
        "OOB-020",
        {"host_interface__credential_free": {"value": False, "paths": []}},
        Status.PASS,
        "no credential-free",
    ),
    (
        "OOB-021",
        {"shared_nic": True, "nic_vlan": [{"id": "1", "vlan_enabled": False}]},
        Status.FAIL,
        "untagged",
    ),
    (
        "OOB-021",
        {"shared_nic": True, "nic_vlan": [{"id": "1", "vlan_enabled": True}]},
        Status.PASS,
        "VLAN",
    ),
    ("OOB-021", {"shared_nic": False}, Status.PASS, "dedicated"),
    ("OOB-022", {"remote_logging": {"value": False, "sinks": []}}, Status.FAIL, "no Redfish event"),
    (
        "OOB-022",
        {"remote_logging": {"value": True, "sinks": ["remote syslog"]}},
        Status.PASS,
        "syslog",
    ),
    ("OOB-023", {"ntp": {"value": False, "servers": []}}, Status.FAIL, "no NTP"),
    ("OOB-023", {"ntp": {"value": True, "servers": ["10.0.0.1"]}}, Status.PASS, "10.0.0.1"),
    ("OOB-024", {"physical": {"override_switch": "On"}}, Status.FAIL, "override switch"),
    (
        "OOB-024",
        {"physical": {"intrusion": [{"chassis": "1", "sensor": "HardwareIntrusion"}]}},
        Status.FAIL,
        "HardwareIntrusion",
    ),
    (
        "OOB-024",
        {
            "physical": {
                "override_switch": "Off",
                "intrusion": [{"chassis": "1", "sensor": "Normal"}],
            }
        },
        Status.PASS,
        "normal",
    ),
    (
        "OOB-025",
        {
            "vendor_dashboard": {
                "vendor": "HPE iLO Security Dashboard",
                "params": [{"name": "SNMPv1", "state": "Enabled", "status": "Risk"}],
            }
        },
        Status.FAIL,
        "SNMPv1",
    ),
    (
        "OOB-025",
        {
            "vendor_dashboard": {
                "vendor": "HPE iLO Security Dashboard",
                "params": [{"name": "X", "status": "Ok", "ignored": True}],
            }
        },
        Status.FAIL,
        "ignored: X",
    ),
    (
        "OOB-025",
        {"vendor_dashboard": {"vendor": None, "params": []}},
        Status.PASS,
        "not applicable",
    ),
    (
        "FW-002",
        {"firmware_version": "13.2.0", "vendor": "AMI", "model": "MegaRAC SP-X"},
        Status.FAIL,
        "CVE-2024-54085",
    ),
    (
        "FW-002",
        {"firmware_version": "13.5.1", "vendor": "AMI", "model": "MegaRAC SP-X"},
        Status.PASS,
        "matches none",
    ),
    (
        "FW-002",
        {"firmware_version": "iLO 4 v2.50", "vendor": "HPE", "model": "iLO 4"},
        Status.FAIL,
        "CVE-2017-12542",
    ),
    (
        "FW-002",
        {"firmware_version": "iLO 6 v1.66", "vendor": "HPE", "model": "iLO 6"},
        Status.PASS,
        "matches none",
    ),
    (
        "FW-004",
        {"systems": [{"id": "1", "tpm": [{"type": "TPM1_2", "state": "Enabled"}]}]},
        Status.FAIL,
        "TPM1_2",
    ),
    ("FW-004", {"systems": [{"id": "1", "tpm": []}]}, Status.FAIL, "TPM none"),
    (
        "FW-004",
        {"systems": [{"id": "1", "tpm": [{"type": "TPM2_0", "state": "Enabled"}]}]},
        Status.PASS,
        "TPM 2.0",
    ),
    (
        "FW-005",
        {
            "component_integrity": {
                "components": [
                    {"id": "0", "type": "SPDM", "enabled": True, "verification": "Failed"}
                ]
            }
        },
        Status.FAIL,
        "verification failed: 0",
    ),
    (
        "FW-005",
        {"component_integrity": {"components": [], "global_policy": "Disabled"}},
        Status.FAIL,
        "Disabled",
    ),
    (
        "FW-005",
        {"component_integrity": {"components": [{"id": "0", "type": "SPDM", "enabled": True}]}},
        Status.PASS,
        "enabled for 0",
    ),
    ("FW-006", {"update__verify_remote_cert": False}, Status.FAIL, "false"),
    ("FW-006", {"update__verify_remote_cert": True}, Status.PASS, "verify"),
]


@pytest.mark.parametrize(
    ("control", "facts", "expected", "words"),
    [pytest.param(*c, id=f"{c[0]}-{i}") for i, c in enumerate(CASES)],
)
def test_control_on_scan_evidence(
    tmp_path: Path, control: str, facts: dict[str, Any], expected: Status, words: str
) -> None:
    finding = one(tmp_path, control, [doc(**facts)])
    assert finding.status is expected, finding.message
    assert words in finding.message
    assert finding.evidence  # the observed facts travel with the finding


SCAN_CONTROLS = sorted({c for c, *_ in CASES} | {"FW-001", "FW-003"})


def test_every_scan_control_has_pass_and_fail() -> None:
    covered: dict[str, set[Status]] = {}
    for control, _facts, status, _words in CASES:
        covered.setdefault(control, set()).add(status)
    evidence_controls = [
        c.id
        for c in ALL_CONTROLS
        if c.meta.plane.value in ("OOB", "FW")
        and c.id
        not in ("OOB-001", "OOB-002", "OOB-003", "OOB-004", "FW-001", "FW-003", "FW-007", "FW-008")
    ]
    for control in evidence_controls:
        assert {Status.PASS, Status.FAIL} <= covered.get(control, set()), control


@pytest.mark.parametrize("control", [c for c in SCAN_CONTROLS if c not in ("FW-001", "OOB-011")])
def test_without_scan_evidence_one_cluster_not_evaluated(tmp_path: Path, control: str) -> None:
    (finding,) = run(tmp_path, control, [])
    assert finding.status is Status.NOT_EVALUATED and finding.resource == "cluster"
    assert "run gpufence scan bmc" in finding.message
    assert finding.evidence["bmcs"] == ["n1-bmc"]


def test_declared_facts_count_without_a_scan(tmp_path: Path) -> None:
    # The base inventory declares ipmi_over_lan: false; firmware from the inventory feeds FW-002.
    assert one(tmp_path, "OOB-011", []).status is Status.PASS
    data = base_inventory()
    data["bmcs"][0].update(vendor="AMI", firmware_version="12.4.0")
    (finding,) = run(tmp_path, "FW-002", [], data)
    assert finding.status is Status.FAIL and "CVE-2024-54085" in finding.message
    assert "declared" in finding.evidence["firmware_version"]["source"]


def test_one_scanned_bmc_makes_the_others_per_bmc(tmp_path: Path) -> None:
    data = base_inventory()
    data["bmcs"].append({"name": "n2-bmc", "address": "10.0.0.2", "network": "oob"})
    findings = {f.resource: f for f in run(tmp_path, "OOB-017", [doc(session__timeout_s=60)], data)}
    assert findings["bmc/n1-bmc"].status is Status.PASS
    assert findings["bmc/n2-bmc"].status is Status.NOT_EVALUATED
    assert "no BMC scan evidence for bmc/n2-bmc" in findings["bmc/n2-bmc"].message


def test_not_observed_reason_reaches_the_finding(tmp_path: Path) -> None:
    document = EvidenceDocument.model_validate(
        {
            "schema": "gpufence.evidence/v1",
            "subject": "bmc/n1-bmc",
            "collector": "gpufence-bmc-scan",
            "collected_at": "2026-11-20T09:00:00Z",
            "not_observed": [
                {
                    "fact": "bmc.account.lockout_threshold",
                    "reason": "/redfish/v1/AccountService: 403 Forbidden",
                }
            ],
        }
    )
    finding = one(tmp_path, "OOB-012", [document])
    assert finding.status is Status.NOT_EVALUATED
    assert "403 Forbidden" in finding.message


def test_newest_scan_wins(tmp_path: Path) -> None:
    old = doc(when="2026-11-01T00:00:00Z", session__timeout_s=86400)
    new = doc(when="2026-11-20T00:00:00Z", session__timeout_s=600)
    assert one(tmp_path, "OOB-017", [new, old]).status is Status.PASS


def test_host_path_is_critical_where_tenants_have_root(tmp_path: Path) -> None:
    data = base_inventory()
    data["node_pools"][0]["tenant_root"] = True
    facts = {"host_interface__credential_free": {"value": True, "paths": ["AuthNone"]}}
    (finding,) = run(tmp_path, "OOB-020", [doc(**facts)], data)
    assert finding.status is Status.FAIL and finding.severity is Severity.CRITICAL
    assert "tenants have root on n1" in finding.message


def test_secure_boot_observed_by_the_bmc_beats_the_declaration(tmp_path: Path) -> None:
    # The base inventory declares Secure Boot on; the BMC's only system reports it off.
    systems = [{"id": "1", "host_name": "whatever", "secure_boot": SB, "tpm": []}]
    findings = run(tmp_path, "FW-001", [doc(systems=systems)])
    (node,) = [f for f in findings if f.resource == "node/n1"]
    assert node.status is Status.FAIL
    assert node.evidence["declared"]["value"] is True
    assert node.evidence["secure_boot"]["source"] == "observed"
    assert [f.resource for f in findings] == ["node/n1"]  # the system is that node: no duplicate


def test_secure_boot_node_evidence_wins_over_the_bmc(tmp_path: Path) -> None:
    systems = [{"id": "1", "host_name": "n1", "secure_boot": SB, "tpm": []}]
    node_doc = EvidenceDocument.model_validate(
        {
            "schema": "gpufence.evidence/v1",
            "subject": "node/n1",
            "collector": "mokutil",
            "collected_at": "2026-11-20T09:00:00Z",
            "observed": {"host.secure_boot": True},
        }
    )
    (finding,) = run(tmp_path, "FW-001", [doc(systems=systems), node_doc])
    assert finding.status is Status.PASS and finding.resource == "node/n1"


def test_secure_boot_unmapped_systems_are_judged_on_the_bmc(tmp_path: Path) -> None:
    systems = [
        {"id": "a", "host_name": "n1.example", "secure_boot": {**SB, "enabled": True}},
        {"id": "b", "host_name": "spare", "secure_boot": SB},
    ]
    data = base_inventory()
    findings = {f.resource: f for f in run(tmp_path, "FW-001", [doc(systems=systems)], data)}
    assert findings["node/n1"].status is Status.PASS  # matched by host name
    assert findings["bmc/n1-bmc/system/b"].status is Status.FAIL


def test_firmware_drift_across_peers(tmp_path: Path) -> None:
    data = base_inventory()
    data["node_pools"][0]["nodes"].append({"name": "n2", "bmc": "n2-bmc"})
    data["bmcs"].append({"name": "n2-bmc", "address": "10.0.0.2", "network": "oob"})
    systems = [{"id": "1", "model": "DL380a Gen11"}]
    old = doc(
        systems=systems,
        firmware_inventory=[
            {"name": "iLO 6", "version": "1.62"},
            {"name": "NVIDIA H100 NVL", "version": "96.00.AF.00.02"},
        ],
    )
    new = doc(
        "bmc/n2-bmc",
        systems=systems,
        firmware_inventory=[
            {"name": "iLO 6", "version": "1.66"},
            {"name": "NVIDIA H100 NVL", "version": "96.00.AF.00.02"},
        ],
    )
    findings = {f.resource: f for f in run(tmp_path, "FW-003", [old, new], data)}
    assert findings["bmc/n1-bmc"].status is Status.FAIL
    assert "iLO 6 1.62 < 1.66" in findings["bmc/n1-bmc"].message
    assert findings["bmc/n2-bmc"].status is Status.PASS


def test_fw002_oem_megarac_builds(tmp_path: Path) -> None:
    # Gigabyte's MegaRAC build 12.41.11 (issue 10): OEM numbering, not an SPx release number.
    # Named as Gigabyte it is judged on the OEM's record (vulnerable); unnamed, it is unknown.
    cases = [
        ("GIGABYTE", "MegaRAC SP-X", "12.41.11", Status.FAIL),
        ("Giga-Byte", "", "12.41.11", Status.FAIL),
        ("AMI", "MegaRAC SP-X", "12.41.11", Status.NOT_EVALUATED),
        ("GIGABYTE", "MegaRAC SP-X", "12.55.01", Status.NOT_EVALUATED),
        ("ASRock Rack", "MegaRAC SP-X", "12.41.11", Status.NOT_EVALUATED),
        ("GIGABYTE", "MegaRAC SP-X", "12.61.39", Status.PASS),
    ]
    for vendor, model, version, expected in cases:
        facts = {"firmware_version": version, "vendor": vendor, "model": model}
        finding = one(tmp_path, "FW-002", [doc(**facts)])
        assert finding.status is expected, (vendor, version, finding.message)
        if expected is not Status.PASS:
            assert "CVE-2024-54085" in finding.message


def test_fw002_kev_file_flags_raise_severity(tmp_path: Path) -> None:
    import dataclasses

    from gpufence.model.context import AuditContext

    data = base_inventory()
    facts = {"firmware_version": "iLO 4 v2.50", "vendor": "HPE", "model": "iLO 4"}
    snapshot = load_snapshot(write_inventory(tmp_path, data), [(doc(**facts), "ev.json")])
    control = [controls_by_id()["FW-002"]]
    (plain,) = audit_snapshot(snapshot, control).findings
    assert plain.status is Status.FAIL and "gpufence catalog" in plain.message
    kev = {"CVE-2017-12542": "CISA KEV kev.json (added 2022-03-25)"}
    flagged_snap = dataclasses.replace(snapshot, context=AuditContext(known_exploited=kev))
    (flagged,) = audit_snapshot(flagged_snap, control).findings
    assert "kev.json" in flagged.message and flagged.severity is Severity.CRITICAL


def test_scan_snapshot_without_inventory() -> None:
    targets = [BmcTarget("lab", "127.0.0.1", "https://127.0.0.1:8443")]
    documents = [doc("bmc/lab", session__timeout_s=99999)]
    snapshot = scan_snapshot(targets, documents, "ev.json")
    assert [v.resource for v in snapshot.bmcs] == ["bmc/lab"] and not snapshot.nodes
    result = audit_snapshot(snapshot, [controls_by_id()["OOB-017"], controls_by_id()["FW-001"]])
    statuses = {(f.control, f.resource): f.status for f in result.findings}
    assert statuses[("OOB-017", "bmc/lab")] is Status.FAIL
    # A scanned BMC whose systems were not read is not "nothing to judge" (issue 11: it PASSed).
    assert statuses[("FW-001", "bmc/lab")] is Status.NOT_EVALUATED
    assert ("FW-001", "cluster") not in statuses


def test_secure_boot_unknown_on_one_bmc_whatever_the_others_showed() -> None:
    # Issue 14 (batched audit): FW-001 reported an unreadable Systems collection only when no
    # BMC of the fleet listed a system; one BMC with systems silenced the others, and the run
    # could pass with a host's Secure Boot state unseen.
    targets = [
        BmcTarget("ok", "127.0.0.1", "https://127.0.0.1:8443"),
        BmcTarget("denied", "127.0.0.2", "https://127.0.0.2:8443"),
    ]
    documents = [
        doc("bmc/ok", systems=[{"id": "1", "secure_boot": {"enabled": True, "mode": "UserMode"}}]),
        doc("bmc/denied", redfish_version="1.15.0"),
    ]
    result = audit_snapshot(
        scan_snapshot(targets, documents, "ev.jsonl"), [controls_by_id()["FW-001"]]
    )
    statuses = {f.resource: f.status for f in result.findings}
    assert statuses["bmc/ok/system/1"] is Status.PASS
    assert statuses["bmc/denied"] is Status.NOT_EVALUATED


def _fw001(snapshot: Any) -> dict[str, Finding]:
    return {f.resource: f for f in audit_snapshot(snapshot, [controls_by_id()["FW-001"]]).findings}


def test_secure_boot_unknown_on_stale_or_contradictory_systems() -> None:
    # PASS is a promise: a host whose Secure Boot state was seen only in stale evidence, or in
    # two documents of the same time that disagree, is NOT_EVALUATED, never "not applicable".
    targets = [BmcTarget("old", "127.0.0.1", None), BmcTarget("torn", "127.0.0.2", None)]
    on = [{"id": "1", "secure_boot": {"enabled": True, "mode": "UserMode"}}]
    off = [{"id": "1", "secure_boot": {"enabled": False, "mode": "UserMode"}}]
    stale = StaleEvidence(
        document=doc("bmc/old", systems=on), origin="old.json", reason="old.json is 400 days old"
    )
    snapshot = dataclasses.replace(
        scan_snapshot(targets, [doc("bmc/torn", systems=on), doc("bmc/torn", systems=off)], "x"),
        stale_evidence=(stale,),
    )
    findings = _fw001(snapshot)
    assert findings["bmc/old"].status is Status.NOT_EVALUATED
    assert "400 days old" in findings["bmc/old"].message
    assert findings["bmc/torn"].status is Status.NOT_EVALUATED
    assert "contradictory" in findings["bmc/torn"].message
    assert not [f for f in findings.values() if f.status is Status.PASS]


def test_secure_boot_of_unscanned_bmcs_is_not_evaluated_not_not_applicable(
    tmp_path: Path,
) -> None:
    data = base_inventory()
    data["node_pools"][0]["nodes"] = []
    data["node_pools"].clear()
    findings = _fw001(load_snapshot(write_inventory(tmp_path, data)))
    (finding,) = findings.values()
    assert finding.status is Status.NOT_EVALUATED and finding.resource == "cluster"
    assert "n1-bmc" in finding.message
