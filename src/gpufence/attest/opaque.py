"""What NVIDIA's opaque data says about the device: versions, FWID, chip, PPCIe, topology.

Encodings (nvtrust ``spdm_msrt_resp_msg.py``, NVAT ``gpu_opaque_data_parser.cpp``): driver
version NUL-terminated ASCII; GPU VBIOS version 8 bytes rendered ``96.00.9F.00.01`` (u32 LE as
four hex pairs, then byte 4); NVSwitch BIOS version ASCII; CHIP_SKU/PROJECT/PROJECT_SKU
NUL-padded ASCII; MSRSCNT a u32 per block; NVDEC0/PROTECTED_PCIE status 0xAA enabled, 0x55
disabled; PDIs 8 bytes each.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pydantic import JsonValue

from gpufence.attest.spdm import AttestationReport, DeviceKind, OpaqueData, opaque_name

__all__ = ["DeviceFacts", "device_facts", "format_vbios_version", "named_opaque"]

DRIVER_VERSION = 3
VBIOS_VERSION = 6
NVDEC0_STATUS = 11
MSRSCNT = 12
CHIP_SKU = 15
PROJECT = 17
PROJECT_SKU = 18
FWID = 20
PROTECTED_PCIE_STATUS = 21
PDI = 22
FLOORSWEPT_PORTS = 23
SWITCH_GPU_PDIS = 26
CHIP_INFO = 35
FEATURE_FLAG = 36

STATUS_ENABLED = 0xAA
STATUS_DISABLED = 0x55
PDI_LENGTH = 8
SWITCH_GPU_PDI_COUNT = 8
FEATURE_FLAG_NAMES = {0: "SPT", 1: "MPT", 2: "PPCIE"}


def _ascii(value: bytes | None) -> str | None:
    if value is None:
        return None
    text = value.split(b"\x00", 1)[0]
    try:
        return text.decode("ascii").strip() or None
    except UnicodeDecodeError:
        return None


def format_vbios_version(raw: bytes) -> str:
    """``00 74 00 96 20 ..`` -> ``96.00.74.00.20`` (nvtrust ``format_vbios_version``)."""
    if len(raw) < 5:
        raise ValueError(f"VBIOS version field is {len(raw)} bytes, expected 8")
    major = f"{struct.unpack('<I', raw[:4])[0]:08X}"
    return ".".join([major[i : i + 2] for i in range(0, 8, 2)] + [f"{raw[4]:02X}"])


def _status(value: bytes | None) -> bool | None:
    if not value:
        return None
    if value[0] == STATUS_ENABLED:
        return True
    if value[0] == STATUS_DISABLED:
        return False
    return None


def _pdis(value: bytes | None, count: int | None = None) -> tuple[bytes, ...]:
    if not value:
        return ()
    usable = len(value) if count is None else min(len(value), count * PDI_LENGTH)
    return tuple(value[i : i + PDI_LENGTH] for i in range(0, usable - usable % PDI_LENGTH, 8))


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What a device's attestation report says about it: versions, FWID, project and SKUs."""

    kind: DeviceKind
    driver_version: str | None
    vbios_version: str | None
    """GPU VBIOS or NVSwitch BIOS version, in NVIDIA's dotted rendering."""
    fwid: bytes | None
    project: str | None
    project_sku: str | None
    chip_sku: str | None
    chip_info: str | None
    nvdec0_enabled: bool | None
    protected_pcie: bool | None
    feature_flag: str | None
    """SPT / MPT / PPCIE (FEATURE_FLAG), None when the firmware does not report it."""
    pdi: bytes | None
    """NVSwitch: its own PDI."""
    peer_pdis: tuple[bytes, ...]
    """GPU: the NVSwitch PDIs it is linked to; NVSwitch: the GPU PDIs it is linked to."""

    @property
    def vbios_rim_id(self) -> str | None:
        """``NV_GPU_VBIOS_<PROJECT>_<PROJECT_SKU>_<CHIP_SKU>_<VERSION>`` (nvtrust's RIM id)."""
        if self.kind != "gpu" or None in (self.project, self.project_sku, self.chip_sku):
            return None
        version = (self.vbios_version or "").replace(".", "").upper()
        return f"NV_GPU_VBIOS_{self.project}_{self.project_sku}_{self.chip_sku}_{version}".upper()


def device_facts(report: AttestationReport, kind: DeviceKind) -> DeviceFacts:
    """The facts in the opaque data of ``report`` for a device of ``kind``."""
    opaque = report.response.opaque
    raw_vbios = opaque.get(VBIOS_VERSION)
    if raw_vbios is None:
        vbios = None
    elif kind == "nvswitch":
        vbios = _ascii(raw_vbios)
    else:
        vbios = format_vbios_version(raw_vbios)
    flag_raw = opaque.get(FEATURE_FLAG)
    flag = None
    if flag_raw:
        number = int.from_bytes(flag_raw, "little")
        flag = FEATURE_FLAG_NAMES.get(number, f"UNKNOWN_{number}")
    if kind == "nvswitch":
        pdi = opaque.get(PDI)
        peers = _pdis(opaque.get(SWITCH_GPU_PDIS), SWITCH_GPU_PDI_COUNT)
    else:
        pdi = None
        peers = _pdis(opaque.get(PDI))
    return DeviceFacts(
        kind=kind,
        driver_version=_ascii(opaque.get(DRIVER_VERSION)),
        vbios_version=vbios,
        fwid=opaque.get(FWID),
        project=_ascii(opaque.get(PROJECT)),
        project_sku=_ascii(opaque.get(PROJECT_SKU)),
        chip_sku=_ascii(opaque.get(CHIP_SKU)),
        chip_info=_ascii(opaque.get(CHIP_INFO)),
        nvdec0_enabled=_status(opaque.get(NVDEC0_STATUS)),
        protected_pcie=_status(opaque.get(PROTECTED_PCIE_STATUS)),
        feature_flag=flag,
        pdi=pdi,
        peer_pdis=peers,
    )


def _decode(type_id: int, value: bytes, kind: DeviceKind) -> dict[str, JsonValue]:
    """One field in NVAT's decoded shape (names as NVAT's parsers print them)."""
    name = opaque_name(type_id, kind)
    if type_id == MSRSCNT:
        count = len(value) // 4
        return {name: list(struct.unpack(f"<{count}I", value[: count * 4]))}
    if kind == "gpu" and type_id == PDI:
        return {name: [p.hex() for p in _pdis(value)]}
    if kind == "nvswitch" and type_id == SWITCH_GPU_PDIS:
        pdis = _pdis(value, SWITCH_GPU_PDI_COUNT)
        ports = value[len(pdis) * PDI_LENGTH :]
        return {name: [p.hex() for p in pdis], "SWITCH_PORT": [f"{b:02x}" for b in ports]}
    if kind == "nvswitch" and type_id == FLOORSWEPT_PORTS:
        # Each bit (most significant first) stands for a group of four ports.
        bits = [(byte >> shift) & 1 for byte in value for shift in range(7, -1, -1)]
        return {name: [bit for bit in bits for _ in range(4)]}
    return {name: value.hex()}


def named_opaque(opaque: OpaqueData, kind: DeviceKind) -> dict[str, JsonValue]:
    """Every opaque field by NVIDIA's name, decoded (hex for plain bytes)."""
    named: dict[str, JsonValue] = {}
    for item in opaque.fields:
        named.update(_decode(item.type_id, item.value, kind))
    return named
