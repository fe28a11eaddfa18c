"""Streaming writers produce exactly what the whole-document renderers produced.

The references below are the renderers as they were before streaming (rich prints every line,
``json.dumps`` of the whole document, ElementTree indents and serialises the whole tree, SARIF's
whole log as one dict, the HTML template rendered at once from lists of every finding).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from report_fixtures import CONTROLS, make_finding
from rich.text import Text

from gpufence.model.findings import (
    AuditResult,
    Finding,
    FindingLocation,
    FindingTable,
    Plane,
    Severity,
    Status,
    Summary,
    summarize,
)
from gpufence.model.history import RunInfo
from gpufence.report import OutputFormat, render, write_report
from gpufence.report import html as html_report
from gpufence.report import sarif as sarif_report
from gpufence.report._common import STATUS_ORDER, by_plane, one_line, sorted_findings
from gpufence.report.junit import _counts, _testcase
from gpufence.report.text import _console, _plain_printer, verdict_line

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


def _result(findings: tuple[Finding, ...]) -> AuditResult:
    return AuditResult(findings=findings, controls=CONTROLS, inputs=("a.yaml",), tool_version="1")


_FINDINGS = st.lists(
    st.builds(
        make_finding,
        st.sampled_from([c.id for c in CONTROLS]),
        st.sampled_from(list(Status)),
        _TEXT,
        message=_TEXT.filter(bool),
        evidence=st.dictionaries(_TEXT, _TEXT | st.integers() | st.booleans(), max_size=2),
    ),
    max_size=8,
).map(tuple)


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(
        # Every text the renderer prints went through one_line (control characters escaped).
        st.tuples(_TEXT.map(one_line), st.sampled_from(["", "bold", "dim red"])),
        max_size=4,
    )
)
def test_plain_line_is_what_rich_prints_without_a_terminal(words: list[tuple[str, str]]) -> None:
    line = Text()
    for text, style in words:
        line.append(text, style=style)
    # The renderer's own console settings for a file; the reference prints every line with it.
    rich_out, plain_out = io.StringIO(), io.StringIO()
    _console(rich_out, color=False).print(line)
    _plain_printer(_console(plain_out, color=False))(line)
    assert plain_out.getvalue() == rich_out.getvalue()


def _json_reference(result: AuditResult) -> str:
    summary = summarize(result.findings, Severity.LOW)
    doc: dict[str, Any] = {
        "schema": "gpufence.findings/v1",
        "tool": {"name": "gpufence", "version": result.tool_version},
        "inputs": list(result.inputs),
        "findings": [f.model_dump(mode="json") for f in sorted_findings(result.findings)],
        "summary": summary.model_dump(mode="json"),
    }
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def _junit_reference(result: AuditResult) -> str:
    summary = summarize(result.findings, Severity.LOW)
    findings = list(result.findings)
    root = ET.Element("testsuites", {"name": "gpufence", **_counts(findings)})
    for plane, plane_findings in by_plane(findings):
        suite = ET.SubElement(
            root, "testsuite", {"name": plane.label, "id": plane.value, **_counts(plane_findings)}
        )
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", {"name": "verdict", "value": summary.verdict.upper()})
        ET.SubElement(
            props,
            "property",
            {"name": "unevaluated_controls", "value": ",".join(summary.unevaluated_controls)},
        )
        for finding in plane_findings:
            _testcase(suite, finding)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(findings=_FINDINGS)
def test_streamed_json_and_junit_equal_the_whole_documents(findings: tuple[Finding, ...]) -> None:
    result = _result(findings)
    summary = summarize(result.findings, Severity.LOW)
    assert render(result, summary, OutputFormat.json) == _json_reference(result)
    assert render(result, summary, OutputFormat.junit) == _junit_reference(result)


def test_write_report_writes_what_render_returns(result: AuditResult) -> None:
    summary = summarize(result.findings, Severity.LOW)
    for fmt in OutputFormat:
        for color in (False, True) if fmt is OutputFormat.text else (False,):
            out = io.StringIO()
            write_report(result, summary, fmt, out, color=color)
            assert out.getvalue() == render(result, summary, fmt, color=color)


def _sarif_reference(result: AuditResult, summary: Summary, base: Path) -> str:
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for control in result.controls:
        if control.id not in index:
            index[control.id] = len(rules)
            rules.append(sarif_report._rule_from_control(control))
    emitted = [
        f for f in sorted_findings(result.findings) if f.status in (Status.FAIL, Status.MUTED)
    ]
    for finding in sorted(emitted, key=lambda f: f.control):
        if finding.control not in index:
            index[finding.control] = len(rules)
            rules.append(sarif_report._rule_from_finding(finding))
    results = [sarif_report._result(f, index[f.control], result.inputs, base) for f in emitted]
    run = {
        "tool": {
            "driver": {
                "name": "gpufence",
                "version": result.tool_version,
                "informationUri": sarif_report.INFORMATION_URI,
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
    log = {"$schema": sarif_report.SARIF_SCHEMA_URI, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2, sort_keys=False) + "\n"


@dataclass
class _RefControl:
    id: str
    title: str
    plane: Plane
    severity: Severity
    remediation: str
    references: list[tuple[str, bool]]
    items: list[Any]
    counts: dict[Status, int]

    @property
    def worst(self) -> Status:
        return min(self.counts, key=lambda s: STATUS_ORDER.get(s, len(STATUS_ORDER)))


def _html_reference(result: AuditResult, summary: Summary, history: Sequence[RunInfo]) -> str:
    findings = list(result.findings)
    planes = []
    for plane in Plane:
        counts = dict.fromkeys(Status, 0)
        for finding in findings:
            if finding.plane is plane:
                counts[finding.status] += 1
        if any(counts.values()):
            planes.append({"plane": plane, "counts": counts})
    groups: dict[str, _RefControl] = {}
    missing: dict[str, list[tuple[Finding, str]]] = {}
    failed = dict.fromkeys(Severity, 0)
    for finding in sorted_findings(findings):
        group = groups.get(finding.control)
        if group is None:
            group = groups[finding.control] = _RefControl(
                finding.control,
                finding.title,
                finding.plane,
                finding.severity,
                finding.remediation,
                [(r, r.startswith(("https://", "http://"))) for r in finding.references],
                [],
                {},
            )
        group.counts[finding.status] = group.counts.get(finding.status, 0) + 1
        evidence = json.dumps(finding.evidence, indent=2, sort_keys=True, default=str)
        group.items.append(
            html_report._Item(finding, evidence, html_report._where(finding), links=[])
        )
        if finding.status is Status.FAIL:
            failed[finding.severity] += 1
        if finding.status is Status.NOT_EVALUATED:
            lacks = finding.evidence.get("missing")
            if isinstance(lacks, dict) and lacks:
                key = ", ".join(sorted(str(k) for k in lacks))
                reason = str(next(iter(lacks.values())))
            else:
                key, reason = "(not stated)", finding.message
            missing.setdefault(key, []).append((finding, reason))
    peak = max(failed.values()) or 1
    bars = [
        {
            "label": sev.value,
            "count": n,
            "width": round(300 * n / peak, 1),
            "y": 8 + i * 26,
            "color": html_report._SEVERITY_COLOR[sev],
        }
        for i, (sev, n) in enumerate(failed.items())
    ]
    script = html_report._asset("report.js")
    return (
        html_report._environment()
        .get_template("report.html.j2")
        .render(
            result=result,
            summary=summary,
            verdict=verdict_line(summary),
            statuses=list(Status),
            severities=list(Severity),
            planes=planes,
            used_planes=[p["plane"] for p in planes],
            used_statuses=[s for s in Status if summary.by_status.get(s)],
            controls=list(groups.values()),
            missing=sorted(missing.items(), key=lambda kv: (-len(kv[1]), kv[0])),
            bars=bars,
            trend=html_report._trend(history),
            script=script,
            style=html_report._asset("report.css"),
            script_hash=base64.b64encode(hashlib.sha256(script.encode()).digest()).decode(),
        )
    )


_EVIDENCE = st.one_of(
    st.dictionaries(_TEXT, _TEXT | st.integers() | st.booleans(), max_size=2),
    st.fixed_dictionaries(
        {"missing": st.dictionaries(st.sampled_from(["tls", "ipmi", "nvml"]), _TEXT, max_size=2)}
    ),
    st.fixed_dictionaries({"mute_reason": _TEXT}),
)
_LOCATION = st.none() | st.builds(
    FindingLocation,
    file=st.sampled_from(["a.yaml", "dir x/b.yaml", "/elsewhere/c.yaml"]),
    line=st.none() | st.integers(0, 99),
    column=st.none() | st.integers(0, 99),
)
_RICH_FINDINGS = st.lists(
    st.builds(
        make_finding,
        st.sampled_from([c.id for c in CONTROLS]),
        st.sampled_from(list(Status)),
        _TEXT,
        message=_TEXT.filter(bool),
        evidence=_EVIDENCE,
        location=_LOCATION,
    ),
    max_size=10,
)


def _history(fails: list[int]) -> tuple[RunInfo, ...]:
    return tuple(
        RunInfo(
            id=i + 1,
            started_at=datetime(2026, 1, i + 1, tzinfo=UTC),
            duration_s=1,
            command="audit",
            target="inv.yaml",
            tool_version="t",
            policy_digest="p",
            verdict="fail",
            fail_on="low",
            counts={Status.FAIL: n, Status.NOT_EVALUATED: i},
        )
        for i, n in enumerate(fails)
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    findings=_RICH_FINDINGS,
    listed=st.integers(0, len(CONTROLS)),
    as_table=st.booleans(),
    fails=st.lists(st.integers(0, 9), max_size=3),
)
def test_streamed_sarif_and_html_equal_the_whole_documents(
    findings: list[Finding], listed: int, as_table: bool, fails: list[int]
) -> None:
    # Controls left off the run's list still get a rule (described from their first result);
    # a FindingTable (what the controls produce) and a tuple render alike.
    result = AuditResult(
        findings=FindingTable(findings) if as_table else tuple(findings),
        controls=CONTROLS[:listed],
        inputs=("a.yaml",),
        tool_version="1",
    )
    summary = summarize(result.findings, Severity.LOW)
    base = Path(os.path.normpath(Path.cwd().absolute()))
    assert sarif_report.render_sarif(result, summary, base_dir=base) == _sarif_reference(
        result, summary, base
    )
    history = _history(fails)
    assert html_report.render_html(result, summary, history) == _html_reference(
        result, summary, history
    )


class _RecordingWriter(io.StringIO):
    """Keeps what is written, and how: the number of write() calls and the largest one."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.largest = 0

    def write(self, text: str) -> int:
        self.writes += 1
        self.largest = max(self.largest, len(text))
        return super().write(text)


