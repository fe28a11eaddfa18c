"""The JUnit renderer: parses, counts add up, statuses map, special characters survive."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from report_fixtures import NASTY_MESSAGE, make_finding

from gpufence.model.findings import AuditResult, Severity, Status, summarize
from gpufence.report.junit import render_junit


def _parse(result: AuditResult) -> tuple[str, ET.Element]:
    out = render_junit(result, summarize(result.findings, Severity.LOW))
    return out, ET.fromstring(out.encode("utf-8"))


def test_declaration_and_totals(result: AuditResult) -> None:
    out, root = _parse(result)
    assert out.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    assert root.tag == "testsuites"
    assert root.attrib == {
        "name": "gpufence",
        "tests": "11",
        "failures": "5",
        "errors": "1",
        "skipped": "2",
    }


def test_one_suite_per_plane_counts_match_children(result: AuditResult) -> None:
    _, root = _parse(result)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["GPU isolation", "Out-of-band (BMC)", "Kubernetes"]
    for suite in suites:
        cases = suite.findall("testcase")
        assert suite.get("tests") == str(len(cases))
        assert suite.get("failures") == str(sum(c.find("failure") is not None for c in cases))
        assert suite.get("errors") == str(sum(c.find("error") is not None for c in cases))
        assert suite.get("skipped") == str(sum(c.find("skipped") is not None for c in cases))
    assert sum(int(s.get("tests", "0")) for s in suites) == 11


def test_status_mapping(result: AuditResult) -> None:
    _, root = _parse(result)
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    fail = cases[("GPU-003", "node-b/gpu0")].find("failure")
    assert fail is not None
    assert fail.get("type") == "MEDIUM"
    assert "fix: Remediate GPU-003" in (fail.text or "")
    error = cases[("OOB-001", "bmc-1")].find("error")
    assert error is not None and error.get("message") == "redfish timed out"
    skipped = cases[("GPU-002", "node-c/gpu0")].find("skipped")
    assert skipped is not None and "no MIG data" in (skipped.get("message") or "")
    muted = cases[("OOB-001", "bmc-2")].find("skipped")
    assert muted is not None and muted.get("message") == "muted: ticket SEC-42 & <waiver>"
    assert len(cases[("K8S-001", "ns/tenant-c")]) == 0  # PASS: bare testcase


def test_special_characters_round_trip(result: AuditResult) -> None:
    _, root = _parse(result)
    case = next(c for c in root.iter("testcase") if c.get("classname") == "GPU-001")
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == NASTY_MESSAGE
    text = failure.text or ""
    assert text.startswith(NASTY_MESSAGE + "\n")
    assert '"mig": "<1g.10gb>"' in text and '"ü"' in text  # evidence, unescaped after parsing


def test_xml_illegal_characters_do_not_break_parsing() -> None:
    bad = make_finding("GPU-003", Status.FAIL, "node\x00x", message="bell\x07 and\nnewline")
    _, root = _parse(AuditResult(findings=(bad,), controls=(), tool_version="1"))
    case = next(root.iter("testcase"))
    assert case.get("name") == "node\\x00x"
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "bell\\x07 and\nnewline"  # newline kept in the attribute
