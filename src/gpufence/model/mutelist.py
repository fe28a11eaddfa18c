"""Mutelist: accepted risks, each with a reason and an expiry (suppression done right).

A muted finding stays in every report with status MUTED and the reason; it no longer counts for
``--fail-on``. An expired entry mutes nothing and is reported, so accepted risks get re-reviewed.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from gpufence._frozen import Frozen
from gpufence.model.findings import Finding, FindingTable, Status

__all__ = ["Mute", "MuteOutcome", "Mutelist", "apply_mutes"]


class Mute(Frozen):
    """One accepted risk: the control and resource it mutes, why, and until when."""

    control: str = Field(description="Control ID, or a glob such as 'OOB-*'.")
    resource: str = Field(default="*", description="Resource path glob, e.g. 'node/lab-*'.")
    reason: str = Field(min_length=10, description="Why the risk is accepted (kept in reports).")
    expires: dt.date = Field(description="Last day the mute applies (ISO date).")
    owner: str | None = Field(default=None, description="Who accepted the risk.")

    def matches(self, finding: Finding) -> bool:
        """Whether this entry's control and resource globs match ``finding``."""
        return self.matches_parts(finding.control, finding.resource)

    def matches_parts(self, control: str, resource: str) -> bool:
        """Whether this entry's control and resource globs match this control and resource."""
        return fnmatch.fnmatchcase(control, self.control) and fnmatch.fnmatchcase(
            resource, self.resource
        )


class Mutelist(Frozen):
    """A mutelist file (version 1): the accepted risks."""

    version: Literal[1]
    mutes: tuple[Mute, ...] = ()


@dataclass(frozen=True)
class MuteOutcome:
    """Findings after muting, and the entries that expired or matched nothing."""

    findings: Sequence[Finding]
    """A :class:`FindingTable` (compact; findings built on access)."""
    expired: tuple[Mute, ...]
    """Entries past their expiry: they muted nothing."""
    unused: tuple[Mute, ...]
    """Active entries that matched no FAIL or NOT_EVALUATED finding (stale or mistyped)."""


_MUTABLE = (Status.FAIL, Status.NOT_EVALUATED)


def apply_mutes(findings: Iterable[Finding], mutelist: Mutelist, today: dt.date) -> MuteOutcome:
    """Mark FAIL/NOT_EVALUATED findings matched by an active entry as MUTED (pure)."""
    active = [m for m in mutelist.mutes if m.expires >= today]
    expired = tuple(m for m in mutelist.mutes if m.expires < today)
    used: set[int] = set()
    table = findings if isinstance(findings, FindingTable) else FindingTable(findings)
    out = table.empty_like()
    for position, (control, _, status, _, resource, _, _) in enumerate(table.rows()):
        index = next(
            (
                i
                for i, m in enumerate(active)
                if status in _MUTABLE and m.matches_parts(control, resource)
            ),
            None,
        )
        if index is None:
            out.extend_rows(table, (position,))
            continue
        used.add(index)
        mute = active[index]
        finding = table[position]
        evidence = {
            **finding.evidence,
            "muted_status": finding.status.value,
            "mute_reason": mute.reason,
            "mute_expires": mute.expires.isoformat(),
            **({"mute_owner": mute.owner} if mute.owner else {}),
        }
        out.append(finding.model_copy(update={"status": Status.MUTED, "evidence": evidence}))
    unused = tuple(m for i, m in enumerate(active) if i not in used)
    return MuteOutcome(out, expired, unused)
