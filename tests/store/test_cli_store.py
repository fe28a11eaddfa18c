"""The CLI records into, lists and diffs both store backends (SQLite and a real PostgreSQL)."""

from __future__ import annotations

import json

import pytest

from gpufence.cli import main
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "neocloud"


def test_audit_records_and_diffs(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["audit", str(EXAMPLE / "inventory.yaml"), "-e", str(EXAMPLE / "evidence")]
    assert main([*args, "--store", store_url, "-q"]) == 1
    assert main([*args, "--store", store_url, "-q", "--baseline", "latest"]) == 0
    err = capsys.readouterr().err
    assert "recorded run 1" in err and "recorded run 2" in err
    assert main(["runs", "--store", store_url, "-f", "json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["verdict"] for r in runs] == ["fail", "fail"]  # the store keeps the whole run
    assert runs[0]["counts"] == runs[1]["counts"]
    assert main(["diff", "--store", store_url, "-f", "json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["new"] == diff["fixed"] == diff["changed"] == []
    assert len(diff["still_open"]) == runs[0]["counts"]["FAIL"] + runs[0]["counts"]["NOT_EVALUATED"]
