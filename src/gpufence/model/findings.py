"""The finding model: the public contract of every audit (see DESIGN.md)."""

from __future__ import annotations

import hashlib
import sys
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, computed_field

from gpufence._frozen import Frozen

__all__ = [
    "BLOCKED_CONTROLS_KEY",
    "INTERNAL_ERROR_KEY",
    "AuditResult",
    "ControlInfo",
    "Finding",
    "FindingLocation",
    "FindingsReport",
    "Plane",
    "Severity",
    "Status",
    "Summary",
    "ToolInfo",
    "fingerprint_of",
    "is_internal_error",
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
        finding = cls.__new__(cls)
        values = {
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


class AuditResult(Frozen):
    """What `gpufence audit` renders: the findings, the controls run, and the inputs."""

    findings: tuple[Finding, ...]
    controls: tuple[ControlInfo, ...]
    inputs: tuple[str, ...] = ()
    tool_version: str


def summarize(findings: tuple[Finding, ...] | list[Finding], fail_on: Severity | None) -> Summary:
    """Count findings; the verdict is 'fail' when a FAIL at or above ``fail_on`` exists.

    It is 'incomplete' when nothing gating failed but a control at or above ``fail_on`` is
    NOT_EVALUATED (or ERROR on input it skipped): PASS is only claimed on facts seen.
    ``fail_on=None`` means "never": the verdict is always 'pass' (report only).
    """
    by_status = dict.fromkeys(Status, 0)
    failed = dict.fromkeys(Severity, 0)
    unevaluated: set[str] = set()
    for f in findings:
        by_status[f.status] += 1
        if f.status is Status.FAIL:
            failed[f.severity] += 1
        unseen = f.status is Status.NOT_EVALUATED or (
            f.status is Status.ERROR and not is_internal_error(f)
        )
        if unseen and fail_on is not None and f.severity.rank >= fail_on.rank:
            unevaluated.add(f.control)
            blocked = f.evidence.get(BLOCKED_CONTROLS_KEY)
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
