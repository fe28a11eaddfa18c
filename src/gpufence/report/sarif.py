"""SARIF 2.1.0 for code-scanning UIs (GitHub, GitLab, Azure DevOps).

Only FAIL findings (and MUTED ones, marked suppressed) become results: SARIF results are
problems, and a scanner UI would show a PASS, NOT_EVALUATED or NOT_APPLICABLE result as an open
alert. The run's property bag carries the verdict, the controls that could not be evaluated and
the count of findings by status, so nothing unseen is hidden (mapping: docs/evidence.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from gpufence.model.findings import (
    AuditResult,
    ControlInfo,
    Finding,
    Severity,
    Status,
    Summary,
)
from gpufence.report._common import sorted_findings

__all__ = [
    "INFORMATION_URI",
    "SARIF_SCHEMA_URI",
    "SECURITY_SEVERITY",
    "SRCROOT",
    "render_sarif",
]

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/gpufence/gpufence"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "gpufenceFingerprint/v1"

# GitHub maps rule properties["security-severity"] (a number as a string) onto its bands:
# >9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low. Values sit inside each band.
SECURITY_SEVERITY: dict[Severity, str] = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "2.0",
    Severity.INFO: "0.1",
}

_LEVEL: dict[Severity, str] = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}

_EMITTED = (Status.FAIL, Status.MUTED)


def _help_uri(references: tuple[str, ...]) -> str | None:
    # References may be citations ("NIST SP 800-53 AC-4"); helpUri must be a URI, so take the
    # first reference that is one.
    for ref in references:
        if ref.startswith(("https://", "http://")):
            return ref
    return None


def _rule(
    rule_id: str,
    title: str,
    description: str,
    remediation: str,
    severity: Severity,
    plane_value: str,
    references: tuple[str, ...],
) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": rule_id,
        "name": rule_id.replace("-", ""),
        "shortDescription": {"text": title},
        "fullDescription": {"text": description or title},
        "defaultConfiguration": {"level": _LEVEL[severity]},
        "help": {"text": remediation},
    }
    uri = _help_uri(references)
    if uri is not None:
        rule["helpUri"] = uri
    rule["properties"] = {
        "security-severity": SECURITY_SEVERITY[severity],
        "tags": ["security", plane_value],
        "precision": "high",
    }
    return rule


def _rule_from_control(control: ControlInfo) -> dict[str, Any]:
    return _rule(
        control.id,
        control.title,
        control.failure_mode,
        control.remediation,
        control.severity,
        control.plane.value,
        control.references,
    )


def _rule_from_finding(finding: Finding) -> dict[str, Any]:
    # A result must point at a rule; if a finding's control was not listed as run (a caller
    # bug, but not worth losing the finding over), describe the rule from the finding itself.
    return _rule(
        finding.control,
        finding.title,
        finding.title,
        finding.remediation,
        finding.severity,
        finding.plane.value,
        finding.references,
    )


def _artifact_location(file: str, base_dir: Path) -> dict[str, str]:
    """``file`` relative to ``base_dir`` under %SRCROOT% when it lies below it, else a file: URI."""
    path = Path(file)
    absolute = Path(os.path.normpath(path if path.is_absolute() else base_dir / path))
    rel: Path | None = None
    for candidate, base in ((absolute, base_dir), (absolute.resolve(), base_dir.resolve())):
        # The second try sees through symlinks (e.g. a cwd under a symlinked /tmp).
        try:
            rel = candidate.relative_to(base)
            break
        except ValueError:
            continue
    if rel is not None and rel.parts:
        # A relative URI reference: POSIX separators, percent-encoded (spaces, '#', '%' ...).
        return {"uri": quote(PurePosixPath(*rel.parts).as_posix(), safe="/"), "uriBaseId": SRCROOT}
    return {"uri": absolute.as_uri()}


def _location(finding: Finding, inputs: tuple[str, ...], base_dir: Path) -> dict[str, Any]:
    location: dict[str, Any] = {}
    file: str | None = None
    line: int | None = None
    column: int | None = None
    if finding.location is not None:
        file, line, column = finding.location.file, finding.location.line, finding.location.column
    elif inputs:
        # GitHub rejects results without a physical location; the first input is the honest
        # next-best place (the finding came from auditing it).
        file = inputs[0]
    if file is not None:
        region: dict[str, int] = {"startLine": max(1, line or 1)}
        if line is not None and column is not None and column >= 1:
            region["startColumn"] = column
        location["physicalLocation"] = {
            "artifactLocation": _artifact_location(file, base_dir),
            "region": region,
        }
    location["logicalLocations"] = [{"fullyQualifiedName": finding.resource, "kind": "resource"}]
    return location


def _result(
    finding: Finding, rule_index: int, inputs: tuple[str, ...], base_dir: Path
) -> dict[str, Any]:
    # model_dump(mode="json") makes the evidence JSON-safe (enums, tuples, datetimes ...).
    dumped = finding.model_dump(mode="json")
    result: dict[str, Any] = {
        "ruleId": finding.control,
        "ruleIndex": rule_index,
        "level": _LEVEL[finding.severity],
        "message": {"text": f"{finding.message} (resource: {finding.resource})"},
        "locations": [_location(finding, inputs, base_dir)],
        "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
    }
    if finding.status is Status.MUTED:
        suppression: dict[str, str] = {"kind": "external"}
        reason = finding.evidence.get("mute_reason")
        if reason is not None:
            suppression["justification"] = str(reason)
        result["suppressions"] = [suppression]
    result["properties"] = {"resource": finding.resource, "evidence": dumped["evidence"]}
    return result


def render_sarif(result: AuditResult, summary: Summary, *, base_dir: Path | None = None) -> str:
    """A SARIF 2.1.0 log with one run; paths are made relative to ``base_dir`` (default: cwd)."""
    base = Path(os.path.normpath((base_dir if base_dir is not None else Path.cwd()).absolute()))
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for control in result.controls:
        if control.id not in index:  # first definition wins; rule ids must be unique
            index[control.id] = len(rules)
            rules.append(_rule_from_control(control))
    emitted = [f for f in sorted_findings(result.findings) if f.status in _EMITTED]
    for finding in sorted(emitted, key=lambda f: f.control):
        if finding.control not in index:
            index[finding.control] = len(rules)
            rules.append(_rule_from_finding(finding))
    results = [_result(f, index[f.control], result.inputs, base) for f in emitted]
    log: dict[str, Any] = {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "gpufence",
                        "version": result.tool_version,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "invocations": [{"executionSuccessful": True}],
                "columnKind": "unicodeCodePoints",
                "results": results,
                "properties": {
                    "verdict": summary.verdict.upper(),
                    "failOn": summary.fail_on,
                    "unevaluatedControls": list(summary.unevaluated_controls),
                    "findingsByStatus": {s.value: n for s, n in summary.by_status.items()},
                },
            }
        ],
    }
    return json.dumps(log, indent=2, sort_keys=False) + "\n"
