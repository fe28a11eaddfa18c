"""Renderers for stored runs (`gpufence runs`) and run diffs (`gpufence diff`): text and JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gpufence.model.findings import Status
from gpufence.model.history import ChangeKind, FindingChange, FindingsDiff, RunInfo
from gpufence.report._common import one_line

__all__ = ["render_diff_json", "render_diff_text", "render_runs_json", "render_runs_text"]

_KIND_TITLE = {
    ChangeKind.NEW: "New",
    ChangeKind.FIXED: "Fixed",
    ChangeKind.CHANGED: "Changed",
    ChangeKind.STILL_OPEN: "Still open",
}


def _counts(run: RunInfo) -> str:
    # Every status the enum has, in its order, zeros left out.
    parts = [f"{run.counts[s]} {s.value}" for s in Status if run.counts.get(s)]
    return " · ".join(parts) or "no findings"


def render_runs_text(runs: Sequence[RunInfo]) -> str:
    """One line per run, newest first."""
    if not runs:
        return "No runs recorded.\n"
    lines = [
        f"{run.id:>5}  {run.started_at:%Y-%m-%d %H:%M:%S}Z  {run.duration_s:7.2f}s  "
        f"{run.command:<9} {run.verdict:<4}  {_counts(run)}  {one_line(run.target)}"
        for run in runs
    ]
    return "\n".join(lines) + "\n"


def _run_doc(run: RunInfo) -> dict[str, Any]:
    doc = run.model_dump(mode="json")
    doc["counts"] = {s.value: n for s, n in run.counts.items()}
    doc["failed_by_severity"] = {s.value: n for s, n in run.failed_by_severity.items()}
    return doc


def render_runs_json(runs: Sequence[RunInfo]) -> str:
    """``{"schema": "gpufence.runs/v1", "runs": [...]}``, newest first."""
    return (
        json.dumps({"schema": "gpufence.runs/v1", "runs": [_run_doc(r) for r in runs]}, indent=2)
        + "\n"
    )


def _transition(change: FindingChange) -> str:
    a, b = change.before, change.after
    if change.kind is ChangeKind.NEW:
        was = f"was {a.status.value}" if a is not None else "not reported before"
        assert b is not None
        return f"{b.status.value} {b.severity.value} ({was})"
    if change.kind is ChangeKind.FIXED:
        assert a is not None
        now = f"now {b.status.value}" if b is not None else "no longer reported"
        return f"was {a.status.value} {a.severity.value} ({now})"
    assert a is not None and b is not None
    if change.kind is ChangeKind.CHANGED:
        return f"{a.status.value} {a.severity.value} -> {b.status.value} {b.severity.value}"
    return f"{b.status.value} {b.severity.value}"


def render_diff_text(diff: FindingsDiff, *, show_still_open: bool = False) -> str:
    """Sections New / Fixed / Changed (/ Still open), then one count line."""
    lines = [f"diff {one_line(diff.base)} -> {one_line(diff.head)}"]
    for kind in ChangeKind:
        items = diff.of_kind(kind)
        if kind is ChangeKind.STILL_OPEN and not show_still_open:
            continue
        lines.append("")
        lines.append(f"{_KIND_TITLE[kind]} ({len(items)})")
        for change in items:
            ref = change.after or change.before
            message = f" — {one_line(ref.message)}" if ref is not None and ref.message else ""
            lines.append(
                f"  {change.control}  {one_line(change.resource)}: {_transition(change)}{message}"
            )
    counts = ", ".join(f"{len(diff.of_kind(k))} {_KIND_TITLE[k].lower()}" for k in ChangeKind)
    lines.append("")
    lines.append(counts)
    return "\n".join(lines) + "\n"


def render_diff_json(diff: FindingsDiff) -> str:
    """``{"schema": "gpufence.diff/v1", "base", "head", "new": [...], "fixed": [...], ...}``."""
    doc: dict[str, Any] = {"schema": "gpufence.diff/v1", "base": diff.base, "head": diff.head}
    for kind in ChangeKind:
        doc[kind.value] = [c.model_dump(mode="json", exclude={"kind"}) for c in diff.of_kind(kind)]
    return json.dumps(doc, indent=2) + "\n"
