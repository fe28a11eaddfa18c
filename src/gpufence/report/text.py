"""Human-readable report: findings grouped by plane, then one verdict line."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gpufence.errors import InternalError
from gpufence.model.findings import AuditResult, Finding, Severity, Status, Summary, rows_of
from gpufence.report._common import by_plane, one_line

__all__ = ["TextOptions", "render_text", "verdict_line", "write_text"]


@dataclass(frozen=True, slots=True)
class TextOptions:
    """What the text report shows. Display only: never what is evaluated, stored or decided."""

    show_pass: bool = False
    severities: frozenset[Severity] | None = None
    """Show only findings of these severities (None: all)."""
    statuses: frozenset[Status] | None = None
    """Show only findings of these statuses (None: all but PASS, unless ``show_pass``)."""
    quiet: bool = False
    """Only failures (FAIL and ERROR) and the verdict: no headings, no summary table."""
    hide_muted: bool = False

    def shows(self, finding: Finding) -> bool:
        """Whether ``finding`` is listed."""
        return self.shows_status(finding.status, finding.severity)

    def shows_status(self, status: Status, severity: Severity) -> bool:
        """Whether a finding with this status and severity is listed."""
        if self.quiet and status not in _FAILURES:
            return False
        if self.hide_muted and status is Status.MUTED:
            return False
        if self.severities is not None and severity not in self.severities:
            return False
        if self.statuses is not None:
            return status in self.statuses
        return status is not Status.PASS or self.show_pass

    @property
    def filtered(self) -> bool:
        """True when a filter beyond the default (PASS hidden) is active."""
        return bool(self.severities or self.statuses or self.quiet or self.hide_muted)


_FAILURES = frozenset({Status.FAIL, Status.ERROR})

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
    Status.NOT_APPLICABLE: "dim",
    Status.PASS: "green",
}


def _status_style(status: Status) -> str:
    # A status added to the enum later renders unstyled rather than failing.
    return _STATUS_STYLE.get(status, "")


def _plural(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def _heading(title: str, counts: dict[Status, int]) -> Text:
    # Counts follow the Status enum order (FAIL · PASS · NOT_EVALUATED ...), zeros left out.
    text = Text(title, style="bold")
    text.append(" — ")
    parts = [(status, n) for status, n in counts.items() if n]
    for i, (status, n) in enumerate(parts):
        if i:
            text.append(" · ")
        text.append(f"{n} {status.value}", style=_status_style(status))
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
        line.append(f"  ({suffix})", style=_status_style(finding.status))
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
"""Findings of one control and one status on this many resources or more print as one entry."""

_NAMES_SHOWN = 3


def _collapsed(findings: list[Finding], count: int) -> list[Text]:
    """One entry for a control with the same status on ``count`` resources: count and the
    first few (``findings``)."""
    first = findings[0]
    sev = first.severity
    line = Text("  ")
    line.append(f"[{sev.value.upper()}]", style=_SEVERITY_STYLE[sev])
    line.append(f" {first.control}", style="bold")
    names = ", ".join(one_line(f.resource) for f in findings[:_NAMES_SHOWN])
    more = f", +{count - _NAMES_SHOWN} more" if count > _NAMES_SHOWN else ""
    line.append(f"  {count} resources ({names}{more}) — {one_line(first.message)}")
    if first.status is not Status.FAIL:
        line.append(f"  ({first.status.value})", style=_status_style(first.status))
    lines = [line]
    if first.status is Status.FAIL and first.remediation:
        fix_lines = [one_line(part) for part in first.remediation.splitlines()] or [""]
        fix = Text("      fix: ", style="green")
        fix.append("\n           ".join(fix_lines))
        lines.append(fix)
    return lines


def _not_applicable(findings: list[Finding]) -> list[Text]:
    """One line per reason for the NOT_APPLICABLE findings of a plane (out of scope)."""
    by_reason: dict[str, list[str]] = {}
    for finding in findings:
        if finding.status is Status.NOT_APPLICABLE:
            by_reason.setdefault(finding.message, []).append(finding.control)
    lines: list[Text] = []
    for reason, controls in by_reason.items():
        ids = ", ".join(dict.fromkeys(controls))
        line = Text(f"  {len(controls)} not applicable ({ids}) — {one_line(reason)}")
        line.append(
            f"  ({Status.NOT_APPLICABLE.value})", style=_STATUS_STYLE[Status.NOT_APPLICABLE]
        )
        lines.append(line)
    return lines


def _entries(
    findings: Sequence[Finding], options: TextOptions
) -> tuple[list[Text], dict[Status, int]]:
    """Entries of one plane in order, and the plane's counts per status; one control's findings
    of one status on many resources collapse into one entry.

    Two passes over ``findings`` that keep only what is printed (the first few findings of
    each group), so a table's findings are built one at a time."""
    counts = dict.fromkeys(Status, 0)
    sizes: dict[tuple[str, Status], int] = {}
    firsts: dict[tuple[str, Status], list[int]] = {}
    not_applicable: list[Finding] = []
    for position, (control, _, status, severity, *_) in enumerate(rows_of(findings)):
        counts[status] += 1
        if not options.shows_status(status, severity):
            continue
        if status is Status.NOT_APPLICABLE:
            # Controls of a plane out of scope: one line per declared reason.
            not_applicable.append(findings[position])
            continue
        key = (control, status)
        sizes[key] = sizes.get(key, 0) + 1
        if len(first := firsts.setdefault(key, [])) < _NAMES_SHOWN:
            first.append(position)
    lines: list[Text] = _not_applicable(not_applicable)
    done: set[tuple[str, Status]] = set()
    for position, (control, _, status, severity, *_) in enumerate(rows_of(findings)):
        if status is Status.NOT_APPLICABLE or not options.shows_status(status, severity):
            continue
        key = (control, status)
        if sizes[key] >= _COLLAPSE_AT:
            if key not in done:
                done.add(key)
                lines.extend(_collapsed([findings[p] for p in firsts[key]], sizes[key]))
            continue
        lines.extend(_entry(findings[position]))
    return lines, counts


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
        unseen = summary.unevaluated_controls
        if summary.verdict == "fail":
            n_gating = sum(n for _, n in gating)
            head = f"FAIL: {_plural(n_gating, 'failed finding')} at or above '{threshold.value}'"
            parts = [f"{head} ({_breakdown(gating)})" if gating else head]
        elif summary.verdict == "incomplete":
            parts = [
                f"INCOMPLETE: nothing at or above '{threshold.value}' failed, but "
                f"{_plural(len(unseen), 'control')} at or above '{threshold.value}' could not "
                f"be evaluated ({', '.join(unseen)})"
            ]
        else:
            parts = [f"PASS: nothing at or above '{threshold.value}' failed"]
        if below:
            parts.append(f"{below} failed below '{threshold.value}'")
    not_evaluated = summary.by_status.get(Status.NOT_EVALUATED, 0)
    errors = summary.by_status.get(Status.ERROR, 0)
    muted = summary.by_status.get(Status.MUTED, 0)
    not_applicable = summary.by_status.get(Status.NOT_APPLICABLE, 0)
    if errors:
        parts.append(_plural(errors, "error"))
    if not_evaluated:
        parts.append(f"{not_evaluated} not evaluated")
    if not_applicable:
        parts.append(f"{not_applicable} not applicable (out of scope)")
    if muted:
        parts.append(f"{muted} muted")
    return "; ".join(parts)


