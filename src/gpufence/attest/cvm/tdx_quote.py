"""Intel TDX quote version 4 parsed by offset, with its ECDSA-256 signature data.

Layout: Intel "TDX DCAP Quoting Library API" (Quote Format, Appendix A) and the same offsets as
google/go-tdx-guest ``abi/abi.go`` and Intel SGXDataCenterAttestationPrimitives
``QuoteVerification/QVL/Src/AttestationLibrary/src/QuoteVerification/QuoteStructures.h``.
All integers are little-endian.

- header (48 bytes): version=4, attestation key type=2 (ECDSA-256-with-P-256), TEE type 0x81
  (TDX), QE SVN and PCE SVN (2+2, reserved in v4), QE vendor ID (16), user data (20);
- TD report body "TD 1.0" (584 bytes at 48): TEE_TCB_SVN, MRSEAM, MRSIGNERSEAM, SEAMATTRIBUTES,
  TDATTRIBUTES, XFAM, MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG, RTMR0..3, REPORTDATA;
- u32 signature-data length at 632, then the signature data: quote signature r||s (64, big
  endian), attestation public key x||y (64), certification data type 6 (QE report certification
  data) holding the QE's SGX report (384), its signature (64), QE auth data (u16 size + bytes)
  and certification data type 5 (the PCK certificate chain, PEM).

The quote ends where its signature data ends; bytes after it are not signed and are refused.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gpufence.attest.cvm.result import CvmParseError

__all__ = [
    "BODY_END",
    "INTEL_QE_VENDOR_ID",
    "QeReport",
    "TdReport",
    "TdxQuote",
    "parse_tdx_quote",
]

HEADER_SIZE = 48
BODY_SIZE = 584
BODY_END = HEADER_SIZE + BODY_SIZE
QE_REPORT_SIZE = 384
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
CERT_DATA_QE_REPORT = 6
CERT_DATA_PCK_CHAIN = 5
MAX_CERT_DATA = 64 * 1024


@dataclass(frozen=True, slots=True)
class TdReport:
    """The TD 1.0 report body (what the TDX module measured and the TD asked to sign)."""

    tee_tcb_svn: bytes
    mrseam: bytes
    mrsignerseam: bytes
    seam_attributes: bytes
    td_attributes: bytes
    xfam: bytes
    mrtd: bytes
    mrconfigid: bytes
    mrowner: bytes
    mrownerconfig: bytes
    rtmrs: tuple[bytes, bytes, bytes, bytes]
    report_data: bytes

    @property
    def debug(self) -> bool:
        """TDATTRIBUTES bit 0 (DEBUG): the host VMM may read and write the TD's state."""
        return bool(self.td_attributes[0] & 1)

    @property
    def tud_bits(self) -> int:
        """TDATTRIBUTES byte 0 (TUD: "TD under debug" group; any bit set means untrusted)."""
        return self.td_attributes[0]


@dataclass(frozen=True, slots=True)
class QeReport:
    """The Quoting Enclave's SGX report body (384 bytes)."""

    raw: bytes
    cpu_svn: bytes
    misc_select: int
    attributes: bytes
    mr_enclave: bytes
    mr_signer: bytes
    isv_prod_id: int
    isv_svn: int
    report_data: bytes


@dataclass(frozen=True, slots=True)
class TdxQuote:
    """A parsed v4 quote."""

    raw: bytes
    version: int
    att_key_type: int
    tee_type: int
    qe_vendor_id: bytes
    user_data: bytes
    body: TdReport
    signature: bytes
    """Quote signature r||s (big-endian, 32 bytes each)."""
    attestation_key: bytes
    """Raw P-256 public key x||y."""
    qe_report: QeReport
    qe_report_signature: bytes
    qe_auth_data: bytes
    pck_chain_pem: bytes

    @property
    def signed_bytes(self) -> bytes:
        """Header and TD report body: what the attestation key signed."""
        return self.raw[:BODY_END]


class _Reader:
    def __init__(self, data: bytes, offset: int, end: int) -> None:
        self.data, self.pos, self.end = data, offset, end

    def take(self, size: int, what: str) -> bytes:
        if size < 0 or self.pos + size > self.end:
            raise CvmParseError(
                f"{what} at offset {self.pos} needs {size} bytes, {self.end - self.pos} remain"
            )
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def u16(self, what: str) -> int:
        return int(struct.unpack("<H", self.take(2, what))[0])

    def u32(self, what: str) -> int:
        return int(struct.unpack("<I", self.take(4, what))[0])


def _body(data: bytes) -> TdReport:
    r = _Reader(data, HEADER_SIZE, BODY_END)
    f = [r.take(n, name) for name, n in _BODY_FIELDS]
    return TdReport(
        tee_tcb_svn=f[0],
        mrseam=f[1],
        mrsignerseam=f[2],
        seam_attributes=f[3],
        td_attributes=f[4],
        xfam=f[5],
        mrtd=f[6],
        mrconfigid=f[7],
        mrowner=f[8],
        mrownerconfig=f[9],
        rtmrs=(f[10], f[11], f[12], f[13]),
        report_data=f[14],
    )


