"""AMD SEV-SNP ``ATTESTATION_REPORT`` parsed by offset (versions 2 and 3).

Layout: AMD "SEV Secure Nested Paging Firmware ABI Specification" (pub. 56860), Table
"ATTESTATION_REPORT Structure"; the same offsets as google/go-sev-guest ``abi/abi.go`` and
virtee/sev ``src/firmware/guest/types/snp.rs``. The report is exactly 0x4A0 bytes; the signed
region is bytes 0x000..0x2A0; the signature is ECDSA P-384 with ``R`` and ``S`` each 72 bytes
little-endian (zero-extended from 48). Every reserved field must be zero and the reserved policy
bit 17 must be one: firmware writes them so, and a report that differs is not one we understand.
Version 3 adds CPUID family/model/stepping at 0x188; everything else is shared with version 2.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gpufence.attest.cvm.result import CvmParseError

__all__ = [
    "REPORT_SIZE",
    "SIGNED_SIZE",
    "SUPPORTED_VERSIONS",
    "SnpPolicy",
    "SnpReport",
    "TcbVersion",
    "parse_snp_report",
]

REPORT_SIZE = 0x4A0
SIGNED_SIZE = 0x2A0
SUPPORTED_VERSIONS = (2, 3)
SIG_ALGO_ECDSA_P384_SHA384 = 1
_SIG_COMPONENT = 72  # R and S slots; a P-384 value uses the low 48 bytes


@dataclass(frozen=True, slots=True)
class TcbVersion:
    """``TCB_VERSION`` of Milan and Genoa: SPLs of the bootloader, TEE, SNP firmware, microcode."""

    raw: int
    bootloader: int
    tee: int
    snp: int
    microcode: int

    @classmethod
    def from_u64(cls, raw: int) -> TcbVersion:
        """Decode (byte 0 bootloader, 1 TEE, 2..5 reserved, 6 SNP, 7 microcode)."""
        b = raw.to_bytes(8, "little")
        return cls(raw, b[0], b[1], b[6], b[7])

    @property
    def reserved_bytes(self) -> bytes:
        """Bytes 2..5, zero on Milan and Genoa."""
        return self.raw.to_bytes(8, "little")[2:6]

    def as_tuple(self) -> tuple[int, int, int, int]:
        """(bootloader, tee, snp, microcode)."""
        return (self.bootloader, self.tee, self.snp, self.microcode)

    def __str__(self) -> str:
        return f"bl={self.bootloader} tee={self.tee} snp={self.snp} ucode={self.microcode}"


@dataclass(frozen=True, slots=True)
class SnpPolicy:
    """The guest policy the report was launched with (``POLICY``, 64 bits)."""

    raw: int

    @property
    def abi(self) -> tuple[int, int]:
        """(major, minor) minimum firmware ABI."""
        return ((self.raw >> 8) & 0xFF, self.raw & 0xFF)

    @property
    def smt_allowed(self) -> bool:
        """Bit 16: the guest may run with SMT enabled."""
        return bool(self.raw >> 16 & 1)

    @property
    def reserved_one(self) -> bool:
        """Bit 17: must be one."""
        return bool(self.raw >> 17 & 1)

    @property
    def migrate_ma(self) -> bool:
        """Bit 18: a migration agent may be associated with the guest."""
        return bool(self.raw >> 18 & 1)

    @property
    def debug(self) -> bool:
        """Bit 19: the hypervisor may debug the guest (read and write its memory)."""
        return bool(self.raw >> 19 & 1)

    @property
    def single_socket(self) -> bool:
        """Bit 20: the guest may run on one socket only."""
        return bool(self.raw >> 20 & 1)


@dataclass(frozen=True, slots=True)
class SnpReport:
    """Every field of a version 2/3 report (byte fields as bytes, integers decoded)."""

    raw: bytes
    version: int
    guest_svn: int
    policy: SnpPolicy
    family_id: bytes
    image_id: bytes
    vmpl: int
    signature_algo: int
    current_tcb: TcbVersion
    platform_info: int
    author_key_en: bool
    mask_chip_key: bool
    signing_key: int
    """0 VCEK, 1 VLEK, 7 none."""
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    author_key_digest: bytes
    report_id: bytes
    report_id_ma: bytes
    reported_tcb: TcbVersion
    cpuid: tuple[int, int, int] | None
    """(family, model, stepping) from version 3; None on version 2."""
    chip_id: bytes
    committed_tcb: TcbVersion
    current_version: tuple[int, int, int]
    committed_version: tuple[int, int, int]
    launch_tcb: TcbVersion
    signature_r: int
    signature_s: int

    @property
    def signed_bytes(self) -> bytes:
        """The region the signature covers (0x000..0x2A0)."""
        return self.raw[:SIGNED_SIZE]

    @property
    def smt_enabled(self) -> bool:
        """``PLATFORM_INFO`` bit 0: SMT is enabled on the host."""
        return bool(self.platform_info & 1)

    @property
    def tsme_enabled(self) -> bool:
        """``PLATFORM_INFO`` bit 1: transparent SME is enabled on the host."""
        return bool(self.platform_info >> 1 & 1)


def _u(data: bytes, offset: int, fmt: str) -> int:
    return int(struct.unpack_from("<" + fmt, data, offset)[0])


def _zero(data: bytes, start: int, end: int, what: str) -> None:
    if any(data[start:end]):
        raise CvmParseError(f"reserved bytes 0x{start:03X}..0x{end:03X} ({what}) are not zero")


def parse_snp_report(data: bytes) -> SnpReport:
    """Parse a report, checking its size, version, signature algorithm and reserved fields."""
    if len(data) != REPORT_SIZE:
        raise CvmParseError(
            f"an SEV-SNP report is {REPORT_SIZE} bytes, this is {len(data)}"
            + (" (truncated)" if len(data) < REPORT_SIZE else " (bytes after the signature)")
        )
    version = _u(data, 0x00, "I")
    if version not in SUPPORTED_VERSIONS:
        raise CvmParseError(
            f"report version {version} at 0x000 is not supported (supported: "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))})"
        )
    signature_algo = _u(data, 0x34, "I")
    if signature_algo != SIG_ALGO_ECDSA_P384_SHA384:
        raise CvmParseError(
            f"SIGNATURE_ALGO at 0x034 is {signature_algo}, expected 1 (ECDSA P-384 with SHA-384)"
        )
    policy = SnpPolicy(_u(data, 0x08, "Q"))
    if not policy.reserved_one:
        raise CvmParseError("POLICY bit 17 (reserved, must be one) is zero")
    key_info = _u(data, 0x48, "I")
    if key_info >> 5:
        raise CvmParseError(f"reserved bits of 0x048 are set (0x{key_info:08x})")
    _zero(data, 0x4C, 0x50, "after key info")
    cpuid: tuple[int, int, int] | None = None
    if version >= 3:
        cpuid = (data[0x188], data[0x189], data[0x18A])
        _zero(data, 0x18B, 0x1A0, "after CPUID")
    else:
        _zero(data, 0x188, 0x1A0, "after REPORTED_TCB")
    _zero(data, 0x1EB, 0x1EC, "after CURRENT_MAJOR")
    _zero(data, 0x1EF, 0x1F0, "after COMMITTED_MAJOR")
    _zero(data, 0x1F8, SIGNED_SIZE, "before the signature")
    r_raw = data[0x2A0 : 0x2A0 + _SIG_COMPONENT]
    s_raw = data[0x2A0 + _SIG_COMPONENT : 0x2A0 + 2 * _SIG_COMPONENT]
    if any(r_raw[48:]) or any(s_raw[48:]):
        raise CvmParseError("signature R or S is wider than 384 bits")
    _zero(data, 0x2A0 + 2 * _SIG_COMPONENT, REPORT_SIZE, "after the signature")
    tcbs = {}
    for name, offset in (
        ("current", 0x38),
        ("reported", 0x180),
        ("committed", 0x1E0),
        ("launch", 0x1F0),
    ):
        tcbs[name] = TcbVersion.from_u64(_u(data, offset, "Q"))
    return SnpReport(
        raw=bytes(data),
        version=version,
        guest_svn=_u(data, 0x04, "I"),
        policy=policy,
        family_id=data[0x10:0x20],
        image_id=data[0x20:0x30],
        vmpl=_u(data, 0x30, "I"),
        signature_algo=signature_algo,
        current_tcb=tcbs["current"],
        platform_info=_u(data, 0x40, "Q"),
        author_key_en=bool(key_info & 1),
        mask_chip_key=bool(key_info >> 1 & 1),
        signing_key=(key_info >> 2) & 0x7,
        report_data=data[0x50:0x90],
        measurement=data[0x90:0xC0],
        host_data=data[0xC0:0xE0],
        id_key_digest=data[0xE0:0x110],
        author_key_digest=data[0x110:0x140],
        report_id=data[0x140:0x160],
        report_id_ma=data[0x160:0x180],
        reported_tcb=tcbs["reported"],
        cpuid=cpuid,
        chip_id=data[0x1A0:0x1E0],
        committed_tcb=tcbs["committed"],
        current_version=(data[0x1EA], data[0x1E9], data[0x1E8]),
        committed_version=(data[0x1EE], data[0x1ED], data[0x1EC]),
        launch_tcb=tcbs["launch"],
        signature_r=int.from_bytes(r_raw, "little"),
        signature_s=int.from_bytes(s_raw, "little"),
    )