def _control_table(findings: Sequence[Finding]) -> tuple[Table | None, int]:
    """Per control: severity and counts per status; controls whose findings all passed are only
    counted. Returns the table (None when empty) and that count."""
    per_control: dict[str, dict[Status, int]] = {}
    first_of: dict[str, int] = {}
    for position, (control, _, status, *_) in enumerate(rows_of(findings)):
        per_control.setdefault(control, dict.fromkeys(Status, 0))[status] += 1
        first_of.setdefault(control, position)
    meta = {control: findings[position] for control, position in first_of.items()}
    all_pass = [c for c, n in per_control.items() if sum(n.values()) == n[Status.PASS]]
    rows = [c for c in per_control if c not in all_pass]
    if not rows:
        return None, len(all_pass)
    columns = [s for s in Status if any(per_control[c][s] for c in rows)]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title_justify="left")
    table.add_column("Control")
    table.add_column("Severity")
    for status in columns:
        table.add_column(status.value, justify="right", style=_status_style(status))
    table.add_column("Title", overflow="ellipsis", no_wrap=True, max_width=48)

    def worst(control: str) -> tuple[int, int, str]:
        counts = per_control[control]
        return (-counts[Status.FAIL], -meta[control].severity.rank, control)

    for control in sorted(rows, key=worst):
        counts = per_control[control]
        sev = meta[control].severity
        table.add_row(
            control,
            Text(sev.value, style=_SEVERITY_STYLE[sev]),
            *[str(counts[s]) if counts[s] else "·" for s in columns],
            one_line(meta[control].title),
        )
    return table, len(all_pass)


