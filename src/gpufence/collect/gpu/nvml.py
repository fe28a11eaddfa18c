"""Read GPU state on this node through NVML (nvidia-ml-py's ``pynvml`` module).

Every NVML call that fails is recorded with its reason and the field stays ``None``; an
``NVMLError_NotSupported`` on a mode query means the GPU has no such mode ('unsupported').
``nvmlSystemGetConfComputeSettings`` returns a raw NVML return code instead of raising, as the
bindings do (nvidia-ml-py 13.615.71).
"""

from __future__ import annotations

import ctypes
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from gpufence.collect import CollectorInfo
from gpufence.collect.gpu.profiles import name_from_profile_info
from gpufence.errors import InputError
from gpufence.model.evidence import CollectorName
from gpufence.model.observed_gpu import CcSystem, EccErrors, GpuRecord, GpuReport, MigInstance

__all__ = ["NvmlUnavailableError", "collect_nvml", "load_pynvml"]

COLLECTOR = CollectorInfo(
    name=CollectorName.NVML, module=__name__, subjects="node/<name>", command="collect gpu"
)
"""This module's collector (found by :func:`gpufence.collect.collectors`)."""

_MIB = 1024 * 1024

_COMPUTE_MODES = {0: "Default", 1: "Exclusive_Thread", 2: "Prohibited", 3: "Exclusive_Process"}
_VIRTUALIZATION_MODES = {
    0: "None",
    1: "Pass-Through",
    2: "VGPU",
    3: "Host VGPU",
    4: "Host VSGA",
}
_MULTI_GPU = {0: "none", 1: "protected-pcie", 2: "nvle"}


class NvmlUnavailableError(InputError):
    """NVML cannot be used here (no driver, no GPU, bindings missing): exit 2 with advice."""

    def __init__(self, why: str) -> None:
        super().__init__(
            f"NVML is not available on this machine ({why})",
            hint="run `gpufence collect gpu` on a GPU node with the NVIDIA driver loaded, or "
            "parse saved output with `--from nvidia-smi-q.xml` (`nvidia-smi -q -x`)",
        )


def load_pynvml() -> ModuleType:
    """The ``pynvml`` module of nvidia-ml-py (imported lazily: only this collector needs it)."""
    try:
        return importlib.import_module("pynvml")
    except ImportError as exc:
        raise NvmlUnavailableError(f"the nvidia-ml-py package is not installed: {exc}") from exc


class _Failed:
    """An NVML call that failed; ``unsupported`` when NVML said NOT_SUPPORTED."""

    __slots__ = ("reason", "unsupported")

    def __init__(self, reason: str, unsupported: bool) -> None:
        self.reason = reason
        self.unsupported = unsupported


class _Reader:
    """Calls NVML functions, turning NVMLError into :class:`_Failed` with a readable reason."""

    def __init__(self, nvml: Any) -> None:
        self.nvml = nvml

    def call(self, name: str, *args: Any) -> Any:
        try:
            return getattr(self.nvml, name)(*args)
        except self.nvml.NVMLError_NotSupported:
            return _Failed(f"{name}: Not Supported", unsupported=True)
        except self.nvml.NVMLError as exc:
            return _Failed(f"{name}: {exc}", unsupported=False)

    def error_text(self, code: int) -> str:
        try:
            return str(self.nvml.NVMLError(code))
        except Exception:  # noqa: BLE001 - only for a message; the code itself is reported
            return f"NVML return code {code}"


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip() or None if value is not None else None


def _mode_pair(reader: _Reader, name: str, handle: Any) -> tuple[str | None, str | None, str]:
    got = reader.call(name, handle)
    if isinstance(got, _Failed):
        return ("unsupported", "unsupported", "") if got.unsupported else (None, None, got.reason)
    current, pending = got
    as_text = {0: "disabled", 1: "enabled"}
    return as_text.get(int(current)), as_text.get(int(pending)), ""


