"""Human-readable report: findings grouped by plane, then one verdict line."""

from __future__ import annotations

import io
from collections.abc import Sequence

from gpufence.errors import InternalError
from gpufence.model.findings import AuditResult, Finding, Severity, Status, Summary
from gpufence.report._common import by_plane, one_line

__all__ = ["render_text", "verdict_line"]

_SEVERITY_STYLE: dict[Severity, str] = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}

_STATUS_STYLE: dict[Status, str] = {
    Status.FAIL: "bold red",
    Status.ERROR: "bold magenta",
    Status.NOT_EVALUATED: "yellow",
    Status.MUTED: "dim",
    Status.PASS: "green",
}


def _plural(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


class Text:
    """One output line as styled segments: plain text when not a terminal, rich when colored."""

    __slots__ = ("segments",)

    def __init__(self, text: str = "", style: str | None = None) -> None:
        self.segments: list[tuple[str, str | None]] = [(text, style)] if text else []

    def append(self, text: str, style: str | None = None) -> None:
        self.segments.append((text, style))

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.segments)


def _heading(title: str, findings: list[Finding]) -> Text:
    # Counts follow the Status enum order (FAIL · PASS · NOT_EVALUATED ...), zeros left out.
    counts = dict.fromkeys(Status, 0)
    for finding in findings:
        counts[finding.status] += 1
    text = Text(title, style="bold")
    text.append(" — ")
    parts = [(status, n) for status, n in counts.items() if n]
    for i, (status, n) in enumerate(parts):
        if i:
            text.append(" · ")
        text.append(f"{n} {status.value}", style=_STATUS_STYLE[status])
    return text


def _entry(finding: Finding) -> list[Text]:
    sev = finding.severity
    line = Text("  ")
    line.append(f"[{sev.value.upper()}]", style=_SEVERITY_STYLE[sev])
    line.append(f" {finding.control}", style="bold")
    line.append(f"  {one_line(finding.resource)} — {one_line(finding.message)}")
    if finding.status is not Status.FAIL:
        # Without the status a NOT_EVALUATED or PASS entry would read like a failure.
        suffix = finding.status.value
        if finding.status is Status.MUTED and "mute_reason" in finding.evidence:
            suffix += f": {one_line(str(finding.evidence['mute_reason']))}"
        line.append(f"  ({suffix})", style=_STATUS_STYLE[finding.status])
    lines = [line]
    if finding.location is not None:
        loc = finding.location
        where = one_line(loc.file)
        if loc.line is not None:
            where += f":{loc.line}"
            if loc.column is not None:
                where += f":{loc.column}"
        lines.append(Text(f"      at {where}", style="dim"))
    if finding.status is Status.FAIL and finding.remediation:
        # Remediation may span lines; keep them, but indent so the entry stays one block.
        fix_lines = [one_line(part) for part in finding.remediation.splitlines()] or [""]
        fix = Text("      fix: ", style="green")
        fix.append("\n           ".join(fix_lines))
        lines.append(fix)
    return lines


_COLLAPSE_AT = 3
"""NOT_EVALUATED findings of one control on this many resources or more print as one entry."""


def _collapsed(findings: list[Finding]) -> list[Text]:
    """One entry for a control that could not be evaluated on many resources."""
    first = findings[0]
    sev = first.severity
    line = Text("  ")
    line.append(f"[{sev.value.upper()}]", style=_SEVERITY_STYLE[sev])
    line.append(f" {first.control}", style="bold")
    names = ", ".join(one_line(f.resource) for f in findings[:3])
    more = f", +{len(findings) - 3} more" if len(findings) > 3 else ""
    line.append(f"  {len(findings)} resources ({names}{more}) — {one_line(first.message)}")
    line.append(f"  ({Status.NOT_EVALUATED.value})", style=_STATUS_STYLE[Status.NOT_EVALUATED])
    return [line]


def _entries(findings: list[Finding], show_pass: bool) -> list[Text]:
    """Entries of one plane in order; many NOT_EVALUATED of one control collapse into one."""
    not_evaluated: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.status is Status.NOT_EVALUATED:
            not_evaluated.setdefault(finding.control, []).append(finding)
    lines: list[Text] = []
    done: set[str] = set()
    for finding in findings:
        if finding.status is Status.PASS and not show_pass:
            continue
        group = not_evaluated.get(finding.control, [])
        if finding.status is Status.NOT_EVALUATED and len(group) >= _COLLAPSE_AT:
            if finding.control not in done:
                done.add(finding.control)
                lines.extend(_collapsed(group))
            continue
        lines.extend(_entry(finding))
    return lines


