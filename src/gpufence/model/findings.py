"""The finding model: the public contract of every audit (see DESIGN.md)."""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal, overload

from pydantic import Field, GetCoreSchemaHandler, computed_field, model_validator
from pydantic_core import core_schema

from gpufence._frozen import Frozen, kept_or_tuple_schema
from gpufence._yaml import Position, unpack_position
from gpufence.model._evidence_text import EvidenceText, as_text, from_text

__all__ = [
    "BLOCKED_CONTROLS_KEY",
    "INTERNAL_ERROR_KEY",
    "AuditResult",
    "ControlInfo",
    "Finding",
    "FindingLocation",
    "FindingTable",
    "FindingsReport",
    "Plane",
    "Severity",
    "Status",
    "Summary",
    "ToolInfo",
    "fingerprint_of",
    "is_internal_error",
    "rows_of",
    "summarize",
]


class Severity(StrEnum):
    """How bad a failing control is: critical, high, medium, low or info."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse: critical=4 ... info=0."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


class Status(StrEnum):
    """A finding's outcome: FAIL, PASS, NOT_EVALUATED (facts missing), ERROR (a bug) or MUTED."""

    FAIL = "FAIL"
    PASS = "PASS"  # noqa: S105 - a status, not a password
    NOT_EVALUATED = "NOT_EVALUATED"
    NOT_APPLICABLE = "NOT_APPLICABLE"
    """The inventory declares the plane out of scope (the message carries the reason)."""
    ERROR = "ERROR"
    MUTED = "MUTED"


class Plane(StrEnum):
    """Control planes; the value is the control-ID prefix."""

    GPU = "GPU"
    CC = "CC"
    OOB = "OOB"
    FW = "FW"
    FAB = "FAB"
    K8S = "K8S"
    DAT = "DAT"
    CMP = "CMP"

    @property
    def label(self) -> str:
        """Human name of the plane, e.g. 'GPU isolation'."""
        return _PLANE_TITLES[self]


_PLANE_TITLES = {
    Plane.GPU: "GPU isolation",
    Plane.CC: "Confidential computing & attestation",
    Plane.OOB: "Out-of-band (BMC)",
    Plane.FW: "Firmware",
    Plane.FAB: "Fabric",
    Plane.K8S: "Kubernetes",
    Plane.DAT: "Data & secrets",
    Plane.CMP: "Compliance",
}


class FindingLocation(Frozen):
    """Where in an input file the finding's resource is declared (1-based)."""

    file: str
    line: int | None = None
    column: int | None = None

    @classmethod
    def at(cls, file: str, line: int, column: int) -> FindingLocation:
        """A location the parser reported, built without re-validation and with the one shared
        set of fields (a fleet's findings point at hundreds of thousands of declarations)."""
        location = cls.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(location, "__dict__", {"file": file, "line": line, "column": column})
        setattr_(location, "__pydantic_fields_set__", _ALL_LOCATION_FIELDS)
        setattr_(location, "__pydantic_extra__", None)
        setattr_(location, "__pydantic_private__", None)
        return location


_ALL_LOCATION_FIELDS: set[str] = set(FindingLocation.model_fields)


class ControlInfo(Frozen):
    """The metadata of one control, as it appears in reports (SARIF rules, docs)."""

    id: str
    title: str
    plane: Plane
    severity: Severity
    failure_mode: str
    remediation: str
    references: tuple[str, ...]


def fingerprint_of(control: str, resource: str) -> str:
    """Stable identity of a finding across scans: same control on the same resource."""
    return hashlib.sha256(f"{control}\x00{resource}".encode()).hexdigest()[:32]