def render_text(
    result: AuditResult,
    summary: Summary,
    *,
    color: bool = False,
    show_pass: bool = False,
    options: TextOptions | None = None,
) -> str:
    """The terminal report; plain text (no escape codes at all) unless ``color``.

    ``options`` filter what is listed; headings, the summary table and the verdict always
    count every finding.
    """
    buf = io.StringIO()
    write_text(result, summary, buf, color=color, show_pass=show_pass, options=options)
    return buf.getvalue()


def write_text(
    result: AuditResult,
    summary: Summary,
    out: TextIO,
    *,
    color: bool = False,
    show_pass: bool = False,
    options: TextOptions | None = None,
) -> None:
    """:func:`render_text` written to ``out`` as it is produced.

    Without ``color`` the lines are written as plain text, the same bytes rich prints to a file
    without rich's per-line layout (a fifth of a large audit's command time); rich lays out
    the per-control table in both cases and prints everything when colored.
    """
    opts = options or TextOptions(show_pass=show_pass)
    console = _console(out, color)
    emit = console.print if color else _plain_printer(console)
    if not opts.quiet:
        emit(
            Text(
                f"gpufence {result.tool_version} · {_plural(len(result.inputs), 'input')} · "
                f"{_plural(len(result.controls), 'control')} · "
                f"{_plural(len(result.findings), 'finding')}",
                style="dim",
            )
        )
        if opts.filtered:
            listed = sum(
                1 for _, _, st, sev, *_ in rows_of(result.findings) if opts.shows_status(st, sev)
            )
            emit(Text(f"listing {listed} of them (filters on)", style="dim"))
    groups = by_plane(result.findings)
    if not groups and not opts.quiet:
        emit()
        emit(Text("No findings."))
    for plane, findings in groups:
        entries, counts = _entries(findings, opts)
        if opts.quiet and not entries:
            continue
        emit()
        emit(_heading(plane.label, counts))
        for line in entries:
            emit(line)
    del groups
    if not opts.quiet:
        table, all_pass = _control_table(result.findings)
        if table is not None:
            emit()
            emit(Text("Per control", style="bold"))
            console.print(table)  # laid out by rich whether colored or not
        if all_pass:
            emit(Text(f"{_plural(all_pass, 'control')} with only PASS", style="dim"))
    emit()
    verdict = verdict_line(summary)
    style = {"fail": "bold red", "incomplete": "bold yellow"}.get(summary.verdict, "bold green")
    emit(Text(verdict, style=style))


def _console(out: TextIO, color: bool) -> Console:
    # Explicit force_terminal/color_system beat FORCE_COLOR/TTY_COMPATIBLE in the environment;
    # soft_wrap keeps every entry on one line so paths stay clickable and greppable.
    return Console(
        file=out,
        force_terminal=color,
        force_jupyter=False,
        color_system="standard" if color else None,
        width=120,
        soft_wrap=True,
        highlight=False,
        markup=False,
        emoji=False,
    )


def _plain_printer(console: Console) -> Callable[..., None]:
    out = console.file

    def emit(line: Text | None = None) -> None:
        # What rich's print writes for one soft-wrapped Text without a terminal: its text, then
        # a newline (checked byte for byte in the tests). Rich expands a tab to the next 8-cell
        # stop counting cell widths (wide and zero-width characters): rich prints those lines.
        if line is None:
            out.write("\n")
            return
        plain = line.plain
        if "\t" in plain:
            console.print(line)
        else:
            out.write(plain + "\n")

    return emit
