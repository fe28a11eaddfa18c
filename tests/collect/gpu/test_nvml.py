"""The NVML collector against a fake ``pynvml`` that behaves like nvidia-ml-py 13.615.71."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pynvml as real
import pytest

from gpufence.cli import main
from gpufence.collect.gpu import NvmlUnavailableError, collect_nvml, gpu_evidence
from tests.collect.gpu.fake_pynvml import (
    H100_PROFILES,
    Ci,
    FakeGpu,
    FakeSystem,
    Gi,
    make_fake_pynvml,
)

P = real  # constants


def _mig_h100(**overrides: object) -> FakeGpu:
    """An H100 with 2g.20gb@0, 1g.10gb@2, 1g.10gb@3, 3g.40gb@4 (legal eight-slot starts)."""
    gpu = FakeGpu(
        mig=(1, 1),
        profiles=dict(H100_PROFILES),
        gis=[
            Gi(2, P.NVML_GPU_INSTANCE_PROFILE_3_SLICE, 4, 4, [Ci(0, 3, 60, "MIG-a")]),
            Gi(3, P.NVML_GPU_INSTANCE_PROFILE_2_SLICE, 0, 2, [Ci(0, 2, 32, "MIG-b")]),
            Gi(9, P.NVML_GPU_INSTANCE_PROFILE_1_SLICE, 2, 1, [Ci(0, 1, 16, "MIG-c")]),
            Gi(10, P.NVML_GPU_INSTANCE_PROFILE_1_SLICE, 3, 1, [Ci(0, 1, 16, "MIG-d")]),
        ],
    )
    for key, value in overrides.items():
        setattr(gpu, key, value)
    return gpu


def test_mig_instances_with_profiles_and_placements() -> None:
    system = FakeSystem(gpus=[_mig_h100(), _mig_h100(uuid="GPU-2")])
    report = collect_nvml(make_fake_pynvml(system))
    assert report.collector == "nvml" and report.driver_version == "590.48.01"
    assert report.cuda_version == "13.1"
    gpu = report.gpus[0]
    assert gpu.product_name == "NVIDIA H100 80GB HBM3"
    assert gpu.pci_device_id == "0x2330" and gpu.pci_sub_system_id == "0x16C1"
    assert gpu.pci_bus_id == "00000000:18:00.0"
    assert gpu.architecture == "Hopper"
    assert gpu.mig_mode == "enabled" and gpu.mig_mode_pending == "enabled"
    by_gi = {i.gpu_instance_id: i for i in gpu.mig_instances}
    assert by_gi[2].profile == "3g.40gb" and by_gi[2].placement_start == 4
    assert by_gi[2].placement_size == 4 and by_gi[2].profile_id == 9
    assert by_gi[3].profile == "2g.20gb" and by_gi[3].placement_start == 0
    assert by_gi[9].uuid == "MIG-c" and by_gi[9].profile_source == "nvml"
    assert all(i.compute_profile is None for i in gpu.mig_instances)
    assert system.shutdowns == 1

    doc = gpu_evidence(report, "gpu-h01")
    assert doc.subject == "node/gpu-h01"
    assert doc.observed["gpu_state.mig"] is True
    assert doc.observed["gpu_state.mig_geometry"] == ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"]
    assert doc.observed["gpu_state.cc_mode"] == "off"
    assert doc.observed["gpu_state.cc_multi_gpu"] == "none"
    assert doc.observed["gpu_state.vgpu"] is False


def test_profile_name_built_like_go_nvlib_when_driver_gives_none() -> None:
    gpu = _mig_h100()
    gpu.profiles = {
        k: type(v)(v.id, v.slices, v.instances, v.sm, v.memory_mb, "")
        for k, v in H100_PROFILES.items()
    }
    report = collect_nvml(make_fake_pynvml(FakeSystem(gpus=[gpu])))
    names = sorted(i.profile or "" for i in report.gpus[0].mig_instances)
    assert names == ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"]


def test_compute_instance_split_is_reported() -> None:
    gpu = FakeGpu(
        mig=(1, 1),
        profiles=dict(H100_PROFILES),
        gis=[
            Gi(
                1,
                P.NVML_GPU_INSTANCE_PROFILE_3_SLICE,
                0,
                4,
                [Ci(0, 1, 20, "MIG-x"), Ci(1, 2, 40, "MIG-y")],
            )
        ],
    )
    report = collect_nvml(make_fake_pynvml(FakeSystem(gpus=[gpu])))
    instances = report.gpus[0].mig_instances
    assert [i.compute_profile for i in instances] == ["1c.3g.40gb", "2c.3g.40gb"]
    # Two compute instances of one GPU instance: one GI in the geometry.
    assert gpu_evidence(report, "n").observed["gpu_state.mig_geometry"] == ["3g.40gb"]


def test_cc_on_with_protected_pcie() -> None:
    system = FakeSystem(
        gpus=[FakeGpu(protected_memory_bytes=75 * 1024**3)],
        cc_state=(
            P.NVML_CC_SYSTEM_ENVIRONMENT_PROD,
            P.NVML_CC_SYSTEM_FEATURE_ENABLED,
            P.NVML_CC_SYSTEM_DEVTOOLS_MODE_OFF,
        ),
        multi_gpu=P.NVML_CC_SYSTEM_MULTIGPU_PROTECTED_PCIE,
        ready=1,
    )
    report = collect_nvml(make_fake_pynvml(system))
    assert report.cc.mode == "on" and report.cc.multi_gpu == "protected-pcie"
    assert report.cc.environment == "PRODUCTION" and report.cc.gpus_ready is True
    doc = gpu_evidence(report, "n")
    assert doc.observed["gpu_state.cc_mode"] == "on"
    assert doc.observed["gpu_state.cc_multi_gpu"] == "protected-pcie"
    assert report.gpus[0].cc_protected_memory_mib == 75 * 1024


def test_cc_devtools_mode() -> None:
    system = FakeSystem(
        gpus=[FakeGpu()],
        cc_state=(
            P.NVML_CC_SYSTEM_ENVIRONMENT_PROD,
            P.NVML_CC_SYSTEM_FEATURE_ENABLED,
            P.NVML_CC_SYSTEM_DEVTOOLS_MODE_ON,
        ),
    )
    assert collect_nvml(make_fake_pynvml(system)).cc.mode == "devtools"


def test_cc_settings_raw_return_code_is_not_an_exception() -> None:
    system = FakeSystem(
        gpus=[FakeGpu()],
        cc_state=(
            P.NVML_CC_SYSTEM_ENVIRONMENT_PROD,
            P.NVML_CC_SYSTEM_FEATURE_ENABLED,
            P.NVML_CC_SYSTEM_DEVTOOLS_MODE_OFF,
        ),
        cc_settings_rc=P.NVML_ERROR_NO_PERMISSION,
    )
    report = collect_nvml(make_fake_pynvml(system))
    assert report.cc.mode == "on" and report.cc.multi_gpu is None
    assert "Insufficient Permissions" in report.cc.unread["multi_gpu"]
    doc = gpu_evidence(report, "n")
    missing = {m.fact: m.reason for m in doc.not_observed}
    assert "gpu_state.cc_multi_gpu" in missing and "gpu_state.cc_multi_gpu" not in doc.observed


def test_a100_without_cc_support_and_unsupported_modes() -> None:
    a100 = FakeGpu(
        name="NVIDIA A100-SXM4-80GB",
        pci_device_id=0x20B210DE,
        architecture=P.NVML_DEVICE_ARCH_AMPERE,
        ecc=P.NVML_ERROR_NOT_SUPPORTED,
        mig=P.NVML_ERROR_NOT_SUPPORTED,
        virtualization=P.NVML_GPU_VIRTUALIZATION_MODE_PASSTHROUGH,
    )
    system = FakeSystem(gpus=[a100], cc_state=P.NVML_ERROR_NOT_SUPPORTED, ready=None)
    report = collect_nvml(make_fake_pynvml(system))
    gpu = report.gpus[0]
    assert gpu.mig_mode == "unsupported" and gpu.ecc_mode == "unsupported"
    assert gpu.virtualization_mode == "Pass-Through"
    assert report.cc.mode == "off" and "Not Supported" in (report.cc.how or "")
    doc = gpu_evidence(report, "n")
    assert doc.observed["gpu_state.mig"] is False
    assert doc.observed["gpu_state.ecc"] is False
    assert doc.observed["gpu_state.mig_geometry"] == []


def test_failed_reads_become_not_observed_with_reason() -> None:
    gpu = FakeGpu(errors={"nvmlDeviceGetEccMode": P.NVML_ERROR_NO_PERMISSION})
    system = FakeSystem(gpus=[gpu], cc_state=P.NVML_ERROR_NO_PERMISSION)
    doc = gpu_evidence(collect_nvml(make_fake_pynvml(system)), "n")
    missing = {m.fact: m.reason for m in doc.not_observed}
    assert "Insufficient Permissions" in missing["gpu_state.ecc"]
    assert "Insufficient Permissions" in missing["gpu_state.cc_mode"]
    assert "gpu_state.ecc" not in doc.observed and "gpu_state.cc_mode" not in doc.observed
    assert doc.observed["gpu_state.mig"] is False  # what could be read is still reported


def test_mixed_geometries_are_not_observed_but_kept_in_raw() -> None:
    other = _mig_h100(uuid="GPU-2")
    other.gis = other.gis[:1]
    report = collect_nvml(make_fake_pynvml(FakeSystem(gpus=[_mig_h100(), other])))
    doc = gpu_evidence(report, "n")
    missing = {m.fact: m.reason for m in doc.not_observed}
    assert "different MIG geometries" in missing["gpu_state.mig_geometry"]
    raw_gpus = doc.raw["gpus"]
    assert isinstance(raw_gpus, list) and len(raw_gpus) == 2


def test_nvml_absent_is_exit_2_with_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The real bindings on this GPU-less machine: libnvidia-ml.so is not there.
    try:
        real.nvmlInit()
    except real.NVMLError:
        pass
    else:  # pragma: no cover - only on a GPU machine
        real.nvmlShutdown()
        pytest.skip("NVML is present on this machine")
    assert main(["collect", "gpu", "--out", str(tmp_path / "e.json")]) == 2
    err = capsys.readouterr().err
    assert "NVML is not available" in err and "--from" in err and "Traceback" not in err
    assert not (tmp_path / "e.json").exists()


def test_nvml_init_failure_from_fake_is_input_error() -> None:
    system = FakeSystem(gpus=[], init_error=P.NVML_ERROR_DRIVER_NOT_LOADED)
    with pytest.raises(NvmlUnavailableError, match="Driver Not Loaded"):
        collect_nvml(make_fake_pynvml(system))


def test_cli_uses_nvml_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = make_fake_pynvml(FakeSystem(gpus=[_mig_h100()]))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    out = tmp_path / "ev"
    out.mkdir()
    assert main(["collect", "gpu", "--out", str(out), "--node", "gpu-h01"]) == 0
    doc = json.loads((out / "gpu-h01.json").read_text())
    assert doc["schema"] == "gpufence.evidence/v1" and doc["collector"] == "nvml"
    assert doc["observed"]["gpu_state.mig_geometry"] == ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"]
    gpu = doc["raw"]["gpus"][0]
    assert gpu["pci_device_id"] == "0x2330" and gpu["mig_mode"] == "enabled"
    assert {i["profile"] for i in gpu["mig_instances"]} == {"1g.10gb", "2g.20gb", "3g.40gb"}


def test_bad_node_name_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["collect", "gpu", "--out", str(tmp_path / "e.json"), "--node", "a b"])
    assert code == 2 and "--node" in capsys.readouterr().err