def _gpu_instances(
    reader: _Reader, handle: Any, total_bytes: int | None
) -> tuple[dict[int, MigInstance], str]:
    """GPU instances by GI id, with profile name and placement (NVML GI enumeration)."""
    nvml = reader.nvml
    found: dict[int, MigInstance] = {}
    for enum in range(nvml.NVML_GPU_INSTANCE_PROFILE_COUNT):
        info = reader.call("nvmlDeviceGetGpuInstanceProfileInfo", handle, enum)
        if isinstance(info, _Failed) or not info.instanceCount:
            continue  # this profile does not exist on this GPU
        reported = _text(getattr(info, "name", "")) or ""
        name = (
            name_from_profile_info(
                reported, int(info.sliceCount), int(info.memorySizeMB), total_bytes or 0, enum
            )
            if reported or total_bytes
            else None
        )
        count = ctypes.c_uint(0)
        handles = (nvml.c_nvmlGpuInstance_t * int(info.instanceCount))()
        listed = reader.call(
            "nvmlDeviceGetGpuInstances", handle, info.id, handles, ctypes.byref(count)
        )
        if isinstance(listed, _Failed):
            return found, listed.reason
        for i in range(count.value):
            gi = reader.call("nvmlGpuInstanceGetInfo", handles[i])
            if isinstance(gi, _Failed):
                return found, gi.reason
            found[int(gi.id)] = MigInstance(
                gpu_instance_id=int(gi.id),
                profile=name,
                profile_source="nvml" if name else "unknown",
                profile_id=int(gi.profileId),
                placement_start=int(gi.placement.start),
                placement_size=int(gi.placement.size),
                memory_mib=int(info.memorySizeMB),
                multiprocessor_count=int(info.multiprocessorCount),
            )
    return found, ""


def _mig_instances(
    reader: _Reader, handle: Any, total_bytes: int | None
) -> tuple[tuple[MigInstance, ...], str]:
    """One entry per MIG device (compute instance); GIs without a compute instance too."""
    gis, problem = _gpu_instances(reader, handle, total_bytes)
    if problem:
        return tuple(gis.values()), problem
    out: list[MigInstance] = []
    seen: set[int] = set()
    maximum = reader.call("nvmlDeviceGetMaxMigDeviceCount", handle)
    if isinstance(maximum, _Failed):
        return tuple(gis.values()), maximum.reason
    for index in range(int(maximum)):
        mig = reader.call("nvmlDeviceGetMigDeviceHandleByIndex", handle, index)
        if isinstance(mig, _Failed):
            continue  # NOT_FOUND: no MIG device at this index
        gi_id = reader.call("nvmlDeviceGetGpuInstanceId", mig)
        ci_id = reader.call("nvmlDeviceGetComputeInstanceId", mig)
        uuid = reader.call("nvmlDeviceGetUUID", mig)
        attrs = reader.call("nvmlDeviceGetAttributes", mig)
        if isinstance(gi_id, _Failed) or int(gi_id) not in gis:
            continue
        base = gis[int(gi_id)]
        seen.add(int(gi_id))
        compute_profile = None
        sm = base.multiprocessor_count
        if not isinstance(attrs, _Failed):
            sm = int(attrs.multiprocessorCount)
            if base.profile and attrs.computeInstanceSliceCount < attrs.gpuInstanceSliceCount:
                compute_profile = f"{int(attrs.computeInstanceSliceCount)}c.{base.profile}"
        out.append(
            base.model_copy(
                update={
                    "compute_instance_id": None if isinstance(ci_id, _Failed) else int(ci_id),
                    "uuid": None if isinstance(uuid, _Failed) else _text(uuid),
                    "compute_profile": compute_profile,
                    "multiprocessor_count": sm,
                }
            )
        )
    out.extend(gi for gi_id, gi in gis.items() if gi_id not in seen)
    return tuple(out), ""


