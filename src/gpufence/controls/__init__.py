"""Controls: pure functions over the snapshot, grouped by plane (one package or module a plane).

Every :class:`Control` defined in a module under this package is registered by discovery: adding
a control touches its plane module (and its test), nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Sequence

from gpufence import __version__
from gpufence.controls.engine import Control, ControlMeta, Outcome, control, run_controls
from gpufence.model.findings import AuditResult, Plane
from gpufence.model.snapshot import Snapshot

__all__ = [
    "ALL_CONTROLS",
    "Control",
    "ControlMeta",
    "Outcome",
    "audit_snapshot",
    "control",
    "controls_by_id",
    "run_controls",
]

# Modules of this package that hold no controls (the engine and shared helpers).
_INFRASTRUCTURE = frozenset({"batches", "engine", "reference"})


def _collect() -> tuple[Control, ...]:
    found: dict[int, Control] = {}
    for info in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf.startswith("_") or leaf in _INFRASTRUCTURE:
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, Control):
                found[id(value)] = value
    ids = [c.id for c in found.values()]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise RuntimeError(f"duplicate control ids: {sorted(duplicates)}")
    planes = list(Plane)
    return tuple(sorted(found.values(), key=lambda c: (planes.index(c.meta.plane), c.id)))


ALL_CONTROLS: tuple[Control, ...] = _collect()
"""Every control, ordered by plane then id."""


def controls_by_id() -> dict[str, Control]:
    """Every control by its id (``GPU-001`` ...)."""
    return {c.id: c for c in ALL_CONTROLS}


def audit_snapshot(
    snapshot: Snapshot,
    controls: Iterable[Control] = ALL_CONTROLS,
    inputs: Sequence[str] = (),
) -> AuditResult:
    """Run ``controls`` over an already-built snapshot (pure: no I/O module is imported)."""
    selected = tuple(controls)
    return AuditResult(
        findings=run_controls(snapshot, selected),
        controls=tuple(c.meta.info() for c in selected),
        inputs=tuple(inputs) or (snapshot.source_file,),
        tool_version=__version__,
    )
