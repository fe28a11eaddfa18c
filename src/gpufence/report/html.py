"""Self-contained HTML report: one file, no external assets (inline CSS, JS and SVG), Jinja2 with
autoescape: every value from an inventory, evidence or a BMC is treated as hostile text.

The page's Content-Security-Policy allows no network fetches at all and only the report's own
script (by its SHA-256), so even a value that escaped escaping could not run or phone home.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, TextIO

from gpufence.model.findings import (
    AuditResult,
    Finding,
    Plane,
    Severity,
    Status,
    Summary,
    rows_of,
)
from gpufence.model.history import RunInfo
from gpufence.report._common import STATUS_ORDER, select, sorted_findings
from gpufence.report.text import verdict_line

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["render_html", "write_html"]


@functools.cache
def _environment() -> Environment:
    # Built (and Jinja2 imported) on first use: every CLI command imports the renderers, few
    # write HTML, and start-up time matters to Ctrl-C handling and short CI steps.
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader("gpufence.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _asset(name: str) -> str:
    return (resources.files("gpufence.report") / "templates" / name).read_text("utf-8")


_SEVERITY_COLOR = {
    Severity.CRITICAL: "#8b0000",
    Severity.HIGH: "#d9381e",
    Severity.MEDIUM: "#e8a317",
    Severity.LOW: "#3a87ad",
    Severity.INFO: "#888888",
}


@dataclass
class _Item:
    finding: Finding
    evidence: str
    where: str
    links: list[str]


@dataclass
class _Control:
    """One control's group of findings; its items are made as the template reads them."""

    id: str
    title: str
    plane: Plane
    severity: Severity
    remediation: str
    references: list[tuple[str, bool]]
    findings: Sequence[Finding]
    counts: dict[Status, int]

    @property
    def worst(self) -> Status:
        return min(self.counts, key=lambda s: STATUS_ORDER.get(s, len(STATUS_ORDER)))

    @property
    def items(self) -> Iterator[_Item]:
        for finding in self.findings:
            yield _Item(
                finding=finding,
                evidence=json.dumps(finding.evidence, indent=2, sort_keys=True, default=str),
                where=_where(finding),
                links=[],
            )


class _Missing:
    """The NOT_EVALUATED findings that lack one set of evidence: their count, and (finding,
    reason) pairs made as the template reads them."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self._findings = findings

    def __len__(self) -> int:
        return len(self._findings)

    def __iter__(self) -> Iterator[tuple[Finding, str]]:
        for finding in self._findings:
            yield finding, _missing_of(finding.evidence, finding.message)[1]


def _where(finding: Finding) -> str:
    loc = finding.location
    if loc is None:
        return ""
    text = loc.file
    if loc.line is not None:
        text += f":{loc.line}"
        if loc.column is not None:
            text += f":{loc.column}"
    return text


def _is_link(reference: str) -> bool:
    return reference.startswith(("https://", "http://"))


def _controls(ordered: Sequence[Finding]) -> list[_Control]:
    """The findings (in report order) grouped per control, groups in order of their first
    finding; each group's metadata from that finding."""
    positions: dict[str, array[int]] = {}
    counts: dict[str, dict[Status, int]] = {}
    for position, (control, _plane, status, *_rest) in enumerate(rows_of(ordered)):
        group = positions.get(control)
        if group is None:
            group = positions[control] = array("I")
            counts[control] = {}
        group.append(position)
        counts[control][status] = counts[control].get(status, 0) + 1
    controls: list[_Control] = []
    for control, group in positions.items():
        first = ordered[group[0]]
        controls.append(
            _Control(
                id=first.control,
                title=first.title,
                plane=first.plane,
                severity=first.severity,
                remediation=first.remediation,
                references=[(r, _is_link(r)) for r in first.references],
                findings=select(ordered, group),
                counts=counts[control],
            )
        )
    return controls


def _missing_of(evidence: Mapping[str, Any], message: str) -> tuple[str, str]:
    """The evidence a NOT_EVALUATED finding lacks (its ``missing`` keys) and why."""
    missing = evidence.get("missing")
    if isinstance(missing, dict) and missing:
        return ", ".join(sorted(str(k) for k in missing)), str(next(iter(missing.values())))
    return "(not stated)", message


