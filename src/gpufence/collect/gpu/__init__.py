"""Node-local GPU collectors: NVML (nvidia-ml-py) or saved nvidia-smi output -> evidence."""

from __future__ import annotations

from gpufence.collect.gpu.evidence import gpu_evidence, node_facts
from gpufence.collect.gpu.nvidia_smi import parse_nvidia_smi, parse_nvidia_smi_text
from gpufence.collect.gpu.nvml import NvmlUnavailableError, collect_nvml, load_pynvml
from gpufence.model.observed_gpu import CcSystem, EccErrors, GpuRecord, GpuReport, MigInstance

__all__ = [
    "CcSystem",
    "EccErrors",
    "GpuRecord",
    "GpuReport",
    "MigInstance",
    "NvmlUnavailableError",
    "collect_nvml",
    "gpu_evidence",
    "load_pynvml",
    "node_facts",
    "parse_nvidia_smi",
    "parse_nvidia_smi_text",
]
