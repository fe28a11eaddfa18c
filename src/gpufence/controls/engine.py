"""The control engine: validated control metadata, pure check functions, findings.

A control is a pure function ``Snapshot -> Iterable[Outcome]`` wrapped with metadata. The engine
turns outcomes into findings (metadata, fingerprint, inventory location) and isolates failures:
a control that raises becomes one ERROR finding, the others still run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import field_validator, model_validator

from gpufence._frozen import Frozen
from gpufence._gc import fewer_collections
from gpufence.model.findings import (
    BLOCKED_CONTROLS_KEY,
    INTERNAL_ERROR_KEY,
    ControlInfo,
    Finding,
    FindingLocation,
    FindingTable,
    Plane,
    Severity,
    Status,
)
from gpufence.model.snapshot import Pointer, Snapshot

__all__ = [
    "Check",
    "Control",
    "ControlMeta",
    "Outcome",
    "SharedEvidence",
    "control",
    "evaluate",
    "finding_from",
    "one_finding_per_cause",
    "run_controls",
]

T = TypeVar("T")

_ID = re.compile(r"^(GPU|CC|OOB|FW|FAB|K8S|DAT|CMP)-\d{3}$")


class ControlMeta(Frozen):
    """Metadata every control must carry; validated when the control is defined."""

    id: str
    title: str
    plane: Plane
    severity: Severity
    failure_mode: str
    """The concrete harm this control prevents, in one or two sentences."""
    remediation: str
    references: tuple[str, ...]

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"control id {value!r} must look like GPU-001")
        return value

    @field_validator("title")
    @classmethod
    def _title_shape(cls, value: str) -> str:
        # Titles state the problem the control detects, short enough for a table row.
        if not 10 <= len(value) <= 90:
            raise ValueError("title must be 10-90 characters")
        if value.lower().startswith("ensure"):
            raise ValueError("title states the problem, it does not start with 'Ensure'")
        if value.endswith("."):
            raise ValueError("title does not end with a period")
        return value

    @field_validator("failure_mode", "remediation")
    @classmethod
    def _prose(cls, value: str) -> str:
        if len(value) < 20:
            raise ValueError("write a real sentence (at least 20 characters)")
        return value

    @field_validator("references")
    @classmethod
    def _refs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one reference")
        for ref in value:
            if not ref.startswith("https://"):
                raise ValueError(f"reference {ref!r} must be an https URL")
        return value

    @model_validator(mode="after")
    def _plane_matches_prefix(self) -> ControlMeta:
        if self.id.split("-")[0] != self.plane.value:
            raise ValueError(f"control {self.id} must be in plane {self.id.split('-')[0]}")
        return self

    def info(self) -> ControlInfo:
        """The metadata as the public :class:`ControlInfo` (for listings and reports)."""
        return ControlInfo(**self.model_dump())


@dataclass(frozen=True)
class Outcome:
    """What a check observed about one resource."""

    status: Status
    resource: str
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    pointer: Pointer | None = None
    """Inventory element the finding is about (for file:line in reports)."""
    severity: Severity | None = None
    """Overrides the control's severity for this outcome (e.g. a worse variant)."""
    location: FindingLocation | None = None
    """Where the finding is when it is not in the inventory (e.g. a Kubernetes manifest)."""


Check = Callable[[Snapshot], Iterable[Outcome]]


@dataclass(frozen=True)
class Control:
    """A control: its metadata and the check that yields outcomes over a snapshot."""

    meta: ControlMeta
    check: Check
    peer_facts: tuple[str, ...] = ()
    """The evidence facts the check reads when an outcome depends on more than its own resource
    (FW-003 compares firmware between servers of one model; FW-007 and FW-008 sum up every
    node's driver and toolkit versions). Empty: each outcome depends only on its own resource
    (and the inventory), so a fleet can be audited a batch of BMCs at a time
    (:func:`gpufence.controls.batches.audit_in_batches`); tests/controls/test_batches.py holds
    every OOB and FW control to whichever it declares."""

    @property
    def id(self) -> str:
        """The control's ID, e.g. ``GPU-001``."""
        return self.meta.id


