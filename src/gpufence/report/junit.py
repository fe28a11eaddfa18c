"""JUnit XML so CI systems (Jenkins, GitLab, Azure) show each control x resource as a test."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TextIO

from gpufence.model.findings import AuditResult, Finding, Status, Summary, rows_of
from gpufence.report._common import by_plane

__all__ = ["render_junit", "write_junit"]

# XML 1.0 cannot carry most C0 controls, lone surrogates or U+FFFE/U+FFFF, even as character
# references, and ElementTree writes them raw (producing unparseable XML). Escape them visibly.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    return _XML_ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _details(finding: Finding) -> str:
    """The body of a <failure>/<error>: everything needed to act without the other reports."""
    lines = [finding.message, "", f"control: {finding.control} — {finding.title}"]
    lines.append(f"severity: {finding.severity.value}")
    lines.append(f"resource: {finding.resource}")
    if finding.location is not None:
        where = finding.location.file
        if finding.location.line is not None:
            where += f":{finding.location.line}"
        lines.append(f"location: {where}")
    if finding.status is Status.FAIL:
        lines.append(f"fix: {finding.remediation}")
    if finding.evidence:
        evidence = json.dumps(
            finding.model_dump(mode="json")["evidence"], indent=2, ensure_ascii=False
        )
        lines.extend(["evidence:", evidence])
    if finding.references:
        lines.append("references: " + ", ".join(finding.references))
    return "\n".join(lines)


def _testcase(parent: ET.Element, finding: Finding) -> None:
    case = ET.SubElement(
        parent,
        "testcase",
        {"classname": _xml_safe(finding.control), "name": _xml_safe(finding.resource)},
    )
    message = _xml_safe(finding.message)
    if finding.status is Status.FAIL:
        failure = ET.SubElement(
            case, "failure", {"type": finding.severity.value.upper(), "message": message}
        )
        failure.text = _xml_safe(_details(finding))
    elif finding.status is Status.ERROR:
        error = ET.SubElement(case, "error", {"type": "ERROR", "message": message})
        error.text = _xml_safe(_details(finding))
    elif finding.status is Status.NOT_EVALUATED:
        ET.SubElement(case, "skipped", {"message": _xml_safe(f"not evaluated: {finding.message}")})
    elif finding.status is Status.NOT_APPLICABLE:
        ET.SubElement(case, "skipped", {"message": _xml_safe(f"not applicable: {finding.message}")})
    elif finding.status is Status.MUTED:
        reason = finding.evidence.get("mute_reason")
        text = f"muted: {reason}" if reason is not None else f"muted: {finding.message}"
        ET.SubElement(case, "skipped", {"message": _xml_safe(text)})
    # PASS: a bare <testcase> is a passed test.


def _counts(findings: Sequence[Finding]) -> dict[str, str]:
    # Counted from the findings written (not from the Summary), so the XML is self-consistent.
    n = dict.fromkeys(Status, 0)
    for _, _, status, *_ in rows_of(findings):
        n[status] += 1
    return {
        "tests": str(len(findings)),
        "failures": str(n[Status.FAIL]),
        "errors": str(n[Status.ERROR]),
        "skipped": str(n[Status.NOT_EVALUATED] + n[Status.NOT_APPLICABLE] + n[Status.MUTED]),
    }


def render_junit(result: AuditResult, summary: Summary) -> str:
    """A <testsuites> document, one <testsuite> per plane; the caller writes it as UTF-8.

    NOT_EVALUATED, NOT_APPLICABLE and MUTED findings are <skipped> test cases whose message
    starts with the status. Each <testsuite> carries the run's verdict as <properties> (the
    common JUnit schemas allow properties only on a testsuite).
    """
    buf = io.StringIO()
    write_junit(result, summary, buf)
    return buf.getvalue()


def write_junit(result: AuditResult, summary: Summary, out: TextIO) -> None:
    """:func:`render_junit` written to ``out`` one test case at a time.

    The same text as indenting and serialising the whole tree with ElementTree, without
    holding the tree: each element is built and serialised by ElementTree on its own, at the
    depth it has in the document.
    """
    findings = result.findings
    # Written by hand: ET's own declaration with encoding="unicode" names the locale's encoding.
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    groups = by_plane(findings)
    root_attrs = {"name": "gpufence", **_counts(findings)}
    if not groups:
        out.write(ET.tostring(ET.Element("testsuites", root_attrs), encoding="unicode") + "\n")
        return
    out.write(_start_tag("testsuites", root_attrs))
    for plane, plane_findings in groups:
        attrs = {"name": plane.label, "id": plane.value, **_counts(plane_findings)}
        out.write(f"\n{_INDENT}" + _start_tag("testsuite", attrs))
        props = ET.Element("properties")
        ET.SubElement(props, "property", {"name": "verdict", "value": summary.verdict.upper()})
        ET.SubElement(
            props,
            "property",
            {"name": "unevaluated_controls", "value": ",".join(summary.unevaluated_controls)},
        )
        out.write(f"\n{_INDENT * 2}" + _serialised(props, level=2))
        for finding in plane_findings:
            case = ET.Element("testcase")
            _testcase(case, finding)
            out.write(f"\n{_INDENT * 2}" + _serialised(case[0], level=2))
        out.write(f"\n{_INDENT}</testsuite>")
    out.write("\n</testsuites>\n")


_INDENT = "  "


def _serialised(element: ET.Element, *, level: int) -> str:
    ET.indent(element, space=_INDENT, level=level)
    return ET.tostring(element, encoding="unicode")


def _start_tag(tag: str, attrs: dict[str, str]) -> str:
    # ElementTree's own escaping of the attributes: serialise the empty element, reopen it.
    empty = ET.tostring(ET.Element(tag, attrs), encoding="unicode")
    return empty.removesuffix(" />") + ">"
