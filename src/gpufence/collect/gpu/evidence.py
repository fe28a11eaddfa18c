"""Turn a :class:`GpuReport` (from NVML or nvidia-smi) into one evidence document per node.

Node-level facts are the ones the snapshot understands (``gpu_state.*``); a fact that does not
hold for every GPU alike, or that could not be read, goes to ``not_observed`` with the reason.
Per-GPU detail goes to ``raw`` for reports and for the GPU-observed controls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import JsonValue

from gpufence.model.evidence import EvidenceDocument, Unobserved
from gpufence.model.observed_gpu import GpuRecord, GpuReport

__all__ = ["gpu_evidence", "node_facts"]

# NVML virtualization modes in which the GPU is served through vGPU (guest or host).
_VGPU_MODES = {"vgpu", "host vgpu", "host vsga"}
_NOT_VGPU_MODES = {"none", "pass-through", "passthrough"}


def _uniform(
    gpus: Sequence[GpuRecord], what: str, read: Callable[[GpuRecord], object]
) -> tuple[object, str | None]:
    """The one value all GPUs share, or (None, why not)."""
    if not gpus:
        return None, "no GPU was found on the node"
    values = [read(g) for g in gpus]
    missing = [g.index for g, v in zip(gpus, values, strict=True) if v is None]
    if missing:
        reasons = {g.unread.get(what) for g in gpus if g.index in missing} - {None}
        why = "; ".join(sorted(r for r in reasons if r)) or "not reported"
        return None, f"{what} could not be read on GPU(s) {missing}: {why}"
    return values[0], None


def _mig(gpus: Sequence[GpuRecord]) -> tuple[object, str | None]:
    if not gpus:
        return None, "no GPU was found on the node"
    if any(g.mig_mode is None for g in gpus):
        return _uniform(gpus, "mig_mode", lambda g: g.mig_mode)
    # 'MIG on' for a node means on for every GPU; a GPU without MIG is not in MIG mode.
    return all(g.mig_mode == "enabled" for g in gpus), None


def _ecc(gpus: Sequence[GpuRecord]) -> tuple[object, str | None]:
    if not gpus:
        return None, "no GPU was found on the node"
    if any(g.ecc_mode is None for g in gpus):
        return _uniform(gpus, "ecc_mode", lambda g: g.ecc_mode)
    return all(g.ecc_mode == "enabled" for g in gpus), None


def _vgpu(gpus: Sequence[GpuRecord]) -> tuple[object, str | None]:
    modes = [(g.virtualization_mode or "").lower() for g in gpus]
    if not gpus:
        return None, "no GPU was found on the node"
    if any(m in _VGPU_MODES for m in modes):
        return True, None
    if all(m in _NOT_VGPU_MODES for m in modes):
        return False, None
    return None, f"unrecognised or unread virtualization mode(s): {sorted(set(modes))}"


def _geometry(gpus: Sequence[GpuRecord]) -> tuple[object, str | None]:
    if not gpus:
        return None, "no GPU was found on the node"
    if any(g.mig_mode is None for g in gpus):
        return None, "the MIG mode could not be read on every GPU"
    enabled = [g for g in gpus if g.mig_mode == "enabled"]
    if not enabled:
        return [], None
    if len(enabled) != len(gpus):
        off = [g.index for g in gpus if g.mig_mode != "enabled"]
        return None, f"MIG is on for some GPUs only (off on GPU(s) {off}); see raw.gpus"
    per_gpu: list[list[str]] = []
    for gpu in gpus:
        # One entry per GPU instance: compute-instance splits share their GI.
        by_gi: dict[object, str | None] = {}
        for n, inst in enumerate(gpu.mig_instances):
            key = inst.gpu_instance_id if inst.gpu_instance_id is not None else ("ci", n)
            by_gi.setdefault(key, inst.profile)
        if any(name is None for name in by_gi.values()):
            why = gpu.unread.get("mig_instances.profile", "profile names were not reported")
            return None, f"MIG profiles on GPU {gpu.index} are unknown: {why}"
        per_gpu.append(sorted(name for name in by_gi.values() if name))
    if any(g != per_gpu[0] for g in per_gpu):
        shown = "; ".join(
            f"GPU {g.index}: {','.join(p) or '-'}" for g, p in zip(gpus, per_gpu, strict=True)
        )
        return None, f"GPUs of the node run different MIG geometries ({shown}); see raw.gpus"
    return per_gpu[0], None


def node_facts(report: GpuReport) -> tuple[dict[str, JsonValue], list[Unobserved]]:
    """The node-level ``gpu_state.*`` facts of ``report`` and the ones it could not observe."""
    observed: dict[str, JsonValue] = {}
    missing: list[Unobserved] = []
    gpus = report.gpus
    cc = report.cc
    candidates: dict[str, tuple[object, str | None]] = {
        "mig": _mig(gpus),
        "ecc": _ecc(gpus),
        "vgpu": _vgpu(gpus),
        "mig_geometry": _geometry(gpus),
        "cc_mode": (cc.mode, None if cc.mode else cc.unread.get("mode", "CC mode not read")),
        "cc_multi_gpu": (
            cc.multi_gpu,
            None if cc.multi_gpu else cc.unread.get("multi_gpu", "multi-GPU CC mode not read"),
        ),
    }
    for name, (value, why) in candidates.items():
        if value is None:
            missing.append(Unobserved(fact=f"gpu_state.{name}", reason=why or "not observed"))
        else:
            observed[f"gpu_state.{name}"] = value  # type: ignore[assignment]
    return observed, missing


def _raw(report: GpuReport) -> dict[str, JsonValue]:
    dumped: dict[str, Any] = report.model_dump(mode="json", exclude={"collector"})
    return dumped


def gpu_evidence(
    report: GpuReport, node: str, collected_at: datetime | None = None
) -> EvidenceDocument:
    """One evidence document about ``node/<node>`` from ``report``."""
    observed, missing = node_facts(report)
    return EvidenceDocument.new(
        subject=f"node/{node}",
        collector=report.collector,
        observed=observed,
        not_observed=missing,
        raw=_raw(report),
        collected_at=collected_at,
    )