def control(
    *,
    id: str,
    title: str,
    plane: Plane,
    severity: Severity,
    failure_mode: str,
    remediation: str,
    references: Sequence[str],
    peer_facts: Sequence[str] = (),
) -> Callable[[Check], Control]:
    """Decorator: attach validated metadata to a check function.

    ``peer_facts``: the evidence facts the check reads when an outcome depends on more than its
    own resource (see :attr:`Control.peer_facts`); empty when each resource is judged alone.
    """
    meta = ControlMeta(
        id=id,
        title=title,
        plane=plane,
        severity=severity,
        failure_mode=failure_mode,
        remediation=remediation,
        references=tuple(references),
    )

    def wrap(check: Check) -> Control:
        return Control(meta=meta, check=check, peer_facts=tuple(peer_facts))

    return wrap


def finding_from(
    meta: ControlMeta,
    outcome: Outcome,
    location: FindingLocation | None = None,
    shared: SharedEvidence | None = None,
) -> Finding:
    """The finding for one outcome of a control: its metadata plus what the check observed.

    Built with :meth:`Finding.from_parts` (the metadata was validated when the control was
    defined, the outcome is typed); ``shared`` lets findings with equal evidence share one dict.
    """
    evidence = dict(outcome.evidence)
    return Finding.from_parts(
        control=meta.id,
        title=meta.title,
        plane=meta.plane,
        severity=outcome.severity or meta.severity,
        status=outcome.status,
        resource=outcome.resource,
        message=outcome.message,
        evidence=shared.get(evidence) if shared is not None else evidence,
        remediation=meta.remediation,
        references=meta.references,
        location=location,
    )


