"""Controls: pure functions over the snapshot, grouped by plane."""

from __future__ import annotations

from types import ModuleType

from gpufence.controls import (
    attestation,
    cc,
    cmp,
    data,
    fabric,
    fw,
    gpu,
    gpu_observed,
    k8s,
    oob,
    oob_scan,
)
from gpufence.controls.engine import Control, ControlMeta, Outcome, control, run_controls
from gpufence.model.findings import Plane

__all__ = [
    "ALL_CONTROLS",
    "Control",
    "ControlMeta",
    "Outcome",
    "control",
    "controls_by_id",
    "run_controls",
]

_PLANE_MODULES: tuple[ModuleType, ...] = (
    gpu,
    gpu_observed,
    cc,
    attestation,
    oob,
    oob_scan,
    fw,
    fabric,
    k8s,
    data,
    cmp,
)


def _collect() -> tuple[Control, ...]:
    found = [
        value
        for module in _PLANE_MODULES
        for value in vars(module).values()
        if isinstance(value, Control)
    ]
    ids = [c.id for c in found]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise RuntimeError(f"duplicate control ids: {sorted(duplicates)}")
    planes = list(Plane)
    return tuple(sorted(found, key=lambda c: (planes.index(c.meta.plane), c.id)))


ALL_CONTROLS: tuple[Control, ...] = _collect()
"""Every control, ordered by plane then id."""


def controls_by_id() -> dict[str, Control]:
    return {c.id: c for c in ALL_CONTROLS}
