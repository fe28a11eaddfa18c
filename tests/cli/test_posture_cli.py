"""`--store`, `gpufence runs`, `gpufence diff`, `--baseline` and the text triage options."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gpufence.cli import main
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "neocloud"


def _changed_example(tmp_path: Path) -> Path:
    """A copy of the example where OOB-003 is fixed and one BMC keeps default credentials."""
    copy = tmp_path / "neocloud"
    shutil.copytree(EXAMPLE, copy)
    inv = copy / "inventory.yaml"
    text = inv.read_text()
    text = text.replace("ipmi_over_lan: true}", "ipmi_over_lan: false}")
    text = text.replace(
        "h200-a01-bmc, address: 10.10.0.11, network: oob, vendor: hpe, default_credentials: false",
        "h200-a01-bmc, address: 10.10.0.11, network: oob, vendor: hpe, default_credentials: true",
    )
    inv.write_text(text)
    return inv


def _audit(inv: Path, *args: str) -> int:
    return main(["audit", str(inv), "--evidence", str(inv.parent / "evidence"), *args])


def test_store_runs_diff_and_prune(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "posture.db")
    assert _audit(EXAMPLE / "inventory.yaml", "--store", store, "-q") == 1
    assert "recorded run 1 in sqlite:///" in capsys.readouterr().err
    assert _audit(_changed_example(tmp_path), "--store", store, "-q") == 1
    capsys.readouterr()

    assert main(["runs", "--store", store, "--format", "json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["id"] for r in runs] == [2, 1]
    assert runs[0]["counts"]["FAIL"] == runs[1]["counts"]["FAIL"]  # one fixed, one new
    assert all(len(i["sha256"]) == 64 for i in runs[0]["inputs"])
    assert runs[0]["inputs"][0]["sha256"] != runs[1]["inputs"][0]["sha256"]

    assert main(["diff", "--store", store, "--format", "json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert (diff["base"], diff["head"]) == ("run 1", "run 2")
    # IPMI over LAN off: OOB-003 passes, and OOB-011 (IPMI auth) is no longer NOT_EVALUATED.
    assert [(c["control"], c["resource"], c["after"]["status"]) for c in diff["fixed"]] == [
        ("OOB-003", "bmc/rtx-l01-bmc", "PASS"),
        ("OOB-011", "bmc/rtx-l01-bmc", "PASS"),
    ]
    assert [(c["control"], c["resource"]) for c in diff["new"]] == [("OOB-002", "bmc/h200-a01-bmc")]
    assert diff["changed"] == []
    assert len(diff["still_open"]) > 10

    assert main(["diff", "1", "2", "--store", store, "--fail-on-new"]) == 1
    text = capsys.readouterr().out
    assert "New (1)\n  OOB-002  bmc/h200-a01-bmc: FAIL" in text
    assert "Fixed (2)\n  OOB-003  bmc/rtx-l01-bmc: was FAIL high (now PASS)" in text

    assert main(["runs", "prune", "--store", store, "--keep", "1"]) == 0
    assert "pruned 1 run(s); 1 left" in capsys.readouterr().err
    assert main(["diff", "--store", store]) == 2
    assert "needs 2 recorded runs, it has 1" in capsys.readouterr().err


def test_baseline_from_a_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "before.json"
    _audit(EXAMPLE / "inventory.yaml", "--format", "json", "-o", str(report))
    capsys.readouterr()
    code = _audit(_changed_example(tmp_path), "--baseline", str(report), "--format", "json")
    doc = json.loads(capsys.readouterr().out)
    news = {(f["control"], f["resource"], f["status"]) for f in doc["findings"]}
    assert ("OOB-002", "bmc/h200-a01-bmc", "FAIL") in news
    assert ("OOB-003", "bmc/rtx-l01-bmc", "PASS") in news  # a status change is news too
    assert not any(c == "GPU-001" for c, _, _ in news)  # unchanged: not reported
    assert code == 1  # the new FAIL still gates


def test_baseline_run_needs_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _audit(EXAMPLE / "inventory.yaml", "--baseline", "latest") == 2
    assert "needs --store" in capsys.readouterr().err


def test_baseline_latest_is_the_previous_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "s.db")
    _audit(EXAMPLE / "inventory.yaml", "--store", store)
    capsys.readouterr()
    code = _audit(EXAMPLE / "inventory.yaml", "--store", store, "--baseline", "latest")
    captured = capsys.readouterr()
    assert code == 0
    assert "baseline run 1:" in captured.err and "No findings." in captured.out


@pytest.mark.parametrize(
    ("args", "present", "absent"),
    [
        (["--severity", "critical"], ["GPU-001", "CC-001"], ["GPU-002  node", "DAT-004  "]),
        (["--status", "NOT_EVALUATED"], ["(NOT_EVALUATED)"], ["fix: "]),
        (["--status", "pass", "--severity", "info,low"], ["(PASS)"], ["(NOT_EVALUATED)"]),
        (["-q"], ["GPU-001", "FAIL: "], ["(NOT_EVALUATED)", "Per control", "gpufence 0"]),
    ],
)
def test_text_filters(
    args: list[str], present: list[str], absent: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _audit(EXAMPLE / "inventory.yaml", "--format", "json")
    failed = json.loads(capsys.readouterr().out)["summary"]["by_status"]["FAIL"]
    assert _audit(EXAMPLE / "inventory.yaml", *args) == 1
    out = capsys.readouterr().out
    for text in present:
        assert text in out
    entries = "\n".join(line for line in out.splitlines() if line.startswith("  "))
    for text in absent:
        assert text not in entries
    # The verdict always counts every finding, whatever is listed.
    assert out.splitlines()[-1].startswith(f"FAIL: {failed} failed findings")


def test_filters_do_not_touch_json(capsys: pytest.CaptureFixture[str]) -> None:
    _audit(EXAMPLE / "inventory.yaml", "--format", "json")
    full = json.loads(capsys.readouterr().out)
    _audit(EXAMPLE / "inventory.yaml", "--format", "json", "--severity", "critical", "-q")
    assert json.loads(capsys.readouterr().out) == full


def test_bad_filter_value_is_an_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _audit(EXAMPLE / "inventory.yaml", "--severity", "severe") == 2
    assert "--severity 'severe': expected one of critical" in capsys.readouterr().err


def test_fails_of_one_control_are_grouped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = _changed_example(tmp_path)
    text = inv.read_text().replace("default_credentials: false", "default_credentials: true")
    inv.write_text(text)
    _audit(inv)
    lines = [line for line in capsys.readouterr().out.splitlines() if "OOB-002" in line]
    entries = [line for line in lines if line.startswith("  [")]
    assert len(entries) == 1
    assert "9 resources (" in entries[0] and "+6 more)" in entries[0]
