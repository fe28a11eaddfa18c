"""Eager certificate checks: ``cryptography`` parses fields lazily, so a malformed name or
extension would otherwise raise ValueError deep inside chain building (an internal error)."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding

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


def off_path(sent: Sequence[x509.Certificate], path: Sequence[x509.Certificate]) -> str | None:
    """The first sent certificate that is not on the verified path (None when all are).

    Extra certificates change nothing that is trusted, but an unsigned container should carry
    nothing unverified: a chain with a stray or altered certificate is refused.
    """
    on_path = {c.public_bytes(Encoding.DER) for c in path}
    for position, cert in enumerate(sent):
        if cert.public_bytes(Encoding.DER) not in on_path:
            return (
                f"certificate {position} ({cert.subject.rfc4514_string()}) is not on the path "
                "to the pinned root"
            )
    return None
