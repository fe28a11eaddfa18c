"""SPDM 1.1 GET_MEASUREMENTS request + MEASUREMENTS response, as NVIDIA GPUs and NVSwitches
sign them.

Parsed by structure, field by field, with every length checked against the bytes that are there:
the signature is where the parsed layout says it is (never "the last 96 bytes"), and bytes after it
are reported. Zero padding after the signature (seen in real Hopper evidence) is accepted and
reported; anything else there is an error.

Layout (DMTF DSP0274 1.1, NVIDIA opaque data; all integers little-endian)::

    request  (37 B): ver 0x11 | code 0xE0 | param1 (bit0: signature) | param2 | nonce(32) | slot
    response       : ver 0x11 | code 0x60 | param1 | param2 | n_blocks(1) | record_len(3)
                     | blocks: index(1) spec(1) size(2) [DMTF: type(1) vsize(2) value]
                     | nonce(32) | opaque_len(2) | opaque TLVs | signature(96, raw r||s)

Opaque data is a list of ``type(2) len(2) value`` entries, optionally after an ``NVDAOD`` header
(newer firmware: ``magic(6) profile(2) major(1) minor(1) reserved(2)`` and a 2-byte value type per
entry). Unknown types are kept, never an error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GPU_OPAQUE_NAMES",
    "REQUEST_LENGTH",
    "SIGNATURE_LENGTH",
    "SWITCH_OPAQUE_NAMES",
    "AttestationReport",
    "DeviceKind",
    "MeasurementBlock",
    "MeasurementsRequest",
    "MeasurementsResponse",
    "OpaqueData",
    "OpaqueField",
    "SpdmParseError",
    "opaque_name",
    "parse_report",
]

DeviceKind = Literal["gpu", "nvswitch"]

SPDM_1_1 = 0x11
GET_MEASUREMENTS = 0xE0
MEASUREMENTS = 0x60
REQUEST_LENGTH = 37
NONCE_LENGTH = 32
SIGNATURE_LENGTH = 96
"""ECDSA P-384 raw r||s (NVIDIA's Hopper/Blackwell/LS10 settings)."""
NVDAOD_MAGIC = b"NVDAOD"
NVDAOD_HEADER_LENGTH = 12

# NVIDIA's opaque-data type IDs (nvtrust OpaqueData.OPAQUE_DATA_TYPES; NVAT GpuOpaqueDataType).
GPU_OPAQUE_NAMES: dict[int, str] = {
    1: "CERT_ISSUER_NAME",
    2: "CERT_AUTHORITY_KEY_IDENTIFIER",
    3: "DRIVER_VERSION",
    4: "GPU_INFO",
    5: "SKU",
    6: "VBIOS_VERSION",
    7: "MANUFACTURER_ID",
    8: "TAMPER_DETECTION",
    9: "SMC",
    10: "VPR",
    11: "NVDEC0_STATUS",
    12: "MSRSCNT",
    13: "CPRINFO",
    14: "BOARD_ID",
    15: "CHIP_SKU",
    16: "CHIP_SKU_MOD",
    17: "PROJECT",
    18: "PROJECT_SKU",
    19: "PROJECT_SKU_MOD",
    20: "FWID",
    21: "PROTECTED_PCIE_STATUS",
    22: "SWITCH_PDI",
    23: "FLOORSWEPT_PORTS",
    24: "POSITION_ID",
    25: "LOCK_SWITCH_STATUS",
    32: "GPU_LINK_CONN",
    33: "SYS_ENABLE_STATUS",
    34: "OPAQUE_DATA_VERSION",
    35: "CHIP_INFO",
    36: "FEATURE_FLAG",
}
# NVSwitch reports reuse IDs 22-26 with their own meaning (NVAT SwitchOpaqueDataType).
SWITCH_OPAQUE_NAMES: dict[int, str] = {
    **{k: v for k, v in GPU_OPAQUE_NAMES.items() if k < 22},
    22: "DEVICE_PDI",
    23: "DISABLED_PORTS",
    24: "SWITCH_POSITION_ID",
    25: "SWITCH_LOCK_STATUS",
    26: "SWITCH_GPU_PDIS",
}


def opaque_name(type_id: int, kind: DeviceKind) -> str:
    """The name of an opaque-data field type for a GPU or NVSwitch (``UNKNOWN_<n>`` if unknown)."""
    names = SWITCH_OPAQUE_NAMES if kind == "nvswitch" else GPU_OPAQUE_NAMES
    return names.get(type_id, f"UNKNOWN_{type_id}")


class SpdmParseError(ValueError):
    """The bytes are not a well-formed NVIDIA SPDM 1.1 measurement exchange."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(f"{message} (at byte {offset})" if offset is not None else message)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class MeasurementBlock:
    """One SPDM measurement block: index, type and value."""

    index: int
    """SPDM measurement index (1-based on NVIDIA devices)."""
    specification: int
    value_type: int
    """DMTF DMTFSpecMeasurementValueType: bits 0-6 the kind, bit 7 a raw bit stream."""
    value: bytes


@dataclass(frozen=True, slots=True)
class OpaqueField:
    """One field of the opaque data NVIDIA appends to the measurements."""

    type_id: int
    value: bytes
    value_type: int | None = None
    """Only in the NVDAOD header format."""


@dataclass(frozen=True, slots=True)
class OpaqueData:
    """The opaque data of a measurements response, as fields."""

    fields: tuple[OpaqueField, ...]
    header_version: tuple[int, int] | None = None
    """(major, minor) of an NVDAOD header; None for the legacy layout."""

    def get(self, type_id: int) -> bytes | None:
        """The value of the first field of ``type_id`` (NVIDIA emits each at most once)."""
        for item in self.fields:
            if item.type_id == type_id:
                return item.value
        return None

    def type_ids(self) -> tuple[int, ...]:
        """The field type IDs in order."""
        return tuple(item.type_id for item in self.fields)


@dataclass(frozen=True, slots=True)
class MeasurementsRequest:
    """The SPDM GET_MEASUREMENTS request of an attestation report (carries the nonce)."""

    version: int
    param1: int
    param2: int
    nonce: bytes
    slot_id: int


@dataclass(frozen=True, slots=True)
class MeasurementsResponse:
    """The SPDM MEASUREMENTS response: blocks, nonce, opaque data and signature."""

    version: int
    param1: int
    param2: int
    blocks: tuple[MeasurementBlock, ...]
    record_length: int
    nonce: bytes
    """The responder's nonce (not the verifier's: that one is in the request)."""
    opaque_length: int
    opaque: OpaqueData
    signature: bytes

    def block(self, index: int) -> MeasurementBlock | None:
        """The measurement block with ``index``, None when absent."""
        for item in self.blocks:
            if item.index == index:
                return item
        return None


@dataclass(frozen=True, slots=True)
class AttestationReport:
    """A parsed attestation report: request, response, the signed bytes and anything trailing."""

    request: MeasurementsRequest
    response: MeasurementsResponse
    signed_bytes: bytes
    """request || response up to (not including) the signature: what the device signed."""
    trailing: bytes
    """Bytes after the signature (all zero, else parsing fails)."""

    @property
    def length(self) -> int:
        """The report's length in bytes as parsed."""
        return len(self.signed_bytes) + len(self.response.signature) + len(self.trailing)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, count: int, what: str) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise SpdmParseError(
                f"truncated: {what} needs {count} bytes, {len(self.data) - self.pos} left",
                self.pos,
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        value: int = struct.unpack("<H", self.take(2, what))[0]
        return value

    def u24(self, what: str) -> int:
        return int.from_bytes(self.take(3, what), "little")


def _parse_request(data: bytes) -> MeasurementsRequest:
    reader = _Reader(data)
    version = reader.u8("request SPDMVersion")
    if version != SPDM_1_1:
        raise SpdmParseError(f"request SPDM version 0x{version:02x}, expected 0x11", 0)
    code = reader.u8("request code")
    if code != GET_MEASUREMENTS:
        raise SpdmParseError(f"request code 0x{code:02x} is not GET_MEASUREMENTS (0xe0)", 1)
    param1 = reader.u8("request Param1")
    if not param1 & 0x01:
        raise SpdmParseError("request did not ask for a signed response (Param1 bit 0 clear)", 2)
    param2 = reader.u8("request Param2")
    nonce = reader.take(NONCE_LENGTH, "request nonce")
    slot = reader.u8("request SlotIDParam")
    return MeasurementsRequest(version, param1, param2, nonce, slot)


def _parse_blocks(data: bytes, start: int, count: int, length: int) -> tuple[MeasurementBlock, ...]:
    # struct on the whole header at once: this runs for every block of every report a broker
    # sees (a per-field reader was the largest Python cost of an attest).
    end = start + length
    pos = start
    blocks = []
    for _ in range(count):
        at = pos
        if pos + 4 > end:
            raise SpdmParseError(
                f"truncated: block header needs 4 bytes, {max(0, end - pos)} left", pos
            )
        index, spec, size = struct.unpack_from("<BBH", data, pos)
        pos += 4
        if pos + size > end:
            raise SpdmParseError(
                f"truncated: measurement block {index} needs {size} bytes, {end - pos} left", pos
            )
        if not spec & 0x01:
            raise SpdmParseError(f"block {index}: not a DMTF measurement (spec 0x{spec:02x})", at)
        if size < 3:
            raise SpdmParseError(
                f"truncated: block {index} DMTF header needs 3 bytes, {size} left", pos
            )
        value_type, value_size = struct.unpack_from("<BH", data, pos)
        if value_size + 3 != size:
            raise SpdmParseError(
                f"block {index}: DMTF value size {value_size} + 3 != MeasurementSize {size}", at
            )
        blocks.append(MeasurementBlock(index, spec, value_type, data[pos + 3 : pos + size]))
        pos += size
    if pos != end:
        raise SpdmParseError(
            f"measurement record length {length} but {count} blocks use {pos - start}", pos
        )
    indexes = [b.index for b in blocks]
    if len(set(indexes)) != len(indexes):
        raise SpdmParseError("duplicate measurement block index", start)
    return tuple(blocks)


def _parse_opaque(data: bytes, base: int) -> OpaqueData:
    reader = _Reader(data)
    header: tuple[int, int] | None = None
    if data[: len(NVDAOD_MAGIC)] == NVDAOD_MAGIC and len(data) >= NVDAOD_HEADER_LENGTH:
        reader.take(len(NVDAOD_MAGIC), "opaque magic")
        profile = reader.u16("opaque profile")
        if profile != 0:
            raise SpdmParseError(f"unsupported NVDAOD opaque profile {profile}", base + 6)
        major, minor = reader.u8("opaque major"), reader.u8("opaque minor")
        reader.take(2, "opaque reserved")
        header = (major, minor)
    fields = []
    while reader.pos < len(data):
        at = base + reader.pos
        type_id = reader.u16("opaque type")
        value_type = reader.u16("opaque value type") if header is not None else None
        size = reader.u16("opaque length")
        try:
            value = reader.take(size, f"opaque field {type_id}")
        except SpdmParseError as exc:
            raise SpdmParseError(f"opaque field {type_id} runs past the opaque data", at) from exc
        fields.append(OpaqueField(type_id, value, value_type))
    return OpaqueData(tuple(fields), header)


def parse_report(data: bytes, *, signature_length: int = SIGNATURE_LENGTH) -> AttestationReport:
    """Parse request + response bytes; :class:`SpdmParseError` names the offending offset."""
    if len(data) < REQUEST_LENGTH:
        raise SpdmParseError(f"{len(data)} bytes is shorter than a GET_MEASUREMENTS request")
    request = _parse_request(data[:REQUEST_LENGTH])
    reader = _Reader(data, REQUEST_LENGTH)
    version = reader.u8("response SPDMVersion")
    if version != SPDM_1_1:
        raise SpdmParseError(
            f"response SPDM version 0x{version:02x}, expected 0x11", reader.pos - 1
        )
    code = reader.u8("response code")
    if code != MEASUREMENTS:
        raise SpdmParseError(
            f"response code 0x{code:02x} is not MEASUREMENTS (0x60)", reader.pos - 1
        )
    param1 = reader.u8("response Param1")
    param2 = reader.u8("response Param2")
    count = reader.u8("NumberOfBlocks")
    record_length = reader.u24("MeasurementRecordLength")
    record_start = reader.pos
    reader.take(record_length, "measurement record")
    blocks = _parse_blocks(data, record_start, count, record_length)
    nonce = reader.take(NONCE_LENGTH, "response nonce")
    opaque_length = reader.u16("OpaqueLength")
    opaque_start = reader.pos
    opaque = _parse_opaque(reader.take(opaque_length, "opaque data"), opaque_start)
    signed_end = reader.pos
    signature = reader.take(signature_length, "signature")
    trailing = data[reader.pos :]
    if trailing.strip(b"\x00"):
        raise SpdmParseError(
            f"{len(trailing)} bytes after the signature are not zero padding", reader.pos
        )
    response = MeasurementsResponse(
        version,
        param1,
        param2,
        blocks,
        record_length,
        nonce,
        opaque_length,
        opaque,
        signature,
    )
    return AttestationReport(request, response, bytes(data[:signed_end]), bytes(trailing))
