"""A test device CA in NVIDIA's layout, SPDM reports it signs, and RIMs a test RIM CA signs.

Chain (leaf first, as GPUs send it): ``<chip> A01 GSP FMC LF`` (leaf, carries the TCG DICE
FWID extension) -> ``<chip> A01 GSP BROM`` -> ``NVIDIA <chip> Provisioner ICA 1`` ->
``NVIDIA <chip> Identity`` -> a self-signed root. Reports use NVIDIA's byte layout (SPDM 1.1,
64 SHA-384 blocks, opaque TLVs, raw r||s P-384 signature). Everything is generated per test run.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import CanonicalizationMethod

NOT_BEFORE = datetime(2024, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2030, 1, 1, tzinfo=UTC)
DICE_OID = x509.ObjectIdentifier("2.23.133.5.4.1")
SHA384_OID = bytes.fromhex("0609608648016503040202")


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        head = bytes([n])
    else:
        size = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(size)]) + size
    return bytes([tag]) + head + body


def fwid_sequence(digest: bytes) -> bytes:
    return _der(0x30, SHA384_OID + _der(0x04, digest))


def composite_device_id(key: ec.EllipticCurvePublicKey, digest: bytes) -> bytes:
    """Hopper: SEQUENCE { version 1, SubjectPublicKeyInfo, FWID }."""
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _der(0x30, _der(0x02, b"\x01") + spki + fwid_sequence(digest))


def dice_tcb_info(digest: bytes) -> bytes:
    """Blackwell: DiceTcbInfo { vendor [0], model [1], fwids [6] { FWID } }."""
    return _der(
        0x30, _der(0x80, b"NVIDIA") + _der(0x81, b"GB100") + _der(0xA6, fwid_sequence(digest))
    )


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "NVIDIA Corporation"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    extra: list[tuple[x509.ExtensionType, bool]] = (),  # type: ignore[assignment]
    not_after: datetime = NOT_AFTER,
    not_before: datetime = NOT_BEFORE,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    for ext, critical in extra:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer_key, hashes.SHA384())


@dataclass
class TestDevice:
    root: x509.Certificate
    chain: list[x509.Certificate]
    """Leaf first, root last (as NVIDIA devices send it)."""
    leaf_key: ec.EllipticCurvePrivateKey
    fwid: bytes
    arch: str

    @property
    def pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)


def make_device(
    arch: str = "HOPPER",
    root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    *,
    leaf_not_after: datetime = NOT_AFTER,
) -> TestDevice:
    chip = {"HOPPER": "GH100", "BLACKWELL": "GB100", "LS10": "LS_10"}[arch]
    if root is None:
        root = make_root("Test Device Identity CA")
    root_cert, root_key = root
    keys = [ec.generate_private_key(ec.SECP384R1()) for _ in range(4)]
    identity = _cert(f"NVIDIA {chip} Identity", keys[0], root_cert, root_key, ca=True)
    ica = _cert(f"NVIDIA {chip} Provisioner ICA 1", keys[1], identity, keys[0], ca=True)
    brom = _cert(f"{chip} A01 GSP BROM", keys[2], ica, keys[1], ca=True)
    fwid = hashlib.sha384(b"firmware " + chip.encode() + brom.fingerprint(hashes.SHA256())).digest()
    value = (
        dice_tcb_info(fwid)
        if arch == "BLACKWELL"
        else composite_device_id(keys[3].public_key(), fwid)
    )
    leaf = _cert(
        f"{chip} A01 GSP FMC LF",
        keys[3],
        brom,
        keys[2],
        ca=False,
        extra=[(x509.UnrecognizedExtension(DICE_OID, value), False)],
        not_after=leaf_not_after,
    )
    return TestDevice(root_cert, [leaf, brom, ica, identity, root_cert], keys[3], fwid, arch)


def make_root(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP384R1())
    return _cert(cn, key, None, key, ca=True), key


def measurements(count: int = 64, seed: bytes = b"golden") -> list[bytes]:
    return [hashlib.sha384(seed + bytes([i])).digest() for i in range(count)]


def build_report(
    device: TestDevice,
    nonce: bytes,
    blocks: list[bytes],
    *,
    driver: str = "550.90.07",
    vbios: bytes = bytes.fromhex("009f009601000000"),
    include_fwid: bool = True,
    extra_opaque: list[tuple[int, bytes]] = (),  # type: ignore[assignment]
) -> bytes:
    """GET_MEASUREMENTS request + signed MEASUREMENTS response in NVIDIA's layout."""
    request = bytes([0x11, 0xE0, 0x01, 0xFF]) + nonce + b"\x00"
    record = b"".join(
        bytes([i + 1, 0x01])
        + struct.pack("<H", len(v) + 3)
        + bytes([0x01])
        + struct.pack("<H", len(v))
        + v
        for i, v in enumerate(blocks)
    )
    fields: list[tuple[int, bytes]] = []
    if device.arch != "LS10":
        fields += [
            (3, driver.encode() + b"\x00"),
            (6, vbios),
            (17, b"1010\x00"),
            (18, b"0200\x00"),
            (15, b"882\x00"),
            (11, b"\x55"),
        ]
    else:
        fields += [(6, b"96.10.55.00.01\x00")]
    if include_fwid:
        fields.append((20, device.fwid))
    fields += list(extra_opaque)
    opaque = b"".join(struct.pack("<HH", t, len(v)) + v for t, v in fields)
    response = (
        bytes([0x11, 0x60, 0x00, 0x00, len(blocks)])
        + len(record).to_bytes(3, "little")
        + record
        + hashlib.sha256(b"responder" + nonce).digest()
        + struct.pack("<H", len(opaque))
        + opaque
    )
    signed = request + response
    r, s = decode_dss_signature(device.leaf_key.sign(signed, ec.ECDSA(hashes.SHA384())))
    return signed + r.to_bytes(48, "big") + s.to_bytes(48, "big")


