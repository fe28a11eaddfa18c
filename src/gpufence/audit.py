"""The audit pipeline as a library call: inventory + evidence -> findings (public API)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gpufence import __version__
from gpufence.collect.evidence import load_evidence
from gpufence.collect.inventory import load_snapshot
from gpufence.controls import ALL_CONTROLS, Control, run_controls
from gpufence.errors import InputError
from gpufence.model.findings import AuditResult
from gpufence.model.snapshot import Snapshot

__all__ = ["AuditRun", "audit", "audit_snapshot"]


@dataclass(frozen=True)
class AuditRun:
    result: AuditResult
    snapshot: Snapshot
    skipped_evidence: tuple[InputError, ...]
    """Evidence files that could not be read and were skipped (reported, never fatal)."""


def audit_snapshot(
    snapshot: Snapshot,
    controls: Iterable[Control] = ALL_CONTROLS,
    inputs: Sequence[str] = (),
) -> AuditResult:
    """Run ``controls`` over an already-built snapshot (pure)."""
    selected = tuple(controls)
    return AuditResult(
        findings=run_controls(snapshot, selected),
        controls=tuple(c.meta.info() for c in selected),
        inputs=tuple(inputs) or (snapshot.source_file,),
        tool_version=__version__,
    )


def audit(
    inventory: Path,
    evidence: Sequence[Path] = (),
    controls: Iterable[Control] = ALL_CONTROLS,
) -> AuditRun:
    """Load the inventory and evidence, then evaluate every control."""
    loaded = load_evidence(evidence)
    snapshot = load_snapshot(inventory, loaded.documents)
    inputs = [str(inventory), *sorted({origin for _, origin in loaded.documents})]
    return AuditRun(
        result=audit_snapshot(snapshot, controls, inputs),
        snapshot=snapshot,
        skipped_evidence=loaded.problems,
    )
