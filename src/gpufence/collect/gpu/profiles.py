"""MIG profile names: from NVML profile info (go-nvlib rules), or derived when only sizes are known.

NVML reports each GPU-instance profile with a name (``MIG 3g.40gb``) and its slice count and
memory size. ``nvidia-smi -q``/``-q -x`` print neither name nor profile for a MIG device, only its
GPU-instance ID, multiprocessor count and memory; ``nvidia-smi -L`` prints the names. Without
``-L`` the names are derived here against the silicon catalog, and only when exactly one geometry
fits; otherwise the caller reports the geometry as not observed.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from gpufence.catalog import GpuModel, MigProfile, normalize_mig_profile_name

__all__ = [
    "GiSize",
    "derive_profiles",
    "mig_memory_gb",
    "name_from_profile_info",
]

# NVML_GPU_INSTANCE_PROFILE_* enum value -> name suffix (go-nvlib pkg/nvlib/device/mig_profile.go):
# REV1 => +me, ALL_ME => +me.all, GFX => +gfx, NO_ME => -me; REV2 (1g.2M) has no suffix.
_ATTRIBUTE_BY_ENUM = {
    0x7: "+me",
    0x8: "+me",
    0xA: "+gfx",
    0xB: "+gfx",
    0xC: "+gfx",
    0xD: "-me",
    0xE: "-me",
    0xF: "+me.all",
    0x10: "+me.all",
    0x11: "+gfx",
}

_ONE_GIB = 1024**3
_ONE_MIB = 1024**2


def mig_memory_gb(total_device_bytes: int, profile_memory_mb: int) -> int:
    """The memory figure of a profile name: go-nvlib ``getMigMemorySizeGB``.

    The fraction of device memory, rounded up to eighths, times the device memory in whole GB.
    """
    fraction = profile_memory_mb * _ONE_MIB / total_device_bytes
    fraction = math.ceil(fraction * 8) / 8
    total_gb = (total_device_bytes + _ONE_GIB - 1) // _ONE_GIB
    return round(fraction * total_gb)


def name_from_profile_info(
    reported_name: str, slice_count: int, memory_mb: int, total_device_bytes: int, enum: int
) -> str:
    """Profile name from NVML: the name the driver reports, else go-nvlib's construction."""
    if reported_name.strip():
        return normalize_mig_profile_name(reported_name)
    gb = mig_memory_gb(total_device_bytes, memory_mb)
    return f"{slice_count}g.{gb}gb{_ATTRIBUTE_BY_ENUM.get(enum, '')}"


@dataclass(frozen=True)
class GiSize:
    """What nvidia-smi -q tells about one GPU instance (summed over its compute instances)."""

    gpu_instance_id: int
    memory_mib: int
    multiprocessors: int
    ofa_count: int | None


def _candidates(model: GpuModel, gi: GiSize, total_mib: int) -> list[MigProfile]:
    grid = model.mig_grid_units or 8
    # A MIG instance's memory is at most its share of the grid; the small tolerance absorbs the
    # driver's reserved memory, which makes the observed fraction a little smaller than the share.
    units = math.ceil(gi.memory_mib / total_mib * grid - 0.02)
    full = max(p.compute_slices for p in model.mig_profiles)
    out = []
    for profile in model.mig_profiles:
        if profile.memory_units != units:
            continue
        media_rich = profile.attribute in ("+me", "+me.all")
        # +me profiles own the optical-flow accelerator; plain partial profiles have none.
        if gi.ofa_count is not None and profile.compute_slices < full:
            if media_rich != (gi.ofa_count > 0):
                continue
        out.append(profile)
    return out


def _consistent(assignment: Sequence[MigProfile], gis: Sequence[GiSize], model: GpuModel) -> bool:
    full = max(p.compute_slices for p in model.mig_profiles)
    if sum(p.compute_slices for p in assignment) > full:
        return False
    counts = Counter(p.name for p in assignment)
    if any(counts[p.name] > p.max_count for p in assignment):
        return False
    # More compute slices always means more multiprocessors (every family in the notes).
    for (p1, g1), (p2, g2) in itertools.combinations(zip(assignment, gis, strict=True), 2):
        if p1.compute_slices > p2.compute_slices and g1.multiprocessors <= g2.multiprocessors:
            return False
        if p2.compute_slices > p1.compute_slices and g2.multiprocessors <= g1.multiprocessors:
            return False
    return True


def derive_profiles(
    model: GpuModel | None, total_mib: int | None, gis: Sequence[GiSize]
) -> dict[int, str] | str:
    """GI id -> profile name when exactly one geometry fits the sizes; else why not (a string)."""
    if model is None:
        return "the GPU model is not in the silicon catalog"
    if not model.mig_profiles:
        return f"the catalog lists no MIG profiles for {model.name}"
    if not total_mib:
        return "the GPU's total memory is not known"
    options = [_candidates(model, gi, total_mib) for gi in gis]
    for gi, found in zip(gis, options, strict=True):
        if not found:
            return (
                f"no {model.name} profile has the size of GPU instance {gi.gpu_instance_id} "
                f"({gi.memory_mib} MiB)"
            )
    if math.prod(len(o) for o in options) > 50_000:
        return "too many candidate geometries to tell them apart"
    fits = {
        tuple(p.name for p in assignment)
        for assignment in itertools.product(*options)
        if _consistent(assignment, gis, model)
    }
    if len(fits) != 1:
        shown = "; ".join(sorted(", ".join(f) for f in fits)) or "none"
        return (
            "nvidia-smi -q prints no MIG profile names and the instance sizes fit "
            f"{len(fits)} geometries ({shown}); add `nvidia-smi -L` output or use NVML"
        )
    names = next(iter(fits))
    return {gi.gpu_instance_id: name for gi, name in zip(gis, names, strict=True)}
