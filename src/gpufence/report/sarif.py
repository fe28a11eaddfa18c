"""SARIF 2.1.0 for code-scanning UIs (GitHub, GitLab, Azure DevOps).

Only FAIL findings (and MUTED ones, marked suppressed) become results: SARIF results are
problems, and a scanner UI would show a PASS, NOT_EVALUATED or NOT_APPLICABLE result as an open
alert. The run's property bag carries the verdict, the controls that could not be evaluated and
the count of findings by status, so nothing unseen is hidden (mapping: docs/evidence.md).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any, TextIO
from urllib.parse import quote

from gpufence.model.findings import (
    AuditResult,
    ControlInfo,
    Finding,
    Severity,
    Status,
    Summary,
    rows_of,
)
from gpufence.report._common import positions_where, select, sorted_findings

__all__ = [
    "INFORMATION_URI",
    "SARIF_SCHEMA_URI",
    "SECURITY_SEVERITY",
    "SRCROOT",
    "render_sarif",
    "write_sarif",
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
    buf = io.StringIO()
    write_sarif(result, summary, buf, base_dir=base_dir)
    return buf.getvalue()


def write_sarif(
    result: AuditResult, summary: Summary, out: TextIO, *, base_dir: Path | None = None
) -> None:
    """:func:`render_sarif` written to ``out`` one result at a time.

    The same text as ``json.dumps(log, indent=2)``: the log's skeleton (tool, rules, run
    properties: small, per control) is encoded whole with a placeholder where the results go,
    and each result is encoded as it is made, at the depth it has in the document. A fleet's
    hundreds of thousands of results are never held in memory, as dicts or as text.
    """
    base = Path(os.path.normpath((base_dir if base_dir is not None else Path.cwd()).absolute()))
    ordered = sorted_findings(result.findings)
    emitted = positions_where(ordered, lambda row: row[2] in _EMITTED)
    rules = _rules(result.controls, ordered, emitted)
    index = {rule["id"]: i for i, rule in enumerate(rules)}
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
                "results": "\0",
                "properties": {
                    "verdict": summary.verdict.upper(),
                    "failOn": summary.fail_on,
                    "unevaluatedControls": list(summary.unevaluated_controls),
                    "findingsByStatus": {s.value: n for s, n in summary.by_status.items()},
                },
            }
        ],
    }
    # ASCII-only output (json.dumps' default), so no string holds a raw line break: every one in
    # a result's text is indentation, and the placeholder's text is unique in the skeleton.
    head, tail = json.dumps(log, indent=2, sort_keys=False).split(_RESULTS_AT)
    if not emitted:
        out.write(f'{head}"results": []{tail}\n')
        return
    out.write(f'{head}"results": [')
    separator = _RESULT_INDENT
    for finding in select(ordered, emitted):
        text = json.dumps(
            _result(finding, index[finding.control], result.inputs, base), indent=2, sort_keys=False
        )
        out.write(separator + text.replace("\n", _RESULT_INDENT))
        separator = "," + _RESULT_INDENT
    out.write(f"\n{_RESULTS_INDENT}]{tail}\n")


_RESULTS_AT = '"results": "\\u0000"'
"""Placeholder the results take in the skeleton's text while the rest is encoded."""
_RESULTS_INDENT = " " * 6
"""The indentation of ``"results"`` in the log (log > runs > run > results)."""
_RESULT_INDENT = "\n" + " " * 8
"""A line break inside the results list: each result is one level deeper than ``"results"``."""


def _rules(
    controls: Sequence[ControlInfo], ordered: Sequence[Finding], emitted: Sequence[int]
) -> list[dict[str, Any]]:
    """One rule per control run (first definition wins: rule ids must be unique), then, by id,
    one per control that has results but was not listed as run, described from its first
    result."""
    rules: list[dict[str, Any]] = []
    seen: set[str] = set()
    for control in controls:
        if control.id not in seen:
            seen.add(control.id)
            rules.append(_rule_from_control(control))
    unlisted: dict[str, int] = {}
    emitted_rows = rows_of(select(ordered, emitted))
    for position, (control_id, *_rest) in zip(emitted, emitted_rows, strict=True):
        if control_id not in seen and control_id not in unlisted:
            unlisted[control_id] = position
    rules.extend(_rule_from_finding(ordered[unlisted[c]]) for c in sorted(unlisted))
    return rules
