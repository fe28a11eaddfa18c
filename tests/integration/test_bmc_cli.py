"""The `gpufence scan bmc` command line: secrets never leave, evidence feeds `gpufence audit`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.bmc_servers import SECRET, USER, mockup_server
from tests.inventories import base_inventory, write_inventory

from gpufence.testing.mockup_server import LoopbackPki, make_test_pki

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LoopbackPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "gpufence", *args],
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_the_password_appears_in_no_output(
    shared_dir: Path, pki: LoopbackPki, tmp_path: Path
) -> None:
    creds = tmp_path / "credentials.yaml"
    creds.write_text(yaml.safe_dump({"default": {"username": USER, "password": SECRET}}))
    outputs: list[bytes] = []
    with mockup_server(shared_dir, tmp_path, pki, ("dmtf", "dl380a"), count=2) as ports:
        targets = [a for p in ports for a in ("--target", f"https://127.0.0.1:{p}")]
        for n, extra in enumerate(
            (
                ["--format", "sarif", "--intrusive"],
                ["--format", "text", "--show-pass"],
                ["--format", "json", "--output", str(tmp_path / "findings.json")],
                ["--format", "junit"],
            )
        ):
            evidence = tmp_path / f"evidence{n}.json"
            done = _run(
                [
                    "scan",
                    "bmc",
                    *targets,
                    "--credentials",
                    str(creds),
                    "--ca-bundle",
                    str(pki.ca),
                    "--out",
                    str(evidence),
                    "--no-ipmi",
                    *extra,
                ]
            )
            assert done.returncode == 1, done.stderr.decode()
            outputs += [done.stdout, done.stderr, evidence.read_bytes()]
        # A rejected password and an untrusted certificate are error paths worth checking too.
        wrong = tmp_path / "wrong.yaml"
        wrong.write_text(yaml.safe_dump({"default": {"username": USER, "password": SECRET + "x"}}))
        for args in (
            ["--credentials", str(wrong), "--ca-bundle", str(pki.ca)],
            ["--credentials", str(creds)],
        ):
            done = _run(
                [
                    "--debug",
                    "scan",
                    "bmc",
                    *targets,
                    *args,
                    "--no-ipmi",
                    "--out",
                    str(tmp_path / "e.json"),
                ]
            )
            outputs += [done.stdout, done.stderr, (tmp_path / "e.json").read_bytes()]
    outputs.append((tmp_path / "findings.json").read_bytes())
    assert all(SECRET.encode() not in blob for blob in outputs)
    assert b"OOB-018" in outputs[0]  # the outputs are real reports, not empty files
    first = json.loads((tmp_path / "evidence0.json").read_text())
    assert first["evidence"][0]["raw"]["credential"]["username"] == USER


def test_inventory_scan_feeds_audit(
    shared_dir: Path, pki: LoopbackPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUFENCE_BMC_USERNAME", USER)
    monkeypatch.setenv("GPUFENCE_BMC_PASSWORD", SECRET)
    with mockup_server(shared_dir, tmp_path, pki, ("dmtf",)) as (port,):
        data = base_inventory()
        data["bmcs"][0]["address"] = f"https://127.0.0.1:{port}"
        inventory = write_inventory(tmp_path, data)
        evidence = tmp_path / "bmc-evidence.json"
        scan = _run(
            [
                "scan",
                "bmc",
                "--inventory",
                str(inventory),
                "--ca-bundle",
                str(pki.ca),
                "--out",
                str(evidence),
                "--no-ipmi",
                "--format",
                "json",
            ]
        )
    assert scan.returncode == 1, scan.stderr.decode()
    scanned = json.loads(scan.stdout)
    assert {f["resource"] for f in scanned["findings"]} >= {"bmc/n1-bmc", "node/n1"}
    audit = _run(["audit", str(inventory), "--evidence", str(evidence), "--format", "json"])
    findings: dict[tuple[str, str], dict[str, Any]] = {
        (f["control"], f["resource"]): f for f in json.loads(audit.stdout)["findings"]
    }
    # The inventory declares Secure Boot on and IPMI off; the BMC says otherwise.
    secure_boot = findings[("FW-001", "node/n1")]
    assert secure_boot["status"] == "FAIL"
    assert secure_boot["evidence"]["declared"]["value"] is True
    ipmi = findings[("OOB-003", "bmc/n1-bmc")]
    assert ipmi["status"] == "FAIL" and ipmi["evidence"]["ipmi_over_lan"]["source"] == "observed"
    assert findings[("OOB-018", "bmc/n1-bmc")]["status"] == "FAIL"
    # Topology controls run too (only with an inventory).
    assert findings[("OOB-001", "bmc/n1-bmc")]["status"] == "PASS"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "ftp://10.0.0.1"], "unsupported scheme 'ftp'"),
        (["--target", "https://10.0.0.1/redfish/v1"], "give only scheme, host and port"),
        ([], "give one of --inventory INVENTORY, --target TARGET"),
        (["--target", "10.0.0.1", "--insecure", "--ca-bundle", "x.pem"], "contradict"),
        (["--target", "bad name=https://10.0.0.1"], "BMC name 'bad name'"),
    ],
)
def test_bad_command_lines_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = _run(["scan", "bmc", *args, "--out", str(tmp_path / "e.json")])
    assert done.returncode == 2
    assert message in done.stderr.decode()
    assert b"Traceback" not in done.stderr


def test_credentials_errors_name_the_place(tmp_path: Path) -> None:
    creds = tmp_path / "creds.yaml"
    creds.write_text("default:\n  username: a\n  pasword: b\n")
    done = _run(
        [
            "scan",
            "bmc",
            "--target",
            "127.0.0.1:1",
            "--credentials",
            str(creds),
            "--out",
            str(tmp_path / "e.json"),
        ]
    )
    assert done.returncode == 2
    assert f"{creds}:3:3: unknown key 'pasword'" in done.stderr.decode()
    creds.write_text("default: {username: a, password_env: GPUFENCE_TEST_UNSET_VAR}\n")
    done = _run(
        [
            "scan",
            "bmc",
            "--target",
            "127.0.0.1:1",
            "--credentials",
            str(creds),
            "--out",
            str(tmp_path / "e.json"),
        ]
    )
    assert done.returncode == 2
    assert "GPUFENCE_TEST_UNSET_VAR is not set" in done.stderr.decode()


def test_targets_file_scan_with_progress_lines_and_mutelist(
    shared_dir: Path, pki: LoopbackPki, tmp_path: Path
) -> None:
    """--targets-file scans what --target would; off a terminal progress comes as lines."""
    creds = tmp_path / "credentials.yaml"
    creds.write_text(yaml.safe_dump({"default": {"username": USER, "password": SECRET}}))
    mutes = tmp_path / "mutes.yaml"
    mutes.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "mutes": [
                    {
                        "control": "OOB-*",
                        "resource": "bmc/rack-a*",
                        "reason": "lab BMCs, accepted until the rack is rebuilt",
                        "expires": "2999-01-01",
                    }
                ],
            }
        )
    )
    # 10 ms per answer: the scan outlasts one progress interval (0.05 s, the shortest allowed);
    # on an idle machine two BMCs at 0 ms finished before the first line was due.
    with mockup_server(shared_dir, tmp_path, pki, ("dmtf",), count=2, latency_ms=10) as ports:
        listing = tmp_path / "targets.txt"
        listing.write_text(
            "# two lab BMCs\n\n"
            + "".join(f"rack-a{i}=https://127.0.0.1:{p}  # port {p}\n" for i, p in enumerate(ports))
        )
        common = ["--credentials", str(creds), "--ca-bundle", str(pki.ca), "--no-ipmi"]
        common += ["--format", "json"]
        argv = ["scan", "bmc", "--targets-file", str(listing), "--out", str(tmp_path / "a.json")]
        argv += [*common, "--mutelist", str(mutes), "--no-progress"]
        done = _run(argv, env={"GPUFENCE_PROGRESS_SECONDS": "0.05"})
        argv = ["scan", "bmc", "--out", str(tmp_path / "b.json"), *common]
        argv += [a for i, p in enumerate(ports) for a in ("-t", f"rack-a{i}=https://127.0.0.1:{p}")]
        by_target = _run(argv)
    assert done.returncode in (0, 1), done.stderr.decode()
    muted = json.loads(done.stdout)["findings"]
    plain = json.loads(by_target.stdout)["findings"]
    assert {f["resource"] for f in muted} == {f["resource"] for f in plain}

    def oob(findings: list[dict[str, Any]], status: str) -> int:
        return sum(
            f["status"] == status and f["control"].startswith("OOB-") and "/rack-a" in f["resource"]
            for f in findings
        )

    assert oob(plain, "FAIL") > 0 and oob(plain, "MUTED") == 0
    # FAIL and NOT_EVALUATED findings are both muted; none of them still fails.
    assert oob(muted, "FAIL") == 0
    assert oob(muted, "MUTED") == oob(plain, "FAIL") + oob(plain, "NOT_EVALUATED")
    assert b"gpufence: scan bmc: BMCs scanned: " in done.stderr
