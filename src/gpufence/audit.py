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
from gpufence.load.kev import load_kev
from gpufence.model.context import DEFAULT_EXPORT_RULES_MAX_AGE_DAYS, AuditContext
from gpufence.model.findings import AuditResult
from gpufence.model.mutelist import Mute, apply_mutes
from gpufence.model.snapshot import Snapshot

__all__ = ["AuditRun", "audit", "audit_snapshot"]


@dataclass(frozen=True)
class AuditRun:
    """One audit: the result, the snapshot it judged, and what the loader and mutelist reported."""

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
    context = AuditContext(
        today=today or dt.date.today(),
        as_of=as_of,
        export_rules_max_age_days=export_rules_max_age_days,
        known_exploited=load_kev(kev) if kev is not None else None,
    )
    loaded = load_cluster(inventory, evidence, mutelist=mutelist)
    snapshot = loaded.snapshot.with_context(context)
    inputs = (*loaded.inputs, str(kev)) if kev is not None else loaded.inputs
    result = audit_snapshot(snapshot, controls, inputs)
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
