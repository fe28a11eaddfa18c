"""Eager certificate checks: ``cryptography`` parses fields lazily, so a malformed name or
extension would otherwise raise ValueError deep inside chain building (an internal error)."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from gpufence.attest.certs import off_path

__all__ = ["malformed_certificate", "off_path"]


def malformed_certificate(certs: Sequence[x509.Certificate]) -> str | None:
    """A description of the first certificate whose fields do not parse; None when all do."""
    for position, cert in enumerate(certs):
        try:
            _ = (cert.subject, cert.issuer, cert.signature_algorithm_oid)
            _ = (cert.not_valid_before_utc, cert.not_valid_after_utc, cert.tbs_certificate_bytes)
            _ = (list(cert.extensions), cert.public_key(), cert.signature_hash_algorithm)
            _ = [(a.oid, a.value) for a in (*cert.subject, *cert.issuer)]
        except (
            ValueError,
            TypeError,
            UnsupportedAlgorithm,
            x509.UnsupportedGeneralNameType,
        ) as exc:
            return f"certificate {position} is malformed or unsupported: {exc}"
    return None
