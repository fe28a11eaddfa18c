"""Parsing real `nvidia-smi -q -x` / `-q` output (../shared/data/nvidia-smi) and edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpufence.collect.gpu import gpu_evidence, parse_nvidia_smi, parse_nvidia_smi_text
from gpufence.errors import InputError

A100_XML = "nvidia-smi/telegraf__a100-sxm4-v12.xml"
H100_MIG = "nvidia-smi/nvidia_gpu_exporter__linux-x86_64__nvidia-h100-mig__590.48.01.txt"
H100 = "nvidia-smi/nvidia_gpu_exporter__linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt"


def _data(shared_dir: Path, name: str) -> Path:
    return shared_dir / "data" / name


def test_a100_xml(shared_dir: Path) -> None:
    report = parse_nvidia_smi([_data(shared_dir, A100_XML)])
    assert report.collector == "nvidia-smi"
    assert report.driver_version == "535.54.03" and report.cuda_version == "12.2"
    (gpu,) = report.gpus
    assert gpu.product_name == "NVIDIA A100-SXM4-80GB"
    assert gpu.pci_device_id == "0x20B2"
    assert gpu.uuid == "GPU-513536b6-7d19-9063-b049-1e69664bb298"
    assert gpu.serial == "1650522003820" and gpu.vbios_version == "92.00.36.00.02"
    assert gpu.mig_mode == "enabled" and gpu.ecc_mode == "enabled"
    assert gpu.virtualization_mode == "None" and gpu.compute_mode == "Default"
    assert [i.gpu_instance_id for i in gpu.mig_instances] == [3, 4, 5, 6]
    # No names in -q -x: derived (four 2-slice-memory instances of 14 SMs fit only 1g.20gb).
    assert {(i.profile, i.profile_source) for i in gpu.mig_instances} == {("1g.20gb", "derived")}
    assert gpu.ecc_errors is not None and gpu.ecc_errors.aggregate_uncorrected == 0
    assert report.cc.mode == "off" and "protected memory" in (report.cc.how or "")


def test_h100_mig_capture_uses_listing_names(shared_dir: Path) -> None:
    report = parse_nvidia_smi([_data(shared_dir, H100_MIG)])
    (gpu,) = report.gpus
    assert gpu.product_name == "NVIDIA H100 80GB HBM3" and gpu.pci_device_id == "0x2330"
    assert gpu.vbios_version == "96.00.A5.00.01"
    assert gpu.virtualization_mode == "Pass-Through"
    assert [(i.gpu_instance_id, i.profile) for i in gpu.mig_instances] == [
        (2, "3g.40gb"),
        (3, "2g.20gb"),
        (9, "1g.10gb"),
        (10, "1g.10gb"),
    ]
    assert all(i.profile_source == "nvidia-smi -L" for i in gpu.mig_instances)
    assert gpu.mig_instances[0].uuid == "MIG-00000000-0000-0000-0000-000000000000"
    assert gpu.mig_instances[0].multiprocessor_count == 60
    doc = gpu_evidence(report, "gpu-h01")
    assert doc.observed["gpu_state.mig_geometry"] == ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"]
    assert doc.observed["gpu_state.vgpu"] is False  # pass-through is not vGPU


def test_h100_q_alone_cannot_name_profiles(shared_dir: Path) -> None:
    text = _data(shared_dir, H100_MIG).read_text()
    start = text.index("==============NVSMI LOG")
    q_only = text[start : text.index("#####", start)]
    report = parse_nvidia_smi_text(q_only, "q.txt")
    assert report is not None
    gpu = report.gpus[0]
    assert all(i.profile is None for i in gpu.mig_instances)
    assert "fit 3 geometries" in gpu.unread["mig_instances.profile"]
    doc = gpu_evidence(report, "n")
    missing = {m.fact: m.reason for m in doc.not_observed}
    assert "nvidia-smi -L" in missing["gpu_state.mig_geometry"]
    assert doc.observed["gpu_state.mig"] is True


def test_listing_in_a_second_file(shared_dir: Path, tmp_path: Path) -> None:
    text = _data(shared_dir, H100_MIG).read_text()
    start = text.index("==============NVSMI LOG")
    (tmp_path / "q.txt").write_text(text[start : text.index("#####", start)])
    (tmp_path / "l.txt").write_text(
        "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)\n"
        "  MIG 3g.40gb     Device  0: (UUID: MIG-0)\n"
        "  MIG 2g.20gb     Device  1: (UUID: MIG-1)\n"
        "  MIG 1g.10gb     Device  2: (UUID: MIG-2)\n"
        "  MIG 1g.10gb     Device  3: (UUID: MIG-3)\n"
        "CC status: ON\nCC Environment: PRODUCTION\n"
        "Confidential Compute GPUs Ready state: not-ready\n"
    )
    report = parse_nvidia_smi([tmp_path / "q.txt", tmp_path / "l.txt"])
    assert [i.profile for i in report.gpus[0].mig_instances] == [
        "3g.40gb",
        "2g.20gb",
        "1g.10gb",
        "1g.10gb",
    ]
    assert report.cc.mode == "on" and report.cc.how == "nvidia-smi conf-compute -f"
    assert report.cc.environment == "PRODUCTION" and report.cc.gpus_ready is False
    # -mgm was not given: the multi-GPU mode of a CC-on system stays unobserved.
    doc = gpu_evidence(report, "n")
    assert doc.observed["gpu_state.cc_mode"] == "on"
    assert "gpu_state.cc_multi_gpu" in {m.fact for m in doc.not_observed}


def test_h100_without_mig(shared_dir: Path) -> None:
    report = parse_nvidia_smi([_data(shared_dir, H100)])
    (gpu,) = report.gpus
    assert gpu.mig_mode == "disabled" and gpu.mig_instances == ()
    doc = gpu_evidence(report, "n")
    assert doc.observed["gpu_state.mig"] is False
    assert doc.observed["gpu_state.mig_geometry"] == []
    assert doc.observed["gpu_state.ecc"] is True


def test_ecc_disabled_and_split_instances_from_edited_sample(
    shared_dir: Path, tmp_path: Path
) -> None:
    xml = _data(shared_dir, A100_XML).read_text()
    edited = xml.replace(
        "<current_ecc>Enabled</current_ecc>", "<current_ecc>Disabled</current_ecc>"
    )
    edited = edited.replace(
        "<pending_ecc>Enabled</pending_ecc>", "<pending_ecc>Disabled</pending_ecc>"
    )
    path = tmp_path / "a100-ecc-off.xml"
    path.write_text(edited)
    report = parse_nvidia_smi([path])
    assert report.gpus[0].ecc_mode == "disabled"
    assert gpu_evidence(report, "n").observed["gpu_state.ecc"] is False


def test_broken_xml_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    path.write_text('<?xml version="1.0"?>\n<nvidia_smi_log>\n  <gpu id="x">\n</nvidia_smi_log>\n')
    with pytest.raises(InputError) as caught:
        parse_nvidia_smi([path])
    assert caught.value.location is not None and caught.value.location.line == 4
    assert "invalid nvidia-smi XML" in caught.value.diagnostics()


def test_xml_entities_are_not_expanded(tmp_path: Path) -> None:
    path = tmp_path / "xxe.xml"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE nvidia_smi_log [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        '<nvidia_smi_log><gpu id="0"><product_name>&x;</product_name></gpu></nvidia_smi_log>\n'
    )
    with pytest.raises(InputError, match="entit") as err:
        parse_nvidia_smi([path])
    assert "root:" not in str(err.value) and err.value.location is not None


def test_not_nvidia_smi_output(tmp_path: Path) -> None:
    path = tmp_path / "other.txt"
    path.write_text("hello\n")
    with pytest.raises(InputError, match="no `nvidia-smi -q`"):
        parse_nvidia_smi([path])
    with pytest.raises(InputError, match="no such file"):
        parse_nvidia_smi([tmp_path / "missing.xml"])
    wrong = tmp_path / "wrong.xml"
    wrong.write_text("<?xml version='1.0'?><html/>")
    with pytest.raises(InputError, match="root element is <html>"):
        parse_nvidia_smi([wrong])


def test_cli_from_file(shared_dir: Path, tmp_path: Path) -> None:
    from gpufence.cli import main

    out = tmp_path / "ev.json"
    code = main(
        [
            "collect",
            "gpu",
            "--from",
            str(_data(shared_dir, A100_XML)),
            "--node",
            "a1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    import json

    doc = json.loads(out.read_text())
    gpu = doc["raw"]["gpus"][0]
    # The acceptance interface: product_name, pci_device_id, mig_mode, mig_instances, ecc_mode, cc.
    assert gpu["product_name"] == "NVIDIA A100-SXM4-80GB" and gpu["pci_device_id"] == "0x20B2"
    assert gpu["mig_mode"] == "enabled" and gpu["ecc_mode"] == "enabled"
    assert [i["profile"] for i in gpu["mig_instances"]] == ["1g.20gb"] * 4
    assert gpu["cc_mode"] == "off" and doc["subject"] == "node/a1"