def _ecc_errors(reader: _Reader, handle: Any) -> EccErrors | None:
    nvml = reader.nvml
    values: dict[str, int | None] = {}
    for field, error_type, counter in (
        ("volatile_corrected", nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, nvml.NVML_VOLATILE_ECC),
        ("volatile_uncorrected", nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC),
        ("aggregate_corrected", nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, nvml.NVML_AGGREGATE_ECC),
        (
            "aggregate_uncorrected",
            nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
            nvml.NVML_AGGREGATE_ECC,
        ),
    ):
        got = reader.call("nvmlDeviceGetTotalEccErrors", handle, error_type, counter)
        values[field] = None if isinstance(got, _Failed) else int(got)
    if all(v is None for v in values.values()):
        return None
    return EccErrors(**values)


def _architecture(nvml: Any, value: int) -> str | None:
    for name in dir(nvml):
        if name.startswith("NVML_DEVICE_ARCH_") and getattr(nvml, name) == value:
            label = name.removeprefix("NVML_DEVICE_ARCH_")
            return None if label in ("UNKNOWN", "T23X") else label.title()
    return None


def _gpu(reader: _Reader, index: int) -> GpuRecord:
    handle = reader.call("nvmlDeviceGetHandleByIndex", index)
    if isinstance(handle, _Failed):
        return GpuRecord(index=index, unread={"device": handle.reason})
    unread: dict[str, str] = {}

    def read(field: str, name: str, convert: Callable[[Any], Any] = _text) -> Any:
        got = reader.call(name, handle)
        if isinstance(got, _Failed):
            unread[field] = got.reason
            return None
        return convert(got)

    pci = reader.call("nvmlDeviceGetPciInfo", handle)
    if isinstance(pci, _Failed):
        unread["pci_device_id"] = pci.reason
        pci_id = sub_id = bus_id = None
    else:
        pci_id = f"0x{(int(pci.pciDeviceId) >> 16) & 0xFFFF:04X}"
        sub_id = f"0x{(int(pci.pciSubSystemId) >> 16) & 0xFFFF:04X}"
        bus_id = _text(pci.busId)
    memory = reader.call("nvmlDeviceGetMemoryInfo", handle)
    total_bytes = None if isinstance(memory, _Failed) else int(memory.total)
    mig_current, mig_pending, why = _mode_pair(reader, "nvmlDeviceGetMigMode", handle)
    if why:
        unread["mig_mode"] = why
    instances: tuple[MigInstance, ...] = ()
    if mig_current == "enabled":
        instances, why = _mig_instances(reader, handle, total_bytes)
        if why:
            unread["mig_instances.profile"] = why
    ecc_current, ecc_pending, why = _mode_pair(reader, "nvmlDeviceGetEccMode", handle)
    if why:
        unread["ecc_mode"] = why
    dram_current, _, _ = _mode_pair(reader, "nvmlDeviceGetDramEncryptionMode", handle)
    protected = reader.call("nvmlDeviceGetConfComputeProtectedMemoryUsage", handle)
    arch = reader.call("nvmlDeviceGetArchitecture", handle)
    return GpuRecord(
        index=index,
        product_name=read("product_name", "nvmlDeviceGetName"),
        architecture=None if isinstance(arch, _Failed) else _architecture(reader.nvml, arch),
        pci_device_id=pci_id,
        pci_sub_system_id=sub_id,
        pci_bus_id=bus_id,
        uuid=read("uuid", "nvmlDeviceGetUUID"),
        serial=read("serial", "nvmlDeviceGetSerial"),
        vbios_version=read("vbios_version", "nvmlDeviceGetVbiosVersion"),
        memory_total_mib=None if total_bytes is None else total_bytes // _MIB,
        mig_mode=mig_current,
        mig_mode_pending=mig_pending,
        mig_instances=instances,
        ecc_mode=ecc_current,
        ecc_mode_pending=ecc_pending,
        ecc_errors=_ecc_errors(reader, handle) if ecc_current == "enabled" else None,
        cc_protected_memory_mib=None
        if isinstance(protected, _Failed)
        else int(protected.total) // _MIB,
        dram_encryption=dram_current,
        compute_mode=read("compute_mode", "nvmlDeviceGetComputeMode", _COMPUTE_MODES.get),
        virtualization_mode=read(
            "virtualization_mode", "nvmlDeviceGetVirtualizationMode", _VIRTUALIZATION_MODES.get
        ),
        unread=unread,
    )


