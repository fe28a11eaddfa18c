"""What the GPU collectors read from one node, before it becomes evidence.

Both collectors (NVML through nvidia-ml-py, and parsed ``nvidia-smi -q``/``-q -x`` output) fill
the same :class:`GpuReport`, so one code path (:mod:`gpufence.collect.gpu.evidence`) turns either
into the same evidence. ``None`` always means "not read"; the reason is in ``unread``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gpufence._frozen import Frozen

__all__ = [
    "CcSystem",
    "EccErrors",
    "GpuRecord",
    "GpuReport",
    "MigInstance",
    "ModeState",
    "ProfileSource",
]

ModeState = Literal["enabled", "disabled", "unsupported"]
"""A per-GPU mode (MIG, ECC): 'unsupported' when the GPU has no such mode."""

ProfileSource = Literal["nvml", "nvidia-smi -L", "derived", "unknown"]


class MigInstance(Frozen):
    """One MIG device: a GPU instance (GI) and, when present, one compute instance (CI) in it."""

    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None
    profile: str | None = Field(
        default=None, description="GPU-instance profile name, e.g. '3g.40gb' (None if unknown)."
    )
    profile_source: ProfileSource = "unknown"
    compute_profile: str | None = Field(
        default=None, description="Compute-instance split, e.g. '1c.3g.71gb' (None: whole GI)."
    )
    profile_id: int | None = Field(default=None, description="NVML/nvidia-smi GI profile ID.")
    placement_start: int | None = None
    placement_size: int | None = None
    uuid: str | None = None
    multiprocessor_count: int | None = None
    memory_mib: int | None = None


class EccErrors(Frozen):
    """Total ECC error counts (all memory locations)."""

    volatile_corrected: int | None = None
    volatile_uncorrected: int | None = None
    aggregate_corrected: int | None = None
    aggregate_uncorrected: int | None = None


class GpuRecord(Frozen):
    """One physical GPU as the collector saw it."""

    index: int
    product_name: str | None = None
    architecture: str | None = None
    pci_device_id: str | None = Field(default=None, description="'0x2330' (vendor 10DE implied).")
    pci_sub_system_id: str | None = None
    pci_bus_id: str | None = None
    uuid: str | None = None
    serial: str | None = None
    vbios_version: str | None = None
    memory_total_mib: int | None = None
    mig_mode: ModeState | None = None
    mig_mode_pending: ModeState | None = None
    mig_instances: tuple[MigInstance, ...] = ()
    ecc_mode: ModeState | None = None
    ecc_mode_pending: ModeState | None = None
    ecc_errors: EccErrors | None = None
    cc_mode: Literal["off", "on", "devtools"] | None = Field(
        default=None, description="The system-wide CC mode, which applies to every GPU."
    )
    cc_protected_memory_mib: int | None = None
    dram_encryption: ModeState | None = None
    compute_mode: str | None = None
    virtualization_mode: str | None = Field(
        default=None, description="None (bare metal), Pass-Through, VGPU, Host VGPU, Host VSGA."
    )
    unread: dict[str, str] = Field(
        default_factory=dict, description="Field name -> why it could not be read."
    )


class CcSystem(Frozen):
    """System-wide confidential-computing state (NVML CC calls / `nvidia-smi conf-compute`)."""

    mode: Literal["off", "on", "devtools"] | None = None
    multi_gpu: Literal["none", "protected-pcie", "nvle"] | None = None
    environment: str | None = None
    gpus_ready: bool | None = None
    how: str | None = Field(default=None, description="How the mode was established.")
    unread: dict[str, str] = Field(default_factory=dict)


class GpuReport(Frozen):
    """Everything one collector run read on one node."""

    collector: Literal["nvml", "nvidia-smi"]
    source: str = Field(description="'NVML' or the file that was parsed.")
    driver_version: str | None = None
    cuda_version: str | None = None
    gpus: tuple[GpuRecord, ...] = ()
    cc: CcSystem = CcSystem()
    unread: dict[str, str] = Field(default_factory=dict)

    def with_cc_on_gpus(self) -> GpuReport:
        """This report with the system CC mode copied onto each GPU record."""
        gpus = tuple(g.model_copy(update={"cc_mode": self.cc.mode}) for g in self.gpus)
        return self.model_copy(update={"gpus": gpus})
