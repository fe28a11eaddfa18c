"""Writing command output to stdout or to ``--output FILE``; the shared findings epilogue."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from gpufence.errors import InputError
from gpufence.model.findings import AuditResult, Severity, Status, summarize
from gpufence.model.mutelist import Mute, apply_mutes
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
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from exc


def warn_mutes(expired: tuple[Mute, ...], unused: tuple[Mute, ...]) -> None:
    """Report expired and unused mutelist entries on stderr (they are never silent)."""
    for mute in expired:
        sys.stderr.write(
            f"warning: mute {mute.control} {mute.resource} expired on {mute.expires}; "
            "it muted nothing\n"
        )
    for mute in unused:
        sys.stderr.write(f"warning: mute {mute.control} {mute.resource} matched no finding\n")


def muted(result: AuditResult, mutelist: Path | None) -> AuditResult:
    """``result`` with the mutelist applied (warnings on stderr); unchanged without one."""
    if mutelist is None:
        return result
    from gpufence.load.mutelist import load_mutelist

    outcome = apply_mutes(result.findings, load_mutelist(mutelist), dt.date.today())
    warn_mutes(outcome.expired, outcome.unused)
    return result.model_copy(update={"findings": outcome.findings})


def report_findings(
    result: AuditResult,
    fmt: OutputFormat,
    output: Path | None,
    fail_on: Severity | None,
    *,
    show_pass: bool = False,
) -> int:
    """Render ``result`` to stdout or ``output`` and return the exit code (DESIGN.md).

    3 when a control crashed (a bug, never a clean result), 1 when a FAIL at or above
    ``fail_on`` exists (``None``: never), else 0.
    """
    summary = summarize(result.findings, fail_on)
    color = output is None and fmt is OutputFormat.text and sys.stdout.isatty()
    emit(render(result, summary, fmt, color=color, show_pass=show_pass), output)
    if output is not None:
        sys.stderr.write(f"wrote {fmt.value} report to {output} (verdict: {summary.verdict})\n")
    if summary.by_status[Status.ERROR]:
        return 3
    return 1 if summary.verdict == "fail" else 0