def _cc(reader: _Reader) -> CcSystem:
    nvml = reader.nvml
    unread: dict[str, str] = {}
    mode: str | None = None
    how: str | None = None
    environment: str | None = None
    state = reader.call("nvmlSystemGetConfComputeState")
    if isinstance(state, _Failed):
        if state.unsupported:
            # The driver/system has no confidential computing: CC cannot be on.
            mode, how = "off", "nvmlSystemGetConfComputeState: Not Supported (no CC on this system)"
        else:
            unread["mode"] = state.reason
    else:
        if int(state.ccFeature) == nvml.NVML_CC_SYSTEM_FEATURE_ENABLED:
            devtools = int(state.devToolsMode) == nvml.NVML_CC_SYSTEM_DEVTOOLS_MODE_ON
            mode = "devtools" if devtools else "on"
        else:
            mode = "off"
        how = "nvmlSystemGetConfComputeState"
        environment = {0: "UNAVAILABLE", 1: "SIM", 2: "PRODUCTION"}.get(int(state.environment))
    multi: str | None = None
    settings = nvml.c_nvmlSystemConfComputeSettings_v1_t()
    try:
        code = nvml.nvmlSystemGetConfComputeSettings(settings)
    except nvml.NVMLError as exc:  # e.g. FUNCTION_NOT_FOUND on old drivers
        code, text = -1, str(exc)
    else:
        text = reader.error_text(code)
    if code == nvml.NVML_SUCCESS:
        multi = _MULTI_GPU.get(int(settings.multiGpuMode))
        if multi is None:
            unread["multi_gpu"] = f"unknown multiGpuMode {int(settings.multiGpuMode)}"
    elif mode == "off":
        multi = "none"  # no CC: no multi-GPU CC either
    else:
        unread["multi_gpu"] = f"nvmlSystemGetConfComputeSettings: {text}"
    ready = reader.call("nvmlSystemGetConfComputeGpusReadyState")
    return CcSystem(
        mode=mode,
        multi_gpu=multi,
        environment=environment,
        gpus_ready=None if isinstance(ready, _Failed) else bool(int(ready)),
        how=how,
        unread=unread,
    )


def _cuda(value: Any) -> str | None:
    if isinstance(value, _Failed):
        return None
    number = int(value)
    return f"{number // 1000}.{(number % 1000) // 10}"


def collect_nvml(nvml: ModuleType | None = None) -> GpuReport:
    """Read every GPU of this node through NVML; NVML absent is :class:`NvmlUnavailableError`."""
    module: Any = nvml if nvml is not None else load_pynvml()
    try:
        module.nvmlInit()
    except module.NVMLError as exc:
        raise NvmlUnavailableError(str(exc)) from exc
    try:
        reader = _Reader(module)
        count = reader.call("nvmlDeviceGetCount")
        if isinstance(count, _Failed):
            raise NvmlUnavailableError(count.reason)
        driver = reader.call("nvmlSystemGetDriverVersion")
        return GpuReport(
            collector="nvml",
            source="NVML",
            driver_version=None if isinstance(driver, _Failed) else _text(driver),
            cuda_version=_cuda(reader.call("nvmlSystemGetCudaDriverVersion")),
            gpus=tuple(_gpu(reader, i) for i in range(int(count))),
            cc=_cc(reader),
        ).with_cc_on_gpus()
    finally:
        try:
            module.nvmlShutdown()
        except module.NVMLError:
            pass  # nothing to release if shutdown itself fails
