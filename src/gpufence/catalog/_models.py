"""Typed rows of the silicon catalog: one :class:`GpuModel` per GPU product, with its MIG profiles.

The models validate every row strictly, so a typo in ``data/gpus.yaml`` fails at load time
instead of producing a wrong isolation plan or audit verdict later.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from gpufence._frozen import Frozen

__all__ = [
    "Architecture",
    "CcLevel",
    "Confidence",
    "FormFactor",
    "GpuModel",
    "MigProfile",
    "normalize_mig_profile_name",
]


class CcLevel(StrEnum):
    """Confidential-computing class of a part (notes §1 legend).

    ``single-gpu``: one GPU passed through to one CVM (NVIDIA "SPT"). ``protected-pcie``: Hopper HGX
    multi-GPU Protected PCIe (all GPUs + NVSwitches in one CVM, NVLink not encrypted).
    ``multi-gpu-tee-io``: Blackwell multi-GPU passthrough with NVLink encryption (NVIDIA "MPT").
    """

    NONE = "none"
    SINGLE_GPU = "single-gpu"
    PROTECTED_PCIE = "protected-pcie"
    MULTI_GPU_TEE_IO = "multi-gpu-tee-io"

    @property
    def supports_cc(self) -> bool:
        """The part can run inside a confidential VM at all."""
        return self is not CcLevel.NONE

    @property
    def supports_multi_gpu_cc(self) -> bool:
        """Several GPUs of one node can serve one CVM with CC on (PPCIe or MPT/NVLE)."""
        return self in (CcLevel.PROTECTED_PCIE, CcLevel.MULTI_GPU_TEE_IO)


class Architecture(StrEnum):
    AMPERE = "ampere"
    ADA = "ada"
    HOPPER = "hopper"
    BLACKWELL = "blackwell"


class FormFactor(StrEnum):
    SXM = "sxm"
    PCIE = "pcie"
    # PCIe card sold with an NVLink bridge option (H100 NVL, H200 NVL).
    NVL = "nvl"
    # GPU + Grace CPU module (GB200, GB300).
    SUPERCHIP = "superchip"


class Confidence(StrEnum):
    """Whether a MIG profile's placements were seen in real ``nvidia-smi mig -lgipp`` output."""

    OBSERVED = "observed"
    INFERRED = "inferred"


# "3g.40gb", "1g.10gb+me", "1g.24gb+me.all", "2g.48gb-me", "4g.96gb+gfx" (go-nvlib mig_profile.go).
_PROFILE_NAME = re.compile(
    r"(?P<g>[1-8])g\.(?P<mem>[1-9][0-9]*)gb(?P<attr>\+me\.all|\+me|\+gfx|-me)?"
)
_PCI_ID = re.compile(r"0x[0-9A-F]{4}")
_KEY = r"^[A-Z0-9]+(-[A-Z0-9]+)*$"


def normalize_mig_profile_name(name: str) -> str:
    """Canonical profile name: lower case, ``MIG `` prefix dropped, mig-parted config-name suffixes
    (``.me``, ``.me.all``, ``.gfx``) turned into the device form (``+me`` ...).

    ``all-1g.5gb.me`` in mig-parted selects the device profile ``1g.5gb+me``; nvidia-smi -L prints
    ``MIG 1g.10gb Device 0``.
    """
    text = name.strip().lower()
    for prefix in ("mig ", "mig-"):
        if text.startswith(prefix):
            text = text[len(prefix) :].strip()
    for dotted, plus in ((".me.all", "+me.all"), (".me", "+me"), (".gfx", "+gfx")):
        if text.endswith(dotted):
            return text[: -len(dotted)] + plus
    return text


