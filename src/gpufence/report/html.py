"""Self-contained HTML report: one file, no external assets (inline CSS, JS and SVG), Jinja2 with
autoescape: every value from an inventory, evidence or a BMC is treated as hostile text.

The page's Content-Security-Policy allows no network fetches at all and only the report's own
script (by its SHA-256), so even a value that escaped escaping could not run or phone home.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from gpufence.model.findings import AuditResult, Finding, Plane, Severity, Status, Summary
from gpufence.model.history import RunInfo
from gpufence.report._common import STATUS_ORDER, sorted_findings
from gpufence.report.text import verdict_line

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["render_html"]


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
    id: str
    title: str
    plane: Plane
    severity: Severity
    remediation: str
    references: list[tuple[str, bool]]
    items: list[_Item] = field(default_factory=list)
    counts: dict[Status, int] = field(default_factory=dict)

    @property
    def worst(self) -> Status:
        return min(self.counts, key=lambda s: STATUS_ORDER.get(s, len(STATUS_ORDER)))


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


def _controls(findings: Sequence[Finding]) -> list[_Control]:
    groups: dict[str, _Control] = {}
    for finding in sorted_findings(findings):
        group = groups.get(finding.control)
        if group is None:
            group = groups[finding.control] = _Control(
                id=finding.control,
                title=finding.title,
                plane=finding.plane,
                severity=finding.severity,
                remediation=finding.remediation,
                references=[(r, _is_link(r)) for r in finding.references],
            )
        group.counts[finding.status] = group.counts.get(finding.status, 0) + 1
        group.items.append(
            _Item(
                finding=finding,
                evidence=json.dumps(finding.evidence, indent=2, sort_keys=True, default=str),
                where=_where(finding),
                links=[],
            )
        )
    return list(groups.values())


def _missing_groups(findings: Sequence[Finding]) -> list[tuple[str, list[tuple[Finding, str]]]]:
    """NOT_EVALUATED findings grouped by the evidence they lack (the keys of ``missing``)."""
    groups: dict[str, list[tuple[Finding, str]]] = {}
    for finding in sorted_findings(findings):
        if finding.status is not Status.NOT_EVALUATED:
            continue
        missing = finding.evidence.get("missing")
        if isinstance(missing, dict) and missing:
            key = ", ".join(sorted(str(k) for k in missing))
            reason = str(next(iter(missing.values())))
        else:
            key, reason = "(not stated)", finding.message
        groups.setdefault(key, []).append((finding, reason))
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def _severity_bars(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """FAIL findings per severity, as bars of an inline SVG chart."""
    counts = dict.fromkeys(Severity, 0)
    for finding in findings:
        if finding.status is Status.FAIL:
            counts[finding.severity] += 1
    peak = max(counts.values()) or 1
    return [
        {
            "label": sev.value,
            "count": n,
            "width": round(300 * n / peak, 1),
            "y": 8 + i * 26,
            "color": _SEVERITY_COLOR[sev],
        }
        for i, (sev, n) in enumerate(counts.items())
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
    findings = list(result.findings)
    planes = []
    for plane in Plane:
        counts = dict.fromkeys(Status, 0)
        for finding in findings:
            if finding.plane is plane:
                counts[finding.status] += 1
        if any(counts.values()):
            planes.append({"plane": plane, "counts": counts})
    template = _environment().get_template("report.html.j2")
    script = _asset("report.js")
    return template.render(
        result=result,
        summary=summary,
        verdict=verdict_line(summary),
        statuses=list(Status),
        severities=list(Severity),
        planes=planes,
        used_planes=[p["plane"] for p in planes],
        used_statuses=[s for s in Status if summary.by_status.get(s)],
        controls=_controls(findings),
        missing=_missing_groups(findings),
        bars=_severity_bars(findings),
        trend=_trend(history),
        script=script,
        style=_asset("report.css"),
        script_hash=base64.b64encode(hashlib.sha256(script.encode()).digest()).decode(),
    )