_BODY_FIELDS = (
    ("TEE_TCB_SVN", 16),
    ("MRSEAM", 48),
    ("MRSIGNERSEAM", 48),
    ("SEAMATTRIBUTES", 8),
    ("TDATTRIBUTES", 8),
    ("XFAM", 8),
    ("MRTD", 48),
    ("MRCONFIGID", 48),
    ("MROWNER", 48),
    ("MROWNERCONFIG", 48),
    ("RTMR0", 48),
    ("RTMR1", 48),
    ("RTMR2", 48),
    ("RTMR3", 48),
    ("REPORTDATA", 64),
)


def _qe_report(raw: bytes) -> QeReport:
    # SGX REPORT_BODY reserved ranges (ISVEXTPRODID, CONFIGID, CONFIGSVN, ISVFAMILYID are not
    # reserved; they are signed by the PCK key and shown, not interpreted).
    for start, end in ((20, 32), (96, 128), (160, 192), (262, 304)):
        if any(raw[start:end]):
            raise CvmParseError(f"QE report reserved bytes {start}..{end} are not zero")
    return QeReport(
        raw=raw,
        cpu_svn=raw[0:16],
        misc_select=int.from_bytes(raw[16:20], "little"),
        attributes=raw[48:64],
        mr_enclave=raw[64:96],
        mr_signer=raw[128:160],
        isv_prod_id=int.from_bytes(raw[256:258], "little"),
        isv_svn=int.from_bytes(raw[258:260], "little"),
        report_data=raw[320:384],
    )


def parse_tdx_quote(data: bytes) -> TdxQuote:
    """Parse a v4 quote; CvmParseError names the offset and field of the first problem."""
    r = _Reader(data, 0, len(data))
    version = r.u16("version")
    if version != 4:
        raise CvmParseError(f"quote version {version} at offset 0 is not supported (only 4)")
    att_key_type = r.u16("attestation key type")
    if att_key_type != 2:
        raise CvmParseError(f"attestation key type {att_key_type} is not 2 (ECDSA-256 P-256)")
    tee_type = r.u32("TEE type")
    if tee_type != 0x81:
        raise CvmParseError(f"TEE type 0x{tee_type:x} is not 0x81 (TDX)")
    r.take(4, "QE SVN / PCE SVN (reserved in v4)")
    qe_vendor_id = r.take(16, "QE vendor ID")
    user_data = r.take(20, "user data")
    r.take(BODY_SIZE, "TD report body")
    body = _body(data)
    sig_len = r.u32("signature data length")
    if r.pos + sig_len > len(data):
        raise CvmParseError(
            f"signature data length {sig_len} at offset {BODY_END} runs past the end "
            f"({len(data) - r.pos} bytes remain; truncated)"
        )
    if r.pos + sig_len < len(data):
        raise CvmParseError(
            f"{len(data) - r.pos - sig_len} bytes after the signature data (not signed)"
        )
    s = _Reader(data, r.pos, r.pos + sig_len)
    signature = s.take(64, "quote signature")
    attestation_key = s.take(64, "attestation key")
    outer_type = s.u16("certification data type")
    outer_size = s.u32("certification data size")
    if outer_type != CERT_DATA_QE_REPORT:
        raise CvmParseError(
            f"certification data type {outer_type} is not 6 (QE report certification data)"
        )
    if s.pos + outer_size != s.end:
        raise CvmParseError(
            f"certification data size {outer_size} does not end the signature data "
            f"({s.end - s.pos} bytes remain)"
        )
    qe_raw = s.take(QE_REPORT_SIZE, "QE report")
    qe_sig = s.take(64, "QE report signature")
    auth_size = s.u16("QE auth data size")
    auth = s.take(auth_size, "QE auth data")
    inner_type = s.u16("PCK certification data type")
    inner_size = s.u32("PCK certification data size")
    if inner_type != CERT_DATA_PCK_CHAIN:
        raise CvmParseError(f"inner certification data type {inner_type} is not 5 (PCK chain)")
    if inner_size > MAX_CERT_DATA:
        raise CvmParseError(f"PCK chain of {inner_size} bytes is larger than {MAX_CERT_DATA}")
    pem = s.take(inner_size, "PCK certificate chain")
    if s.pos != s.end:
        raise CvmParseError(f"{s.end - s.pos} bytes after the PCK chain inside the signature data")
    return TdxQuote(
        raw=bytes(data),
        version=version,
        att_key_type=att_key_type,
        tee_type=tee_type,
        qe_vendor_id=qe_vendor_id,
        user_data=user_data,
        body=body,
        signature=signature,
        attestation_key=attestation_key,
        qe_report=_qe_report(qe_raw),
        qe_report_signature=qe_sig,
        qe_auth_data=auth,
        pck_chain_pem=pem,
    )