class MigProfile(Frozen):
    """One GPU-instance profile of one GPU model, with its placement rule on the device's grid."""

    name: str
    compute_slices: int = Field(ge=1, le=8)
    # Size of an instance on the placement grid (memory slices; 3 units per slice on RTX PRO 6000).
    memory_units: int = Field(ge=1)
    max_count: int = Field(ge=1)
    # Allowed placement start indices (`nvidia-smi mig -lgipp` "{...}:size").
    starts: tuple[int, ...]
    # nvidia-smi / NVML profile ID: family specific, never a key across models (notes §0.3).
    smi_id: int = Field(ge=0)
    nvml_profile: str = Field(pattern=r"^GPU_INSTANCE_PROFILE_[0-9A-Z_]+$")
    confidence: Confidence

    @field_validator("name")
    @classmethod
    def _name_format(cls, value: str) -> str:
        if not _PROFILE_NAME.fullmatch(value):
            raise ValueError(f"MIG profile name {value!r} is not of the form <N>g.<M>gb[+me|...]")
        return value

    @field_validator("starts")
    @classmethod
    def _starts_sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("a profile needs at least one placement start")
        if any(s < 0 for s in value) or list(value) != sorted(set(value)):
            raise ValueError(f"starts must be unique, sorted and >= 0, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MigProfile:
        match = _PROFILE_NAME.fullmatch(self.name)
        assert match is not None  # checked by the field validator
        if int(match["g"]) != self.compute_slices:
            raise ValueError(
                f"{self.name}: name says {match['g']}g but compute_slices is {self.compute_slices}"
            )
        # Each instance needs its own start; more instances than starts is impossible.
        if self.max_count > len(self.starts):
            raise ValueError(
                f"{self.name}: max_count {self.max_count} > {len(self.starts)} placements"
            )
        return self

    @property
    def memory_gb(self) -> int:
        """The memory figure in the profile name (``3g.40gb`` -> 40)."""
        match = _PROFILE_NAME.fullmatch(self.name)
        assert match is not None
        return int(match["mem"])

    @property
    def attribute(self) -> str | None:
        """Media/graphics attribute suffix (``+me``, ``+me.all``, ``+gfx``, ``-me``) or None."""
        match = _PROFILE_NAME.fullmatch(self.name)
        assert match is not None
        return match["attr"]


class GpuModel(Frozen):
    """One GPU product and what it offers for tenant isolation."""

    key: str = Field(pattern=_KEY)
    name: str = Field(min_length=1)
    architecture: Architecture
    form_factor: FormFactor
    memory_gb: int = Field(ge=1)
    pci_device_ids: tuple[str, ...] = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    mig_max_instances: int = Field(ge=0)
    mig_grid_units: int | None = Field(default=None, ge=1)
    # Name of the placement-grid family in data/mig_families.yaml (None without MIG).
    mig_family: str | None = None
    mig_profiles: tuple[MigProfile, ...] = ()
    vgpu: bool
    cc: CcLevel
    ecc: bool
    ecc_default_on: bool | None = None
    consumer: bool
    export_controlled: bool
    export_note: str | None = None
    source: str = Field(min_length=1)
    notes: tuple[str, ...] = ()

    @field_validator("pci_device_ids")
    @classmethod
    def _pci_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pci in value:
            if not _PCI_ID.fullmatch(pci):
                raise ValueError(
                    f"PCI device ID {pci!r} must look like '0x20B0' (4 upper-case hex digits)"
                )
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate PCI device IDs in {list(value)}")
        return value

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        folded = [a.casefold() for a in value]
        if any(not a.strip() for a in value):
            raise ValueError("empty alias")
        if len(set(folded)) != len(folded):
            raise ValueError(f"duplicate aliases (case-insensitive) in {list(value)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> GpuModel:
        self._check_mig()
        if self.consumer and (self.mig_max_instances or self.vgpu or self.cc is not CcLevel.NONE):
            raise ValueError("a consumer (GeForce) part cannot offer MIG, vGPU or CC")
        if self.cc.supports_cc and self.architecture not in (
            Architecture.HOPPER,
            Architecture.BLACKWELL,
        ):
            # gpu-admin-tools: is_cc_query_supported = is_hopper_plus.
            raise ValueError(
                f"CC {self.cc.value} on {self.architecture.value}: CC needs Hopper or later"
            )
        if not self.ecc and self.ecc_default_on is not None:
            raise ValueError("ecc_default_on must be null when the part has no ECC")
        return self

    def _check_mig(self) -> None:
        if self.mig_max_instances == 0:
            if self.mig_profiles or self.mig_grid_units is not None or self.mig_family is not None:
                raise ValueError("mig_max_instances is 0 but MIG profiles/grid/family are set")
            return
        if not self.mig_profiles or self.mig_grid_units is None or self.mig_family is None:
            raise ValueError("a MIG-capable part needs mig_profiles, mig_grid_units and mig_family")
        for field in ("name", "smi_id", "nvml_profile"):
            values = [getattr(p, field) for p in self.mig_profiles]
            if len(set(values)) != len(values):
                raise ValueError(f"duplicate MIG profile {field} in {values}")
        grid = self.mig_grid_units
        for p in self.mig_profiles:
            if p.starts[-1] + p.memory_units > grid:
                raise ValueError(
                    f"{p.name}: placement at {p.starts[-1]} overruns the {grid}-unit grid"
                )
            # All instances of one profile together cannot use more compute slices than exist.
            if p.compute_slices * p.max_count > self.mig_max_instances:
                raise ValueError(f"{p.name}: {p.max_count} x {p.compute_slices}g exceeds the GPU")
        # memory_gb is the figure NVIDIA puts in the full-GPU profile name (7g.80gb, 4g.96gb).
        full = max(self.mig_profiles, key=lambda p: (p.compute_slices, p.memory_units))
        if full.memory_gb != self.memory_gb:
            raise ValueError(f"memory_gb {self.memory_gb} != full-GPU profile {full.name}")
        most = max(p.max_count for p in self.mig_profiles)
        if most != self.mig_max_instances:
            raise ValueError(
                f"mig_max_instances {self.mig_max_instances} != largest profile max_count {most}"
            )

    @property
    def mig_capable(self) -> bool:
        return self.mig_max_instances > 0

    @property
    def pci_device_id_ints(self) -> tuple[int, ...]:
        return tuple(int(p, 16) for p in self.pci_device_ids)

    def mig_profile(self, name: str) -> MigProfile | None:
        """This GPU's profile called ``name`` (``1g.5gb+me``, ``1g.5gb.me``, ``MIG 1g.5gb+me``)."""
        wanted = normalize_mig_profile_name(name)
        for profile in self.mig_profiles:
            if profile.name == wanted:
                return profile
        return None

    def public_dict(self) -> dict[str, Any]:
        """The JSON row of ``gpufence catalog MODEL --json`` (stable keys; enums as strings)."""
        row = self.model_dump(mode="json")
        row["mig_capable"] = self.mig_capable
        return row