def serialized(device: TestDevice, report: bytes, nonce: bytes) -> dict[str, str]:
    """One entry of NVIDIA's serialized evidence JSON."""
    return {
        "arch": device.arch,
        "nonce": nonce.hex(),
        "evidence": base64.b64encode(report).decode(),
        "certificate": base64.b64encode(device.pem).decode(),
    }


SWID = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
TCG = "https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/"
SHA = "http://www.w3.org/2001/04/xmlenc#sha384"


@dataclass
class RimSigner:
    root: x509.Certificate
    chain: list[x509.Certificate]
    key: ec.EllipticCurvePrivateKey


def make_rim_signer(*, leaf_not_after: datetime = NOT_AFTER) -> RimSigner:
    root, root_key = make_root("Test CoRIM signing Root CA")
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = _cert("Test Reference Value CA", ca_key, root, root_key, ca=True)
    key = ec.generate_private_key(ec.SECP384R1())
    leaf = _cert("Test RIM Signer", key, ca, ca_key, ca=False, not_after=leaf_not_after)
    return RimSigner(root, [leaf, ca, root], key)


def make_rim(
    signer: RimSigner,
    version: str,
    golden: dict[int, bytes],
    *,
    edition: str = "GPU",
    product: str = "GH100",
) -> bytes:
    """An NVIDIA-shaped SWID RIM, enveloped XML-DSig ecdsa-sha384 / c14n 1.1."""
    root = etree.Element(
        f"{{{SWID}}}SoftwareIdentity",
        nsmap={None: SWID, "ns2": SHA},
        name=product,
        tagId="test-" + version,
        version="1.0",
    )
    etree.SubElement(
        root,
        f"{{{SWID}}}Meta",
        {
            "colloquialVersion": version,
            "edition": edition,
            "product": product,
            f"{{{TCG}}}FirmwareManufacturerId": "5703",
        },
        nsmap={"ns1": TCG},
    )
    payload = etree.SubElement(root, f"{{{SWID}}}Payload")
    for index in range(64):
        value = golden.get(index)
        attrs = {
            "type": "Measurement",
            "index": str(index),
            "active": "True" if value else "False",
            "alternatives": "1" if value else "0",
            "size": "48",
            "name": f"Measurement_{index}",
        }
        if value:
            attrs[f"{{{SHA}}}Hash0"] = value.hex()
        etree.SubElement(payload, f"{{{SWID}}}Resource", attrs)
    signed = XMLSigner(
        signature_algorithm="ecdsa-sha384",
        digest_algorithm="sha384",
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_1,
    ).sign(
        root,
        key=signer.key,
        cert=[c.public_bytes(serialization.Encoding.PEM).decode() for c in signer.chain[:-1]],
    )
    return etree.tostring(signed)
