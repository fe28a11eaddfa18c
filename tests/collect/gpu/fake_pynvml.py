"""A stand-in for nvidia-ml-py's ``pynvml`` module, for tests on machines without a GPU.

It keeps everything of the real module that does not call the driver (constants, ctypes
structures, the NVMLError class hierarchy) and replaces the NVML functions the collector uses with
ones that answer from a :class:`FakeSystem`, with the real bindings' return shapes: lists for
mode pairs, filled ctypes structures, ``str`` for strings, NVMLError subclasses on failure, a raw
return code from ``nvmlSystemGetConfComputeSettings``, and GPU-instance handles written into a
caller-supplied ctypes array. Any other ``nvml*`` function is absent, so an unexpected call fails
the test instead of passing silently.
"""

from __future__ import annotations

import ctypes
import inspect
import types
from dataclasses import dataclass, field
from typing import Any

import pynvml as real

NOT_SUPPORTED = real.NVML_ERROR_NOT_SUPPORTED


@dataclass
class Profile:
    """One GI profile as NVML describes it (nvmlDeviceGetGpuInstanceProfileInfo v2)."""

    id: int
    slices: int
    instances: int
    sm: int
    memory_mb: int
    name: str


@dataclass
class Ci:
    id: int
    slices: int
    sm: int
    uuid: str


@dataclass
class Gi:
    id: int
    profile_enum: int
    start: int
    size: int
    cis: list[Ci] = field(default_factory=list)


@dataclass
class FakeGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    pci_device_id: int = 0x233010DE
    pci_sub_system_id: int = 0x16C110DE
    bus_id: str = "00000000:18:00.0"
    uuid: str = "GPU-11111111-2222-3333-4444-555555555555"
    serial: str = "1654321012345"
    vbios: str = "96.00.A5.00.01"
    memory_bytes: int = 81559 * 1024 * 1024
    architecture: int = real.NVML_DEVICE_ARCH_HOPPER
    mig: tuple[int, int] | int = (0, 0)
    """(current, pending), or an NVML error code."""
    ecc: tuple[int, int] | int = (1, 1)
    ecc_errors: dict[tuple[int, int], int] = field(default_factory=dict)
    virtualization: int = real.NVML_GPU_VIRTUALIZATION_MODE_NONE
    compute_mode: int = real.NVML_COMPUTEMODE_DEFAULT
    protected_memory_bytes: int = 0
    profiles: dict[int, Profile] = field(default_factory=dict)
    gis: list[Gi] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    """NVML function name -> error code it raises for this GPU."""


@dataclass
class FakeSystem:
    gpus: list[FakeGpu]
    driver: str = "590.48.01"
    cuda: int = 13010
    init_error: int | None = None
    cc_state: tuple[int, int, int] | int = (
        real.NVML_CC_SYSTEM_ENVIRONMENT_UNAVAILABLE,
        real.NVML_CC_SYSTEM_FEATURE_DISABLED,
        real.NVML_CC_SYSTEM_DEVTOOLS_MODE_OFF,
    )
    """(environment, ccFeature, devToolsMode), or an NVML error code."""
    cc_settings_rc: int = real.NVML_SUCCESS
    multi_gpu: int = real.NVML_CC_SYSTEM_MULTIGPU_NONE
    ready: int | None = 0
    calls: list[str] = field(default_factory=list)
    shutdowns: int = 0


# The H100 80GB GI profiles (eight-slot family; names as NVML reports them).
H100_PROFILES = {
    real.NVML_GPU_INSTANCE_PROFILE_1_SLICE: Profile(19, 1, 7, 16, 9984, "MIG 1g.10gb"),
    real.NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1: Profile(20, 1, 1, 16, 9984, "MIG 1g.10gb+me"),
    real.NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2: Profile(15, 1, 4, 26, 20096, "MIG 1g.20gb"),
    real.NVML_GPU_INSTANCE_PROFILE_2_SLICE: Profile(14, 2, 3, 32, 20096, "MIG 2g.20gb"),
    real.NVML_GPU_INSTANCE_PROFILE_3_SLICE: Profile(9, 3, 2, 60, 40448, "MIG 3g.40gb"),
    real.NVML_GPU_INSTANCE_PROFILE_4_SLICE: Profile(5, 4, 1, 64, 40448, "MIG 4g.40gb"),
    real.NVML_GPU_INSTANCE_PROFILE_7_SLICE: Profile(0, 7, 1, 132, 81408, "MIG 7g.80gb"),
}


def _raise(code: int) -> None:
    raise real.NVMLError(code)


