"""`gpufence plan INVENTORY --out DIR`: files, summary formats, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gpufence.cli import main
from tests.conftest import REPO
from tests.inventories import write_inventory
from tests.plan.fleets import inventory, pool, tenant

EXAMPLE = REPO / "examples" / "neocloud" / "inventory.yaml"


def test_plan_example_writes_every_artifact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan"
    assert main(["plan", str(EXAMPLE), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Tiers" in captured.out and "Lower bound" in captured.out
    assert "wrote" in captured.err
    for name in (
        "plan.json",
        "summary.txt",
        "planned-inventory.yaml",
        "mig-parted/config.yaml",
        "device-plugin/configmap.yaml",
        "device-plugin/h100-osl.yaml",
        "k8s/nodes.yaml",
        "k8s/tenants/acme-ai.yaml",
    ):
        assert (out / name).is_file(), name
    assert yaml.safe_load((out / "mig-parted" / "config.yaml").read_text())["version"] == "v1"
    # The planned inventory is a valid gpufence inventory; its audit has no GPU/CC FAIL but the
    # advisory ones (issue 10: advisory rules are low findings; the default plan is "weakest").
    assert main(["audit", str(out / "planned-inventory.yaml"), "--format", "json"]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    failed = [
        f for f in findings if f["status"] == "FAIL" and f["control"].startswith(("GPU-", "CC-"))
    ]
    assert failed and all(
        f["severity"] == "low" and f["evidence"]["advisory"] is True for f in failed
    )


def test_plan_json_summary_to_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = tmp_path / "summary.json"
    code = main(
        ["plan", str(EXAMPLE), "--out", str(tmp_path / "o"), "--format", "json", "-o", str(summary)]
    )
    assert code == 0
    doc = json.loads(summary.read_text())
    assert doc["complete"] is True and doc["stats"]["gap_percent"] == 0.0
    assert capsys.readouterr().out == ""


def test_unplaced_demand_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = inventory(
        [pool("h100", "H100-SXM5-80GB", gpn=4)],
        [tenant("a", "internal", "public", {"gpus": 6})],
    )
    code = main(["plan", str(write_inventory(tmp_path, data)), "--out", str(tmp_path / "o")])
    assert code == 1
    captured = capsys.readouterr()
    assert "NOT PLACED: 2 jobs" in captured.out and "not fully placed" in captured.err


def test_impossible_demand_exits_2_with_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = inventory(
        [pool("lab", "RTX-4090")],
        [tenant("health", "partner", "regulated", {"gpus": 1})],
    )
    path = write_inventory(tmp_path, data)
    assert main(["plan", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err and "'health'" in err and "Traceback" not in err


def test_first_fit_and_recommended_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "plan",
            str(EXAMPLE),
            "--out",
            str(tmp_path / "o"),
            "--strategy",
            "first-fit",
            "--recommended",
            "--format",
            "json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    assert doc["strategy"] == "first-fit" and doc["policy"] == "recommended"
    initech = next(t for t in doc["tiers"] if t["tenant"] == "initech")
    assert initech["placed_as"] == "dedicated-gpu"


def test_out_dir_that_is_a_file_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["plan", str(EXAMPLE), "--out", str(blocker)]) == 2
    assert "cannot write the plan" in capsys.readouterr().err


def test_plan_notes_the_advisory_rules_it_leaves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(EXAMPLE), "--out", str(tmp_path / "w")]) == 0
    err = capsys.readouterr().err
    assert "note: advisory rule untrusted-whole-gpus not followed on node/" in err
    assert "note: advisory rule cc-colocation not followed on node/b200-h01" in err
    assert main(["plan", str(EXAMPLE), "--out", str(tmp_path / "r"), "--recommended"]) == 0
    assert "note: advisory rule" not in capsys.readouterr().err
