"""Posture over time: recorded runs, the findings of a run by fingerprint, and diffs between runs.

These are the frozen types the findings store returns and the renderers print; the diff itself is
pure (two sets of finding states in, one :class:`FindingsDiff` out), so a stored run and a saved
JSON report compare the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, overload

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from gpufence._frozen import Frozen, kept_or_tuple_schema
from gpufence.model.findings import (
    ControlInfo,
    Finding,
    FindingTable,
    Plane,
    Severity,
    Status,
    fingerprint_of,
    rows_of,
)

__all__ = [
    "OPEN_STATUSES",
    "ChangeKind",
    "FindingChange",
    "FindingState",
    "FindingStates",
    "FindingsDiff",
    "InputDigest",
    "RunInfo",
    "diff_findings",
    "new_relative_to",
    "policy_digest",
    "state_of",
    "states_of",
]

OPEN_STATUSES: frozenset[Status] = frozenset({Status.FAIL, Status.ERROR, Status.NOT_EVALUATED})
"""Statuses that still need someone's attention. PASS, MUTED (an accepted risk) and any status
added later for "does not apply" are closed."""


class FindingState(Frozen):
    """What a run said about one fingerprint (control on resource)."""

    fingerprint: str
    control: str
    plane: Plane
    severity: Severity
    status: Status
    resource: str
    message: str = ""

    @property
    def open(self) -> bool:
        """True when the finding still needs attention (see :data:`OPEN_STATUSES`)."""
        return self.status in OPEN_STATUSES


def state_of(finding: Finding) -> FindingState:
    """The part of ``finding`` that a store keeps and a diff compares."""
    f = finding
    return _state(f.control, f.plane, f.status, f.severity, f.resource, f.message)


def _state(
    control: str, plane: Plane, status: Status, severity: Severity, resource: str, message: str
) -> FindingState:
    return FindingState(
        fingerprint=fingerprint_of(control, resource),
        control=control,
        plane=plane,
        severity=severity,
        status=status,
        resource=resource,
        message=message,
    )


class StatesOf(Sequence[FindingState]):
    """The :func:`state_of` of each of a run's findings, made on access from the findings' rows
    (a 64,000-node audit has ~900,000: a tuple of states held ~600 bytes each)."""

    __slots__ = ("_findings",)

    def __init__(self, findings: Sequence[Finding]) -> None:
        self._findings = findings

    def __len__(self) -> int:
        return len(self._findings)

    @overload
    def __getitem__(self, index: int) -> FindingState: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[FindingState]: ...

    def __getitem__(self, index: int | slice) -> FindingState | Sequence[FindingState]:
        if isinstance(index, slice):
            return StatesOf(self._findings[index])
        return state_of(self._findings[index])

    def __iter__(self) -> Iterator[FindingState]:
        for row in rows_of(self._findings):
            yield _state(*row[:6])

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Validated as ``tuple[FindingState, ...]`` unless it is already states made from
        findings (kept as they are)."""
        return kept_or_tuple_schema(cls, FindingState, handler)


FindingStates = Annotated[Sequence[FindingState], StatesOf]
"""A run's finding states: a tuple, or :class:`StatesOf` a run's findings (made on access)."""


def states_of(findings: Sequence[Finding]) -> StatesOf:
    """The state of each of ``findings``, made when read (see :class:`StatesOf`)."""
    return StatesOf(findings)


class InputDigest(Frozen):
    """One input of a run: its path as given and the SHA-256 of its bytes (None if unreadable)."""

    path: str
    sha256: str | None
    size: int | None = None


class RunInfo(Frozen):
    """One recorded run: when, how long, what it read, which tool and policy, what it found."""

    id: int
    started_at: datetime
    duration_s: float
    command: str
    target: str
    """The primary input (inventory, manifests, or evidence file): runs of one target compare."""
    tool_version: str
    policy_digest: str
    """SHA-256 (16 hex) over the metadata of the controls that ran: changes when the policy does."""
    verdict: str
    fail_on: str
    inputs: tuple[InputDigest, ...] = ()
    counts: Mapping[Status, int] = {}
    """Findings per status."""
    failed_by_severity: Mapping[Severity, int] = {}


