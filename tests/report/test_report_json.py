"""The JSON renderer: schema id, every finding field, summary, deterministic order."""

from __future__ import annotations

import json

from report_fixtures import NASTY_MESSAGE

from gpufence.model.findings import AuditResult, Severity, fingerprint_of, summarize
from gpufence.report._common import sorted_findings
from gpufence.report.json_ import render_json

FIELDS = {
    "control",
    "title",
    "plane",
    "severity",
    "status",
    "resource",
    "message",
    "remediation",
    "references",
    "fingerprint",
    "evidence",
}


def test_document_shape(result: AuditResult) -> None:
    out = render_json(result, summarize(result.findings, Severity.LOW))
    assert out.endswith("}\n")
    doc = json.loads(out)
    assert list(doc) == ["schema", "tool", "inputs", "findings", "summary"]
    assert doc["schema"] == "gpufence.findings/v1"
    assert doc["tool"] == {"name": "gpufence", "version": "9.9.9"}
    assert doc["inputs"] == list(result.inputs)
    assert len(doc["findings"]) == len(result.findings)
    for f in doc["findings"]:
        assert FIELDS <= set(f), FIELDS - set(f)
        assert f["fingerprint"] == fingerprint_of(f["control"], f["resource"])
    summary = doc["summary"]
    assert summary["total"] == 11
    assert summary["by_status"]["FAIL"] == 5
    assert summary["failed_by_severity"]["info"] == 1
    assert summary["verdict"] == "fail"
    assert summary["fail_on"] == "low"


def test_values_round_trip(result: AuditResult) -> None:
    doc = json.loads(render_json(result, summarize(result.findings, None)))
    first = doc["findings"][0]
    assert first["message"] == NASTY_MESSAGE
    assert first["location"]["line"] == 42
    assert first["evidence"] == {"mig": "<1g.10gb>", "tenants": ["ü", "日本"]}
    assert doc["summary"]["fail_on"] == "never"
    without_location = [f for f in doc["findings"] if f["control"] == "K8S-001"]
    assert without_location[0]["location"] is None


def test_findings_in_text_order_independent_of_input_order(result: AuditResult) -> None:
    summary = summarize(result.findings, Severity.LOW)
    reversed_result = result.model_copy(update={"findings": tuple(reversed(result.findings))})
    out = render_json(result, summary)
    assert out == render_json(reversed_result, summary)
    keys = [(f["control"], f["resource"]) for f in json.loads(out)["findings"]]
    assert keys == [(f.control, f.resource) for f in sorted_findings(result.findings)]
    assert keys[0] == ("GPU-001", "node-a/gpu0")
    assert keys[-1][0] in {"GPU-002", "K8S-001"}  # a PASS comes last