class Finding(Frozen):
    """One control's verdict on one resource, with evidence, remediation and inventory location."""

    control: str
    title: str
    plane: Plane
    severity: Severity
    status: Status
    resource: str
    message: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    remediation: str
    references: tuple[str, ...] = ()
    location: FindingLocation | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fingerprint(self) -> str:
        """A stable identity (control + resource) for diffing runs."""
        return fingerprint_of(self.control, self.resource)

    @model_validator(mode="before")
    @classmethod
    def _fingerprint_as_dumped(cls, data: Any) -> Any:
        # A dumped finding (a JSON report) carries its computed fingerprint: read back, it must
        # be the one of its control and resource, and is then derived again, not stored.
        if isinstance(data, dict) and "fingerprint" in data:
            data = dict(data)
            given = data.pop("fingerprint")
            control, resource = data.get("control"), data.get("resource")
            if isinstance(control, str) and isinstance(resource, str):
                if given != fingerprint_of(control, resource):
                    raise ValueError(
                        f"fingerprint {given!r} is not that of {control} on {resource}"
                    )
        return data

    @classmethod
    def from_parts(
        cls,
        *,
        control: str,
        title: str,
        plane: Plane,
        severity: Severity,
        status: Status,
        resource: str,
        message: str,
        evidence: dict[str, Any],
        remediation: str,
        references: tuple[str, ...],
        location: FindingLocation | None = None,
    ) -> Finding:
        """A finding from parts that are already typed (a control's validated metadata and its
        outcome), without validating them again: the audit's hot path, where a 64,000-node fleet
        yields ~900,000 findings.

        Equal to ``Finding(...)`` with the same values, and smaller: the strings and the
        references tuple are the caller's (validation would copy the tuple), the message and
        resource are interned (a few hundred distinct messages over a whole fleet), and the set of
        fields pydantic keeps per instance is one shared set (a validated finding carries its own
        728-byte set; ``model_copy`` copies it before adding to it). ``evidence`` is kept as
        given, so callers may share one dict between findings with equal evidence and must not
        change it afterwards.
        """
        if type(status) is not Status or type(severity) is not Severity or type(plane) is not Plane:
            raise TypeError(f"{control}: plane, severity and status must be enum members")
        return _unvalidated(
            {
                "control": control,
                "title": title,
                "plane": plane,
                "severity": severity,
                "status": status,
                "resource": _interned(resource),
                "message": _interned(message),
                "evidence": evidence,
                "remediation": remediation,
                "references": references,
                "location": location,
            }
        )


def _unvalidated(values: dict[str, Any]) -> Finding:
    """A finding of ``values`` (every field, already typed) as pydantic would hold it, without
    validating them again (see :meth:`Finding.from_parts`)."""
    finding = Finding.__new__(Finding)
    setattr_ = object.__setattr__
    setattr_(finding, "__dict__", values)
    setattr_(finding, "__pydantic_fields_set__", _ALL_FINDING_FIELDS)
    setattr_(finding, "__pydantic_extra__", None)
    setattr_(finding, "__pydantic_private__", None)
    return finding


def _interned(text: str) -> str:
    # sys.intern refuses str subclasses (a StrEnum member); those are few and stay as they are.
    return sys.intern(text) if type(text) is str else text


_ALL_FINDING_FIELDS: set[str] = set(Finding.model_fields)
"""Shared by every finding built by :meth:`Finding.from_parts` (pydantic only reads it, and
``model_copy`` copies it before adding to it)."""


BLOCKED_CONTROLS_KEY = "blocked_controls"
"""Evidence key of a NOT_EVALUATED finding that stands for several controls with one cause."""

INTERNAL_ERROR_KEY = "internal_error"
"""Evidence key of an ERROR finding that is a bug (a control crashed): the run exits 3."""


def is_internal_error(finding: Finding) -> bool:
    """An ERROR finding caused by a bug in gpufence (as opposed to bad input it skipped)."""
    return finding.status is Status.ERROR and INTERNAL_ERROR_KEY in finding.evidence


class Summary(Frozen):
    """Counts per status and severity and the verdict against ``--fail-on``."""

    total: int
    by_status: dict[Status, int]
    failed_by_severity: dict[Severity, int]
    fail_on: str
    verdict: Literal["pass", "incomplete", "fail"]
    """'fail' when a FAIL at or above ``fail_on`` exists; else 'incomplete' when a control at or
    above ``fail_on`` could not be evaluated (NOT_EVALUATED, or ERROR on skipped evidence); else
    'pass'."""
    unevaluated_controls: tuple[str, ...] = ()
    """The controls (sorted) that make the verdict 'incomplete', or would if nothing failed."""


_STATUSES: tuple[Status, ...] = tuple(Status)
_SEVERITIES: tuple[Severity, ...] = tuple(Severity)
_STATUS_INDEX = {status: i for i, status in enumerate(_STATUSES)}
_SEVERITY_INDEX = {severity: i for i, severity in enumerate(_SEVERITIES)}
_CODE_BITS = 4  # status and severity each fit in 4 bits (6 and 5 members)


Row = tuple[str, Plane, Status, Severity, str, str, Mapping[str, Any]]
"""One finding's (control, plane, status, severity, resource, message, evidence)."""


class _Head:
    """What findings of one control share: id, title, plane, remediation, references."""

    __slots__ = ("control", "plane", "references", "remediation", "title")

    def __init__(
        self, control: str, title: str, plane: Plane, remediation: str, references: tuple[str, ...]
    ) -> None:
        self.control = control
        self.title = title
        self.plane = plane
        self.remediation = remediation
        self.references = references


