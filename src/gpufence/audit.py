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
from gpufence.load.mutelist import load_mutelist
from gpufence.load.referenced import referenced_evidence
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
) -> AuditRun:
    """Load the inventory and evidence, evaluate every control, then apply the mutelist."""
    mutes = load_mutelist(mutelist) if mutelist is not None else None
    loaded = load_evidence(evidence)
    # Each InfiniBand network's partitions.conf (path in the inventory) becomes evidence too.
    snapshot = with_fabric_evidence(load_snapshot(inventory, loaded.documents))
    referenced = referenced_evidence(snapshot)
    if referenced:
        snapshot = snapshot.with_evidence(referenced)
    documents = [*loaded.documents, *referenced]
    inputs = [str(inventory), *sorted({origin for _, origin in documents})]
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