def make_fake_pynvml(system: FakeSystem) -> types.ModuleType:
    """A module object that quacks like ``pynvml`` over ``system``."""
    module = types.ModuleType("pynvml")
    for name, value in vars(real).items():
        if name.startswith("nvml") and inspect.isfunction(value):
            continue  # every NVML call is answered by the fake below, or absent
        setattr(module, name, value)

    gi_by_address: dict[int, tuple[FakeGpu, Gi]] = {}
    keep_alive: list[Any] = []

    @dataclass(frozen=True)
    class MigHandle:
        gpu: FakeGpu
        gi: Gi
        ci: Ci

    def check(gpu: FakeGpu, fn: str) -> None:
        system.calls.append(fn)
        if fn in gpu.errors:
            _raise(gpu.errors[fn])

    def nvmlInit() -> None:
        system.calls.append("nvmlInit")
        if system.init_error is not None:
            _raise(system.init_error)

    def nvmlShutdown() -> None:
        system.shutdowns += 1

    def nvmlDeviceGetCount() -> int:
        return len(system.gpus)

    def nvmlDeviceGetHandleByIndex(index: int) -> FakeGpu:
        if index >= len(system.gpus):
            _raise(real.NVML_ERROR_INVALID_ARGUMENT)
        return system.gpus[index]

    def nvmlSystemGetDriverVersion() -> str:
        return system.driver

    def nvmlSystemGetCudaDriverVersion() -> int:
        return system.cuda

    def nvmlDeviceGetName(gpu: FakeGpu) -> str:
        check(gpu, "nvmlDeviceGetName")
        return gpu.name

    def nvmlDeviceGetUUID(handle: FakeGpu | MigHandle) -> str:
        if isinstance(handle, MigHandle):
            return handle.ci.uuid
        check(handle, "nvmlDeviceGetUUID")
        return handle.uuid

    def nvmlDeviceGetSerial(gpu: FakeGpu) -> str:
        check(gpu, "nvmlDeviceGetSerial")
        return gpu.serial

    def nvmlDeviceGetVbiosVersion(gpu: FakeGpu) -> str:
        check(gpu, "nvmlDeviceGetVbiosVersion")
        return gpu.vbios

    def nvmlDeviceGetArchitecture(gpu: FakeGpu) -> int:
        return gpu.architecture

    def nvmlDeviceGetPciInfo(gpu: FakeGpu) -> Any:
        check(gpu, "nvmlDeviceGetPciInfo")
        info = real.nvmlPciInfo_t()
        info.pciDeviceId = gpu.pci_device_id
        info.pciSubSystemId = gpu.pci_sub_system_id
        info.busId = gpu.bus_id
        return info

    def nvmlDeviceGetMemoryInfo(gpu: FakeGpu, version: int | None = None) -> Any:
        memory = real.c_nvmlMemory_t()
        memory.total = gpu.memory_bytes
        return memory

    def pair(gpu: FakeGpu, fn: str, value: tuple[int, int] | int) -> list[int]:
        check(gpu, fn)
        if isinstance(value, int):
            _raise(value)
        assert not isinstance(value, int)
        return [value[0], value[1]]

    def nvmlDeviceGetMigMode(gpu: FakeGpu) -> list[int]:
        return pair(gpu, "nvmlDeviceGetMigMode", gpu.mig)

    def nvmlDeviceGetEccMode(gpu: FakeGpu) -> list[int]:
        return pair(gpu, "nvmlDeviceGetEccMode", gpu.ecc)

    def nvmlDeviceGetTotalEccErrors(gpu: FakeGpu, error_type: int, counter: int) -> int:
        check(gpu, "nvmlDeviceGetTotalEccErrors")
        return gpu.ecc_errors.get((error_type, counter), 0)

    def nvmlDeviceGetDramEncryptionMode(gpu: FakeGpu) -> list[int]:
        _raise(NOT_SUPPORTED)  # Hopper and older have no DRAM encryption
        return []

    def nvmlDeviceGetConfComputeProtectedMemoryUsage(gpu: FakeGpu) -> Any:
        check(gpu, "nvmlDeviceGetConfComputeProtectedMemoryUsage")
        memory = real.c_nvmlMemory_t()
        memory.total = gpu.protected_memory_bytes
        return memory

    def nvmlDeviceGetComputeMode(gpu: FakeGpu) -> int:
        check(gpu, "nvmlDeviceGetComputeMode")
        return gpu.compute_mode

    def nvmlDeviceGetVirtualizationMode(gpu: FakeGpu) -> int:
        check(gpu, "nvmlDeviceGetVirtualizationMode")
        return gpu.virtualization

    def nvmlDeviceGetGpuInstanceProfileInfo(gpu: FakeGpu, profile: int, version: int = 2) -> Any:
        check(gpu, "nvmlDeviceGetGpuInstanceProfileInfo")
        if isinstance(gpu.mig, int):
            _raise(gpu.mig)
        if not 0 <= profile < real.NVML_GPU_INSTANCE_PROFILE_COUNT:
            _raise(real.NVML_ERROR_INVALID_ARGUMENT)
        if profile not in gpu.profiles:
            _raise(NOT_SUPPORTED)
        spec = gpu.profiles[profile]
        info = real.c_nvmlGpuInstanceProfileInfo_v2_t()
        info.id = spec.id
        info.sliceCount = spec.slices
        info.instanceCount = spec.instances
        info.multiprocessorCount = spec.sm
        info.memorySizeMB = spec.memory_mb
        info.name = spec.name
        return info

    def nvmlDeviceGetGpuInstances(
        gpu: FakeGpu, profile_id: int, instances_ref: Any, count_ref: Any
    ) -> int:
        check(gpu, "nvmlDeviceGetGpuInstances")
        chosen = [gi for gi in gpu.gis if gpu.profiles[gi.profile_enum].id == profile_id]
        if len(chosen) > len(instances_ref):
            _raise(real.NVML_ERROR_INSUFFICIENT_SIZE)
        for i, gi in enumerate(chosen):
            opaque = real.struct_c_nvmlGpuInstance_t()
            keep_alive.append(opaque)
            gi_by_address[ctypes.addressof(opaque)] = (gpu, gi)
            instances_ref[i] = ctypes.pointer(opaque)
        count_ref._obj.value = len(chosen)  # byref(c_uint) as the bindings' callers pass it
        return real.NVML_SUCCESS

    def nvmlGpuInstanceGetInfo(handle: Any) -> Any:
        gpu, gi = gi_by_address[ctypes.addressof(handle.contents)]
        info = real.c_nvmlGpuInstanceInfo_t()
        info.id = gi.id
        info.profileId = gpu.profiles[gi.profile_enum].id
        info.placement.start = gi.start
        info.placement.size = gi.size
        return info

    def mig_devices(gpu: FakeGpu) -> list[MigHandle]:
        return [MigHandle(gpu, gi, ci) for gi in gpu.gis for ci in gi.cis]

    def nvmlDeviceGetMaxMigDeviceCount(gpu: FakeGpu) -> int:
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(gpu: FakeGpu, index: int) -> MigHandle:
        devices = mig_devices(gpu)
        if index >= len(devices):
            _raise(real.NVML_ERROR_NOT_FOUND)
        return devices[index]

    def nvmlDeviceGetGpuInstanceId(mig: MigHandle) -> int:
        return mig.gi.id

    def nvmlDeviceGetComputeInstanceId(mig: MigHandle) -> int:
        return mig.ci.id

    def nvmlDeviceGetAttributes(mig: MigHandle) -> Any:
        attrs = real.c_nvmlDeviceAttributes()
        attrs.multiprocessorCount = mig.ci.sm
        attrs.gpuInstanceSliceCount = mig.gpu.profiles[mig.gi.profile_enum].slices
        attrs.computeInstanceSliceCount = mig.ci.slices
        attrs.memorySizeMB = mig.gpu.profiles[mig.gi.profile_enum].memory_mb
        return attrs

    def nvmlSystemGetConfComputeState() -> Any:
        system.calls.append("nvmlSystemGetConfComputeState")
        if isinstance(system.cc_state, int):
            _raise(system.cc_state)
        assert not isinstance(system.cc_state, int)
        state = real.c_nvmlConfComputeSystemState_t()
        state.environment, state.ccFeature, state.devToolsMode = system.cc_state
        return state

    def nvmlSystemGetConfComputeSettings(settings: Any) -> int:
        # The real binding returns the NVML return code and raises nothing.
        system.calls.append("nvmlSystemGetConfComputeSettings")
        if system.cc_settings_rc != real.NVML_SUCCESS:
            return system.cc_settings_rc
        if isinstance(system.cc_state, int):
            return system.cc_state
        settings.environment, settings.ccFeature, settings.devToolsMode = system.cc_state
        settings.multiGpuMode = system.multi_gpu
        return real.NVML_SUCCESS

    def nvmlSystemGetConfComputeGpusReadyState() -> int:
        if system.ready is None:
            _raise(NOT_SUPPORTED)
        assert system.ready is not None
        return system.ready

    for name, value in list(locals().items()):
        if name.startswith("nvml") and callable(value):
            setattr(module, name, value)
    return module
