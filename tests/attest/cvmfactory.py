"""A test AMD key hierarchy (ARK -> ASK -> VCEK, RSA-PSS links) and SEV-SNP reports it signs.

Same layout as AMD's: a self-signed RSA ``ARK-<product>``, an RSA ``SEV-<product>`` ASK, an
ECDSA P-384 ``SEV-VCEK`` carrying AMD's extensions (productName, bootloader/TEE/SNP/microcode
SPLs, hwID). Reports are version-3 ``ATTESTATION_REPORT`` bytes signed over 0x000..0x2A0 with
R and S little-endian in 72-byte slots. Everything is generated per test session; the tests pass
the test ARK to the verifier as an override of the pinned AMD root.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

NOT_BEFORE = datetime(2024, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2030, 1, 1, tzinfo=UTC)
AT = datetime(2026, 6, 1, tzinfo=UTC)
_AMD = "1.3.6.1.4.1.3704.1."
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Engineering"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Advanced Micro Devices"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _ext(oid: str, value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(_AMD + oid), value)


@dataclass(frozen=True)
class Tcb:
    bootloader: int = 3
    tee: int = 0
    snp: int = 8
    microcode: int = 115

    def u64(self) -> int:
        return int.from_bytes(
            bytes([self.bootloader, self.tee, 0, 0, 0, 0, self.snp, self.microcode]), "little"
        )


@dataclass
class SnpFields:
    """The report fields tests vary; the rest follow firmware's rules (reserved zero)."""

    report_data: bytes = bytes(64)
    measurement: bytes = bytes(range(48))
    policy: int = 0x30000  # SMT allowed, reserved bit 17
    tcb: Tcb = field(default_factory=Tcb)
    current_tcb: Tcb | None = None
    """CURRENT_TCB when it differs from the reported/committed/launch TCB."""
    chip_id: bytes = bytes(range(64, 128))
    platform_info: int = 0x1
    cpuid: tuple[int, int, int] = (0x19, 0x01, 0x01)  # Milan
    version: int = 3


class AmdTestPki:
    """One product's ARK/ASK and a VCEK for one chip and TCB."""

    def __init__(
        self, product: str = "Milan", chip_id: bytes = bytes(range(64, 128)), tcb: Tcb | None = None
    ) -> None:
        self.product = product
        self.tcb = tcb or Tcb()
        self.ark_key = rsa.generate_private_key(65537, 2048)
        self.ask_key = rsa.generate_private_key(65537, 2048)
        self.vcek_key = ec.generate_private_key(ec.SECP384R1())
        self.ark = self._ca(f"ARK-{product}", self.ark_key.public_key(), self.ark_key, True)
        self.ask = self._ca(f"SEV-{product}", self.ask_key.public_key(), self.ark_key, False)
        self.vcek = self.make_vcek(chip_id, self.tcb)

    def _ca(
        self, cn: str, public: rsa.RSAPublicKey, signer: rsa.RSAPrivateKey, root: bool
    ) -> x509.Certificate:
        issuer = _name(cn) if root else _name(f"ARK-{self.product}")
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(issuer)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOT_BEFORE)
            .not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
        )
        return builder.sign(signer, hashes.SHA384(), rsa_padding=PSS)

    def make_vcek(self, chip_id: bytes, tcb: Tcb) -> x509.Certificate:
        def integer(v: int) -> bytes:
            return bytes([0x02, 0x01, v]) if v < 0x80 else bytes([0x02, 0x02, 0x00, v])

        product = self.product.encode() + b"-B0"
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name("SEV-VCEK"))
            .issuer_name(_name(f"SEV-{self.product}"))
            .public_key(self.vcek_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOT_BEFORE)
            .not_valid_after(NOT_AFTER)
            .add_extension(_ext("2", bytes([0x16, len(product)]) + product), critical=False)
            .add_extension(_ext("3.1", integer(tcb.bootloader)), critical=False)
            .add_extension(_ext("3.2", integer(tcb.tee)), critical=False)
            .add_extension(_ext("3.3", integer(tcb.snp)), critical=False)
            .add_extension(_ext("3.8", integer(tcb.microcode)), critical=False)
            .add_extension(_ext("4", chip_id), critical=False)
        )
        return builder.sign(self.ask_key, hashes.SHA384(), rsa_padding=PSS)

    @property
    def chain(self) -> list[x509.Certificate]:
        """VCEK, ASK, ARK (what ``--certs`` carries)."""
        return [self.vcek, self.ask, self.ark]

    def report(self, f: SnpFields | None = None) -> bytes:
        """A signed report with ``f``'s fields."""
        f = f or SnpFields(chip_id=bytes(range(64, 128)), tcb=self.tcb)
        body = bytearray(0x4A0)
        struct.pack_into("<IIQ", body, 0, f.version, 1, f.policy)
        struct.pack_into("<II", body, 0x30, 0, 1)  # VMPL 0, ECDSA P-384/SHA-384
        struct.pack_into("<QQ", body, 0x38, (f.current_tcb or f.tcb).u64(), f.platform_info)
        body[0x50:0x90] = f.report_data
        body[0x90:0xC0] = f.measurement
        struct.pack_into("<Q", body, 0x180, f.tcb.u64())
        if f.version >= 3:
            body[0x188:0x18B] = bytes(f.cpuid)
        body[0x1A0:0x1E0] = f.chip_id
        struct.pack_into("<Q", body, 0x1E0, f.tcb.u64())
        body[0x1E8:0x1EB] = bytes([20, 55, 1])
        body[0x1EC:0x1EF] = bytes([20, 55, 1])
        struct.pack_into("<Q", body, 0x1F0, f.tcb.u64())
        der = self.vcek_key.sign(bytes(body[:0x2A0]), ec.ECDSA(hashes.SHA384()))
        r, s = decode_dss_signature(der)
        body[0x2A0 : 0x2A0 + 72] = r.to_bytes(72, "little")
        body[0x2A0 + 72 : 0x2A0 + 144] = s.to_bytes(72, "little")
        return bytes(body)