def _missing_groups(ordered: Sequence[Finding]) -> list[tuple[str, _Missing]]:
    """NOT_EVALUATED findings (in report order) grouped by the evidence they lack, the largest
    group first."""
    groups: dict[str, array[int]] = {}
    for position, (_c, _p, status, _s, _r, message, evidence) in enumerate(rows_of(ordered)):
        if status is Status.NOT_EVALUATED:
            key = _missing_of(evidence, message)[0]
            groups.setdefault(key, array("I")).append(position)
    ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [(key, _Missing(select(ordered, group))) for key, group in ranked]


def _counts(findings: Sequence[Finding]) -> tuple[dict[Plane, dict[Status, int]], list[int]]:
    """Findings per plane and status, and FAIL findings per severity (in enum order)."""
    per_plane = {plane: dict.fromkeys(Status, 0) for plane in Plane}
    failed = dict.fromkeys(Severity, 0)
    for _control, plane, status, severity, *_rest in rows_of(findings):
        per_plane[plane][status] += 1
        if status is Status.FAIL:
            failed[severity] += 1
    return per_plane, list(failed.values())


def _severity_bars(failed: list[int]) -> list[dict[str, Any]]:
    """FAIL findings per severity, as bars of an inline SVG chart."""
    peak = max(failed) or 1
    return [
        {
            "label": sev.value,
            "count": n,
            "width": round(300 * n / peak, 1),
            "y": 8 + i * 26,
            "color": _SEVERITY_COLOR[sev],
        }
        for i, (sev, n) in enumerate(zip(Severity, failed, strict=True))
    ]


def _trend(history: Sequence[RunInfo]) -> dict[str, Any] | None:
    """FAIL and NOT_EVALUATED counts over the recorded runs, oldest first, as SVG polylines."""
    runs = sorted(history, key=lambda r: (r.started_at, r.id))
    if len(runs) < 2:
        return None
    width, height, pad = 560.0, 140.0, 28.0
    series = {
        "FAIL": [r.counts.get(Status.FAIL, 0) for r in runs],
        "NOT_EVALUATED": [r.counts.get(Status.NOT_EVALUATED, 0) for r in runs],
    }
    peak = max(max(v) for v in series.values()) or 1
    step = (width - 2 * pad) / (len(runs) - 1)

    def points(values: list[int]) -> list[tuple[float, float, int]]:
        return [
            (round(pad + i * step, 1), round(height - pad - (height - 2 * pad) * v / peak, 1), v)
            for i, v in enumerate(values)
        ]

    return {
        "width": width,
        "height": height,
        "runs": runs,
        "lines": [
            {
                "name": name,
                "color": "#d9381e" if name == "FAIL" else "#e8a317",
                "points": points(values),
                "path": " ".join(f"{x},{y}" for x, y, _ in points(values)),
            }
            for name, values in series.items()
        ],
        "labels": [(round(pad + i * step, 1), f"#{r.id}") for i, r in enumerate(runs)],
        "axis": [(round(pad + 4, 1), peak), (round(height - pad + 4, 1), 0)],
    }


def render_html(result: AuditResult, summary: Summary, history: Sequence[RunInfo] = ()) -> str:
    """The HTML report (one self-contained file)."""
    buf = io.StringIO()
    write_html(result, summary, buf, history)
    return buf.getvalue()


def write_html(
    result: AuditResult, summary: Summary, out: TextIO, history: Sequence[RunInfo] = ()
) -> None:
    """:func:`render_html` written to ``out`` as the template produces it.

    Only counts and positions (per plane, control and missing evidence) are gathered first;
    each finding is built, rendered and dropped as its turn comes.
    """
    per_plane, failed = _counts(result.findings)
    planes = [
        {"plane": plane, "counts": counts}
        for plane, counts in per_plane.items()
        if any(counts.values())
    ]
    ordered = sorted_findings(result.findings)
    template = _environment().get_template("report.html.j2")
    script = _asset("report.js")
    # Piece by piece: the output's own buffer gathers them (joining them here first measured
    # ~10 % slower at 4k nodes).
    pieces = template.generate(
        result=result,
        summary=summary,
        verdict=verdict_line(summary),
        statuses=list(Status),
        severities=list(Severity),
        planes=planes,
        used_planes=[p["plane"] for p in planes],
        used_statuses=[s for s in Status if summary.by_status.get(s)],
        controls=_controls(ordered),
        missing=_missing_groups(ordered),
        bars=_severity_bars(failed),
        trend=_trend(history),
        script=script,
        style=_asset("report.css"),
        script_hash=base64.b64encode(hashlib.sha256(script.encode()).digest()).decode(),
    )
    out.writelines(pieces)
