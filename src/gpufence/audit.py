"""The audit pipeline as a library call: load -> controls -> (mutelist) -> result (public API).

The call path never returns to a lower layer: :func:`gpufence.load.cluster.load_cluster` builds the
frozen snapshot, :func:`gpufence.controls.audit_snapshot` evaluates the controls over it (pure),
and the mutelist is applied to the findings. Rendering is the caller's (the CLI uses
:mod:`gpufence.report`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gpufence.controls import ALL_CONTROLS, Control, audit_snapshot
from gpufence.errors import InputError
from gpufence.load.cluster import load_cluster
from gpufence.load.evidence import BadEvidence, EvidenceRules
from gpufence.load.kev import load_kev
from gpufence.model.context import DEFAULT_EXPORT_RULES_MAX_AGE_DAYS, AuditContext
from gpufence.model.findings import (
    AuditResult,
    Finding,
    FindingTable,
    Plane,
    Severity,
    Status,
)
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
    """One audit: the result, the snapshot it judged, and what the loader and mutelist reported."""

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
    as_of: dt.date | None = None,
    kev: Path | None = None,
    export_rules_max_age_days: int = DEFAULT_EXPORT_RULES_MAX_AGE_DAYS,
    rules: EvidenceRules | None = None,
) -> AuditRun:
    """Load the inventory and evidence, evaluate every control, then apply the mutelist.

    ``as_of`` judges date-dependent rules (export controls) as in force on that day; ``kev`` is a
    CISA KEV JSON file whose CVE ids add known-exploited flags to the vulnerability catalog.
    ``rules`` are the evidence rules (docs/evidence.md): 'now', age limits, skipping bad files;
    each file skipped under ``rules.skip_bad`` becomes an ERROR finding on its subject.
    """
    context = AuditContext(
        today=today or dt.date.today(),
        as_of=as_of,
        export_rules_max_age_days=export_rules_max_age_days,
        known_exploited=load_kev(kev) if kev is not None else None,
    )
    loaded = load_cluster(inventory, evidence, mutelist=mutelist, rules=rules)
    snapshot = loaded.snapshot.with_context(context)
    inputs = (*loaded.inputs, str(kev)) if kev is not None else loaded.inputs
    result = audit_snapshot(snapshot, controls, inputs)
    if loaded.bad_evidence:
        findings = FindingTable(result.findings)
        findings.extend(bad_evidence_finding(b) for b in loaded.bad_evidence)
        result = result.model_copy(update={"findings": findings})
    run = AuditRun(result=result, snapshot=snapshot, skipped_evidence=loaded.skipped_evidence)
    if loaded.mutelist is None:
        return run
    muted = apply_mutes(result.findings, loaded.mutelist, today or dt.date.today())
    return AuditRun(
        result=result.model_copy(update={"findings": muted.findings}),
        snapshot=snapshot,
        skipped_evidence=loaded.skipped_evidence,
        expired_mutes=muted.expired,
        unused_mutes=muted.unused,
    )
