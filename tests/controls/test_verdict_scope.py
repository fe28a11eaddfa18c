"""The honest verdict: planes out of scope are NOT_APPLICABLE, one cause is one finding."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gpufence.cli import main
from gpufence.model.findings import Plane, Status
from gpufence.model.inventory import PlaneScope
from gpufence.model.schemas import schema_for
from tests.inventories import base_inventory, write_inventory

NO_K8S = {"kubernetes": {"in_scope": False, "reason": "bare-metal rentals, no Kubernetes at all"}}


def _json_audit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict[str, Any], *args: str
) -> tuple[int, dict[str, Any]]:
    code = main(["audit", str(write_inventory(tmp_path, data)), "-f", "json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_plane_out_of_scope_is_not_applicable_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, before = _json_audit(tmp_path, capsys, base_inventory())
    k8s_before = [f for f in before["findings"] if f["plane"] == "K8S"]
    assert {f["status"] for f in k8s_before} == {"NOT_EVALUATED"}
    assert any(c.startswith("K8S-") for c in before["summary"]["unevaluated_controls"])

    data = {**base_inventory(), "scope": NO_K8S}
    _, after = _json_audit(tmp_path, capsys, data)
    k8s = [f for f in after["findings"] if f["plane"] == "K8S"]
    assert k8s and {f["status"] for f in k8s} == {"NOT_APPLICABLE"}
    assert all("bare-metal rentals" in f["message"] for f in k8s)
    assert k8s[0]["location"]["line"] is not None  # points at the scope declaration
    assert not any(c.startswith("K8S-") for c in after["summary"]["unevaluated_controls"])
    assert after["summary"]["by_status"]["NOT_APPLICABLE"] == len(k8s)
    # Every control of the plane is accounted for, once.
    assert len({f["control"] for f in k8s}) == len(k8s)


def test_out_of_scope_needs_a_reason() -> None:
    with pytest.raises(ValidationError, match="needs a reason"):
        PlaneScope(in_scope=False)


def test_unknown_plane_key_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {**base_inventory(), "scope": {"k8s": {"in_scope": False, "reason": "none at all here"}}}
    assert main(["audit", str(write_inventory(tmp_path, data))]) == 2
    assert "scope" in capsys.readouterr().err


def test_one_cause_is_one_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, report = _json_audit(tmp_path, capsys, base_inventory())
    broker = [f for f in report["findings"] if "broker_config is not set" in f["message"]]
    assert len(broker) == 1
    blocked = broker[0]["evidence"]["blocked_controls"]
    assert len(blocked) >= 2 and set(blocked) <= set(report["summary"]["unevaluated_controls"])
    no_k8s = [f for f in report["findings"] if "no Kubernetes evidence" in f["message"]]
    assert len(no_k8s) == 1 and len(no_k8s[0]["evidence"]["blocked_controls"]) >= 10


def test_not_applicable_in_junit_and_sarif(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(write_inventory(tmp_path, {**base_inventory(), "scope": NO_K8S}))
    main(["audit", path, "-f", "junit"])
    root = ET.fromstring(capsys.readouterr().out)
    suite = next(s for s in root.iter("testsuite") if s.get("id") == Plane.K8S.value)
    skipped = [c.find("skipped") for c in suite.iter("testcase")]
    assert skipped and all(
        s is not None and (s.get("message") or "").startswith("not applicable: ") for s in skipped
    )
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"] == "INCOMPLETE"
    main(["audit", path, "-f", "sarif"])
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert run["properties"]["verdict"] == "INCOMPLETE"
    assert run["properties"]["findingsByStatus"]["NOT_APPLICABLE"] > 0
    assert not any(r["ruleId"].startswith("K8S-") for r in run["results"])


def test_findings_schema_knows_the_new_status_and_verdict() -> None:
    text = json.dumps(schema_for("findings"))
    assert Status.NOT_APPLICABLE.value in text and '"incomplete"' in text
    assert "unevaluated_controls" in text