def _p256_name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Intel Corporation"),
        ]
    )


class IntelTestPki:
    """A test "Intel SGX Root CA" -> "PCK Platform CA" -> "PCK Certificate" (ECDSA P-256), and
    TDX v4 quotes whose QE report the PCK key signs (no SGX extension: no collateral use)."""

    def __init__(self) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.pck_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._cert(
            "Intel SGX Root CA", self.root_key, self.root_key, "Intel SGX Root CA", 1
        )
        self.ca = self._cert(
            "Intel SGX PCK Platform CA", self.ca_key, self.root_key, "Intel SGX Root CA", 0
        )
        self.pck = self._cert(
            "Intel SGX PCK Certificate",
            self.pck_key,
            self.ca_key,
            "Intel SGX PCK Platform CA",
            None,
        )

    def _cert(
        self,
        cn: str,
        key: ec.EllipticCurvePrivateKey,
        signer: ec.EllipticCurvePrivateKey,
        issuer: str,
        path_length: int | None,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(_p256_name(cn))
            .issuer_name(_p256_name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOT_BEFORE)
            .not_valid_after(NOT_AFTER)
        )
        if path_length is not None:
            builder = builder.add_extension(
                x509.BasicConstraints(ca=True, path_length=path_length), critical=True
            )
        return builder.sign(signer, hashes.SHA256())

    def quote(
        self,
        report_data: bytes = bytes(64),
        mrtd: bytes = bytes(range(48)),
        td_attributes: bytes = bytes(8),
    ) -> bytes:
        """A v4 quote: header, TD 1.0 body, ECDSA signature data, QE report, PCK chain (PEM)."""
        import hashlib

        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        header = struct.pack("<HHI", 4, 2, 0x81) + bytes(4)
        header += bytes.fromhex("939a7233f79c4ca9940a0db3957f0607") + bytes(20)
        body = bytes(16) + bytes(48) + bytes(48) + bytes(8) + td_attributes + bytes(8)
        body += mrtd + bytes(48 * 3) + bytes(48 * 4) + report_data
        att_key = ec.generate_private_key(ec.SECP256R1())
        raw_key = att_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        raw_key = raw_key[1:]

        def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        auth = bytes(range(32))
        qe = bytearray(384)
        struct.pack_into("<HH", qe, 256, 2, 4)  # ISVPRODID 2, ISVSVN 4
        qe[320:352] = hashlib.sha256(raw_key + auth).digest()
        pem = b"".join(c.public_bytes(Encoding.PEM) for c in (self.pck, self.ca, self.root))
        inner = struct.pack("<HI", 5, len(pem)) + pem
        cert_data = bytes(qe) + sign(self.pck_key, bytes(qe)) + struct.pack("<H", 32) + auth
        cert_data += inner
        signed = header + body
        sig_data = sign(att_key, signed) + raw_key + struct.pack("<HI", 6, len(cert_data))
        sig_data += cert_data
        return signed + struct.pack("<I", len(sig_data)) + sig_data
