"""Machine-readable findings (schema ``gpufence.findings/v1``) for scripts and dashboards."""

from __future__ import annotations

import io
import json
from typing import Any, TextIO

from gpufence.model.findings import AuditResult, Summary
from gpufence.report._common import sorted_findings

__all__ = ["JSON_SCHEMA_ID", "render_json", "write_json"]

JSON_SCHEMA_ID = "gpufence.findings/v1"

_FINDINGS_AT = '"findings": "\\u0000"'
"""Placeholder the findings list takes in the document's text while the rest is encoded."""


def render_json(result: AuditResult, summary: Summary) -> str:
    """The findings document; findings in the text renderer's order so diffs stay small."""
    buf = io.StringIO()
    write_json(result, summary, buf)
    return buf.getvalue()


def write_json(result: AuditResult, summary: Summary, out: TextIO) -> None:
    """:func:`render_json` written to ``out`` one finding at a time.

    The same text as ``json.dumps(document, indent=2)``: a 64,000-node audit's document is
    over a gigabyte, which is never held in memory (nor the list of dicts it is made of).
    """
    doc: dict[str, Any] = {
        "schema": JSON_SCHEMA_ID,
        "tool": {"name": "gpufence", "version": result.tool_version},
        "inputs": list(result.inputs),
        "findings": "\0",
        "summary": summary.model_dump(mode="json"),
    }
    # ASCII-only output: safe to write to any stdout encoding; json.loads restores the text.
    head, tail = json.dumps(doc, indent=2, sort_keys=False).split(_FINDINGS_AT)
    findings = sorted_findings(result.findings)
    if not findings:
        out.write(f'{head}"findings": []{tail}\n')
        return
    out.write(f'{head}"findings": [')
    separator = "\n    "
    for finding in findings:
        # Each finding one level deeper than json.dumps puts it alone: four more spaces per
        # line (JSON strings never hold a raw newline, so every line break is indentation).
        text = json.dumps(finding.model_dump(mode="json"), indent=2, sort_keys=False)
        out.write(separator + text.replace("\n", "\n    "))
        separator = ",\n    "
    out.write(f"\n  ]{tail}\n")
