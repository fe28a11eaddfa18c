"""`scan bmc`'s findings, audited a batch of BMCs at a time, are those of one whole audit.

A live scan of the mockup fleet (three real captures, twelve BMCs, one closed port) with batches
of five BMCs: the command's findings must equal one audit of every document it wrote. FW-003
compares firmware across servers of a model whose peers sit in other batches, so the peer pass is
exercised on real evidence too.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from tests.integration.bmc_servers import SECRET, USER, mockup_server
from tests.inventories import base_inventory, write_inventory

import gpufence.cli.scan as scan_cli
from gpufence.cli import main
from gpufence.collect.bmc.evidence import scan_snapshot
from gpufence.collect.bmc.targets import parse_targets
from gpufence.controls import ALL_CONTROLS, audit_snapshot
from gpufence.controls.oob.topology import TOPOLOGY_CONTROLS
from gpufence.load.evidence import load_evidence
from gpufence.load.inventory import load_snapshot
from gpufence.model.findings import Plane
from gpufence.testing.mockup_server import make_test_pki

pytestmark = [pytest.mark.integration]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _dumps(findings: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(f, sort_keys=True) for f in findings)


def test_batched_scan_findings_equal_one_whole_audit(
    shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan_cli, "_BATCH", 5)
    monkeypatch.setenv("GPUFENCE_BMC_USERNAME", USER)
    monkeypatch.setenv("GPUFENCE_BMC_PASSWORD", SECRET)
    pki = make_test_pki(tmp_path / "pki")
    evidence, report = tmp_path / "scan.jsonl", tmp_path / "findings.json"
    with mockup_server(shared_dir, tmp_path, pki, ("dmtf", "dl380a", "dl360"), count=11) as ports:
        urls = [f"https://127.0.0.1:{p}" for p in [*ports, _closed_port()]]
        args = [a for url in urls for a in ("--target", url)]
        code = main(
            [
                "scan",
                "bmc",
                *args,
                "--ca-bundle",
                str(pki.ca),
                "--out",
                str(evidence),
                "--no-ipmi",
                "--no-progress",
                "--connect-timeout",
                "2",
                "--format",
                "json",
                "--output",
                str(report),
                "--fail-on",
                "never",
            ]
        )
    assert code == 0
    batched = json.loads(report.read_text())["findings"]
    documents = [d for d, _ in load_evidence([evidence]).documents]
    states = {str(d.raw["state"]) for d in documents}
    assert {"scanned", "unreachable"} <= states, states
    controls = [
        c
        for c in ALL_CONTROLS
        if c.meta.plane in (Plane.OOB, Plane.FW) and c.id not in TOPOLOGY_CONTROLS
    ]
    whole = audit_snapshot(
        scan_snapshot(parse_targets(urls, ipmi_probe=False), documents, str(evidence)), controls
    )
    expected = [
        f.model_copy(update={"location": None}).model_dump(mode="json") for f in whole.findings
    ]
    assert _dumps(batched) == _dumps(expected)
    drift = [f for f in batched if f["control"] == "FW-003" and f["status"] in ("PASS", "FAIL")]
    assert len(drift) >= 6, "FW-003 compared peers across batches"


def test_batched_inventory_scan_findings_equal_one_whole_audit(
    shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With an inventory: batches see it whole through five BMCs and the nodes they manage; a
    # BMC on a tenant network, a pool where tenants have root and a node without a BMC.
    monkeypatch.setattr(scan_cli, "_BATCH", 5)
    monkeypatch.setenv("GPUFENCE_BMC_USERNAME", USER)
    monkeypatch.setenv("GPUFENCE_BMC_PASSWORD", SECRET)
    pki = make_test_pki(tmp_path / "pki")
    evidence, report = tmp_path / "scan.jsonl", tmp_path / "findings.json"
    with mockup_server(shared_dir, tmp_path, pki, ("dmtf", "dl380a", "dl360"), count=12) as ports:
        data = base_inventory()
        template = data["bmcs"][0]
        data["bmcs"] = [
            {**template, "name": f"bmc-{i:02d}", "address": f"https://127.0.0.1:{port}"}
            for i, port in enumerate(ports)
        ]
        data["bmcs"][7]["network"] = "compute"
        data["node_pools"][0]["tenant_root"] = True
        data["node_pools"][0]["nodes"] = [
            *({"name": f"n{i}", "bmc": f"bmc-{i:02d}"} for i in range(0, 12, 2)),
            {"name": "loose"},
        ]
        inventory = write_inventory(tmp_path, data)
        code = main(
            [
                *("scan", "bmc", "--inventory", str(inventory), "--ca-bundle", str(pki.ca)),
                *("--out", str(evidence), "--no-ipmi", "--no-progress", "--format", "json"),
                *("--output", str(report), "--fail-on", "never"),
            ]
        )
    assert code == 0
    batched = json.loads(report.read_text())["findings"]
    documents = load_evidence([evidence]).documents
    controls = [c for c in ALL_CONTROLS if c.meta.plane in (Plane.OOB, Plane.FW)]
    whole = audit_snapshot(load_snapshot(inventory, documents), controls)
    related = {"cluster", *(f"bmc/bmc-{i:02d}" for i in range(12))}
    related |= {f"node/n{i}" for i in range(0, 12, 2)}
    expected = [
        f.model_dump(mode="json")
        for f in whole.findings
        if f.resource in related or f.resource.split("/system/")[0] in related
    ]
    assert _dumps(batched) == _dumps(expected)
    assert any(f["control"] == "OOB-001" and f["status"] == "FAIL" for f in batched)
