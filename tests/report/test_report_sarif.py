"""The SARIF renderer: schema-valid, GitHub security-severity bands, results and locations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import CONTROLS, NASTY_MESSAGE, make_finding

from gpufence.model.findings import (
    AuditResult,
    FindingLocation,
    Severity,
    Status,
    fingerprint_of,
    summarize,
)
from gpufence.report.sarif import render_sarif

SCHEMA = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "sarif" / "sarif-schema-2.1.0.json"
)

# GitHub code scanning bands for rule properties["security-severity"].
BANDS: dict[Severity, tuple[float, float]] = {
    Severity.CRITICAL: (9.0, 10.0),  # > 9.0
    Severity.HIGH: (7.0, 8.9),
    Severity.MEDIUM: (4.0, 6.9),
    Severity.LOW: (0.1, 3.9),
    Severity.INFO: (0.1, 3.9),
}


def _sarif(result: AuditResult, base: Path | None = None) -> dict[str, Any]:
    out = render_sarif(result, summarize(result.findings, Severity.LOW), base_dir=base)
    assert out.endswith("}\n")
    doc: dict[str, Any] = json.loads(out)
    return doc


def _run(result: AuditResult, base: Path | None = None) -> dict[str, Any]:
    run: dict[str, Any] = _sarif(result, base)["runs"][0]
    return run


def _validate(doc: dict[str, Any]) -> None:
    if not SCHEMA.is_file():
        pytest.skip(f"SARIF schema not found at {SCHEMA} (needs the shared/ data checkout)")
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    if "$ref" not in schema and "properties" not in schema:
        # This copy keeps the log object under definitions/Root and leaves the top level empty,
        # so validating against it as-is would accept anything; point the root at Root.
        assert "Root" in schema["definitions"], "unexpected SARIF schema layout"
        schema = {**schema, "$ref": "#/definitions/Root"}
    validator = jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def _result_for(run: dict[str, Any], control: str, resource: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [
        r
        for r in run["results"]
        if r["ruleId"] == control
        and r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == resource
    ]
    assert len(matches) == 1, (control, resource, matches)
    return matches[0]


def test_validates_against_schema(result: AuditResult) -> None:
    doc = _sarif(result)
    assert doc["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert doc["version"] == "2.1.0"
    _validate(doc)


def test_schema_validation_can_fail(result: AuditResult) -> None:
    # Guard against a validator that accepts anything: a broken log must be rejected.
    doc = _sarif(result)
    doc["runs"][0]["results"][0]["level"] = "catastrophic"
    with pytest.raises(AssertionError):
        _validate(doc)


def test_driver_and_rules(result: AuditResult) -> None:
    run = _run(result)
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("gpufence", "9.9.9")
    assert driver["informationUri"].startswith("https://")
    assert [r["id"] for r in driver["rules"]] == [c.id for c in CONTROLS]
    by_id = {r["id"]: r for r in driver["rules"]}
    gpu1 = by_id["GPU-001"]
    assert gpu1["name"] == "GPU001"
    assert gpu1["shortDescription"]["text"] == "Title of GPU-001"
    assert gpu1["fullDescription"]["text"] == "Failure mode of GPU-001"
    assert gpu1["help"]["text"] == "Remediate GPU-001"
    assert gpu1["helpUri"] == "https://example.org/gpu-001"  # first reference that is a URI
    assert "helpUri" not in by_id["GPU-002"]
    assert gpu1["properties"]["tags"] == ["security", "GPU"]
    assert gpu1["properties"]["precision"] == "high"
    assert run["invocations"] == [{"executionSuccessful": True}]


def test_security_severity_on_every_rule_within_github_bands(result: AuditResult) -> None:
    levels = {
        Severity.CRITICAL: "error",
        Severity.HIGH: "error",
        Severity.MEDIUM: "warning",
        Severity.LOW: "note",
        Severity.INFO: "note",
    }
    rules = {r["id"]: r for r in _run(result)["tool"]["driver"]["rules"]}
    assert {c.severity for c in CONTROLS} == set(Severity)  # every severity is exercised
    for control in CONTROLS:
        rule = rules[control.id]
        value = rule["properties"]["security-severity"]
        assert isinstance(value, str)
        low, high = BANDS[control.severity]
        assert low <= float(value) <= high, (control.id, control.severity, value)
        if control.severity is Severity.CRITICAL:
            assert float(value) > 9.0
        assert rule["defaultConfiguration"]["level"] == levels[control.severity]


def test_only_fail_results_plus_suppressed_muted(result: AuditResult) -> None:
    run = _run(result)
    fails = sorted((f.control, f.resource) for f in result.findings if f.status is Status.FAIL)
    active = [r for r in run["results"] if "suppressions" not in r]
    got = sorted(
        (r["ruleId"], r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"])
        for r in active
    )
    assert got == fails
    suppressed = [r for r in run["results"] if "suppressions" in r]
    assert len(suppressed) == 1
    assert suppressed[0]["suppressions"] == [
        {"kind": "external", "justification": "ticket SEC-42 & <waiver>"}
    ]
    rules = run["tool"]["driver"]["rules"]
    for r in run["results"]:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]


def test_result_content(result: AuditResult) -> None:
    run = _run(result)
    r = _result_for(run, "GPU-001", "node-a/gpu0")
    assert r["level"] == "error"
    assert r["message"]["text"] == f"{NASTY_MESSAGE} (resource: node-a/gpu0)"
    assert r["partialFingerprints"] == {
        "gpufenceFingerprint/v1": fingerprint_of("GPU-001", "node-a/gpu0")
    }
    assert r["properties"] == {
        "resource": "node-a/gpu0",
        "evidence": {"mig": "<1g.10gb>", "tenants": ["ü", "日本"]},
    }
    assert r["locations"][0]["logicalLocations"] == [
        {"fullyQualifiedName": "node-a/gpu0", "kind": "resource"}
    ]
    assert _result_for(run, "K8S-002", "ns/tenant-b")["level"] == "note"


def test_regions_and_relative_uris(result: AuditResult) -> None:
    run = _run(result)

    def physical(control: str, resource: str) -> dict[str, Any]:
        loc: dict[str, Any] = _result_for(run, control, resource)["locations"][0]
        return dict(loc["physicalLocation"])

    # Absolute path under the working directory: made relative, line and column kept.
    p = physical("GPU-001", "node-a/gpu0")
    assert p["artifactLocation"] == {"uri": "examples/cluster.yaml", "uriBaseId": "%SRCROOT%"}
    assert p["region"] == {"startLine": 42, "startColumn": 7}
    # File known, line unknown: line 1 (GitHub needs a region).
    assert physical("GPU-002", "node-c/gpu1")["region"] == {"startLine": 1}
    # No location at all: the first input, percent-encoded, at line 1.
    p = physical("K8S-001", "ns/tenant-a")
    assert p["artifactLocation"] == {
        "uri": "examples/inv%20dir/inventory.yaml",
        "uriBaseId": "%SRCROOT%",
    }
    assert p["region"] == {"startLine": 1}
    # Already relative: kept relative.
    assert physical("OOB-001", "bmc-2")["artifactLocation"]["uri"] == "examples/relative.yaml"
    for r in run["results"]:
        uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert not uri.startswith(("/", "file:")), uri


def test_path_outside_base_is_absolute_file_uri(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "inv.yaml"
    finding = make_finding(
        "GPU-003", Status.FAIL, "n", location=FindingLocation(file=str(outside), line=5)
    )
    base = tmp_path / "repo"
    base.mkdir()
    doc = _sarif(AuditResult(findings=(finding,), controls=(), tool_version="1"), base)
    artifact = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": outside.as_uri()}
    _validate(doc)


def test_unknown_control_gets_a_rule_and_no_inputs_means_logical_only() -> None:
    finding = make_finding("CC-001", Status.FAIL, "vm-1")
    doc = _sarif(AuditResult(findings=(finding,), controls=(), tool_version="1"))
    run = doc["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["CC-001"]
    assert run["tool"]["driver"]["rules"][0]["properties"]["security-severity"] == "9.5"
    loc = run["results"][0]["locations"][0]
    assert "physicalLocation" not in loc
    assert loc["logicalLocations"][0]["fullyQualifiedName"] == "vm-1"
    _validate(doc)


def test_no_results_is_still_valid() -> None:
    passing = make_finding("GPU-002", Status.PASS, "node-a/gpu0")
    doc = _sarif(AuditResult(findings=(passing,), controls=CONTROLS, tool_version="1"))
    assert doc["runs"][0]["results"] == []
    _validate(doc)
