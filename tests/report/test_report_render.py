"""The dispatcher: every format is reachable and returns that format."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from gpufence.model.findings import AuditResult, Severity, summarize
from gpufence.report import OutputFormat, render


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_each_format_dispatches(result: AuditResult, fmt: OutputFormat) -> None:
    out = render(result, summarize(result.findings, Severity.LOW), fmt)
    if fmt is OutputFormat.text:
        assert out.rstrip().splitlines()[-1].startswith("FAIL: ")
    elif fmt is OutputFormat.json:
        assert json.loads(out)["schema"] == "gpufence.findings/v1"
    elif fmt is OutputFormat.sarif:
        assert json.loads(out)["version"] == "2.1.0"
    elif fmt is OutputFormat.html:
        assert out.startswith("<!DOCTYPE html>") and "FAIL: " in out
    else:
        assert ET.fromstring(out.encode()).tag == "testsuites"


def test_plain_string_format_accepted(result: AuditResult) -> None:
    summary = summarize(result.findings, Severity.LOW)
    assert render(result, summary, "json") == render(result, summary, OutputFormat.json)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        render(result, summary, "yaml")  # type: ignore[arg-type]


def test_text_options_pass_through(result: AuditResult) -> None:
    summary = summarize(result.findings, Severity.LOW)
    assert "(PASS)" in render(result, summary, OutputFormat.text, show_pass=True)
    assert "\x1b[" in render(result, summary, OutputFormat.text, color=True)
