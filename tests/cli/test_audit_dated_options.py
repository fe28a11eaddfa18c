"""`gpufence audit --as-of / --kev / --export-rules-max-age`: passed through; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpufence.cli import main
from tests.inventories import base_inventory, write_inventory


def _inventory(tmp_path: Path) -> Path:
    data = base_inventory()
    data["sites"][0]["country"] = "CN"
    data["node_pools"][0]["gpu_model"] = "H200"
    data["bmcs"][0].update(vendor="AMI", firmware_version="12.4.0")
    return write_inventory(tmp_path, data)


def _findings(capsys: pytest.CaptureFixture[str], control: str) -> list[dict[str, Any]]:
    doc = json.loads(capsys.readouterr().out)
    return [f for f in doc["findings"] if f["control"] == control]


@pytest.mark.parametrize(
    ("as_of", "status", "rule_set"),
    [("2026-02-01", "FAIL", "ear-2026-01"), ("2025-06-01", "FAIL", "ear-2025-05")],
)
def test_as_of_selects_the_rule_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], as_of: str, status: str, rule_set: str
) -> None:
    args = ["audit", str(_inventory(tmp_path)), "-f", "json", "--as-of", as_of]
    assert main(args) == 1
    (finding,) = _findings(capsys, "CMP-001")
    assert finding["status"] == status and finding["evidence"]["rule_set"] == rule_set


def test_as_of_before_the_first_rule_set_and_stale_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = str(_inventory(tmp_path))
    main(["audit", inventory, "-f", "json", "--as-of", "2023-01-01"])
    (finding,) = _findings(capsys, "CMP-001")
    assert finding["status"] == "NOT_EVALUATED"
    main(
        ["audit", inventory, "-f", "json", "--as-of", "2027-06-01", "--export-rules-max-age", "30"]
    )
    (finding,) = _findings(capsys, "CMP-001")
    assert finding["status"] == "NOT_EVALUATED" and "last reviewed" in finding["message"]


def test_bad_as_of_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(_inventory(tmp_path)), "--as-of", "2026-13-01"]) == 2


def test_kev_file_adds_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kev = tmp_path / "kev.json"
    kev.write_text(
        json.dumps({"vulnerabilities": [{"cveID": "CVE-2024-54085", "dateAdded": "2025-06-25"}]})
    )
    main(["audit", str(_inventory(tmp_path)), "-f", "json", "--kev", str(kev)])
    (finding,) = _findings(capsys, "FW-002")
    assert finding["status"] == "FAIL" and "kev.json" in finding["message"]


def test_bad_kev_file_exits_2_with_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kev = tmp_path / "kev.json"
    kev.write_text('{"vulnerabilities": [\n  {"cveID": ]}')
    assert main(["audit", str(_inventory(tmp_path)), "--kev", str(kev)]) == 2
    err = capsys.readouterr().err
    assert f"{kev}:2:" in err and "not valid JSON" in err