def _fleet(nodes: int) -> AuditResult:
    # Every status (SARIF writes FAIL and MUTED, the HTML report everything), several controls
    # and planes, evidence on each finding, stored as the controls store them.
    statuses = list(Status)
    table = FindingTable()
    for i in range(nodes):
        for j, control in enumerate(CONTROLS):
            table.append(
                make_finding(
                    control.id,
                    statuses[(i + j) % len(statuses)],
                    f"node/n{i:05d}",
                    evidence={"missing": {"nvml": "no evidence"}, "seen": list(range(j))},
                )
            )
    return AuditResult(findings=table, controls=CONTROLS, inputs=("a.yaml",), tool_version="1")


_LARGEST_WRITE = 1 << 16
"""No write() of a streamed report holds more than this (a finding's text, a stylesheet)."""


def test_every_format_writes_a_fleet_as_it_goes() -> None:
    result = _fleet(1000)  # 7,000 findings
    summary = summarize(result.findings, Severity.LOW)
    # (The text report groups repeated findings: it stays short, so it proves nothing here.)
    for fmt in (OutputFormat.json, OutputFormat.junit, OutputFormat.sarif, OutputFormat.html):
        out = _RecordingWriter()
        write_report(result, summary, fmt, out)
        total = len(out.getvalue())
        # The report is large (dozens of chunks), yet no single write holds much of it.
        assert total > 20 * _LARGEST_WRITE, (fmt, total)
        assert out.largest <= _LARGEST_WRITE, (fmt, out.largest, total)
        assert out.writes >= total // _LARGEST_WRITE, (fmt, out.writes)