class _Columns:
    """The storage one table and its reordered views share."""

    __slots__ = (
        "codes",
        "evidence",
        "file",
        "head_index",
        "heads",
        "locations",
        "messages",
        "resources",
    )

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.heads: list[_Head] = []
        self.head_index: dict[tuple[str, str, Plane, str, tuple[str, ...]], int] = {}
        self.codes = array("I")
        self.resources: list[str] = []
        self.messages: list[str] = []
        self.evidence: list[dict[str, Any] | str] = []
        """The evidence dict, or its JSON text after :meth:`FindingTable.compact_evidence`."""
        self.locations: list[FindingLocation | Position | None] = []
        """A location, or the packed (line, column) of a declaration in ``file`` (the parser's
        own int: a fleet's findings point at hundreds of thousands of declarations)."""


class FindingTable(Sequence[Finding]):
    """The findings of a run, stored compactly: a ``Sequence[Finding]`` whose items are built on
    access (equal to the findings put in; a new object each time).

    A 64,000-node audit yields ~900,000 findings; as pydantic models they held ~660 bytes each
    (the floor of a model with an 11-key field dict is 544). A row here is ~40 bytes: one
    32-bit code (control metadata, status, severity) and four references to shared objects
    (interned resource and message, evidence dict, location). Renderers walk the rows
    (:meth:`rows`, :meth:`reordered`) or take one finding at a time and drop it.

    ``source_file`` is the file of locations given as ``declared_at`` (a packed line and
    column, :func:`gpufence._yaml.position_of`) to :meth:`add` (the inventory: the controls'
    findings point into it).
    """

    __slots__ = ("_columns", "_order")

    def __init__(self, findings: Iterable[Finding] = (), *, source_file: str | None = None) -> None:
        self._columns = _Columns(source_file)
        self._order: array[int] | None = None
        for finding in findings:
            self.append(finding)

    # -- building ---------------------------------------------------------------------------

    def _head(
        self, control: str, title: str, plane: Plane, remediation: str, references: tuple[str, ...]
    ) -> int:
        columns = self._columns
        key = (control, title, plane, remediation, references)
        index = columns.head_index.get(key)
        if index is None:
            index = columns.head_index[key] = len(columns.heads)
            columns.heads.append(_Head(control, title, plane, remediation, references))
        return index

    def add(
        self,
        *,
        control: str,
        title: str,
        plane: Plane,
        severity: Severity,
        status: Status,
        resource: str,
        message: str,
        evidence: dict[str, Any],
        remediation: str,
        references: tuple[str, ...],
        location: FindingLocation | None = None,
        declared_at: Position | None = None,
    ) -> None:
        """Append the finding :meth:`Finding.from_parts` would build from these parts (same
        contract: typed parts, ``evidence`` kept as given and never changed afterwards).

        ``declared_at`` (packed line and column) in the table's ``source_file`` stands for
        ``location``.
        """
        if declared_at is not None:
            if self._columns.file is None:
                raise TypeError("declared_at needs a table with a source_file")
            location_or_at: FindingLocation | Position | None = declared_at
        else:
            location_or_at = location
        if type(status) is not Status or type(severity) is not Severity or type(plane) is not Plane:
            raise TypeError(f"{control}: plane, severity and status must be enum members")
        if self._order is not None:
            raise TypeError("a reordered view of findings is read-only")
        head = self._head(control, title, plane, remediation, references)
        columns = self._columns
        columns.codes.append(
            (((head << _CODE_BITS) | _STATUS_INDEX[status]) << _CODE_BITS)
            | _SEVERITY_INDEX[severity]
        )
        columns.resources.append(_interned(resource))
        columns.messages.append(_interned(message))
        columns.evidence.append(evidence)
        columns.locations.append(location_or_at)

    def append(self, finding: Finding) -> None:
        """Append ``finding`` (stored as its parts; reading it back gives an equal finding)."""
        self.add(
            control=finding.control,
            title=finding.title,
            plane=finding.plane,
            severity=finding.severity,
            status=finding.status,
            resource=finding.resource,
            message=finding.message,
            evidence=finding.evidence,
            remediation=finding.remediation,
            references=finding.references,
            location=finding.location,
        )

    def extend(self, findings: Iterable[Finding]) -> None:
        """Append every finding of ``findings``."""
        if isinstance(findings, FindingTable):
            self.extend_rows(findings, range(len(findings)))
            return
        for finding in findings:
            self.append(finding)

    def extend_rows(self, source: FindingTable, positions: Iterable[int]) -> None:
        """Append the findings of ``source`` at ``positions`` without building them."""
        if self._order is not None:
            raise TypeError("a reordered view of findings is read-only")
        src = source._columns
        rows = source._order if source._order is not None else range(len(src.codes))
        columns = self._columns
        same_file = src.file == columns.file
        heads: dict[int, int] = {}
        for position in positions:
            row = rows[position]
            code = src.codes[row]
            index = heads.get(code >> (2 * _CODE_BITS))
            if index is None:
                head = src.heads[code >> (2 * _CODE_BITS)]
                index = heads[code >> (2 * _CODE_BITS)] = self._head(
                    head.control, head.title, head.plane, head.remediation, head.references
                )
            columns.codes.append((index << (2 * _CODE_BITS)) | (code & 0xFF))
            columns.resources.append(src.resources[row])
            columns.messages.append(src.messages[row])
            columns.evidence.append(src.evidence[row])
            location = src.locations[row]
            if type(location) is int and not same_file:
                location = FindingLocation.at(src.file or "", *unpack_position(location))
            columns.locations.append(location)

    def compact_evidence(self, start: int = 0) -> None:
        """Keep the evidence of rows ``start`` onward as JSON text where it is exactly JSON.

        Reading a finding (or its row) gives back an equal dict of the same types; it costs a
        JSON decode per read. For tables that hold many findings at once (a batched audit of
        thousands of BMCs): the text is ~5x smaller than the dicts and the observed values they
        reference.
        """
        if self._order is not None:
            raise TypeError("a reordered view of findings is read-only")
        column = self._columns.evidence
        # Evidence dicts shared by several rows become one text (kept alive here while ids count).
        done: dict[int, tuple[dict[str, Any], dict[str, Any] | str]] = {}
        for row in range(start, len(column)):
            value = column[row]
            if isinstance(value, str):
                continue
            if id(value) not in done:
                done[id(value)] = (value, as_text(value) or value)
            column[row] = done[id(value)][1]

    def clear_locations(self) -> None:
        """Forget every finding's location (findings about no file, e.g. a live scan's)."""
        if self._order is not None:
            raise TypeError("a reordered view of findings is read-only")
        self._columns.locations = [None] * len(self._columns.locations)

    def empty_like(self) -> FindingTable:
        """An empty table for rows of this one (same ``source_file``)."""
        return FindingTable(source_file=self._columns.file)

    # -- reading ----------------------------------------------------------------------------

    def _indices(self) -> Iterable[int]:
        return self._order if self._order is not None else range(len(self._columns.codes))

    def __len__(self) -> int:
        return len(self._order) if self._order is not None else len(self._columns.codes)

    def _finding(self, row: int) -> Finding:
        columns = self._columns
        code = columns.codes[row]
        head = columns.heads[code >> (2 * _CODE_BITS)]
        location = columns.locations[row]
        if type(location) is int:
            location = FindingLocation.at(columns.file or "", *unpack_position(location))
        return _unvalidated(
            {
                "control": head.control,
                "title": head.title,
                "plane": head.plane,
                "severity": _SEVERITIES[code & 0xF],
                "status": _STATUSES[(code >> _CODE_BITS) & 0xF],
                "resource": columns.resources[row],
                "message": columns.messages[row],
                "evidence": _evidence(columns.evidence[row]),
                "remediation": head.remediation,
                "references": head.references,
                "location": location,
            }
        )

    @overload
    def __getitem__(self, index: int) -> Finding: ...

    @overload
    def __getitem__(self, index: slice) -> FindingTable: ...

    def __getitem__(self, index: int | slice) -> Finding | FindingTable:
        rows = self._order if self._order is not None else range(len(self._columns.codes))
        if isinstance(index, slice):
            return self._view(array("I", rows[index]))
        return self._finding(rows[index])

    def __iter__(self) -> Iterator[Finding]:
        finding = self._finding
        for row in self._indices():
            yield finding(row)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FindingTable | tuple | list):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # findings hold dicts: never hashable

    def __repr__(self) -> str:
        return f"FindingTable({len(self)} findings)"

    def rows(self) -> Iterator[Row]:
        """(control, plane, status, severity, resource, message, evidence) of each finding, in
        order, without building the findings (counts, sort keys, filters)."""
        columns = self._columns
        heads, codes = columns.heads, columns.codes
        resources, messages, evidence = columns.resources, columns.messages, columns.evidence
        for row in self._indices():
            code = codes[row]
            head = heads[code >> (2 * _CODE_BITS)]
            yield (
                head.control,
                head.plane,
                _STATUSES[(code >> _CODE_BITS) & 0xF],
                _SEVERITIES[code & 0xF],
                resources[row],
                messages[row],
                _lazy(evidence[row]),
            )

    def _view(self, order: array[int]) -> FindingTable:
        view = FindingTable.__new__(FindingTable)
        view._columns = self._columns
        view._order = order
        return view

    def reordered(self, positions: Iterable[int]) -> FindingTable:
        """A read-only view of the findings at ``positions`` (indices into this sequence), in
        that order; it shares this table's storage."""
        rows = self._order if self._order is not None else range(len(self._columns.codes))
        return self._view(array("I", (rows[i] for i in positions)))

    def sorted_by(self, key: Callable[[Row], Any]) -> FindingTable:
        """A view sorted (stably) by ``key`` of each :meth:`rows` tuple."""
        keys = [key(row) for row in self.rows()]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        del keys
        return self.reordered(order)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Validated as ``tuple[Finding, ...]`` unless it is already a table (kept as it is);
        serialized as that tuple."""
        return kept_or_tuple_schema(cls, Finding, handler)


def _evidence(stored: dict[str, Any] | str) -> dict[str, Any]:
    return from_text(stored) if isinstance(stored, str) else stored


def _lazy(stored: dict[str, Any] | str) -> Mapping[str, Any]:
    return EvidenceText(stored) if isinstance(stored, str) else stored


def rows_of(findings: Iterable[Finding]) -> Iterator[Row]:
    """(control, plane, status, severity, resource, message, evidence) of each finding; from a
    :class:`FindingTable` without building the findings."""
    if isinstance(findings, FindingTable):
        return findings.rows()
    return (
        (f.control, f.plane, f.status, f.severity, f.resource, f.message, f.evidence)
        for f in findings
    )


Findings = Annotated[Sequence[Finding], FindingTable]
"""A run's findings: a tuple, or a :class:`FindingTable` (what the controls produce)."""


