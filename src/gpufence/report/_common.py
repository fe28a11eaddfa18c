"""Helpers shared by every renderer: one finding order, one way to neutralise hostile text."""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterable, Sequence

from gpufence.model.findings import Finding, FindingTable, Plane, Row, Status, rows_of

__all__ = [
    "STATUS_ORDER",
    "by_plane",
    "finding_sort_key",
    "one_line",
    "positions_where",
    "select",
    "sorted_findings",
]

# Display order: what needs action first. Deliberately not the Status enum order.
STATUS_ORDER: dict[Status, int] = {
    Status.FAIL: 0,
    Status.ERROR: 1,
    Status.NOT_EVALUATED: 2,
    Status.MUTED: 3,
    Status.NOT_APPLICABLE: 4,
    Status.PASS: 5,
}


def finding_sort_key(finding: Finding) -> tuple[int, int, str, str]:
    """Status (FAIL first), then severity (critical first), then control, then resource."""
    # A status added to the enum later sorts after the known ones, before PASS's peers.
    return (
        STATUS_ORDER.get(finding.status, 3),
        -finding.severity.rank,
        finding.control,
        finding.resource,
    )


def _row_sort_key(row: Row) -> tuple[int, int, str, str]:
    control, _plane, status, severity, resource, _message, _evidence = row
    return (STATUS_ORDER.get(status, 3), -severity.rank, control, resource)


def sorted_findings(findings: Iterable[Finding]) -> Sequence[Finding]:
    """Findings in the one deterministic order every renderer uses (a table: a sorted view of
    it, whose findings are built one at a time as they are read)."""
    if isinstance(findings, FindingTable):
        return findings.sorted_by(_row_sort_key)
    return sorted(findings, key=finding_sort_key)


def by_plane(findings: Iterable[Finding]) -> list[tuple[Plane, Sequence[Finding]]]:
    """Sorted findings grouped by plane, planes in enum order; planes without findings omitted."""
    if isinstance(findings, FindingTable):
        ordered = findings.sorted_by(_row_sort_key)
        positions: dict[Plane, list[int]] = {plane: [] for plane in Plane}
        for position, row in enumerate(ordered.rows()):
            positions[row[1]].append(position)
        return [(plane, ordered.reordered(items)) for plane, items in positions.items() if items]
    groups: dict[Plane, list[Finding]] = {plane: [] for plane in Plane}
    for finding in sorted_findings(findings):
        groups[finding.plane].append(finding)
    return [(plane, items) for plane, items in groups.items() if items]


def positions_where(findings: Sequence[Finding], keep: Callable[[Row], bool]) -> array[int]:
    """The positions (ascending) of the findings whose :data:`Row` ``keep`` accepts, read from
    the rows (a table's findings are not built)."""
    return array("I", (i for i, row in enumerate(rows_of(findings)) if keep(row)))


def select(findings: Sequence[Finding], positions: Iterable[int]) -> Sequence[Finding]:
    """The findings at ``positions``, in that order: a view of a table (each finding built when
    it is read), else a list."""
    if isinstance(findings, FindingTable):
        return findings.reordered(positions)
    return [findings[i] for i in positions]


# Control characters (C0 incl. ESC, DEL, C1) and bidi overrides: device-reported strings (resource
# names, evidence) must not be able to drive the reader's terminal or reorder what it displays.
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\n":
        return "\\n"
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def one_line(text: str) -> str:
    """``text`` with control characters escaped visibly, so it stays on one line and inert."""
    return _UNSAFE.sub(_escape_char, text)
