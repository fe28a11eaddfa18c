"""`scan bmc --shard I/N` in separate processes: their evidence merges into the unsharded audit.

Four shard scans run at once as their own processes against the mockup fleet (as four pods of
an Indexed Job would), each writing JSON Lines into one directory; `gpufence audit` given that
directory must produce the same findings as the audit of one unsharded scan.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.integration.bmc_servers import SECRET, USER, mockup_server
from tests.inventories import base_inventory, write_inventory

from gpufence.testing.mockup_server import LoopbackPki, make_test_pki

pytestmark = [pytest.mark.integration]

SHARDS = 4
BMCS = 12


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LoopbackPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def _gpufence(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "gpufence", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "GPUFENCE_BMC_USERNAME": USER, "GPUFENCE_BMC_PASSWORD": SECRET}


def _scan(inventory: Path, ca: Path, out: Path, *extra: str) -> list[str]:
    return _gpufence(
        [
            "scan",
            "bmc",
            "--inventory",
            str(inventory),
            "--ca-bundle",
            str(ca),
            "--out",
            str(out),
            "--no-ipmi",
            "--no-progress",
            "--format",
            "json",
            "--fail-on",
            "never",
            *extra,
        ]
    )


def _audit(inventory: Path, evidence: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        _gpufence(["audit", str(inventory), "--evidence", str(evidence), "--format", "json"]),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr.decode()
    findings: list[dict[str, Any]] = json.loads(done.stdout)["findings"]
    return findings


def _comparable(findings: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    # Messages and evidence name the evidence file and the scan time; what was decided must match.
    return sorted((f["control"], f["resource"], f["status"], f["severity"]) for f in findings)


def test_four_shard_processes_merge_into_the_unsharded_audit(
    shared_dir: Path, pki: LoopbackPki, tmp_path: Path
) -> None:
    data = base_inventory()
    template = data["bmcs"][0]
    with mockup_server(shared_dir, tmp_path, pki, ("dmtf", "dl380a", "dl360"), count=BMCS) as ports:
        data["bmcs"] = [
            {**template, "name": f"bmc-{i:02d}", "address": f"https://127.0.0.1:{port}"}
            for i, port in enumerate(ports)
        ]
        data["node_pools"][0]["nodes"][0]["bmc"] = "bmc-00"
        inventory = write_inventory(tmp_path, data)
        whole = tmp_path / "whole.json"
        single = subprocess.run(
            _scan(inventory, pki.ca, whole), capture_output=True, timeout=300, env=_env()
        )
        assert single.returncode == 0, single.stderr.decode()
        shards = tmp_path / "shards"
        shards.mkdir()
        processes = [
            subprocess.Popen(
                _scan(inventory, pki.ca, shards / f"bmc-{i}.jsonl", "--shard", f"{i}/{SHARDS}"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=_env(),
            )
            for i in range(SHARDS)
        ]
        outputs = [p.communicate(timeout=300) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
        assert SECRET.encode() not in err
    per_shard = [
        [
            json.loads(line)["subject"]
            for line in (shards / f"bmc-{i}.jsonl").read_text().splitlines()
        ]
        for i in range(SHARDS)
    ]
    # Every BMC in exactly one shard, and the split is not degenerate.
    subjects = [s for shard in per_shard for s in shard]
    assert sorted(subjects) == sorted(f"bmc/bmc-{i:02d}" for i in range(BMCS))
    assert sum(1 for shard in per_shard if shard) >= 2, per_shard
    whole_findings = _audit(inventory, whole)
    merged_findings = _audit(inventory, shards)
    assert _comparable(merged_findings) == _comparable(whole_findings)
    # The scan evidence was really used (not an audit of an unscanned fleet on both sides).
    scanned = {f["resource"] for f in whole_findings if f["control"] == "OOB-018"}
    assert scanned == {f"bmc/bmc-{i:02d}" for i in range(BMCS)}