class ChangeKind(StrEnum):
    """How a finding changed between two runs: new, fixed, changed or still open."""

    NEW = "new"
    FIXED = "fixed"
    CHANGED = "changed"
    STILL_OPEN = "still_open"


class FindingChange(Frozen):
    """One fingerprint's change between two runs (``before``/``after`` None when absent)."""

    kind: ChangeKind
    fingerprint: str
    control: str
    resource: str
    before: FindingState | None
    after: FindingState | None


class FindingsDiff(Frozen):
    """Open findings that appeared, were fixed, changed status or severity, or stayed open."""

    base: str
    head: str
    changes: tuple[FindingChange, ...]

    def of_kind(self, kind: ChangeKind) -> list[FindingChange]:
        """The changes of one kind, in the diff's order."""
        return [c for c in self.changes if c.kind is kind]


def _index(states: Iterable[FindingState]) -> dict[str, FindingState]:
    # A fingerprint appears once per run; if a control reported a resource twice the last wins.
    return {s.fingerprint: s for s in states}


def diff_findings(
    before: Iterable[FindingState], after: Iterable[FindingState], *, base: str, head: str
) -> FindingsDiff:
    """Compare two runs by fingerprint.

    new: open now, not open before (absent, PASS, MUTED); fixed: open before, not open now (or
    gone); changed: open in both with another status or severity; still_open: open in both,
    unchanged. Findings closed in both runs are not part of the diff.
    """
    old, new = _index(before), _index(after)
    changes: list[FindingChange] = []
    for fp in sorted(old.keys() | new.keys()):
        a, b = old.get(fp), new.get(fp)
        was_open = a is not None and a.open
        is_open = b is not None and b.open
        if not was_open and not is_open:
            continue
        if is_open and not was_open:
            kind = ChangeKind.NEW
        elif was_open and not is_open:
            kind = ChangeKind.FIXED
        else:
            assert a is not None and b is not None
            same = a.status is b.status and a.severity is b.severity
            kind = ChangeKind.STILL_OPEN if same else ChangeKind.CHANGED
        ref = b or a
        assert ref is not None
        changes.append(
            FindingChange(
                kind=kind,
                fingerprint=fp,
                control=ref.control,
                resource=ref.resource,
                before=a,
                after=b,
            )
        )
    kinds = list(ChangeKind)
    changes.sort(key=lambda c: (kinds.index(c.kind), c.control, c.resource))
    return FindingsDiff(base=base, head=head, changes=tuple(changes))


def new_relative_to(
    findings: Sequence[Finding], baseline: Iterable[FindingState]
) -> tuple[FindingTable, int]:
    """Findings that are not already in ``baseline`` with the same status; and how many were.

    A finding whose status changed since the baseline (PASS -> FAIL, NOT_EVALUATED -> FAIL) is
    kept: that is news. Returns (kept, dropped count); read from the findings' rows, so a table
    of a fleet's findings is filtered without building them.
    """
    known = {(s.fingerprint, s.status) for s in baseline}
    table = findings if isinstance(findings, FindingTable) else FindingTable(findings)
    positions = [
        position
        for position, (control, _, status, _, resource, _, _) in enumerate(table.rows())
        if (fingerprint_of(control, resource), status) not in known
    ]
    kept = table.empty_like()
    kept.extend_rows(table, positions)
    return kept, len(table) - len(positions)


def policy_digest(controls: Iterable[ControlInfo]) -> str:
    """SHA-256 (first 16 hex) of the controls' metadata: the 'policy version' of a run."""
    doc = sorted((c.model_dump_json() for c in controls), key=str)
    return hashlib.sha256("\n".join(doc).encode()).hexdigest()[:16]
