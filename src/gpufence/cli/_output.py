"""Writing command output to stdout or to ``--output FILE``."""

from __future__ import annotations

import sys
from pathlib import Path

from gpufence.errors import InputError
from gpufence.model.findings import AuditResult, Severity, is_internal_error, summarize
from gpufence.report import OutputFormat, render


def emit(text: str, output: Path | None) -> None:
    """Write ``text`` to ``output`` (created/overwritten) or to stdout."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None


def report_findings(
    result: AuditResult,
    fmt: OutputFormat,
    output: Path | None,
    fail_on: Severity | None,
    *,
    show_pass: bool = False,
    require_evidence: bool = False,
) -> int:
    """Render ``result`` to stdout or ``output`` and return the exit code (DESIGN.md).

    3 when a control crashed (a bug, never a clean result), 1 when a FAIL at or above
    ``fail_on`` exists (``None``: never) or, with ``require_evidence``, when the verdict is
    INCOMPLETE; else 0.
    """
    summary = summarize(result.findings, fail_on)
    color = output is None and fmt is OutputFormat.text and sys.stdout.isatty()
    emit(render(result, summary, fmt, color=color, show_pass=show_pass), output)
    if output is not None:
        sys.stderr.write(f"wrote {fmt.value} report to {output} (verdict: {summary.verdict})\n")
    if any(is_internal_error(f) for f in result.findings):
        return 3
    if summary.verdict == "fail" or (require_evidence and summary.verdict == "incomplete"):
        return 1
    return 0
