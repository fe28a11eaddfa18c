"""The audit pipeline as a library call: inventory + evidence -> findings (public API)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gpufence.collect.fabric import with_fabric_evidence
from gpufence.controls import ALL_CONTROLS, Control, audit_snapshot
from gpufence.errors import InputError
from gpufence.load.evidence import BadEvidence, EvidenceRules, load_evidence
from gpufence.load.inventory import load_snapshot
from gpufence.load.mutelist import load_mutelist
from gpufence.load.referenced import referenced_evidence
from gpufence.model.findings import AuditResult, Finding, Plane, Severity, Status
from gpufence.model.mutelist import Mute, apply_mutes
from gpufence.model.snapshot import Snapshot

__all__ = ["AuditRun", "EvidenceRules", "audit", "audit_snapshot", "bad_evidence_finding"]

# The plane whose controls read each kind of evidence subject.
_PLANE_OF_SUBJECT = {
    "node": Plane.GPU,
    "pool": Plane.GPU,
    "bmc": Plane.OOB,
    "network": Plane.FAB,
    "fabric": Plane.FAB,
    "cluster": Plane.K8S,
    "secrets": Plane.DAT,
    "storage": Plane.DAT,
}


def bad_evidence_finding(bad: BadEvidence) -> Finding:
    """The ERROR finding for an evidence file skipped under ``--skip-bad-evidence``."""
    subject = bad.subject or f"evidence/{Path(bad.file).name}"
    return Finding(
        control="EVIDENCE",
        title="Evidence file rejected; its facts are unknown",
        plane=_PLANE_OF_SUBJECT.get(subject.split("/", 1)[0], Plane.CMP),
        severity=Severity.HIGH,
        status=Status.ERROR,
        resource=subject,
        message=f"evidence file skipped: {bad.error.diagnostics()}",
        evidence={"evidence_file": bad.file},
        remediation="Fix or re-collect the evidence file; see docs/evidence.md for the rules.",
    )


@dataclass(frozen=True)
class AuditRun:
    result: AuditResult
    snapshot: Snapshot
    skipped_evidence: tuple[InputError, ...]
    """Evidence files rejected and skipped under ``skip_bad`` (also ERROR findings)."""
    expired_mutes: tuple[Mute, ...] = ()
    unused_mutes: tuple[Mute, ...] = ()


def audit(
    inventory: Path,
    evidence: Sequence[Path] = (),
    controls: Iterable[Control] = ALL_CONTROLS,
    *,
    mutelist: Path | None = None,
    today: dt.date | None = None,
    rules: EvidenceRules | None = None,
) -> AuditRun:
    """Load the inventory and evidence, evaluate every control, then apply the mutelist.

    ``rules`` are the evidence rules (docs/evidence.md): 'now', age limits, skipping bad files.
    """
    mutes = load_mutelist(mutelist) if mutelist is not None else None
    loaded = load_evidence(evidence, rules)
    # Each InfiniBand network's partitions.conf (path in the inventory) becomes evidence too.
    snapshot = with_fabric_evidence(load_snapshot(inventory, loaded.documents, stale=loaded.stale))
    referenced = referenced_evidence(snapshot)
    if referenced:
        snapshot = snapshot.with_evidence(referenced)
    documents = [*loaded.documents, *referenced]
    inputs = [str(inventory), *sorted({origin for _, origin in documents})]
    result = audit_snapshot(snapshot, controls, inputs)
    if loaded.bad:
        result = result.model_copy(
            update={"findings": (*result.findings, *(bad_evidence_finding(b) for b in loaded.bad))}
        )
    skipped = tuple(b.error for b in loaded.bad)
    if mutes is None:
        return AuditRun(result=result, snapshot=snapshot, skipped_evidence=skipped)
    muted = apply_mutes(result.findings, mutes, today or dt.date.today())
    return AuditRun(
        result=result.model_copy(update={"findings": muted.findings}),
        snapshot=snapshot,
        skipped_evidence=skipped,
        expired_mutes=muted.expired,
        unused_mutes=muted.unused,
    )
