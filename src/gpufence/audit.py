"""The audit pipeline as a library call: inventory + evidence -> findings (public API)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gpufence.collect.fabric import with_fabric_evidence
from gpufence.controls import ALL_CONTROLS, Control, audit_snapshot
from gpufence.errors import InputError
from gpufence.load.evidence import load_evidence
from gpufence.load.inventory import load_snapshot
from gpufence.load.kev import load_kev
from gpufence.load.mutelist import load_mutelist
from gpufence.load.referenced import referenced_evidence
from gpufence.model.context import DEFAULT_EXPORT_RULES_MAX_AGE_DAYS, AuditContext
from gpufence.model.findings import AuditResult
from gpufence.model.mutelist import Mute, apply_mutes
from gpufence.model.snapshot import Snapshot

__all__ = ["AuditRun", "audit", "audit_snapshot"]


@dataclass(frozen=True)
class AuditRun:
    result: AuditResult
    snapshot: Snapshot
    skipped_evidence: tuple[InputError, ...]
    """Evidence files that could not be read and were skipped (reported, never fatal)."""
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
) -> AuditRun:
    """Load the inventory and evidence, evaluate every control, then apply the mutelist.

    ``as_of`` judges date-dependent rules (export controls) as in force on that day; ``kev`` is a
    CISA KEV JSON file whose CVE ids add known-exploited flags to the vulnerability catalog.
    """
    mutes = load_mutelist(mutelist) if mutelist is not None else None
    context = AuditContext(
        today=today or dt.date.today(),
        as_of=as_of,
        export_rules_max_age_days=export_rules_max_age_days,
        known_exploited=load_kev(kev) if kev is not None else None,
    )
    loaded = load_evidence(evidence)
    # Each InfiniBand network's partitions.conf (path in the inventory) becomes evidence too.
    snapshot = with_fabric_evidence(load_snapshot(inventory, loaded.documents))
    referenced = referenced_evidence(snapshot)
    if referenced:
        snapshot = snapshot.with_evidence(referenced)
    snapshot = snapshot.with_context(context)
    documents = [*loaded.documents, *referenced]
    inputs = [str(inventory), *sorted({origin for _, origin in documents})]
    if kev is not None:
        inputs.append(str(kev))
    result = audit_snapshot(snapshot, controls, inputs)
    if mutes is None:
        return AuditRun(result=result, snapshot=snapshot, skipped_evidence=loaded.problems)
    muted = apply_mutes(result.findings, mutes, today or dt.date.today())
    return AuditRun(
        result=result.model_copy(update={"findings": muted.findings}),
        snapshot=snapshot,
        skipped_evidence=loaded.problems,
        expired_mutes=muted.expired,
        unused_mutes=muted.unused,
    )