def _breakdown(counts: list[tuple[Severity, int]]) -> str:
    return ", ".join(f"{n} {sev.value}" for sev, n in counts)


def verdict_line(summary: Summary) -> str:
    """One line stating the verdict in ``summary`` and why (the renderer never re-decides it)."""
    failed = [(sev, summary.failed_by_severity.get(sev, 0)) for sev in Severity]
    total_failed = sum(n for _, n in failed)
    if summary.fail_on == "never":
        head = "PASS (report only: fail-on 'never'): "
        if total_failed:
            nonzero = [(sev, n) for sev, n in failed if n]
            head += f"{_plural(total_failed, 'failed finding')} ({_breakdown(nonzero)})"
        else:
            head += "no failed findings"
        parts = [head]
    else:
        try:
            threshold = Severity(summary.fail_on)
        except ValueError as exc:
            raise InternalError(f"summary has an unknown fail_on {summary.fail_on!r}") from exc
        gating = [(sev, n) for sev, n in failed if n and sev.rank >= threshold.rank]
        below = sum(n for sev, n in failed if sev.rank < threshold.rank)
        if summary.verdict == "fail":
            n_gating = sum(n for _, n in gating)
            head = f"FAIL: {_plural(n_gating, 'failed finding')} at or above '{threshold.value}'"
            parts = [f"{head} ({_breakdown(gating)})" if gating else head]
        else:
            parts = [f"PASS: nothing at or above '{threshold.value}' failed"]
        if below:
            parts.append(f"{below} failed below '{threshold.value}'")
    not_evaluated = summary.by_status.get(Status.NOT_EVALUATED, 0)
    errors = summary.by_status.get(Status.ERROR, 0)
    muted = summary.by_status.get(Status.MUTED, 0)
    if errors:
        parts.append(_plural(errors, "error"))
    if not_evaluated:
        parts.append(f"{not_evaluated} not evaluated")
    if muted:
        parts.append(f"{muted} muted")
    return "; ".join(parts)


def render_text(
    result: AuditResult, summary: Summary, *, color: bool = False, show_pass: bool = False
) -> str:
    """The terminal report; plain text (no escape codes at all) unless ``color``."""
    lines: list[Text | None] = [
        Text(
            f"gpufence {result.tool_version} · {_plural(len(result.inputs), 'input')} · "
            f"{_plural(len(result.controls), 'control')} · "
            f"{_plural(len(result.findings), 'finding')}",
            style="dim",
        )
    ]
    groups = by_plane(result.findings)
    if not groups:
        lines += [None, Text("No findings.")]
    for plane, findings in groups:
        lines += [None, _heading(plane.label, findings)]
        lines.extend(_entries(findings, show_pass))
    verdict = verdict_line(summary)
    lines += [None, Text(verdict, style="bold red" if summary.verdict == "fail" else "bold green")]
    return _colored(lines) if color else _plain(lines)


def _plain(lines: Sequence[Text | None]) -> str:
    # What rich prints without a terminal, without rich's per-line cost (a 64k-node report has
    # hundreds of thousands of lines): the text, tabs expanded to 8 columns, one per line.
    return "".join(
        (line.plain.expandtabs(8) if "\t" in line.plain else line.plain) + "\n"
        if line is not None
        else "\n"
        for line in lines
    )


def _colored(lines: Sequence[Text | None]) -> str:
    from rich.console import Console
    from rich.text import Text as RichText

    buf = io.StringIO()
    # Explicit force_terminal/color_system beat FORCE_COLOR/TTY_COMPATIBLE in the environment;
    # soft_wrap keeps every entry on one line so paths stay clickable and greppable.
    console = Console(
        file=buf,
        force_terminal=True,
        force_jupyter=False,
        color_system="standard",
        width=120,
        soft_wrap=True,
        highlight=False,
        markup=False,
        emoji=False,
    )
    for line in lines:
        if line is None:
            console.print()
            continue
        text = RichText()
        for segment, style in line.segments:
            text.append(segment, style=style or "")
        console.print(text)
    return buf.getvalue()
