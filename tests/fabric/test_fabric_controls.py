"""FAB-003..009 (PASS, FAIL, NOT_EVALUATED each), the fabric collector, `gpufence fabric check`,
`observe` and `emit`, and the audit pipeline reading partitions.conf."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpufence.audit import audit, audit_snapshot
from gpufence.cli import main
from gpufence.collect.fabric import observe_files
from gpufence.controls import controls_by_id
from gpufence.errors import InputError
from gpufence.fabric.emit import emit_partitions
from gpufence.load.inventory import load_snapshot
from gpufence.load.referenced import with_referenced
from gpufence.model.findings import Finding, Severity, Status
from tests.inventories import base_inventory

A1, A2, B1 = "0x0000000000100001", "0x0000000000100004", "0x0000000000100007"
CLEAN = emit_partitions({"alpha": [A1, A2], "beta": [B1]}, ["0x000000000010000a"])


def scenario(tmp_path: Path, conf: str | bytes | None = CLEAN, **changes: Any) -> Path:
    """alpha on n1/n1b, beta on n2, one IB network 'compute' with partitions.conf."""
    data = base_inventory()
    pool = data["node_pools"][0]
    pool["nodes"] = [
        {"name": "n1", "bmc": "n1-bmc", "ib_port_guids": [A1]},
        {"name": "n1b", "ib_port_guids": [A2]},
    ]
    beta_nodes = [{"name": "n2", "ib_port_guids": [B1]}]
    data["node_pools"].append(
        {**pool, "name": "pool2", "workloads": [{"tenant": "beta"}], "nodes": beta_nodes}
    )
    if conf is not None:
        path = tmp_path / "partitions.conf"
        path.write_bytes(conf if isinstance(conf, bytes) else conf.encode())
        data["networks"][0]["partitions_conf"] = "partitions.conf"
    for dotted, value in changes.items():
        node: Any = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(last) if isinstance(node, list) else last] = value
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    return inventory


def run(inventory: Path, control: str, evidence: list[Any] | None = None) -> list[Finding]:
    snapshot = with_referenced(load_snapshot(inventory, evidence or []))
    return list(audit_snapshot(snapshot, [controls_by_id()[control]]).findings)


def one(findings: list[Finding], resource: str) -> Finding:
    (found,) = [f for f in findings if f.resource == resource]
    return found


BAD_GUID = CLEAN + "broken=0x0d01 : 0xZZZZ ;\n"
BAD_LINE = len(CLEAN.splitlines()) + 1


@pytest.mark.parametrize(
    ("control", "conf", "status", "needle"),
    [
        ("FAB-003", CLEAN, Status.PASS, "parses"),
        ("FAB-003", BAD_GUID, Status.FAIL, f"partitions.conf:{BAD_LINE}:17: parse error"),
        ("FAB-003", CLEAN.replace("\n", "\r\n"), Status.FAIL, "no ':'"),
        ("FAB-003", None, Status.NOT_EVALUATED, "declares no partitions_conf"),
        ("FAB-004", CLEAN, Status.PASS, "no silent"),
        ("FAB-004", CLEAN + "oct=0x0300 : 0000000000100004=full ;\n", Status.FAIL, "octal"),
        ("FAB-005", CLEAN, Status.PASS, "limited members"),
        ("FAB-005", CLEAN.replace("ALL=limited", "ALL=full"), Status.FAIL, "every host port"),
        (
            "FAB-005",
            CLEAN + f"Default=0x7fff : {B1}=full ;\n",
            Status.FAIL,
            "n2 0x0000000000100007",
        ),
        ("FAB-006", CLEAN, Status.PASS, "no two tenants"),
        ("FAB-006", CLEAN + f"x=0x0100 : {B1}=limited ;\n", Status.FAIL, "alpha <-> beta"),
        ("FAB-006", CLEAN + f"storage=0x0010 : {B1}=full ;\n", Status.FAIL, "0x0010"),
        ("FAB-006", BAD_GUID, Status.FAIL, "0x7fff"),  # fails open: everybody full in Default
        ("FAB-006", None, Status.NOT_EVALUATED, "no partitions_conf"),
    ],
)
def test_ib_controls(
    tmp_path: Path, control: str, conf: str | None, status: Status, needle: str
) -> None:
    finding = one(run(scenario(tmp_path, conf), control), "network/compute")
    assert finding.status is status, finding.message
    assert needle in finding.message, finding.message
    assert finding.location is not None and finding.location.line > 1


def test_merged_pkeys_are_high(tmp_path: Path) -> None:
    conf = CLEAN + f"other=0x0100 : {B1}=full ;\n"  # beta's port into alpha's PKey via a name
    finding = one(run(scenario(tmp_path, conf), "FAB-004"), "network/compute")
    assert finding.status is Status.FAIL and finding.severity is Severity.HIGH
    assert any(d["code"] == "PC033" for d in finding.evidence["diagnostics"])


def test_ib_controls_without_infiniband_are_not_applicable(tmp_path: Path) -> None:
    inventory = scenario(tmp_path, None, networks__0__kind="ethernet")
    for control in ("FAB-003", "FAB-004", "FAB-005", "FAB-006", "FAB-007"):
        (finding,) = run(inventory, control)
        assert finding.status is Status.PASS and "not applicable" in finding.message


def test_no_port_guids_is_not_evaluated(tmp_path: Path) -> None:
    no_guids = {
        "node_pools__1__nodes": [{"name": "n2"}],
        "node_pools__0__nodes": [{"name": "n1", "bmc": "n1-bmc"}],
    }
    inventory = scenario(tmp_path, CLEAN, **no_guids)
    finding = one(run(inventory, "FAB-006"), "network/compute")
    assert finding.status is Status.NOT_EVALUATED and "ib_port_guids" in finding.message


def _observed(fixtures: Path, tmp_path: Path, network: str = "compute") -> Path:
    doc = observe_files(
        network,
        ibnetdiscover=fixtures / "ibsim_ibnetdiscover.txt",
        pkeys=fixtures / "ibsim_smpquery_pkeys.txt",
        sminfo=fixtures / "ibsim_sminfo.txt",
        pathrecords=fixtures / "ibsim_saquery_pathrecords.txt",
    )
    path = tmp_path / "observed.json"
    path.write_text(doc.model_dump_json(by_alias=True))
    return path


def _evidence(path: Path) -> list[Any]:
    from gpufence.load.evidence import load_evidence

    return list(load_evidence([path]).documents)


def test_drift_control(examples: Path, fixtures: Path, tmp_path: Path) -> None:
    running = (examples / "ibsim-tenants.partitions.conf").read_text()
    observed = _evidence(_observed(fixtures, tmp_path))
    same = one(run(scenario(tmp_path, running), "FAB-007", observed), "fabric/compute")
    assert same.status is Status.PASS and "all 6 observed" in same.message
    moved = running.replace("0x100001, 0x100004 ;", "0x100001 ;\nTB=0x0b01 : 0x100004=full ;")
    found = one(run(scenario(tmp_path, moved), "FAB-007", observed), "fabric/compute")
    assert found.status is Status.FAIL and "Hca2" in found.message
    missing = one(run(scenario(tmp_path, running), "FAB-007"), "fabric/compute")
    assert missing.status is Status.NOT_EVALUATED and "fabric observe" in missing.message


def test_observed_tables_feed_the_ib_verdict(fixtures: Path, tmp_path: Path) -> None:
    # The recorded fabric: alpha's Hca1 is a limited storage member, beta's Hca4 a full one.
    inventory = scenario(
        tmp_path,
        None,
        node_pools__1__nodes=[{"name": "n2", "ib_port_guids": [B1, "0x10000a"]}],
    )
    findings = run(inventory, "FAB-006", _evidence(_observed(fixtures, tmp_path)))
    observed = one(findings, "fabric/compute")
    assert observed.status is Status.FAIL and "0x0c01" in observed.message
    assert [f.resource for f in findings] == ["fabric/compute"]  # the observed tables suffice


L3 = [
    {"name": "compute", "kind": "ethernet", "purposes": ["compute"], "tenant_isolation": "vlan"},
    {"name": "oob", "kind": "ethernet", "purposes": ["oob"]},
]


@pytest.mark.parametrize(
    ("networks", "root", "fab8", "fab9"),
    [
        (L3, False, Status.PASS, Status.PASS),
        ([{**L3[0], "routed_to": ["oob"]}, L3[1]], False, Status.FAIL, Status.FAIL),
        ([{**L3[0], "vrf": "x"}, {**L3[1], "vrf": "x"}], False, Status.FAIL, Status.FAIL),
        ([{**L3[0], "tenant_isolation": None}, L3[1]], False, Status.NOT_EVALUATED, Status.PASS),
        ([{**L3[0], "tenant_isolation": "none"}, L3[1]], False, Status.FAIL, Status.PASS),
    ],
)
def test_l3_and_management_controls(
    tmp_path: Path, networks: list[dict[str, Any]], root: bool, fab8: Status, fab9: Status
) -> None:
    inventory = scenario(tmp_path, None, networks=networks, node_pools__0__tenant_root=root)
    alpha = one(run(inventory, "FAB-008"), "tenant/alpha")
    assert alpha.status is fab8, alpha.message
    oob = one(run(inventory, "FAB-009"), "network/oob")
    assert oob.status is fab9, oob.message
    if fab8 is Status.FAIL:
        assert "beta" in alpha.message and alpha.evidence["reach"][0]["path"]


def test_bare_metal_tenant_on_management_network(tmp_path: Path) -> None:
    root = {"node_pools__0__tenant_root": True, "node_pools__0__networks": ["compute", "oob"]}
    inventory = scenario(tmp_path, None, networks=L3, **root)
    finding = one(run(inventory, "FAB-009"), "network/oob")
    assert finding.status is Status.FAIL and "has root on pool pool1" in finding.message


# -- collector and pipeline -----------------------------------------------------------------


def test_missing_partitions_conf_is_an_input_error_with_location(tmp_path: Path) -> None:
    inventory = scenario(tmp_path, None, networks__0__partitions_conf="nope.conf")
    with pytest.raises(InputError) as err:
        with_referenced(load_snapshot(inventory))
    assert err.value.location is not None and err.value.location.line is not None
    assert (
        "partitions_conf: nope.conf"
        in inventory.read_text().splitlines()[err.value.location.line - 1]
    )


def test_bad_port_guid_in_inventory_is_an_input_error(tmp_path: Path) -> None:
    inventory = scenario(
        tmp_path, CLEAN, node_pools__1__nodes=[{"name": "n2", "ib_port_guids": ["0xZZ"]}]
    )
    with pytest.raises(InputError) as err:
        with_referenced(load_snapshot(inventory))
    assert err.value.location is not None
    assert "0xZZ" in inventory.read_text().splitlines()[err.value.location.line - 1]


def test_audit_reads_partitions_conf(tmp_path: Path) -> None:
    run_ = audit(scenario(tmp_path, BAD_GUID))
    (fab3,) = [f for f in run_.result.findings if f.control == "FAB-003"]
    assert fab3.status is Status.FAIL
    assert str(tmp_path / "partitions.conf") in run_.result.inputs or fab3.evidence["file"]


# -- CLI ------------------------------------------------------------------------------------


def test_check_cli_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ib = {**base_inventory()["networks"][0], "partitions_conf": "partitions.conf"}
    clean = scenario(tmp_path, CLEAN, networks=[ib, L3[1]])
    assert main(["fabric", "check", str(clean)]) == 0
    out = capsys.readouterr().out
    assert "InfiniBand — compute" in out and out.rstrip().endswith(
        "PASS: no tenant reaches another tenant or a management/OOB network"
    )
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    inventory = scenario(leaky, CLEAN + f"x=0x0100 : {B1}=limited ;\n")
    assert main(["fabric", "check", str(inventory), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    (ib,) = [p for p in doc["planes"] if p["plane"] == "infiniband"]
    assert {(r["source"], r["target"]) for r in ib["reach"]} == {
        ("alpha", "beta"),
        ("beta", "alpha"),
    }
    assert "PKey 0x0100" in ib["reach"][0]["path"][0]
    assert {p["plane"] for p in doc["planes"]} == {"infiniband", "ethernet", "oob"}


def test_check_cli_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fabric", "check", str(tmp_path / "missing.yaml")]) == 2
    inventory = scenario(tmp_path, None, networks__0__partitions_conf="nope.conf")
    assert main(["fabric", "check", str(inventory)]) == 2
    assert "inventory.yaml:" in capsys.readouterr().err


def test_observe_cli_from_files_then_check(
    fixtures: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ev.json"
    argv = ["fabric", "observe", "compute", "--out", str(out)]
    argv += ["--ibnetdiscover", str(fixtures / "ibsim_ibnetdiscover.txt")]
    argv += ["--pkeys", str(fixtures / "ibsim_smpquery_pkeys.txt")]
    argv += ["--sminfo", str(fixtures / "ibsim_sminfo.txt")]
    assert main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["subject"] == "fabric/compute" and doc["observed"]["fabric.pkey_tables_read"] == 6
    inventory = scenario(
        tmp_path, None, node_pools__1__nodes=[{"name": "n2", "ib_port_guids": ["0x10000a"]}]
    )
    assert main(["fabric", "check", str(inventory), "--evidence", str(out)]) == 1
    text = capsys.readouterr().out
    assert "observed PKey tables" in text and "PKey 0x0c01" in text
    # The one --fail-on scale: InfiniBand reach is critical (FAB-006); 'never' only reports.
    assert (
        main(["fabric", "check", str(inventory), "--evidence", str(out), "--fail-on", "critical"])
        == 1
    )
    assert (
        main(["fabric", "check", str(inventory), "--evidence", str(out), "--fail-on", "never"]) == 0
    )
    mutes = tmp_path / "mutes.yaml"
    mutes.write_text(
        "version: 1\nmutes:\n  - {control: FAB-006, resource: fabric/compute, "
        "reason: accepted during the migration, expires: 2999-01-01}\n"
    )
    capsys.readouterr()
    argv = ["fabric", "check", str(inventory), "--evidence", str(out), "--mutelist", str(mutes)]
    assert main(argv) == 0
    assert "MUTED FAB-006 fabric/compute" in capsys.readouterr().out
    assert main(["fabric", "observe", "compute"]) == 2  # neither --live nor files


def test_emit_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        yaml.safe_dump({"tenants": {"alpha": [A1], "beta": [B1]}, "storage_targets": [A2]})
    )
    assert main(["fabric", "emit", str(plan), "--out", str(tmp_path / "p.conf")]) == 0
    assert main(["fabric", "lint", str(tmp_path / "p.conf")]) == 0
    plan.write_text("tenants: {alpha: [0x1]}\nextra: 1\n")
    assert main(["fabric", "emit", str(plan)]) == 2
    assert "plan.yaml:2:1" in capsys.readouterr().err