class SharedEvidence:
    """One dict per distinct evidence value within a run.

    Findings of one control over a fleet repeat the same evidence (a pool's declared facts hold
    for its 32 nodes): a 4,000-node audit has ~13,000 distinct evidence values in ~56,000
    findings, at ~0.5 KB each. Two values are the same when their ``repr`` (C-speed, key order
    and types visible: ``True`` is not ``1``, ``0.0`` is not ``-0.0``, a list is not a tuple)
    and ``==`` both agree, so a report never shows a different value than the control gave.
    The ``repr`` is kept as its 128-bit BLAKE2b digest (49 bytes instead of a ~250-byte text
    per distinct value; ~200,000 distinct values in a 64,000-node audit).
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[bytes, dict[str, Any]] = {}

    def get(self, evidence: dict[str, Any]) -> dict[str, Any]:
        """The dict already held for a value equal to ``evidence``, else ``evidence`` itself."""
        if not evidence:
            return evidence
        key = hashlib.blake2b(
            repr(evidence).encode("utf-8", "surrogatepass"), digest_size=16
        ).digest()
        held = self._seen.setdefault(key, evidence)
        if held is not evidence and not _same(held, evidence):
            return evidence
        return held


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - a value whose == raises is simply not shared
        return False


def _outcomes(check: Callable[[T], Iterable[Outcome]], subject: T, scope: str) -> list[Outcome]:
    try:
        outcomes = list(check(subject))
    except Exception as exc:  # noqa: BLE001 - a buggy control becomes one ERROR finding
        outcomes = [
            Outcome(
                Status.ERROR,
                scope,
                f"control failed: {type(exc).__name__}: {exc}",
                {INTERNAL_ERROR_KEY: type(exc).__name__},
            )
        ]
    if not outcomes:
        # A control that looked at nothing must say so; silence would read as a pass.
        outcomes = [Outcome(Status.NOT_EVALUATED, scope, "the control produced no result")]
    return outcomes


def evaluate(
    checks: Iterable[tuple[ControlMeta, Callable[[T], Iterable[Outcome]]]],
    subject: T,
    locate: Callable[[Outcome], FindingLocation | None],
    *,
    scope: str = "cluster",
    shared: SharedEvidence | None = None,
) -> tuple[Finding, ...]:
    """The run loop every caller uses: each check over ``subject``, outcomes -> findings.

    One broken check does not stop the others: it becomes one ERROR finding on ``scope`` marked
    as an internal error (the run exits 3). A check that yields nothing becomes NOT_EVALUATED,
    since silence would read as a pass. ``locate`` places each outcome in an input file (or
    returns None). ``shared`` (one per run) lets findings with equal evidence share one dict.
    """
    shared = shared if shared is not None else SharedEvidence()
    findings: list[Finding] = []
    for meta, check in checks:
        outcomes = _outcomes(check, subject, scope)
        findings.extend(finding_from(meta, o, locate(o), shared) for o in outcomes)
    return tuple(findings)


def _add_outcomes(
    table: FindingTable,
    meta: ControlMeta,
    outcomes: Iterable[Outcome],
    snapshot: Snapshot,
    shared: SharedEvidence,
) -> None:
    """Append the findings :func:`finding_from` would build, as table rows (no models; an
    inventory location is kept as the parser's (line, column))."""
    add = table.add
    for outcome in outcomes:
        pointer = outcome.pointer
        add(
            control=meta.id,
            title=meta.title,
            plane=meta.plane,
            severity=outcome.severity or meta.severity,
            status=outcome.status,
            resource=outcome.resource,
            message=outcome.message,
            evidence=shared.get(dict(outcome.evidence)),
            remediation=meta.remediation,
            references=meta.references,
            location=outcome.location,
            declared_at=snapshot.declaration(pointer) if pointer is not None else None,
        )


def _out_of_scope(ctl: Control, snapshot: Snapshot, key: str, reason: str) -> Finding:
    return finding_from(
        ctl.meta,
        Outcome(
            Status.NOT_APPLICABLE,
            "cluster",
            f"{ctl.meta.plane.label} is out of scope: {reason}",
            {"scope": key, "reason": reason},
        ),
        snapshot.location(("scope", key)),
    )


def one_finding_per_cause(findings: Iterable[Finding]) -> FindingTable:
    """Merge NOT_EVALUATED findings of several controls with the same resource and message.

    "broker_config is not set" blocks four controls; it is one thing to fix, so it is one
    finding (on the most severe control) whose evidence lists every control it blocks.
    """
    table = findings if isinstance(findings, FindingTable) else FindingTable(findings)
    # Positions of NOT_EVALUATED findings by (resource, message); nothing else is built.
    groups: dict[tuple[str, str], list[int]] = {}
    for position, (_, _, status, _, resource, message, _) in enumerate(table.rows()):
        if status is Status.NOT_EVALUATED:
            groups.setdefault((resource, message), []).append(position)
    lead_of: dict[int, list[int]] = {}
    for members in groups.values():
        if len(members) >= 2:
            # The first of the most severe (max keeps the first of equals).
            first = max(members, key=lambda p: table[p].severity.rank)
            lead_of[first] = members
    if not lead_of:
        return table
    merged_away = {p for group in lead_of.values() for p in group} - lead_of.keys()
    merged = table.empty_like()
    kept: list[int] = []  # positions copied as they are, in runs between merged leads
    for position in range(len(table)):
        if position in merged_away:
            continue
        group = lead_of.get(position)
        if group is None:
            kept.append(position)
            continue
        merged.extend_rows(table, kept)
        kept.clear()
        lead = table[position]
        controls = sorted({table[p].control for p in group})
        merged.append(
            lead.model_copy(
                update={
                    "message": f"{lead.message} (blocks {len(controls)} controls: "
                    f"{', '.join(controls)})",
                    "evidence": {**lead.evidence, BLOCKED_CONTROLS_KEY: controls},
                }
            )
        )
    merged.extend_rows(table, kept)
    return merged


def evaluate_controls(
    snapshot: Snapshot, controls: Iterable[Control]
) -> tuple[FindingTable, list[int]]:
    """Each control's findings over ``snapshot``, in control order, not yet merged by cause;
    with the number of rows each control produced.

    One broken control does not stop the others. Controls of a plane the inventory declares
    out of scope are not run: each reports NOT_APPLICABLE with the declared reason.
    """
    out_of_scope = snapshot.inventory.scope.out_of_scope()
    findings = FindingTable(source_file=snapshot.source_file)
    counts: list[int] = []
    shared = SharedEvidence()
    with fewer_collections():
        for ctl in controls:
            before = len(findings)
            if ctl.meta.plane in out_of_scope:
                findings.append(_out_of_scope(ctl, snapshot, *out_of_scope[ctl.meta.plane]))
            else:
                outcomes = _outcomes(ctl.check, snapshot, "cluster")
                _add_outcomes(findings, ctl.meta, outcomes, snapshot, shared)
                del outcomes
            counts.append(len(findings) - before)
    return findings, counts


def run_controls(snapshot: Snapshot, controls: Iterable[Control]) -> FindingTable:
    """Evaluate ``controls`` over ``snapshot``; one broken control does not stop the others.

    Controls of a plane the inventory declares out of scope are not run: each reports
    NOT_APPLICABLE with the declared reason. NOT_EVALUATED findings with one cause (same
    resource and message) across controls are merged into one. The findings are a
    :class:`FindingTable` (compact rows; a 64,000-node fleet yields ~900,000).
    """
    findings, _ = evaluate_controls(snapshot, controls)
    with fewer_collections():
        return one_finding_per_cause(findings)
