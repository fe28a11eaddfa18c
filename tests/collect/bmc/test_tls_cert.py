"""Certificate description: self-signed, expired, factory default, weak key, SHA-1."""

from __future__ import annotations

import dataclasses
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gpufence.collect.bmc.tls import (
    analyze_certificate,
    local_tls_support,
    vendor_default_certificate,
)

NOW = datetime.datetime(2026, 11, 25, tzinfo=datetime.UTC)

HPE_ISSUER = [
    (NameOID.COMMON_NAME, "Default Issuer (Do not trust)"),
    (NameOID.ORGANIZATION_NAME, "Hewlett Packard Enterprise"),
]


def _cert(
    subject: list[tuple[x509.ObjectIdentifier, str]],
    issuer: list[tuple[x509.ObjectIdentifier, str]] | None = None,
    *,
    key: object = None,
    days: int = 365,
    start: datetime.datetime = NOW - datetime.timedelta(days=1),
) -> bytes:
    signing = key or ec.generate_private_key(ec.SECP256R1())
    subject_name = x509.Name([x509.NameAttribute(o, v) for o, v in subject])
    issuer_name = (
        x509.Name([x509.NameAttribute(o, v) for o, v in issuer]) if issuer else subject_name
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject_name)
        .issuer_name(issuer_name)
        .public_key(signing.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .sign(signing, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert.public_bytes(serialization.Encoding.DER)


def test_self_signed_and_valid() -> None:
    info = analyze_certificate(_cert([(NameOID.COMMON_NAME, "bmc-7")]), NOW)
    assert info.self_signed and not info.expired and not info.not_yet_valid
    assert info.key_type == "EC" and info.key_bits == 256 and not info.weak_key
    assert info.signature_hash == "sha256" and info.x509_version == 3
    assert info.vendor_default is None


def test_issued_by_another_name_is_not_self_signed() -> None:
    der = _cert([(NameOID.COMMON_NAME, "ILO2M2D2J00L4")], HPE_ISSUER)
    info = analyze_certificate(der, NOW)
    assert not info.self_signed
    assert info.vendor_default == "HPE iLO factory certificate"


def test_expired_weak_sha1() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = _cert(
        [(NameOID.COMMON_NAME, "old-bmc")],
        key=weak,
        start=NOW - datetime.timedelta(days=800),
        days=365,
    )
    info = analyze_certificate(der, NOW)
    assert info.expired and info.weak_key
    assert info.key_type == "RSA" and info.key_bits == 1024
    # cryptography no longer signs with SHA-1; the flag is about the parsed hash name.
    assert not info.sha1_signature
    assert dataclasses.replace(info, signature_hash="sha1").sha1_signature


def test_vendor_default_patterns() -> None:
    assert vendor_default_certificate(
        "CN=Default Issuer (Do not trust),O=Hewlett Packard Enterprise"
    )
    assert vendor_default_certificate("CN=manager.contoso.org,O=Contoso") is None


def test_local_tls_support_answers() -> None:
    # Either this OpenSSL can do TLS 1.2 with itself (always) or it says why not.
    for version in ("TLSv1", "TLSv1.1"):
        reason = local_tls_support(version)
        assert reason is None or "OpenSSL" in reason