class AuditResult(Frozen):
    """What `gpufence audit` renders: the findings, the controls run, and the inputs.

    ``findings`` is a :class:`FindingTable` when the controls produced it (findings are built
    on access), else the tuple given.
    """

    findings: Findings
    controls: tuple[ControlInfo, ...]
    inputs: tuple[str, ...] = ()
    tool_version: str


def summarize(findings: Sequence[Finding], fail_on: Severity | None) -> Summary:
    """Count findings; the verdict is 'fail' when a FAIL at or above ``fail_on`` exists.

    It is 'incomplete' when nothing gating failed but a control at or above ``fail_on`` is
    NOT_EVALUATED (or ERROR on input it skipped): PASS is only claimed on facts seen.
    ``fail_on=None`` means "never": the verdict is always 'pass' (report only).
    """
    by_status = dict.fromkeys(Status, 0)
    failed = dict.fromkeys(Severity, 0)
    unevaluated: set[str] = set()
    for control, _plane, status, severity, _resource, _message, evidence in rows_of(findings):
        by_status[status] += 1
        if status is Status.FAIL:
            failed[severity] += 1
        unseen = status is Status.NOT_EVALUATED or (
            status is Status.ERROR and INTERNAL_ERROR_KEY not in evidence
        )
        if unseen and fail_on is not None and severity.rank >= fail_on.rank:
            unevaluated.add(control)
            blocked = evidence.get(BLOCKED_CONTROLS_KEY)
            if isinstance(blocked, list):
                unevaluated.update(str(c) for c in blocked)
    gating = fail_on is not None and any(n for sev, n in failed.items() if sev.rank >= fail_on.rank)
    verdict: Literal["pass", "incomplete", "fail"] = (
        "fail" if gating else "incomplete" if unevaluated else "pass"
    )
    return Summary(
        total=len(findings),
        by_status=by_status,
        failed_by_severity=failed,
        fail_on=fail_on.value if fail_on is not None else "never",
        verdict=verdict,
        unevaluated_controls=tuple(sorted(unevaluated)),
    )


class ToolInfo(Frozen):
    """The tool that produced a report (name, version), for SARIF and JSON output."""

    name: str
    version: str


class FindingsReport(Frozen):
    """The document `--format json` prints (schema ``gpufence.findings/v1``)."""

    schema_id: str = Field(alias="schema", pattern=r"^gpufence\.findings/v1$")
    tool: ToolInfo
    inputs: tuple[str, ...]
    findings: tuple[Finding, ...]
    summary: Summary

    model_config = Frozen.model_config | {"populate_by_name": True}
