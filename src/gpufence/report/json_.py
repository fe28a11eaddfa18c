"""Machine-readable findings (schema ``gpufence.findings/v1``) for scripts and dashboards."""

from __future__ import annotations

import json
from typing import Any

from gpufence.model.findings import AuditResult, Summary
from gpufence.report._common import sorted_findings

__all__ = ["JSON_SCHEMA_ID", "render_json"]

JSON_SCHEMA_ID = "gpufence.findings/v1"


def render_json(result: AuditResult, summary: Summary) -> str:
    """The findings document; findings in the text renderer's order so diffs stay small."""
    doc: dict[str, Any] = {
        "schema": JSON_SCHEMA_ID,
        "tool": {"name": "gpufence", "version": result.tool_version},
        "inputs": list(result.inputs),
        "findings": [f.model_dump(mode="json") for f in sorted_findings(result.findings)],
        "summary": summary.model_dump(mode="json"),
    }
    # ASCII-only output: safe to write to any stdout encoding; json.loads restores the text.
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"
