"""Streaming writers produce exactly what the whole-document renderers produced.

The references below are the renderers as they were before streaming (rich prints every line,
``json.dumps`` of the whole document, ElementTree indents and serialises the whole tree).
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from report_fixtures import CONTROLS, make_finding
from rich.text import Text

from gpufence.model.findings import AuditResult, Finding, Severity, Status, summarize
from gpufence.report import OutputFormat, render, write_report
from gpufence.report._common import by_plane, one_line, sorted_findings
from gpufence.report.junit import _counts, _testcase
from gpufence.report.text import _console, _plain_printer

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
