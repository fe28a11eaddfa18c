"""The one way in: inventory + evidence files + referenced files (+ mutelist) -> a loaded cluster.

Every command that judges a cluster loads it here, so the evidence rules, the referenced files and
the inventory checks apply the same way to `audit`, `fabric check` and `plan`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gpufence.errors import InputError
from gpufence.load.evidence import BadEvidence, EvidenceRules, load_evidence
from gpufence.load.inventory import load_snapshot
from gpufence.load.mutelist import load_mutelist
from gpufence.load.referenced import referenced_evidence
from gpufence.model.mutelist import Mutelist
from gpufence.model.snapshot import Snapshot

__all__ = ["LoadedCluster", "load_cluster"]


@dataclass(frozen=True)
class LoadedCluster:
    """What the loading stage produced: the frozen snapshot and what it read on the way."""

    snapshot: Snapshot
    inputs: tuple[str, ...]
    """The inventory, then every evidence or referenced file that contributed a document."""
    skipped_evidence: tuple[InputError, ...]
    """Evidence files rejected and skipped (only under ``rules.skip_bad``; else they raise)."""
    mutelist: Mutelist | None = None
    bad_evidence: tuple[BadEvidence, ...] = ()
    """The skipped files with the subject each names (the audit reports them as ERROR)."""


def load_cluster(
    inventory: Path,
    evidence: Sequence[Path] = (),
    *,
    mutelist: Path | None = None,
    rules: EvidenceRules | None = None,
) -> LoadedCluster:
    """Load the inventory, the evidence files and every file the inventory references.

    ``rules`` are the evidence rules of docs/evidence.md ('now', age limits, skipping bad files).
    """
    mutes = load_mutelist(mutelist) if mutelist is not None else None
    loaded = load_evidence(evidence, rules)
    snapshot = load_snapshot(inventory, loaded.documents, stale=loaded.stale)
    referenced = referenced_evidence(snapshot)
    if referenced:
        snapshot = snapshot.with_evidence(referenced)
    origins = sorted({origin for _, origin in (*loaded.documents, *referenced)})
    return LoadedCluster(
        snapshot=snapshot,
        inputs=(str(inventory), *origins),
        skipped_evidence=tuple(b.error for b in loaded.bad),
        mutelist=mutes,
        bad_evidence=loaded.bad,
    )
